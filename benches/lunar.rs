//! Benchmarks of the lunar calendar: a walk over every day of 1968–2199 with
//! `range`, and a single `solar_to_lunar` conversion.
//!
//! Run with `cargo bench --bench lunar` (add `-- --quick` for a short run).

use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use ngayle::lunar::{range, solar_to_lunar};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid benchmark date")
}

fn bench_range(c: &mut Criterion) {
    let (from, to) = (date(1968, 1, 1), date(2199, 12, 31));
    c.bench_function("range 1968-01-01..=2199-12-31 (fold)", |b| {
        b.iter(|| {
            range(black_box(from), black_box(to))
                .expect("in range")
                .fold(0u64, |acc, (_, lunar)| {
                    acc + u64::from(lunar.day) + u64::from(lunar.leap)
                })
        })
    });
    c.bench_function("range 1968-01-01..=2199-12-31 (collect)", |b| {
        b.iter(|| {
            range(black_box(from), black_box(to))
                .expect("in range")
                .collect::<Vec<_>>()
        })
    });
}

fn bench_single(c: &mut Criterion) {
    let day = date(2024, 9, 17);
    c.bench_function("solar_to_lunar 2024-09-17", |b| {
        b.iter(|| solar_to_lunar(black_box(day)))
    });
}

criterion_group!(benches, bench_range, bench_single);
criterion_main!(benches);
