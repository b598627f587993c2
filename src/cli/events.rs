//! `ngayle events --from --to [--format table|tsv]`: the occurrences in a date range.
//!
//! tsv columns: date, event id, anniversary, class id, official title, calendar title (SUMMARY).

use std::io::Write;
use std::path::Path;

use chrono::NaiveDate;

use super::{Failure, Format, load_or_report, parse_date, table};
use crate::occurrence::occurrences;
use crate::vietnam;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// First day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub from: NaiveDate,
    /// Last day, included (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub to: NaiveDate,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(config: &Path, args: &Args, out: &mut impl Write) -> Result<(), Failure> {
    super::lunar::check_range(args.from, args.to)?;
    let report = load_or_report(config)?;
    let Some(schedule) = &report.schedule else {
        return Err(Failure::Invalid);
    };
    let list = occurrences(schedule, args.from, args.to);
    match args.format {
        Format::Tsv => {
            for o in &list {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    o.date.format("%Y-%m-%d"),
                    o.event.id,
                    o.anniversary.map(|n| n.to_string()).unwrap_or_default(),
                    o.class.map(|c| c.id()).unwrap_or_default(),
                    o.title,
                    // The calendar title (the feeds' SUMMARY), last so that readers of the
                    // first five columns keep working.
                    o.summary
                )?;
            }
        }
        Format::Table => {
            let rows: Vec<[String; 6]> = list
                .iter()
                .map(|o| {
                    let date = if o.event.days > 1 {
                        format!("{}–{}", o.date.format("%d/%m"), vietnam::date(o.last_day()))
                    } else {
                        vietnam::date(o.date)
                    };
                    [
                        date,
                        vietnam::weekday(o.date).to_string(),
                        o.lunar().map(|l| l.to_string()).unwrap_or_default(),
                        o.anniversary.map(|n| n.to_string()).unwrap_or_default(),
                        o.class.map(|c| c.name_vi().to_string()).unwrap_or_default(),
                        o.title.clone(),
                    ]
                })
                .collect();
            let header = ["Ngày", "Thứ", "Âm lịch", "Lần", "Loại", "Sự kiện"];
            out.write_all(table(&header, &rows).as_bytes())?;
            writeln!(
                out,
                "\n{} lần kỷ niệm từ {} đến {} ({}).",
                rows.len(),
                vietnam::date(args.from),
                vietnam::date(args.to),
                schedule.unit.name
            )?;
        }
    }
    Ok(())
}
