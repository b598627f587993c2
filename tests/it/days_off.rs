//! The official days off (issue 16): the Labour Code's holidays and nghỉ bù, each year's
//! decisions in `calendars/ngay-nghi.yaml`, reminders that obey them (`move`), and the breaks
//! in the feeds.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, Weekday};
use icalendar::{Calendar, Component};

use crate::support::serve::Serve;
use crate::support::{Project, minimal, repo};

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// `ngayle days-off --year Y --format tsv` of a project: (date, kind).
fn days_off(p: &std::path::Path, year: i32) -> Vec<(NaiveDate, String)> {
    let r = crate::support::ngayle(
        p,
        &["days-off", "--year", &year.to_string(), "--format", "tsv"],
    );
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    r.stdout
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 4, "{l}");
            (date(cols[0]), cols[1].to_string())
        })
        .collect()
}

/// What the Government decided for 2026 (calendars/ngay-nghi.yaml cites each document):
/// Tết Dương lịch 1–2/1 with make-up Saturday 10/1 (VPCP 12729/VPCP-KGVX); Tết Bính Ngọ
/// 16–20/2 on workdays (VPCP 9859/VPCP-KGVX); Giỗ Tổ on Sunday 26/4, nghỉ bù Monday 27/4
/// (Labour Code art. 111); 30/4, 1/5; Quốc khánh 31/8 (swapped, make-up Saturday 22/8), 1/9,
/// 2/9 — and 3/9 a workday.
#[test]
fn the_days_off_of_2026_are_the_decisions_shipped_calendars() {
    let got = days_off(&repo(), 2026);
    let off = |d: &str| (date(d), "off".to_string());
    let work = |d: &str| (date(d), "work".to_string());
    assert_eq!(
        got,
        [
            off("2026-01-01"),
            off("2026-01-02"),
            work("2026-01-10"),
            off("2026-02-16"),
            off("2026-02-17"),
            off("2026-02-18"),
            off("2026-02-19"),
            off("2026-02-20"),
            off("2026-04-26"),
            off("2026-04-27"),
            off("2026-04-30"),
            off("2026-05-01"),
            work("2026-08-22"),
            off("2026-08-31"),
            off("2026-09-01"),
            off("2026-09-02"),
        ]
    );
    // The table says why and where it is decided, and which yearly choice is still the rule's.
    let r = crate::support::ngayle(&repo(), &["days-off", "--year", "2026"]);
    assert!(
        r.stdout.contains("Nghỉ bù Giỗ Tổ Hùng Vương"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("9859/VPCP-KGVX"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("Nghỉ Tết Nguyên đán Bính Ngọ (14/2–22/2/2026, 9 ngày)"),
        "{}",
        r.stdout
    );
    let r = crate::support::ngayle(&repo(), &["days-off", "--year", "2027"]);
    assert!(
        r.stdout
            .contains("2027: chưa có quyết định nghỉ Quốc khánh 2/9 trong calendars/ngay-nghi.yaml, dùng mặc định"),
        "{}",
        r.stdout
    );
}

/// No reminder of 2024–2026 is due on a weekend or an official day off as decided (2024:
/// 49 were due on 29/4/2024, a swapped day off; 2026: 26 on 31/8), and a make-up working
/// Saturday is a workday (4/5/2024 holds the reminders that would otherwise have moved to
/// Friday).
#[test]
fn upcoming_schedules_nothing_on_a_day_off_of_2024_to_2026_shipped_calendars() {
    let mut off = BTreeSet::new();
    let mut work = BTreeSet::new();
    for y in 2024..=2026 {
        for (d, kind) in days_off(&repo(), y) {
            if kind == "off" {
                off.insert(d);
            } else {
                work.insert(d);
            }
        }
    }
    assert!(off.contains(&date("2024-04-29")) && work.contains(&date("2024-05-04")));
    let r = crate::support::ngayle(
        &repo(),
        &[
            "upcoming",
            "--from",
            "2024-01-01",
            "--days",
            "1096",
            "--format",
            "tsv",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let days: Vec<NaiveDate> = r
        .stdout
        .lines()
        .map(|l| date(l.get(..10).unwrap_or_default()))
        .collect();
    assert!(days.len() > 1000, "{} reminders", days.len());
    let weekend = |d: &NaiveDate| matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
    let bad: Vec<&NaiveDate> = days
        .iter()
        .filter(|d| off.contains(d) || (weekend(d) && !work.contains(d)))
        .collect();
    assert!(bad.is_empty(), "reminders on days off: {bad:?}");
    for d in ["2024-04-29", "2026-08-31", "2026-04-27", "2026-02-16"] {
        assert!(!days.contains(&date(d)), "{d}");
    }
    assert!(
        days.contains(&date("2024-05-04")),
        "the make-up Saturday is a workday"
    );
}

/// A break or a make-up working day (by its UID: CATEGORIES is a list the parser keeps
/// apart).
pub fn is_day_off(e: &icalendar::Event) -> bool {
    e.property_value("UID")
        .is_some_and(|u| u.starts_with("nghi-") || u.starts_with("lam-bu-"))
}

/// The breaks of a feed's years, with their summaries and days (DTEND exclusive).
fn breaks(text: &str) -> Vec<(String, String, String, String, String)> {
    let cal: Calendar = text.parse().unwrap_or_else(|e| panic!("icalendar: {e}"));
    cal.events()
        .filter(|e| is_day_off(e))
        .map(|e| {
            let v = |k| e.property_value(k).unwrap_or_default().to_string();
            (
                v("UID"),
                v("SUMMARY"),
                v("DTSTART"),
                v("DTEND"),
                v("TRANSP"),
            )
        })
        .collect()
}

#[test]
fn the_days_off_feed_and_the_full_feed_carry_the_breaks_shipped_calendars() {
    let p = Project::shipped();
    let ics = |extra: &[&str]| {
        let mut args = vec!["ics", "--from-year", "2026", "--to-year", "2026"];
        args.extend_from_slice(extra);
        let r = p.run(&args);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        r.stdout
    };
    let own = breaks(&ics(&["--group", "ngay-nghi"]));
    let uid = |id: &str| format!("{id}@truong-mam-non-hoa-phuong.ngayle");
    let want = [
        (
            uid("nghi-2026-tet-duong-lich"),
            "Nghỉ Tết Dương lịch 2026 (1/1–4/1/2026)",
            "20260101",
            "20260105",
        ),
        (
            uid("lam-bu-2026-01-10"),
            "Làm bù thứ bảy 10/1/2026",
            "20260110",
            "20260111",
        ),
        (
            uid("nghi-2026-tet"),
            "Nghỉ Tết Nguyên đán Bính Ngọ (14/2–22/2/2026)",
            "20260214",
            "20260223",
        ),
        (
            uid("nghi-2026-gio-to"),
            "Nghỉ Giỗ Tổ Hùng Vương (25/4–27/4/2026)",
            "20260425",
            "20260428",
        ),
        (
            uid("lam-bu-2026-08-22"),
            "Làm bù thứ bảy 22/8/2026",
            "20260822",
            "20260823",
        ),
        (
            uid("nghi-2026-quoc-khanh"),
            "Nghỉ lễ Quốc khánh 2/9 (29/8–2/9/2026)",
            "20260829",
            "20260903",
        ),
    ];
    for (u, summary, start, end) in want {
        assert!(
            own.iter()
                .any(|b| b.0 == u && b.1 == summary && b.2 == start && b.3 == end),
            "{u} {summary} {start}..{end} in {own:#?}"
        );
    }
    assert!(own.iter().all(|b| b.4 == "TRANSPARENT"), "{own:#?}");
    let text = ics(&["--group", "ngay-nghi"]);
    assert!(!text.contains("Kỷ niệm"), "only days off in their own feed");
    // The full feed has the same breaks, byte for byte the same events.
    assert_eq!(breaks(&ics(&[])), own);
    // A group's feed does not (it holds the group's tasks).
    assert!(breaks(&ics(&["--group", "csvc"])).is_empty());
    // Served at /calendar/ngay-nghi.ics.
    let serve = Serve::start(&p, &["--no-watch"]);
    let (code, body) = serve.get("/calendar/ngay-nghi.ics");
    assert_eq!(code, 200, "{}", serve.log());
    assert!(body.contains("UID:nghi-"), "{body}");
}

/// A task's `move`: a reminder due on a Sunday goes to Friday (`earlier`, the default), to
/// Monday when that is still before the deadline (`later`), or stays on Sunday (`keep`).
#[test]
fn a_reminder_on_a_rest_day_moves_earlier_later_or_stays() {
    // Monday 21/12/2026; the reminder one day before is Sunday 20/12 at 07:00; the deadline is
    // the day itself at 07:30.
    let layer =
        "events:\n  - id: ngay-thu\n    name: Ngày thử\n    date: 21/12\n    tasks: [treo-co]\n";
    // The send minute of each reminder of a one-task project over 14–23/12/2026.
    let sent = |tasks: &str| -> Vec<String> {
        let p = minimal(&[
            ("calendars/tasks.yaml", tasks),
            ("calendars/national.yaml", layer),
        ]);
        let r = p.run(&[
            "upcoming",
            "--from",
            "2026-12-14",
            "--days",
            "10",
            "--format",
            "tsv",
        ]);
        assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
        r.stdout
            .lines()
            .map(|l| l.get(..16).unwrap_or_default().to_string())
            .collect()
    };
    let due_day = |moves: &str| {
        sent(&format!(
            "tasks:\n  - id: treo-co\n    title: Treo cờ\n    do: Treo cờ Tổ quốc.\n    before: 1d\n    at: \"07:00\"\n{moves}    who: [csvc]\n"
        ))
    };
    assert_eq!(due_day(""), ["2026-12-18T07:00"]);
    assert_eq!(due_day("    move: earlier\n"), ["2026-12-18T07:00"]);
    assert_eq!(due_day("    move: later\n"), ["2026-12-21T07:00"]);
    assert_eq!(due_day("    move: keep\n"), ["2026-12-20T07:00"]);
    // Later, but the deadline (Sunday 20/12 20:00) is before Monday: the reminder of Saturday
    // 19/12 08:00 goes earlier after all.
    assert_eq!(
        sent(
            "tasks:\n  - id: treo-co\n    title: Treo cờ\n    do: Treo cờ Tổ quốc.\n    due: -1d 20:00\n    remind: [1d]\n    at: \"08:00\"\n    move: later\n    who: [csvc]\n"
        ),
        ["2026-12-18T08:00"]
    );
}

#[test]
fn mistakes_in_the_decisions_file_are_located_with_what_to_write() {
    let file = "decisions:\n  - year: 2026\n    holiday: tett\n    off: 14/2..22/2\n  - year: 2026\n    holiday: quoc-khanh\n    off: 30/2\n  - year: 2026\n    holiday: [quoc-khanh]\n    off: 1/9\n  - year: hai\n    off: 1/1\n  - year: 2026\n    name: Không ngày nào\n";
    let p = minimal(&[("calendars/ngay-nghi.yaml", file)]);
    let r = p.run(&["check"]);
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.contains(": lỗi: ")).collect();
    let has = |at: &str, what: &str| {
        errors.iter().any(|l| {
            l.starts_with(&format!("calendars/ngay-nghi.yaml:{at}: lỗi: ")) && l.contains(what)
        })
    };
    assert!(has("3:14", "không có ngày lễ `tett`"), "{}", r.stderr);
    assert!(r.stderr.contains("có phải `tet`?"), "{}", r.stderr);
    assert!(has("7:10", "30/2"), "{}", r.stderr);
    assert!(
        has("9:15", "đã có quyết định về `quoc-khanh`"),
        "{}",
        r.stderr
    );
    assert!(has("11:11", "`hai` không phải một năm"), "{}", r.stderr);
    assert!(has("13:5", "quyết định không có ngày nào"), "{}", r.stderr);
    assert_eq!(errors.len(), 5, "one error per mistake:\n{}", r.stderr);
    // A group may not take the days-off feed's id.
    let staff = "groups:\n  - id: ngay-nghi\n    name: Nhóm\npeople:\n  - id: an\n    name: An\n    email: an@example.org\n    groups: [ngay-nghi]\n";
    let p = minimal(&[("config/staff.yaml", staff)]);
    let r = p.run(&["check"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("dành cho lịch ngày nghỉ"), "{}", r.stderr);
}

/// An install upgraded from before issue 16 wrote the statutory days off by hand
/// (`day_off: -1..1` on Quốc khánh): those now add days beyond the law's (3/9 every year), so
/// `check` says so at the key; a unit's own day off on another event is not questioned.
#[test]
fn a_day_off_written_on_a_statutory_holiday_is_pointed_out() {
    let layer = "name: Thử\nevents:\n  - id: quoc-khanh\n    name: Quốc khánh\n    date: 2/9\n    day_off: -1..1\n  - id: tet\n    name: Tết\n    lunar: 1/1\n    day_off: -1..4\n  - id: ngay-truyen-thong\n    name: Ngày truyền thống của trường\n    date: 15/10\n    day_off: true\n";
    let p = minimal(&[("calendars/national.yaml", layer)]);
    let r = p.run(&["check"]);
    assert_eq!(r.code, Some(0), "a warning, not an error:\n{}", r.stderr);
    let warnings: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains(": cảnh báo: "))
        .collect();
    assert_eq!(warnings.len(), 2, "{}", r.stderr);
    assert!(
        warnings[0].starts_with(
            "calendars/national.yaml:6:14: cảnh báo: Quốc khánh 2/9 là ngày nghỉ theo luật"
        ),
        "{}",
        r.stderr
    );
    assert!(warnings[1].starts_with("calendars/national.yaml:10:14: cảnh báo: Tết Nguyên đán"));
    assert!(r.stderr.contains("gợi ý: bỏ `day_off`"), "{}", r.stderr);
    // What the warning is about: the hand-written range adds 3/9/2026, a workday by the law's
    // default (no decision here: 1/9 and 2/9), and `days-off` lists it as the unit's own.
    let got = days_off(p.path(), 2026);
    assert!(
        got.contains(&(date("2026-09-03"), "off".to_string())),
        "{got:?}"
    );
    let r = crate::support::ngayle(p.path(), &["days-off", "--year", "2026", "--format", "tsv"]);
    assert!(
        r.stdout.contains("2026-09-03\toff\tNghỉ riêng của đơn vị: Quốc khánh\t`day_off` của `quoc-khanh` (calendars/national.yaml)"),
        "{}",
        r.stdout
    );
}
