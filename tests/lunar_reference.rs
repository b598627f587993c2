//! Every day of 1968–2199 against the reference fixture
//! `tests/fixtures/lunar-months.tsv`, generated from two independent
//! implementations (PyPI `vnlunar`, cross-checked with `lunar-vn`) by
//! `scripts/lunar-reference.py`.

use chrono::NaiveDate;
use ngayle::lunar::{LunarDate, lunar_to_solar, range, solar_to_lunar};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/lunar-months.tsv"
);

/// How many differing days a failure lists.
const SHOWN: usize = 10;

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(1968, 1, 1).expect("valid date")
}

fn last_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2199, 12, 31).expect("valid date")
}

/// Parses one fixture line into its segment's days.
fn parse_line(line: &str) -> Result<Vec<(NaiveDate, LunarDate)>, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [date, year, month, leap, day, count] = fields[..] else {
        return Err(format!(
            "expected 6 tab-separated fields, got {}",
            fields.len()
        ));
    };
    let first =
        NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|e| format!("date {date:?}: {e}"))?;
    let year: i32 = year.parse().map_err(|e| format!("year {year:?}: {e}"))?;
    let month: u8 = month.parse().map_err(|e| format!("month {month:?}: {e}"))?;
    let leap = match leap {
        "0" => false,
        "1" => true,
        _ => return Err(format!("leap must be 0 or 1, got {leap:?}")),
    };
    let day: u8 = day.parse().map_err(|e| format!("day {day:?}: {e}"))?;
    let count: u8 = count.parse().map_err(|e| format!("count {count:?}: {e}"))?;
    if !(1..=12).contains(&month)
        || day == 0
        || count == 0
        || u16::from(day) + u16::from(count) > 31
    {
        return Err("month, day or count out of range".to_owned());
    }
    Ok((0..count)
        .map(|i| {
            let solar = first + chrono::Days::new(u64::from(i));
            let lunar = LunarDate {
                year,
                month,
                day: day + i,
                leap,
            };
            (solar, lunar)
        })
        .collect())
}

/// Every reference day, in order; panics with a clear message if the fixture
/// is malformed, has gaps or overlaps, or does not cover 1968-01-01 ..=
/// 2199-12-31 exactly.
fn reference() -> Vec<(NaiveDate, LunarDate)> {
    let text = std::fs::read_to_string(FIXTURE)
        .unwrap_or_else(|e| panic!("cannot read {FIXTURE}: {e} (see scripts/lunar-reference.py)"));
    let mut days: Vec<(NaiveDate, LunarDate)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let segment =
            parse_line(line).unwrap_or_else(|e| panic!("{FIXTURE}:{}: {e}: {line:?}", n + 1));
        let expected = match days.last() {
            Some((last, _)) => last.succ_opt().expect("before 2199-12-31"),
            None => first_day(),
        };
        assert_eq!(
            segment[0].0,
            expected,
            "{FIXTURE}:{}: segment starts on {} but the previous one ends the day before {expected} (gap or overlap)",
            n + 1,
            segment[0].0,
        );
        days.extend(segment);
    }
    assert_eq!(
        days.last().map(|(d, _)| *d),
        Some(last_day()),
        "{FIXTURE} does not reach {} (truncated?)",
        last_day()
    );
    days
}

/// Fails listing the first few days where `actual` differs from the
/// reference.
fn assert_all(
    what: &str,
    reference: &[(NaiveDate, LunarDate)],
    actual: impl Fn(NaiveDate, LunarDate) -> Option<String>,
) {
    let mut count = 0;
    let mut shown = Vec::new();
    for &(solar, lunar) in reference {
        if let Some(problem) = actual(solar, lunar) {
            count += 1;
            if shown.len() < SHOWN {
                shown.push(format!("  {solar} (reference {lunar}): {problem}"));
            }
        }
    }
    assert!(
        count == 0,
        "{what}: {count} of {} days differ; the first ones:\n{}",
        reference.len(),
        shown.join("\n")
    );
}

#[test]
fn fixture_covers_every_day() {
    let days = reference();
    let expected = (last_day() - first_day()).num_days() + 1;
    assert_eq!(i64::try_from(days.len()).ok(), Some(expected));
}

#[test]
fn solar_to_lunar_matches_reference() {
    let days = reference();
    assert_all(
        "solar_to_lunar",
        &days,
        |solar, lunar| match solar_to_lunar(solar) {
            Ok(ours) if ours == lunar => None,
            Ok(ours) => Some(format!("ours {ours}")),
            Err(e) => Some(format!("error: {e}")),
        },
    );
}

#[test]
fn lunar_to_solar_round_trips() {
    let days = reference();
    assert_all(
        "lunar_to_solar",
        &days,
        |solar, lunar| match lunar_to_solar(lunar) {
            Ok(ours) if ours == solar => None,
            Ok(ours) => Some(format!("lunar_to_solar({lunar}) = {ours}")),
            Err(e) => Some(format!("lunar_to_solar({lunar}): error: {e}")),
        },
    );
}

#[test]
fn range_matches_reference() {
    let days = reference();
    let ours: Vec<(NaiveDate, LunarDate)> =
        range(first_day(), last_day()).expect("in range").collect();
    let mut problems = Vec::new();
    for (i, (expected, actual)) in days.iter().zip(&ours).enumerate() {
        if expected != actual && problems.len() < SHOWN {
            problems.push(format!(
                "  item {i}: reference {} {}, range gave {} {}",
                expected.0, expected.1, actual.0, actual.1
            ));
        }
    }
    assert!(
        problems.is_empty() && ours.len() == days.len(),
        "range(1968-01-01, 2199-12-31) differs from the reference ({} items, reference {}); the first differences:\n{}",
        ours.len(),
        days.len(),
        problems.join("\n")
    );
}
