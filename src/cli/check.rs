//! `ngayle check`: validate every file, print a summary (then the events of each calendar
//! file) or every mistake.

use std::io::Write;
use std::path::Path;

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
    Ok(())
}
