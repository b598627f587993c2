//! `ngayle send-due --now INSTANT [--dry-run]` and `ngayle send-test ADDRESS`.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use super::{Failure, load_or_report};
use crate::delivery::{TickControl, tick};
use crate::mail::Mailer;
use crate::store::Store;
use crate::vietnam::ZONE;

#[derive(Debug, clap::Args)]
pub struct DueArgs {
    /// The instant of the tick: RFC 3339 (`2024-04-29T07:30:00+07:00`), or a local
    /// Vietnamese time `2024-04-29T07:30`.
    #[arg(long, value_parser = parse_instant)]
    pub now: DateTime<Utc>,
    /// Show what would be sent; record and send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Where to send the test email.
    pub address: String,
}

/// An instant: RFC 3339, or a local time in Vietnam without offset.
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .and_then(|t| ZONE.from_local_datetime(&t).single())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("`{s}` không phải thời điểm dạng 2024-04-29T07:30:00+07:00"))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.to_string()))
}

pub fn due(config: &Path, args: &DueArgs, out: &mut impl Write) -> Result<(), Failure> {
    super::init_tracing();
    let report = load_or_report(config)?;
    let Some(schedule) = &report.schedule else {
        return Err(Failure::Invalid);
    };
    let control = TickControl::default();
    // The mailer lives and dies inside the runtime: its connection pool needs one.
    let result = runtime()?.block_on(async {
        // The mail settings are the admin's input: a mistake there is invalid input (exit 1).
        let mailer = Mailer::new(&schedule.settings).map_err(|e| {
            eprintln!("ngayle: {e}");
            Failure::Invalid
        })?;
        // The store failing is not the admin's files (exit 3).
        let store = Store::open(&schedule.settings.state)
            .await
            .map_err(|e| Failure::Runtime(crate::diag::with_os_hint(&e)))?;
        let r = tick(schedule, &store, &mailer, args.now, args.dry_run, &control)
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        Ok::<_, Failure>((r, mailer.describe().to_string()))
    });
    let (r, transport) = result?;
    for line in &r.would_send {
        writeln!(out, "{line}")?;
    }
    let (verb, skip, refuse) = if args.dry_run {
        ("Sẽ gửi", "sẽ bỏ qua", "sẽ từ chối")
    } else {
        ("Đã gửi", "bỏ qua", "từ chối")
    };
    write!(
        out,
        "{verb} {} thư ({} lời nhắc, {} muộn) qua {transport}; {skip} {} (quá hạn gửi bù hoặc đã qua hạn công việc); {refuse} {}; chờ thử lại {}",
        r.messages, r.sent, r.late, r.skipped, r.failed, r.retrying
    )?;
    if r.before_start > 0 {
        write!(
            out,
            "; {} lời nhắc đến hạn trước khi ngayle bắt đầu chạy (không gửi)",
            r.before_start
        )?;
    }
    if r.done > 0 {
        write!(
            out,
            "; {} lời nhắc không gửi vì việc đã được báo xong",
            r.done
        )?;
    }
    writeln!(out, ".")?;
    // Emails were due and none could be sent, or the server stopped being usable: a failure
    // of this command (a script or a timer running it must notice), nothing lost.
    let none_sent = r.messages == 0 && r.temporary_failures > 0;
    if r.deferred || none_sent {
        if r.deferred {
            writeln!(
                out,
                "Máy chủ thư chưa dùng được: phần còn lại sẽ gửi ở lần sau."
            )?;
        }
        out.flush()?;
        eprintln!(
            "ngayle: không gửi được thư qua {transport}: {} lời nhắc chờ gửi lại ở lần sau (không mất lời nhắc nào).",
            r.retrying
        );
        return Err(Failure::Invalid);
    }
    Ok(())
}

pub fn test(config: &Path, args: &TestArgs, out: &mut impl Write) -> Result<(), Failure> {
    super::init_tracing();
    let report = load_or_report(config)?;
    let Some(schedule) = &report.schedule else {
        return Err(Failure::Invalid);
    };
    let to: lettre::message::Mailbox = args
        .address
        .parse()
        .map_err(|e| Failure::Usage(format!("`{}` không phải địa chỉ email: {e}", args.address)))?;
    let unit = &schedule.unit.name;
    let result = runtime()?.block_on(async {
        let mailer = Mailer::new(&schedule.settings).map_err(|e| e.to_string())?;
        let text = format!(
            "Đây là thư thử của ngayle ({unit}).\n\nNếu bạn nhận được thư này, cấu hình gửi thư ({}) đã đúng.\n",
            mailer.describe()
        );
        // No dynamic text in the HTML part: nothing to escape by hand.
        let html = "<p>Đây là thư thử của ngayle.</p><p>Nếu bạn nhận được thư này, cấu hình gửi thư đã đúng.</p>".to_string();
        let message_id = mailer.new_message_id(&args.address);
        let message =
            mailer.message(to, &format!("[ngayle] Thư thử — {unit}"), text, html, &message_id);
        mailer
            .send(&message)
            .await
            .map_err(|e| format!("không gửi được thư thử qua {}: {e}", mailer.describe()))?;
        Ok::<_, String>((message_id, mailer.describe().to_string()))
    });
    match result {
        Ok((message_id, transport)) => {
            writeln!(
                out,
                "Đã gửi thư thử tới {} qua {transport} ({message_id}).",
                args.address
            )?;
            Ok(())
        }
        // A test email the server does not take is what this command is for finding out: the
        // mail settings are wrong (exit 1).
        Err(e) => {
            eprintln!("ngayle: {e}");
            Err(Failure::Invalid)
        }
    }
}
