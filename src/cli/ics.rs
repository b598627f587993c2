//! `ngayle ics [--from-year Y] [--to-year Y] [--group G] [-o FILE]`: write a feed.
//!
//! The same text the server sends for the same years and group: revisions come from the same
//! store, so the output is byte-identical to the served body.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Failure, load_or_report};
use crate::daemon;
use crate::diag::did_you_mean;
use crate::feed::FeedSpec;
use crate::feeds;
use crate::lunar::{FIRST_YEAR, LAST_YEAR};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// First year [default: last year].
    #[arg(long, value_name = "YEAR")]
    pub from_year: Option<i32>,
    /// Last year, included [default: two years ahead].
    #[arg(long, value_name = "YEAR")]
    pub to_year: Option<i32>,
    /// Only the events that give this group a task, with its alarms.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(config: &Path, args: &Args, out: &mut impl Write) -> Result<(), Failure> {
    let report = load_or_report(config)?;
    let Some(schedule) = &report.schedule else {
        return Err(Failure::Invalid);
    };
    let (today, now) = daemon::now();
    let mut spec = FeedSpec::around(today, None);
    spec.from_year = args.from_year.unwrap_or(spec.from_year);
    spec.to_year = args.to_year.unwrap_or(spec.to_year);
    for y in [spec.from_year, spec.to_year] {
        if !(FIRST_YEAR..=LAST_YEAR).contains(&y) {
            return Err(Failure::Usage(format!(
                "năm {y} nằm ngoài khoảng {FIRST_YEAR}–{LAST_YEAR}"
            )));
        }
    }
    if spec.from_year > spec.to_year {
        return Err(Failure::Usage(format!(
            "--from-year {} ở sau --to-year {}",
            spec.from_year, spec.to_year
        )));
    }
    if args.group.as_deref() == Some(crate::feed::DAYS_OFF_FEED) {
        spec.days_off = true;
    } else if let Some(g) = &args.group {
        spec.group = Some(schedule.group(g).ok_or_else(|| {
            let ids: Vec<&str> = schedule.groups.iter().map(|g| g.id.as_str()).collect();
            let hint = did_you_mean(g, ids.iter().copied())
                .map(|c| format!(" — có phải là `{c}`?"))
                .unwrap_or_else(|| format!(" (các nhóm: {})", ids.join(", ")));
            Failure::Usage(format!("không có nhóm `{g}`{hint}"))
        })?);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let text = runtime
        .block_on(async {
            let store = Store::open(&schedule.settings.state).await?;
            feeds::feed_text(schedule, &store, &spec, now).await
        })
        .map_err(|e| {
            eprintln!("ngayle: {e}");
            Failure::Invalid
        })?;
    match &args.output {
        None => out.write_all(text.as_bytes())?,
        Some(path) => write_atomically(path, text.as_bytes())?,
    }
    Ok(())
}

/// Writes to a temporary file beside `path`, then renames it over `path`, so that a web
/// server publishing the file never serves half of it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
