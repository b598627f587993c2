//! `ngayle days-off --year Y [--format table|tsv]`: the official days off of a year and its
//! make-up working days, each with why and where it is decided, and the unit's own days off
//! (events with `day_off`).
//!
//! tsv columns: date, kind (`off` or `work`), why, basis (the law's article or the decision's
//! document and source).

use std::io::Write;
use std::path::Path;

use chrono::NaiveDate;

use super::{Failure, Format, load_or_report, table};
use crate::days_off::{self, basis, describe};
use crate::vietnam;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The year (1900–2199).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1900..=2199))]
    pub year: i32,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(config: &Path, args: &Args, out: &mut impl Write) -> Result<(), Failure> {
    let report = load_or_report(config)?;
    let Some(schedule) = &report.schedule else {
        return Err(Failure::Invalid);
    };
    let rest = |d| schedule.is_rest_day(d);
    let year = days_off::year(args.year, &schedule.decisions, &rest);
    // One row per day: (date, off, why, basis, document for the table).
    let mut rows: Vec<(NaiveDate, bool, String, String, String)> = Vec::new();
    for (date, day) in &year.days {
        // A decision's break may list its weekends; they are rest days anyway and are not
        // listed. A holiday of the rule on a rest day is, as the reason of its nghỉ bù.
        if day.off && rest(*date) && matches!(day.why, days_off::Why::Decided(_)) {
            continue;
        }
        let document = match &day.why {
            days_off::Why::Decided(i) => schedule
                .decisions
                .get(*i)
                .and_then(|d| d.document.clone())
                .unwrap_or_default(),
            _ => basis(day, &schedule.decisions),
        };
        rows.push((
            *date,
            day.off,
            describe(day, args.year, &schedule.decisions),
            basis(day, &schedule.decisions),
            document,
        ));
    }
    // The unit's own days off (`day_off` of an event), unless the day is already off.
    let (first, last) = (
        NaiveDate::from_ymd_opt(args.year, 1, 1),
        NaiveDate::from_ymd_opt(args.year, 12, 31),
    );
    if let (Some(first), Some(last)) = (first, last) {
        for (date, event) in crate::plan::unit_days_off(schedule, first, last) {
            let official = year.days.get(&date).is_some_and(|d| d.off);
            if official || rest(date) || rows.iter().any(|r| r.0 == date && r.1) {
                continue;
            }
            let file = schedule
                .layers
                .get(event.layer)
                .map(|l| l.id.as_str())
                .unwrap_or_default();
            let basis = format!("`day_off` của `{}` (calendars/{file}.yaml)", event.id);
            rows.push((
                date,
                true,
                format!("Nghỉ riêng của đơn vị: {}", event.name),
                basis.clone(),
                basis,
            ));
        }
    }
    rows.sort_by_key(|r| r.0);
    match args.format {
        Format::Tsv => {
            for (date, off, why, basis, _) in &rows {
                writeln!(
                    out,
                    "{}\t{}\t{why}\t{basis}",
                    date.format("%Y-%m-%d"),
                    if *off { "off" } else { "work" },
                )?;
            }
        }
        Format::Table => {
            let table_rows: Vec<[String; 5]> = rows
                .iter()
                .map(|(date, off, why, _, document)| {
                    let kind = match (off, rest(*date)) {
                        (true, true) => "(nghỉ hằng tuần)",
                        (true, false) => "nghỉ",
                        (false, _) => "làm bù",
                    };
                    [
                        vietnam::date(*date),
                        vietnam::weekday(*date).to_string(),
                        kind.to_string(),
                        why.clone(),
                        document.clone(),
                    ]
                })
                .collect();
            let header = ["Ngày", "Thứ", "", "Lý do", "Căn cứ"];
            out.write_all(table(&header, &table_rows).as_bytes())?;
            let (breaks, _) = days_off::breaks(&year, &schedule.decisions, &rest);
            let off = rows.iter().filter(|r| r.1 && !rest(r.0)).count();
            writeln!(
                out,
                "\nNăm {}: {off} ngày nghỉ lễ, Tết (ngoài ngày nghỉ hằng tuần), {} đợt nghỉ:",
                args.year,
                breaks.len()
            )?;
            for b in &breaks {
                writeln!(
                    out,
                    "  {} ({}, {} ngày)",
                    b.name,
                    b.span(),
                    (b.last - b.first).num_days() + 1
                )?;
            }
            let sources: Vec<&str> = schedule
                .decisions
                .iter()
                .filter(|d| d.year == args.year)
                .filter_map(|d| d.source.as_deref())
                .collect();
            if !sources.is_empty() {
                writeln!(out, "Nguồn:")?;
                for s in sources {
                    writeln!(out, "  {s}")?;
                }
            }
            for line in undecided_lines(&year) {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

/// One line per holiday of `year` whose yearly choice no decision made: the default used.
pub fn undecided_lines(year: &days_off::Year) -> Vec<String> {
    year.undecided
        .iter()
        .map(|(h, days)| {
            let list: Vec<String> = days.iter().map(|d| d.format("%-d/%-m").to_string()).collect();
            format!(
                "{}: chưa có quyết định nghỉ {} trong calendars/{}.yaml, dùng mặc định của Bộ luật Lao động: {}",
                year.year,
                h.name(year.year),
                crate::schedule::DAYS_OFF_STEM,
                list.join(", ")
            )
        })
        .collect()
}
