//! The command line: flags, subcommands, and how their results become output and exit codes.
//!
//! Each subcommand is one variant of the closed [`Command`] enum and one file here. The
//! commands are the thin shell around the pure core: they read the clock and the files, call
//! the core, and print. Exit codes (contract, PRODUCT.md §4): 0 success, 1 invalid input (with
//! diagnostics on stderr; also `send-due` when due mail had to wait for a later run), 2 usage
//! errors, 3 a failure while running (the database, the runtime, writing the output).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

use crate::diag::{Labels, Source};
use crate::schedule::{LoadReport, load};

mod check;
mod days_off;
mod events;
mod feeds;
mod ics;
mod lunar;
mod report;
mod send;
mod serve;
mod upcoming;

/// ngayle — ngày lễ: lịch các ngày lễ, kỷ niệm và việc cần làm cho trường học, cơ quan.
#[derive(Debug, Parser)]
#[command(name = "ngayle", version, about, propagate_version = true)]
pub struct Cli {
    /// The configuration file [default: $NGAYLE_CONFIG, else config/ngayle.yaml].
    #[arg(long, global = true, env = "NGAYLE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The labels of the diagnostics: `vi` (lỗi, cảnh báo, gợi ý) or `en` (error, warning,
    /// help: the contract line for scripts) [default: $NGAYLE_MESSAGE_FORMAT, else vi].
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub message_format: Option<MessageFormat>,

    /// Log format [default: $NGAYLE_LOG_FORMAT, else text].
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every file; print a summary, or every mistake as FILE:LINE:COL.
    Check,
    /// List the occurrences of the events in a date range.
    Events(events::Args),
    /// Convert solar dates to the Vietnamese lunar calendar.
    Lunar(lunar::Args),
    /// The official days off and make-up working days of a year, with why.
    DaysOff(days_off::Args),
    /// The reminder plan: who gets what, when.
    Upcoming(upcoming::Args),
    /// One scheduler tick at a given instant: send what is due and not yet sent.
    SendDue(send::DueArgs),
    /// Send one test email with the configured transport.
    SendTest(send::TestArgs),
    /// Write an iCalendar feed (the same bytes the server sends).
    Ics(ics::Args),
    /// Every feed's address: the full feed, each group's, each person's own; revoke a link.
    Feeds(feeds::Args),
    /// What was done for each task in a range of days, by whom, and what was not (table, CSV, XLSX).
    Report(report::Args),
    /// Run the service: the HTTP feeds, the reminder emails, reloads, /healthz and /metrics.
    Serve(serve::Args),
}

/// Output formats of the listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Aligned columns for people, in Vietnamese.
    #[default]
    Table,
    /// Tab-separated values for scripts (contract: PRODUCT.md §4).
    Tsv,
}

/// Why a command failed, mapped to an exit code in one place.
#[derive(Debug)]
pub enum Failure {
    /// The input files are invalid; the diagnostics were printed. Exit 1.
    Invalid,
    /// The command line is wrong. Exit 2.
    Usage(String),
    /// Something failed while running, not in the input: the database, the runtime, the
    /// service's listener or a task of it that stopped abnormally. Exit 3.
    Runtime(String),
    /// Output could not be written (other than a closed pipe). Exit 3.
    Io(io::Error),
}

/// The exit code of a failure while running ([`Failure::Runtime`], [`Failure::Io`]).
pub const EXIT_RUNTIME: u8 = 3;

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    if let Some(format) = cli.log_format {
        let _ = LOG_FORMAT.set(format);
    }
    let labels = match cli.message_format {
        Some(f) => f,
        None => match std::env::var("NGAYLE_MESSAGE_FORMAT") {
            Ok(v) if v.eq_ignore_ascii_case("en") => MessageFormat::En,
            _ => MessageFormat::Vi,
        },
    };
    let _ = LABELS.set(labels.labels());
    let config = cli
        .config
        .unwrap_or_else(|| PathBuf::from("config/ngayle.yaml"));
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = match cli.command {
        Command::Check => check::run(&config, &mut out),
        Command::Events(args) => events::run(&config, &args, &mut out),
        Command::Lunar(args) => lunar::run(&args, &mut out),
        Command::DaysOff(args) => days_off::run(&config, &args, &mut out),
        Command::Upcoming(args) => upcoming::run(&config, &args, &mut out),
        Command::SendDue(args) => send::due(&config, &args, &mut out),
        Command::SendTest(args) => send::test(&config, &args, &mut out),
        Command::Ics(args) => ics::run(&config, &args, &mut out),
        Command::Feeds(args) => feeds::run(&config, &args, &mut out),
        Command::Report(args) => report::run(&config, &args, &mut out),
        Command::Serve(args) => serve::run(&config, &args),
    }
    .and_then(|()| out.flush().map_err(Failure::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `ngayle lunar … | head` closes the pipe early: that is not an error.
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Io(e)) => {
            eprintln!("ngayle: lỗi ghi kết quả: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
        Err(Failure::Runtime(msg)) => {
            eprintln!("ngayle: lỗi khi chạy: {msg}");
            ExitCode::from(EXIT_RUNTIME)
        }
        Err(Failure::Invalid) => ExitCode::from(1),
        Err(Failure::Usage(msg)) => {
            eprintln!("ngayle: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Today's date in Vietnam (UTC+7, no daylight saving time).
pub fn today() -> NaiveDate {
    crate::vietnam::today(chrono::Utc::now())
}

/// The labels of the diagnostics `ngayle` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    /// `lỗi:`, `cảnh báo:`, `gợi ý:`, for people.
    Vi,
    /// `error:`, `warning:`, `help:`, for scripts.
    En,
}

impl MessageFormat {
    fn labels(self) -> Labels {
        match self {
            MessageFormat::Vi => Labels::Vietnamese,
            MessageFormat::En => Labels::English,
        }
    }
}

/// The labels asked for (`--message-format`, else `NGAYLE_MESSAGE_FORMAT`).
static LABELS: std::sync::OnceLock<Labels> = std::sync::OnceLock::new();

/// The log format asked for on the command line (over `NGAYLE_LOG_FORMAT`).
static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// How `serve` and `send-due` write their logs (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// Sets up logging to stderr: human-readable, or JSON lines with `--log-format json` or
/// `NGAYLE_LOG_FORMAT=json`; the level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    // tokio-cron-scheduler logs its start-up in English at INFO: not the admin's business. First,
    // so that an explicit `tokio_cron_scheduler=…` in RUST_LOG still wins.
    const QUIET: &str = "tokio_cron_scheduler=warn";
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|env| EnvFilter::try_new(format!("{QUIET},{env}")).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("info,{QUIET}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr)
        .with_timer(VietnamTime);
    let json = match LOG_FORMAT.get() {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => std::env::var("NGAYLE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json")),
    };
    // A second initialisation (tests) is not an error worth reporting.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.event_format(Human).try_init()
    };
}

/// Log times in Vietnamese time, as everything else the admin reads (`2026-12-02T07:30:00.123+07:00`).
struct VietnamTime;

impl tracing_subscriber::fmt::time::FormatTime for VietnamTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let now = crate::vietnam::local(chrono::Utc::now());
        write!(w, "{}", now.format("%Y-%m-%dT%H:%M:%S%.3f%:z"))
    }
}

/// The text log as the admin reads it: time, the level in Vietnamese, the message, then the
/// fields (`reminder=…`); no module path (`RUST_LOG` targets still filter).
struct Human;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Human
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut w: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::time::FormatTime;
        VietnamTime.format_time(&mut w)?;
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "lỗi",
            tracing::Level::WARN => "cảnh báo",
            tracing::Level::INFO => "tin",
            tracing::Level::DEBUG => "gỡ lỗi",
            tracing::Level::TRACE => "chi tiết",
        };
        write!(w, " {level}: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Loads the schedule and prints its diagnostics to stderr; `Invalid` when there are errors.
fn load_or_report(config: &Path) -> Result<LoadReport, Failure> {
    let report = load(config, today());
    print_diagnostics(&report);
    if report.schedule.is_some() {
        Ok(report)
    } else {
        eprintln!(
            "ngayle: {} lỗi trong tệp cấu hình và lịch; sửa rồi chạy lại `ngayle check`",
            report.errors()
        );
        Err(Failure::Invalid)
    }
}

fn print_diagnostics(report: &LoadReport) {
    let stderr = io::stderr();
    // Nothing sensible can be done if stderr itself is closed.
    let _ = write_diagnostics(report, &mut stderr.lock());
}

/// Writes every diagnostic of `report` as `ngayle check` prints it: the contract line (with
/// the labels of `--message-format`), the source line with a caret, the help.
pub fn write_diagnostics(report: &LoadReport, out: &mut impl Write) -> io::Result<()> {
    // Each file's lines are found once, however many diagnostics it has.
    let mut sources: HashMap<&Path, Option<Source>> = HashMap::new();
    for d in &report.diagnostics {
        let source = sources
            .entry(&d.path)
            .or_insert_with(|| report.source_of(&d.path).map(Source::new));
        let labels = LABELS.get().copied().unwrap_or_default();
        writeln!(out, "{}", d.render_with(source.as_ref(), labels))?;
    }
    Ok(())
}

/// Parses a date given on the command line: `2024-05-07` (also `7/5/2024`).
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
        .map_err(|_| format!("`{s}` không phải ngày dạng NĂM-THÁNG-NGÀY (ví dụ 2024-05-07)"))
}

/// Pads `s` to `width` characters (not bytes: Vietnamese letters are several bytes).
pub fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

/// Aligned columns for people: a header line, then one line per row; the last column is not
/// padded.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == N {
                s.push_str(cell);
            } else {
                s.push_str(&pad(cell, widths[i] + 2));
            }
        }
        format!("{}\n", s.trim_end())
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}
