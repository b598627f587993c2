//! `ngayle check`: validate every file, print a summary (then the events of each calendar
//! file) or every mistake.

use std::io::Write;
use std::path::Path;

use chrono::Datelike as _;

use super::{Failure, load_or_report};

pub fn run(config: &Path, out: &mut impl Write) -> Result<(), Failure> {
    let report = load_or_report(config)?;
    let Some(s) = &report.schedule else {
        return Err(Failure::Invalid);
    };
    let warnings = match report.warnings() {
        0 => String::new(),
        n => format!(", {n} cảnh báo"),
    };
    writeln!(
        out,
        "ngayle check: hợp lệ — {} sự kiện trong {} tệp lịch, {} loại việc, {} người, {} nhóm{warnings} ({})",
        s.events.len(),
        s.layers.len(),
        s.tasks.len(),
        s.people.len(),
        s.groups.len(),
        config.display()
    )?;
    // So that a file emptied or cut by a bad save shows here, before a reload serves it.
    for (path, n) in crate::schedule::events_per_file(s) {
        writeln!(out, "  {path}: {n} sự kiện")?;
    }
    // The days off of this year and the next: decided, or the rule's default (said here, so
    // that the admin knows to add the decision when it is published).
    let year = crate::vietnam::today(chrono::Utc::now()).year();
    let rest = |d| s.is_rest_day(d);
    let decided = s
        .decisions
        .iter()
        .filter(|d| (year..=year + 1).contains(&d.year))
        .count();
    writeln!(
        out,
        "  ngày nghỉ lễ {year}–{}: {decided} quyết định (`ngayle days-off --year {year}`)",
        year + 1
    )?;
    for y in year..=year + 1 {
        for line in super::days_off::undecided_lines(&crate::days_off::year(y, &s.decisions, &rest))
        {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}
