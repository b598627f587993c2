//! `ngayle upcoming [--from DATE] [--days N] [--format table|tsv]`: the reminder plan; the
//! table also lists the escalations that go out if a task is not answered "Đã xong" by then
//! (the tsv lists reminders only: its columns are a contract for scripts).

use std::io::Write;
use std::path::Path;

use chrono::{Days, NaiveDate, NaiveTime, TimeZone};

use super::{Failure, Format, load_or_report, parse_date, table, today};
use crate::plan::{escalations, plan};
use crate::vietnam;
use crate::vietnam::ZONE;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// First day [default: today].
    #[arg(long, value_parser = parse_date)]
    pub from: Option<NaiveDate>,
    /// How many days, from the first [default: 30].
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: u32,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(config: &Path, args: &Args, out: &mut impl Write) -> Result<(), Failure> {
    let from = args.from.unwrap_or_else(today);
    let to = from
        .checked_add_days(Days::new(u64::from(args.days) - 1))
        .ok_or_else(|| Failure::Usage("khoảng ngày quá xa".to_string()))?;
    super::lunar::check_range(from, to)?;
    let report = load_or_report(config)?;
    let Some(schedule) = &report.schedule else {
        return Err(Failure::Invalid);
    };
    let start = ZONE
        .from_local_datetime(&from.and_time(NaiveTime::MIN))
        .single();
    let end = ZONE
        .from_local_datetime(&to.and_hms_opt(23, 59, 59).unwrap_or_default())
        .single();
    let (Some(start), Some(end)) = (start, end) else {
        return Err(Failure::Usage("khoảng ngày không hợp lệ".to_string()));
    };
    let list = plan(schedule, start.to_utc(), end.to_utc());
    match args.format {
        Format::Tsv => {
            for r in &list {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    r.due_local().format("%Y-%m-%dT%H:%M:%S%:z"),
                    r.key.event_id,
                    r.key.date.format("%Y-%m-%d"),
                    r.key.task_id,
                    r.key.person_id,
                    r.person.email
                )?;
            }
        }
        Format::Table => {
            let rows: Vec<[String; 4]> = list.iter().map(row).collect();
            let header = ["Hạn nhắc", "Người nhận", "Việc", "Ngày lễ"];
            out.write_all(table(&header, &rows).as_bytes())?;
            writeln!(
                out,
                "\n{} lời nhắc từ {} đến {}; \"(dời)\": dời về ngày làm việc trước đó.",
                rows.len(),
                vietnam::date(from),
                vietnam::date(to)
            )?;
            let later = escalations(schedule, start.to_utc(), end.to_utc());
            if !later.is_empty() {
                let rows: Vec<[String; 4]> = later.iter().map(row).collect();
                writeln!(
                    out,
                    "\nBáo việc chưa xong (chỉ gửi nếu đến lúc đó việc chưa được báo \"Đã xong\"):"
                )?;
                let header = ["Lúc báo", "Người được báo", "Việc", "Ngày lễ"];
                out.write_all(table(&header, &rows).as_bytes())?;
            }
        }
    }
    Ok(())
}

/// A table row: when, who, what, for which day.
fn row(r: &crate::plan::Reminder<'_>) -> [String; 4] {
    let moved = if r.moved { " (dời)" } else { "" };
    [
        format!("{}{moved}", vietnam::day_time(r.due_local())),
        r.person.name.clone(),
        r.task.title.clone(),
        // The calendar title has no dates of its own: the day once.
        format!(
            "{} ({})",
            r.occurrence.summary,
            vietnam::date(r.occurrence.date)
        ),
    ]
}
