//! Every kind of mistake the admin can make gives exit 1 and a located, explained message.

use crate::support::{LAYER, STAFF, TASKS, minimal};

/// (what, file to replace, its new text, expected `PATH:LINE:COL: error: …` prefix, text the
/// help must contain).
type Case = (
    &'static str,
    &'static str,
    String,
    &'static str,
    &'static str,
);

fn cases() -> Vec<Case> {
    let layer = |from: &str, to: &str| LAYER.replacen(from, to, 1);
    let tasks = |from: &str, to: &str| TASKS.replacen(from, to, 1);
    let staff = |from: &str, to: &str| STAFF.replacen(from, to, 1);
    let l = "calendars/national.yaml";
    let t = "calendars/tasks.yaml";
    let s = "config/staff.yaml";
    vec![
        (
            "31/2",
            l,
            layer("30/4", "31/2"),
            "calendars/national.yaml:5:11: error: ngày 31/2 không tồn tại: tháng 2 có 29 ngày",
            "NGÀY/THÁNG",
        ),
        (
            "0/5",
            l,
            layer("30/4", "0/5"),
            "calendars/national.yaml:5:11: error: ngày 0/5 không tồn tại",
            "",
        ),
        (
            "12/13",
            l,
            layer("30/4", "12/13"),
            "calendars/national.yaml:5:11: error: tháng 13 không tồn tại",
            "",
        ),
        (
            "31/4",
            l,
            layer("30/4", "31/4"),
            "calendars/national.yaml:5:11: error: ngày 31/4 không tồn tại: tháng 4 có 30 ngày",
            "",
        ),
        (
            "29/2/2023",
            l,
            layer("30/4", "29/2/2023"),
            "calendars/national.yaml:5:11: error: ngày 29/2/2023 không tồn tại",
            "",
        ),
        (
            "lunar 10/13",
            l,
            layer("lunar: 10/3", "lunar: 10/13"),
            "calendars/national.yaml:10:12: error: tháng âm lịch 13 không tồn tại",
            "1–12",
        ),
        (
            "lunar 31/1",
            l,
            layer("lunar: 10/3", "lunar: 31/1"),
            "calendars/national.yaml:10:12: error: ngày âm lịch 31 không tồn tại",
            "1–30",
        ),
        (
            "unknown key",
            l,
            layer("    date: 30/4", "    dat: 30/4"),
            "calendars/national.yaml:5:5: error: khóa `dat` không dùng được ở đây",
            "có phải là `date`?",
        ),
        (
            "unknown top key",
            l,
            format!("nmae: x\n{}", LAYER.replacen("name: Thử\n", "", 1)),
            "calendars/national.yaml:1:1: error: khóa `nmae` không dùng được ở đây",
            "có phải là `name`?",
        ),
        (
            "unknown task",
            l,
            layer("[treo-co]", "[treo-coo]"),
            "calendars/national.yaml:7:13: error: không có việc `treo-coo` trong tasks.yaml",
            "có phải là `treo-co`?",
        ),
        (
            "unknown group",
            s,
            staff("groups: [csvc]", "groups: [cvsc]"),
            "config/staff.yaml:8:14: error: không có nhóm `cvsc`",
            "có phải là `csvc`?",
        ),
        (
            "unknown person",
            t,
            tasks("who: [csvc]", "who: [an, binh]"),
            "calendars/tasks.yaml:6:15: error: không có nhóm hay người nào mã `binh`",
            "",
        ),
        (
            "bad duration",
            t,
            tasks("before: 1d", "before: 2x"),
            "calendars/tasks.yaml:5:13: error: thời gian `2x` không hợp lệ",
            "`7d`",
        ),
        (
            "duplicate task",
            t,
            format!("{TASKS}{}", TASKS.replacen("tasks:\n", "", 1)),
            "calendars/tasks.yaml:7:9: error: mã `treo-co` bị trùng",
            "calendars/tasks.yaml:2:9",
        ),
        (
            "duplicate person",
            s,
            format!("{STAFF}  - id: an\n    name: Lê An\n    email: le.an@example.org\n"),
            "config/staff.yaml:9:9: error: mã `an` bị trùng",
            "config/staff.yaml:5:9",
        ),
        (
            "group and person share an id",
            s,
            staff("- id: an", "- id: csvc"),
            "config/staff.yaml:5:9: error: mã `csvc` bị trùng",
            "config/staff.yaml:2:9",
        ),
        (
            "since in the future",
            l,
            layer("since: 1975", "since: 2999"),
            "calendars/national.yaml:6:12: error: năm gốc 2999 ở tương lai",
            "",
        ),
        (
            "since after a one-off date",
            l,
            layer("date: 30/4", "date: 1/11/2024").replacen("since: 1975", "since: 2025", 1),
            "calendars/national.yaml:6:12: error: năm gốc 2025 sau năm của ngày diễn ra (2024)",
            "",
        ),
        (
            "not a year",
            l,
            layer("since: 1975", "since: 99999999999999999999999"),
            "calendars/national.yaml:6:12: error: `",
            "since: 1954",
        ),
        (
            "empty email",
            s,
            staff("email: an@example.org", "email: \"\""),
            "config/staff.yaml:7:12: error: địa chỉ email đang để trống",
            "",
        ),
        (
            "missing email",
            s,
            staff("    email: an@example.org\n", ""),
            "config/staff.yaml:5:5: error: thiếu `email`",
            "",
        ),
        (
            "bad email",
            s,
            staff("an@example.org", "an.example.org"),
            "config/staff.yaml:7:12: error: `an.example.org` không phải địa chỉ email",
            "",
        ),
        (
            "no date",
            l,
            layer("    date: 30/4\n", ""),
            "calendars/national.yaml:3:5: error: thiếu ngày",
            "lunar: 10/3",
        ),
        (
            "both dates",
            l,
            layer("    date: 30/4\n", "    date: 30/4\n    lunar: 1/1\n"),
            "calendars/national.yaml:6:5: error: một sự kiện chỉ có một",
            "",
        ),
        (
            "bad id",
            l,
            layer("id: gio-to", "id: Giỗ Tổ"),
            "calendars/national.yaml:8:9: error: mã `Giỗ Tổ` không hợp lệ",
            "gio-to",
        ),
        (
            "only round without since",
            l,
            layer("    lunar: 10/3\n", "    lunar: 10/3\n    only: round\n"),
            "calendars/national.yaml:11:11: error: `only: round` cần `since`",
            "",
        ),
        (
            "yaml syntax",
            l,
            layer("date: 30/4", "date: [30/4"),
            "calendars/national.yaml:6:",
            "thụt lề",
        ),
        (
            "tab indentation",
            l,
            layer("    since: 1975", "\tsince: 1975"),
            "calendars/national.yaml:6:1: error: YAML không hợp lệ",
            "",
        ),
        (
            "list where a value belongs",
            l,
            layer("name: Ngày Giải phóng miền Nam", "name: [a, b]"),
            "calendars/national.yaml:4:11: error: tên sự kiện phải là một giá trị đơn",
            "",
        ),
        (
            "bad time",
            t,
            tasks("before: 1d\n", "before: 1d\n    at: 7h30\n"),
            "calendars/tasks.yaml:6:9: error: giờ `7h30` không hợp lệ",
            "\"07:30\"",
        ),
    ]
}

#[test]
fn each_mistake_is_located_and_explained() {
    let mut failures = Vec::new();
    for (what, file, text, expected, help) in cases() {
        let p = minimal(&[(file, &text)]);
        let r = p.run(&["check"]);
        let ok = r.code == Some(1)
            && r.stderr.lines().any(|l| l.starts_with(expected))
            && r.stderr.contains(help)
            && !r.stderr.contains("panicked")
            && r.stdout.is_empty();
        if !ok {
            failures.push(format!(
                "--- {what}: expected exit 1 and a line starting {expected:?} (help {help:?}); got exit {:?}\nstdout: {}\nstderr:\n{}",
                r.code, r.stdout, r.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_minimal_project_is_valid() {
    let r = minimal(&[]).run(&["check"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.starts_with(
            "ngayle check: hợp lệ — 2 sự kiện trong 1 tệp lịch, 1 loại việc, 1 người, 1 nhóm"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn every_mistake_of_every_file_is_reported_in_one_run() {
    let layer = LAYER
        .replacen("30/4", "31/2", 1)
        .replacen("[treo-co]", "[treo-coo]", 1)
        .replacen("lunar: 10/3", "lunar: 10/13", 1);
    let p = minimal(&[
        ("calendars/national.yaml", &layer),
        (
            "calendars/tasks.yaml",
            &TASKS.replacen("before: 1d", "before: 2x", 1),
        ),
        (
            "config/staff.yaml",
            &STAFF.replacen("email: an@example.org", "email:", 1),
        ),
    ]);
    let r = p.run(&["check"]);
    assert_eq!(r.code, Some(1));
    let located: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains(": error: "))
        .collect();
    for want in [
        "calendars/national.yaml:5:11:",
        "calendars/national.yaml:7:13:",
        "calendars/national.yaml:10:12:",
        "calendars/tasks.yaml:5:13:",
        "config/staff.yaml:7:",
    ] {
        assert!(
            located.iter().any(|l| l.starts_with(want)),
            "missing {want} in:\n{}",
            r.stderr
        );
    }
    assert_eq!(located.len(), 5, "{}", r.stderr);
}

#[test]
fn duplicate_event_ids_across_files() {
    let p = minimal(&[(
        "calendars/local.yaml",
        "events:\n  - id: giai-phong\n    name: Trùng\n    date: 1/1\n",
    )]);
    let r = p.run(&["check"]);
    assert_eq!(r.code, Some(1));
    // Files are read in name order: local.yaml first, so national.yaml holds the duplicate.
    assert!(
        r.stderr
            .contains("calendars/national.yaml:3:9: error: mã `giai-phong` bị trùng"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("đã có ở calendars/local.yaml:2:9"),
        "{}",
        r.stderr
    );
}

#[test]
fn missing_files_and_folders() {
    let p = minimal(&[]);
    std::fs::remove_file(p.path().join("config/staff.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let r = p.run(&["check"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains(
            "config/ngayle.yaml:4:8: error: không đọc được config/staff.yaml: không tồn tại"
        ),
        "{}",
        r.stderr
    );

    let p = minimal(&[(
        "config/ngayle.yaml",
        &crate::support::CONFIG.replacen("../calendars", "../lich", 1),
    )]);
    let r = p.run(&["check"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains(
            "config/ngayle.yaml:3:12: error: không mở được thư mục lịch lich: không tồn tại"
        ),
        "{}",
        r.stderr
    );

    let p = minimal(&[]);
    std::fs::remove_file(p.path().join("calendars/tasks.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let r = p.run(&["check"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .contains("config/ngayle.yaml:3:12: error: thư mục lịch calendars không có tasks.yaml"),
        "{}",
        r.stderr
    );

    let r = minimal(&[]).run(&["check", "--config", "nowhere.yaml"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .starts_with("nowhere.yaml:1:1: error: không đọc được nowhere.yaml: không tồn tại"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("NGAYLE_CONFIG"), "{}", r.stderr);
}

#[test]
fn broken_files_never_panic() {
    let junk: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("binary", (0u8..=255).cycle().take(3000).collect()),
        ("latin-1", b"name: Gi\xf5 T\xf4\n".to_vec()),
        ("deep nesting", format!("events: {}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
        ("deep mapping", "a: ".repeat(5000).into_bytes()),
        ("huge number", b"events:\n  - id: x\n    name: X\n    date: 99999999999999999999/1\n    since: 1e400\n    days: 18446744073709551616\n".to_vec()),
        ("alias bomb", b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nevents: *g\n".to_vec()),
        ("tagged", b"events: !custom\n  - id: !x y\n".to_vec()),
        ("two documents", b"events: []\n---\nevents: []\n".to_vec()),
        ("a list at the top", b"- a\n- b\n".to_vec()),
        ("a scalar at the top", b"hello\n".to_vec()),
    ];
    for file in [
        "calendars/national.yaml",
        "calendars/tasks.yaml",
        "config/staff.yaml",
        "config/ngayle.yaml",
    ] {
        for (what, bytes) in &junk {
            let p = minimal(&[]);
            std::fs::write(p.path().join(file), bytes).unwrap_or_else(|e| panic!("{e}"));
            let r = p.run(&["check"]);
            assert!(
                matches!(r.code, Some(0 | 1)) && !r.stderr.contains("panicked"),
                "{what} in {file}: exit {:?}\n{}",
                r.code,
                r.stderr
            );
            if r.code == Some(1) {
                assert!(
                    r.stderr
                        .lines()
                        .any(|l| l.contains(": error: ") && l.contains(".yaml:")),
                    "{what} in {file}: no located error\n{}",
                    r.stderr
                );
            }
        }
    }
}
