//! Benchmarks of the occurrences of the shipped calendars (`config/ngayle.yaml` with
//! `calendars/*.yaml`): `occurrence::occurrences` over ten years, 2025-01-01..=2034-12-31, with
//! the schedule loaded once as set-up; and, separately, loading and validating the shipped
//! files with `schedule::load` (what `ngayle check` does besides starting the process; it must
//! take < 50 ms end to end).
//!
//! Run with `cargo bench --bench occurrences` (add `-- --quick` for a short run).

mod support;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ngayle::occurrence::occurrences;
use ngayle::schedule;

use support::{date, shipped, shipped_config, today};

fn bench_occurrences(c: &mut Criterion) {
    let s = shipped();
    let (from, to) = (date(2025, 1, 1), date(2034, 12, 31));
    eprintln!(
        "occurrences: {} events in {} layers → {} occurrences in {from}..={to}",
        s.events.len(),
        s.layers.len(),
        occurrences(&s, from, to).len()
    );
    c.bench_function("occurrences shipped 2025-01-01..=2034-12-31", |b| {
        b.iter(|| occurrences(black_box(&s), black_box(from), black_box(to)))
    });
}

fn bench_load(c: &mut Criterion) {
    let config = shipped_config();
    let today = today();
    c.bench_function("load + validate shipped files", |b| {
        b.iter(|| {
            let report = schedule::load(black_box(&config), today);
            assert!(report.schedule.is_some(), "the shipped files load");
            report
        })
    });
}

criterion_group!(benches, bench_occurrences, bench_load);
criterion_main!(benches);
