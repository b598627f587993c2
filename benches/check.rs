//! Benchmark of `ngayle check` on big files with many diagnostics: what the command does from
//! the config path to the printed text (load, resolve, locate every diagnostic, render each with
//! its source line), without the terminal. Two inputs are generated in a temporary folder from
//! the shipped files:
//!
//! - `5000-errors`: the shipped calendars plus one calendar file of 5,000 events, each with one
//!   mistake (an impossible date, an unknown key, or an unknown task, in turn);
//! - `2000-shared-email`: the shipped calendars and a valid staff file where 2,000 more people
//!   share one email address (1,999 warnings, each naming where the address was first used).
//!
//! Target: under 1 s each (issue 14; it was 115 s and 23 s when every diagnostic re-parsed its
//! file to find its position). Run with `cargo bench --bench check` (add `-- --quick` for a
//! short run).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};

const ERRORS: usize = 5_000;
const SHARED: usize = 2_000;

/// The repository root (the shipped `config/` and `calendars/`).
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the shipped `config/` and `calendars/` into `dir`, then applies `edit` (file relative
/// to `dir`, new text). Returns the config path.
fn unit(dir: &Path, edits: &[(&str, String)]) -> PathBuf {
    for sub in ["config", "config/templates", "calendars"] {
        std::fs::create_dir_all(dir.join(sub)).expect("create the bench folder");
        let entries = std::fs::read_dir(repo().join(sub)).expect("read the shipped folder");
        for entry in entries {
            let path = entry.expect("list the shipped folder").path();
            if path.is_file() {
                let to = dir.join(sub).join(path.file_name().expect("a file name"));
                std::fs::copy(&path, to).expect("copy a shipped file");
            }
        }
    }
    for (rel, text) in edits {
        std::fs::write(dir.join(rel), text).expect("write a generated file");
    }
    dir.join("config/ngayle.yaml")
}

/// A calendar file of `n` events, each with exactly one mistake.
fn broken_calendar(n: usize) -> String {
    let mut out = String::from("name: Lịch hỏng\nevents:\n");
    for i in 0..n {
        let _ = writeln!(out, "  - id: su-kien-{i}");
        let _ = writeln!(out, "    name: Sự kiện {i}");
        match i % 3 {
            0 => {
                let _ = writeln!(out, "    date: 31/2");
            }
            1 => {
                let _ = writeln!(out, "    date: 1/5\n    dat: 2/5");
            }
            _ => {
                let _ = writeln!(out, "    date: 1/5\n    tasks: [khong-co-viec-nay]");
            }
        }
    }
    out
}

/// The shipped staff file with `n` more people who all use one address.
fn shared_email_staff(n: usize) -> String {
    let mut out = std::fs::read_to_string(repo().join("config/staff.yaml"))
        .expect("read the shipped staff file");
    // `people:` is the last key of the shipped file: the new people are more items of it.
    for i in 0..n {
        let _ = write!(
            out,
            "\n  - id: nguoi-{i}\n    name: Người {i}\n    email: chung@example.org\n    groups: [csvc]\n"
        );
    }
    out
}

/// What `ngayle check` does with a config path: load, then write every diagnostic as it is
/// printed. Returns the number of bytes written, so that nothing is optimised away.
fn check(config: &Path) -> usize {
    let today = NaiveDate::from_ymd_opt(2025, 1, 1).expect("a valid date");
    let report = ngayle::schedule::load(config, today);
    let mut out = Vec::new();
    ngayle::cli::write_diagnostics(&report, &mut out).expect("write to memory");
    out.len()
}

fn bench_check(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let errors = unit(
        &dir.path().join("errors"),
        &[("calendars/broken.yaml", broken_calendar(ERRORS))],
    );
    let shared = unit(
        &dir.path().join("shared"),
        &[("config/staff.yaml", shared_email_staff(SHARED))],
    );
    // Check the inputs are what the names say before timing them.
    let today = NaiveDate::from_ymd_opt(2025, 1, 1).expect("a valid date");
    let report = ngayle::schedule::load(&errors, today);
    assert_eq!(report.errors(), ERRORS, "one error per broken event");
    let report = ngayle::schedule::load(&shared, today);
    assert!(report.schedule.is_some(), "the shared-email staff is valid");
    assert_eq!(
        report.warnings(),
        SHARED - 1,
        "one warning per repeated address"
    );

    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("5000-errors", |b| b.iter(|| check(black_box(&errors))));
    group.bench_function("2000-shared-email", |b| {
        b.iter(|| check(black_box(&shared)))
    });
    group.finish();
}

criterion_group!(benches, bench_check);
criterion_main!(benches);
