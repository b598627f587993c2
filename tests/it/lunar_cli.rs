//! `ngayle lunar`: one date readable, a range as tsv (contract), errors as usage errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{ngayle, repo};

#[test]
fn one_date_is_readable() {
    let cases = [
        (
            "2024-02-10",
            "Thứ Bảy 10/02/2024 — âm lịch: mùng 1 tháng Giêng năm Giáp Thìn (1/1/2024)",
        ),
        ("1985-01-21", "mùng 1 tháng Giêng năm Ất Sửu (1/1/1985)"),
        ("2007-02-17", "mùng 1 tháng Giêng năm Đinh Hợi (1/1/2007)"),
        (
            "2023-03-22",
            "mùng 1 tháng Hai nhuận năm Quý Mão (1/2n/2023)",
        ),
        ("2054-05-07", "ngày 30 tháng Ba năm Giáp Tuất (30/3/2054)"),
        ("2062-04-09", "ngày 30 tháng Hai năm Nhâm Ngọ (30/2/2062)"),
    ];
    for (date, want) in cases {
        let r = ngayle(&repo(), &["lunar", date]);
        assert_eq!(r.code, Some(0), "{date}: {}", r.stderr);
        assert!(r.stdout.contains(want), "{date}: {}", r.stdout);
    }
    let r = ngayle(&repo(), &["lunar", "1960-01-01"]);
    assert!(
        r.stdout.contains("UTC+8"),
        "the pre-1968 note: {}",
        r.stdout
    );
}

#[test]
fn a_range_is_tsv() {
    let r = ngayle(
        &repo(),
        &["lunar", "--from", "2023-01-01", "--to", "2024-12-31"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 365 + 366);
    assert_eq!(lines[0], "2023-01-01\t10\t12\t2022\t0");
    assert!(lines.contains(&"2023-01-22\t1\t1\t2023\t0"));
    assert!(lines.contains(&"2023-03-22\t1\t2\t2023\t1"));
    assert!(lines.contains(&"2023-04-20\t1\t3\t2023\t0"));
    assert!(lines.contains(&"2024-02-10\t1\t1\t2024\t0"));
    assert_eq!(lines.last(), Some(&"2024-12-31\t1\t12\t2024\t0"));
}

#[test]
fn the_whole_range_and_a_closed_pipe() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ngayle"))
        .args(["lunar", "--from", "1968-01-01", "--to", "2199-12-31"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out)
            .read_line(&mut first)
            .unwrap_or_else(|e| panic!("{e}"));
        // Dropping the reader closes the pipe, as `| head -1` does.
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first, "1968-01-01\t2\t12\t1967\t0\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));

    let r = ngayle(
        &repo(),
        &["lunar", "--from", "1968-01-01", "--to", "2199-12-31"],
    );
    assert_eq!(r.code, Some(0));
    let days = (chrono::NaiveDate::from_ymd_opt(2199, 12, 31).unwrap_or_default()
        - chrono::NaiveDate::from_ymd_opt(1968, 1, 1).unwrap_or_default())
    .num_days()
        + 1;
    assert_eq!(r.stdout.lines().count() as i64, days);
}

#[test]
fn usage_errors() {
    for args in [
        &["lunar"][..],
        &["lunar", "2300-01-01"],
        &["lunar", "1899-12-31"],
        &["lunar", "hôm nay"],
        &["lunar", "--from", "2024-01-01"],
        &[
            "lunar",
            "2024-01-01",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-02",
        ],
        &["lunar", "--from", "2024-01-02", "--to", "2024-01-01"],
    ] {
        let r = ngayle(&repo(), args);
        assert_eq!(r.code, Some(2), "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(!r.stderr.contains("panicked"));
    }
}
