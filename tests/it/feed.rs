//! The feed text: stable bytes, revisions that follow edits, and snapshots of small feeds.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use ngayle::feed::FeedSpec;
use ngayle::feeds::{RenderedFeed, feed_text};
use ngayle::schedule::{Schedule, load};
use ngayle::store::Store;

use crate::support::{Project, minimal};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

fn schedule(p: &Project) -> Schedule {
    let report = load(&p.config(), today());
    report
        .schedule
        .unwrap_or_else(|| panic!("{:#?}", report.diagnostics))
}

fn spec(from_year: i32, to_year: i32) -> FeedSpec<'static> {
    FeedSpec {
        group: None,
        person: None,
        from_year,
        to_year,
        days_off: false,
    }
}

/// UID → the VEVENT block, and the calendar header before the first event.
fn blocks(text: &str) -> (String, BTreeMap<String, String>) {
    let mut parts = text.split("BEGIN:VEVENT\r\n");
    let header = parts.next().unwrap_or_default().to_string();
    let map = parts
        .map(|b| {
            let unfolded = b.replace("\r\n ", "");
            let uid = unfolded
                .lines()
                .find_map(|l| l.strip_prefix("UID:"))
                .unwrap_or_default()
                .trim()
                .to_string();
            (uid, b.to_string())
        })
        .collect();
    (header, map)
}

#[tokio::test]
async fn changing_one_event_changes_only_its_bytes_shipped_calendars() {
    let p = Project::shipped();
    let store = Store::in_memory().await.unwrap_or_else(|e| panic!("{e}"));
    let s1 = schedule(&p);
    let a = feed_text(&s1, &store, &spec(2024, 2026), at("2026-01-01T00:00:00Z")).await;
    let a = a.unwrap_or_else(|e| panic!("{e}"));
    // Later renders of the same schedule are byte-identical: time alone changes nothing.
    let a2 = feed_text(&s1, &store, &spec(2024, 2026), at("2026-03-01T00:00:00Z")).await;
    assert_eq!(a2.ok().as_deref(), Some(a.as_str()));

    p.edit(
        "calendars/national.yaml",
        "name: Ngày Chiến thắng Điện Biên Phủ",
        "name: Ngày Chiến thắng lịch sử Điện Biên Phủ",
    );
    let s2 = schedule(&p);
    let b = feed_text(&s2, &store, &spec(2024, 2026), at("2026-05-01T08:00:00Z")).await;
    let b = b.unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(
        RenderedFeed::new(a.clone()).etag,
        RenderedFeed::new(b.clone()).etag
    );

    let (head_a, ev_a) = blocks(&a);
    let (head_b, ev_b) = blocks(&b);
    assert_eq!(head_a, head_b);
    assert_eq!(
        ev_a.keys().collect::<Vec<_>>(),
        ev_b.keys().collect::<Vec<_>>()
    );
    let mut changed = Vec::new();
    for (uid, block) in &ev_a {
        if ev_b.get(uid) != Some(block) {
            changed.push(uid.clone());
        }
    }
    assert_eq!(
        changed,
        [2024, 2025, 2026]
            .map(|y| format!("chien-thang-dien-bien-phu-{y}@truong-mam-non-hoa-phuong.ngayle"))
    );
    let dbp = &ev_b[&changed[0]];
    assert!(dbp.contains("DTSTAMP:20260501T080000Z\r\n"), "{dbp}");
    assert!(dbp.contains("LAST-MODIFIED:20260501T080000Z\r\n"), "{dbp}");
    // Untouched events keep the time they were first seen.
    let tet = ev_b
        .iter()
        .find(|(uid, _)| uid.starts_with("tet-nguyen-dan-2025"))
        .map(|(_, b)| b.as_str())
        .unwrap_or_default();
    assert!(tet.contains("LAST-MODIFIED:20260101T000000Z\r\n"), "{tet}");

    // A state file on disk keeps the revisions across processes (here: two opens).
    let path = p.path().join("var/state.sqlite");
    let t1 = {
        let disk = Store::open(&path).await.unwrap_or_else(|e| panic!("{e}"));
        feed_text(&s2, &disk, &spec(2024, 2026), at("2026-06-01T00:00:00Z")).await
    };
    let t2 = {
        let disk = Store::open(&path).await.unwrap_or_else(|e| panic!("{e}"));
        feed_text(&s2, &disk, &spec(2024, 2026), at("2026-07-01T00:00:00Z")).await
    };
    assert_eq!(t1.ok(), t2.ok());
}

/// Compares with a committed snapshot; `UPDATE_SNAPSHOTS=1 cargo test` rewrites it.
fn snapshot(name: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    assert!(
        want == text,
        "{name} differs from the snapshot:\n--- want\n{want}\n--- got\n{text}"
    );
}

#[tokio::test]
async fn snapshots_of_a_small_feed() {
    let layer = "\
name: Thử
events:
  - id: giai-phong
    name: Ngày Giải phóng miền Nam, thống nhất đất nước
    date: 30/4
    since: 1975
    category: holiday
    tasks: [treo-co]
  - id: gio-to
    name: Giỗ Tổ Hùng Vương
    lunar: 10/3
    note: Nghỉ làm việc; hưởng nguyên lương.
  - id: hoi-xuan
    name: Hội xuân
    date: 30/12
    days: 3
";
    let p = minimal(&[("calendars/national.yaml", layer)]);
    let s = schedule(&p);
    let store = Store::in_memory().await.unwrap_or_else(|e| panic!("{e}"));
    let now = at("2024-01-15T03:00:00Z");
    let full = feed_text(&s, &store, &spec(2024, 2024), now).await;
    snapshot("full-2024.ics", &full.unwrap_or_else(|e| panic!("{e}")));
    let group = FeedSpec {
        group: s.group("csvc"),
        person: None,
        from_year: 2024,
        to_year: 2024,
        days_off: false,
    };
    let csvc = feed_text(&s, &store, &group, now).await;
    snapshot("csvc-2024.ics", &csvc.unwrap_or_else(|e| panic!("{e}")));
}

/// A bare CR in an event name reached the feed raw (issue 13, item 2): a reader that splits
/// lines at CR saw an injected `UID:` line. `load` refuses it now; the feed writer also drops
/// control characters (keeping tabs, which TEXT allows) should one reach it another way. A multi-line `note` stays one
/// content line, its line break written `\n`.
#[tokio::test]
async fn no_control_character_reaches_the_feed_and_line_breaks_are_escaped() {
    let layer = "\
name: Thử
events:
  - id: giai-phong
    name: Ngày Giải phóng miền Nam
    date: 30/4
    note: |
      Nghỉ làm việc.
      Hưởng nguyên lương.
";
    let p = minimal(&[("calendars/national.yaml", layer)]);
    let mut s = schedule(&p);
    // What `load` would refuse, put in by hand: CR, NUL, ESC, NEL, DEL, in several texts.
    s.events[0].name = "Ngày\rUID:evil@x\r\nX-EVIL:1\u{0}\u{1b}[31m\u{85}\u{7f}".into();
    s.unit.name = "Trường\rUID:unit".into();
    let store = Store::in_memory().await.unwrap_or_else(|e| panic!("{e}"));
    let text = feed_text(&s, &store, &spec(2024, 2024), at("2024-01-15T03:00:00Z")).await;
    let text = text.unwrap_or_else(|e| panic!("{e}"));
    let unfolded = text.replace("\r\n ", "");
    for line in unfolded.split("\r\n") {
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\t'),
            "a control character in {line:?}"
        );
        assert!(
            !line.starts_with("UID:evil") && !line.starts_with("X-EVIL"),
            "{line:?}"
        );
    }
    assert!(
        unfolded.contains("SUMMARY:NgàyUID:evil@x\\nX-EVIL:1[31m"),
        "{unfolded}"
    );
    assert!(
        unfolded.contains("Nghỉ làm việc.\\nHưởng nguyên lương."),
        "{unfolded}"
    );
}
