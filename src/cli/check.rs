//! `ngayle check`: validate every file, print a one-line summary or every mistake.

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
    Ok(())
}
