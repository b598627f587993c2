//! Benchmarks of the iCalendar feed text, `/calendar.ics` (every event, no group):
//! `feed::render` (the text, from the revision times) and `feeds::feed_text` (what `serve`
//! calls per feed: fingerprints, the revision times from a real SQLite store in a temporary
//! folder — unchanged content, so only read — then `render`), for
//! (a) the shipped calendars over one year, 2025 (about 60 events), and
//! (b) a synthetic province feed of about 5,000 events: the shipped events repeated in many
//!     layer files (with the shipped tasks and staff), written to a temporary folder and loaded
//!     with the real loader, over the four years `serve` publishes (2025..=2028).
//! (c) one person's own feed (`/calendar/me/TOKEN.ics`, what `Feeds::person` renders on a
//!     request the cache cannot answer) in that province with 2,000 staff (the shipped staff's
//!     groups repeated), a teacher of the largest group.
//! The stores are filled and the schedules loaded as set-up; the number of VEVENTs and bytes of
//! each feed is printed once.
//!
//! Run with `cargo bench --bench feed` (add `-- --quick` for a short run).

mod support;

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use ngayle::feed::{self, FeedSpec};
use ngayle::feeds;
use ngayle::schedule::Schedule;
use ngayle::store::Store;
use tokio::runtime::Runtime;

use support::{Synth, date, defs_for, load_checked, shipped};

/// The synthetic province feed's size, in events.
const PROVINCE_EVENTS: usize = 5_000;

fn now() -> DateTime<Utc> {
    date(2025, 1, 1)
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
        .and_utc()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Benchmarks `render` and `feed_text` of one schedule's full feed.
fn bench_schedule(c: &mut Criterion, label: &str, schedule: &Schedule, spec: &FeedSpec) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary folder for the store");
    let store = rt
        .block_on(Store::open(&dir.path().join("ngayle.sqlite")))
        .expect("open the store");
    // The first render records every revision (as the first start of `serve` does).
    let text = rt
        .block_on(feeds::feed_text(schedule, &store, spec, now()))
        .expect("the first feed");
    let prints = feed::fingerprints(schedule, spec);
    let revisions = rt
        .block_on(store.revisions(&spec.key(), &prints, now()))
        .expect("the revision times");
    assert_eq!(
        feed::render(schedule, spec, &revisions),
        text,
        "render gives the served text"
    );
    eprintln!(
        "feed {label}: {} VEVENTs, {} bytes ({}..={})",
        text.matches("BEGIN:VEVENT").count(),
        text.len(),
        spec.from_year,
        spec.to_year
    );
    c.bench_function(&format!("feed::render {label}"), |b| {
        b.iter(|| feed::render(black_box(schedule), black_box(spec), black_box(&revisions)))
    });
    c.bench_function(&format!("feeds::feed_text {label}"), |b| {
        b.iter(|| {
            rt.block_on(feeds::feed_text(
                black_box(schedule),
                &store,
                black_box(spec),
                now(),
            ))
            .expect("the feed")
        })
    });
}

fn bench_shipped(c: &mut Criterion) {
    let s = shipped();
    let spec = FeedSpec {
        group: None,
        person: None,
        from_year: 2025,
        to_year: 2025,
        days_off: false,
    };
    bench_schedule(c, "shipped, 1 year", &s, &spec);
}

fn bench_province(c: &mut Criterion) {
    let shipped = shipped();
    let spec = FeedSpec {
        group: None,
        person: None,
        from_year: 2025,
        to_year: 2028,
        days_off: false,
    };
    let defs = defs_for(
        &shipped,
        date(spec.from_year, 1, 1),
        date(spec.to_year, 12, 31),
        PROVINCE_EVENTS,
    );
    let files = support::files(
        &shipped,
        Synth {
            unit: 1,
            staff: shipped.people.len(),
            event_defs: defs,
        },
    );
    let dir = tempfile::tempdir().expect("a temporary folder for the synthetic province");
    let province = load_checked(&support::write(dir.path(), &files));
    eprintln!(
        "feed province: {} events in {} layer files, {} people",
        province.events.len(),
        province.layers.len(),
        province.people.len()
    );
    bench_schedule(c, "province, 4 years", &province, &spec);
}

/// A person's own feed in a province of 2,000 staff: the draft (occurrences, their events,
/// that person's tasks and alarms) and its text with the full feed's revision times.
fn bench_person(c: &mut Criterion) {
    let shipped = shipped();
    let (from_year, to_year) = (2025, 2028);
    let defs = defs_for(
        &shipped,
        date(from_year, 1, 1),
        date(to_year, 12, 31),
        PROVINCE_EVENTS,
    );
    let files = support::files(
        &shipped,
        Synth {
            unit: 1,
            staff: 2_000,
            event_defs: defs,
        },
    );
    let dir = tempfile::tempdir().expect("a temporary folder for the synthetic province");
    let province = load_checked(&support::write(dir.path(), &files));
    // A member of the largest group: the most tasks a person of this unit has.
    let largest = province
        .groups
        .iter()
        .max_by_key(|g| {
            province
                .people
                .iter()
                .filter(|p| p.groups.contains(&g.id))
                .count()
        })
        .expect("groups");
    let person = province
        .people
        .iter()
        .find(|p| p.groups.contains(&largest.id))
        .expect("a member");
    let full = FeedSpec {
        group: None,
        person: None,
        from_year,
        to_year,
        days_off: false,
    };
    let spec = FeedSpec {
        group: None,
        person: Some(person),
        from_year,
        to_year,
        days_off: false,
    };
    let rt = runtime();
    let sdir = tempfile::tempdir().expect("a temporary folder for the store");
    let store = rt
        .block_on(Store::open(&sdir.path().join("ngayle.sqlite")))
        .expect("open the store");
    rt.block_on(feeds::feed_text(&province, &store, &full, now()))
        .expect("the full feed");
    let revisions = rt
        .block_on(store.revisions(&full.key(), &feed::fingerprints(&province, &full), now()))
        .expect("the revision times");
    let render = || {
        let inputs = feed::Inputs::new(&province, &spec);
        feed::Draft::new(&province, &inputs, &spec).finish(&revisions)
    };
    let text = render();
    eprintln!(
        "feed person ({} of {} people in {}): {} VEVENTs, {} VALARMs, {} bytes",
        person.id,
        province.people.len(),
        largest.id,
        text.matches("BEGIN:VEVENT").count(),
        text.matches("BEGIN:VALARM").count(),
        text.len()
    );
    c.bench_function("feed person, province 2,000 staff, 4 years", |b| {
        b.iter(|| black_box(render()))
    });
}

criterion_group!(benches, bench_shipped, bench_province, bench_person);
criterion_main!(benches);
