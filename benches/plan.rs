//! Benchmark of the reminder plan for a synthetic province: `plan::plan` over one year
//! (2026, Vietnamese time) for each of 1,000 units, each with 60 staff (the shipped staff's
//! group memberships repeated) and the shipped tasks and events, repeated to 60 occurrences in
//! the year. Every unit's files are generated as YAML and resolved with the real resolver
//! (`schedule::resolve`, the loader's pure half) as set-up; the measured work is planning all
//! 1,000 units (target: < 1 s). Resolving is not in that figure: its time (about 5 s for the
//! 1,000 units' YAML) is printed once beside the number of reminders, and BENCHMARKS.md
//! reports both.
//!
//! Run with `cargo bench --bench plan` (add `-- --quick` for a short run).

mod support;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use ngayle::plan::{VIETNAM, plan};
use ngayle::schedule::Schedule;

use support::{Synth, date, defs_for, shipped};

const UNITS: usize = 1_000;
const STAFF: usize = 60;
const EVENTS_PER_YEAR: usize = 60;
const YEAR: i32 = 2026;

fn plan_all(units: &[Schedule], from: DateTime<Utc>, to: DateTime<Utc>) -> usize {
    units.iter().map(|s| plan(s, from, to).len()).sum()
}

fn bench_plan(c: &mut Criterion) {
    let shipped = shipped();
    let (first, last) = (date(YEAR, 1, 1), date(YEAR, 12, 31));
    let defs = defs_for(&shipped, first, last, EVENTS_PER_YEAR);
    let resolving = std::time::Instant::now();
    let units: Vec<Schedule> = (0..UNITS)
        .map(|unit| {
            let files = support::files(
                &shipped,
                Synth {
                    unit,
                    staff: STAFF,
                    event_defs: defs,
                },
            );
            support::resolve(Path::new(&format!("/province/unit-{unit}")), &files)
        })
        .collect();
    let resolved = resolving.elapsed();
    let from = VIETNAM
        .from_local_datetime(&first.and_hms_opt(0, 0, 0).expect("valid time"))
        .single()
        .expect("one instant")
        .with_timezone(&Utc);
    let to = VIETNAM
        .from_local_datetime(&last.and_hms_opt(23, 59, 59).expect("valid time"))
        .single()
        .expect("one instant")
        .with_timezone(&Utc);
    let one = &units[0];
    eprintln!(
        "plan: {UNITS} units × {} people, {} events ({} occurrences in {YEAR}) → {} reminders \
         ({} for one unit); generating and resolving the units' YAML (set-up, not measured \
         below) took {:.1} s",
        one.people.len(),
        one.events.len(),
        ngayle::occurrence::occurrences(one, first, last).len(),
        plan_all(&units, from, to),
        plan(one, from, to).len(),
        resolved.as_secs_f64()
    );
    let mut group = c.benchmark_group("plan");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function(
        format!("{UNITS} units × {STAFF} staff, year {YEAR}"),
        |b| b.iter(|| plan_all(black_box(&units), black_box(from), black_box(to))),
    );
    group.finish();
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
