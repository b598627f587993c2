//! `ngayle days-off --year Y [--format table|tsv]`: the official days off of a year and its
//! make-up working days, each with why and where it is decided.
//!
//! tsv columns: date, kind (`off` or `work`), why, basis (the law's article or the decision's
//! document and source).

use std::io::Write;
use std::path::Path;

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
    // A decision's break may list its weekends; they are rest days anyway and are not listed.
    // A holiday of the rule on a rest day is, as the reason of its nghỉ bù.
    let listed: Vec<(&chrono::NaiveDate, &days_off::Day)> = year
        .days
        .iter()
        .filter(|(date, day)| {
            !(day.off && rest(**date) && matches!(day.why, days_off::Why::Decided(_)))
        })
        .collect();
    match args.format {
        Format::Tsv => {
            for &(date, day) in &listed {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    date.format("%Y-%m-%d"),
                    if day.off { "off" } else { "work" },
                    describe(day, args.year, &schedule.decisions),
                    basis(day, &schedule.decisions)
                )?;
            }
        }
        Format::Table => {
            let rows: Vec<[String; 5]> = listed
                .iter()
                .map(|&(date, day)| {
                    let kind = match (day.off, rest(*date)) {
                        (true, true) => "(nghỉ hằng tuần)",
                        (true, false) => "nghỉ",
                        (false, _) => "làm bù",
                    };
                    [
                        vietnam::date(*date),
                        vietnam::weekday(*date).to_string(),
                        kind.to_string(),
                        describe(day, args.year, &schedule.decisions),
                        match &day.why {
                            days_off::Why::Decided(i) => schedule
                                .decisions
                                .get(*i)
                                .and_then(|d| d.document.clone())
                                .unwrap_or_default(),
                            _ => basis(day, &schedule.decisions),
                        },
                    ]
                })
                .collect();
            let header = ["Ngày", "Thứ", "", "Lý do", "Căn cứ"];
            out.write_all(table(&header, &rows).as_bytes())?;
            let (breaks, _) = days_off::breaks(&year, &schedule.decisions, &rest);
            let off = year
                .days
                .iter()
                .filter(|(date, d)| d.off && !rest(**date))
                .count();
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
