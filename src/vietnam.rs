//! Vietnam's clock and the Vietnamese words for dates: the one offset (UTC+7, all year, no
//! daylight saving time), today's date there, and every way ngayle writes a day, an instant or
//! a lunar date for people (feeds, emails, the command line), and how a text names a crowd.
//!
//! It holds no calendar arithmetic (that is `lunar`) and decides nothing.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc, Weekday};

use crate::lunar::{self, LunarDate};

/// Vietnam's offset from UTC, in hours (also the meridian of the lunar calendar: 105° E).
pub const OFFSET_HOURS: i32 = 7;

/// Vietnam's offset: UTC+7 all year.
pub const ZONE: FixedOffset = match FixedOffset::east_opt(OFFSET_HOURS * 3600) {
    Some(z) => z,
    None => panic!("UTC+7 is a valid offset"),
};

/// How many people a text names before it counts the rest: an email's "who else", a feed's
/// members of a group (a province's group of 400 is not a list anyone reads on a phone).
pub const MAX_NAMES: usize = 8;

/// The first [`MAX_NAMES`] of `names`, then `và N người khác` for the rest.
pub fn some_names<'a>(names: &[&'a str]) -> Vec<std::borrow::Cow<'a, str>> {
    let mut shown: Vec<std::borrow::Cow<'a, str>> = names
        .iter()
        .take(MAX_NAMES)
        .map(|&n| std::borrow::Cow::Borrowed(n))
        .collect();
    if names.len() > MAX_NAMES {
        shown.push(format!("và {} người khác", names.len() - MAX_NAMES).into());
    }
    shown
}

/// The date in Vietnam at `now`.
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&ZONE).date_naive()
}

/// The instant `now` in Vietnamese time.
pub fn local(now: DateTime<Utc>) -> DateTime<FixedOffset> {
    now.with_timezone(&ZONE)
}

/// "Thứ Hai" (Monday) to "Thứ Bảy" (Saturday), and "Chủ nhật" (Sunday).
pub fn weekday(date: NaiveDate) -> &'static str {
    match date.weekday() {
        Weekday::Mon => "Thứ Hai",
        Weekday::Tue => "Thứ Ba",
        Weekday::Wed => "Thứ Tư",
        Weekday::Thu => "Thứ Năm",
        Weekday::Fri => "Thứ Sáu",
        Weekday::Sat => "Thứ Bảy",
        Weekday::Sun => "Chủ nhật",
    }
}

/// `15/12/2026`.
pub fn date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// `5/9/2026`: no leading zeros (titles, the date of a one-off rule).
pub fn date_short(d: NaiveDate) -> String {
    d.format("%-d/%-m/%Y").to_string()
}

/// `Thứ Ba 15/12/2026`.
pub fn day(d: NaiveDate) -> String {
    format!("{} {}", weekday(d), date(d))
}

/// `07:30 Thứ Ba 15/12/2026` (an email's deadline).
pub fn time_day(t: DateTime<FixedOffset>) -> String {
    format!("{} {}", t.format("%H:%M"), day(t.date_naive()))
}

/// `Thứ Ba 15/12/2026 07:30` (a table of reminders).
pub fn day_time(t: DateTime<FixedOffset>) -> String {
    format!("{} {}", day(t.date_naive()), t.format("%H:%M"))
}

fn leap(l: &LunarDate) -> &'static str {
    if l.leap { " nhuận" } else { "" }
}

/// `15/8 nhuận năm Giáp Thìn` (emails).
pub fn lunar_short(l: &LunarDate) -> String {
    format!(
        "{}/{}{} năm {}",
        l.day,
        l.month,
        leap(l),
        lunar::year_name(l.year)
    )
}

/// `ngày 15 tháng 8 nhuận năm Giáp Thìn` (feeds).
pub fn lunar_long(l: &LunarDate) -> String {
    format!(
        "ngày {} tháng {}{} năm {}",
        l.day,
        l.month,
        leap(l),
        lunar::year_name(l.year)
    )
}

/// `mùng 1 tháng Giêng năm Giáp Thìn` (`ngayle lunar`: days 1–10 are "mùng", months by name).
pub fn lunar_named(l: &LunarDate) -> String {
    let day = if l.day <= 10 {
        format!("mùng {}", l.day)
    } else {
        format!("ngày {}", l.day)
    };
    format!(
        "{day} tháng {}{} năm {}",
        lunar::month_name(l.month),
        leap(l),
        lunar::year_name(l.year)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_crowd_is_named_by_its_first_eight_then_counted() {
        let few = ["An", "Bình"];
        assert_eq!(some_names(&few), ["An", "Bình"]);
        let names: Vec<String> = (1..=20).map(|i| format!("Người {i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let shown = some_names(&names);
        assert_eq!(shown.len(), MAX_NAMES + 1);
        assert_eq!(shown[MAX_NAMES - 1], "Người 8");
        assert_eq!(shown[MAX_NAMES], "và 12 người khác");
        assert_eq!(some_names(&names[..8]).len(), 8, "eight are all named");
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    #[test]
    fn today_turns_at_midnight_in_vietnam_not_utc() {
        let before = Utc.with_ymd_and_hms(2026, 12, 14, 16, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 12, 14, 17, 0, 0).unwrap();
        assert_eq!(today(before), d(2026, 12, 14));
        assert_eq!(today(after), d(2026, 12, 15));
    }

    #[test]
    fn every_written_form() {
        let t = Utc.with_ymd_and_hms(2026, 12, 15, 0, 30, 0).unwrap();
        assert_eq!(day(d(2026, 12, 15)), "Thứ Ba 15/12/2026");
        assert_eq!(weekday(d(2026, 12, 20)), "Chủ nhật");
        assert_eq!(date_short(d(2026, 9, 5)), "5/9/2026");
        assert_eq!(time_day(local(t)), "07:30 Thứ Ba 15/12/2026");
        assert_eq!(day_time(local(t)), "Thứ Ba 15/12/2026 07:30");
        let l = lunar::solar_to_lunar(d(2024, 2, 10)).expect("in range");
        assert_eq!(lunar_short(&l), "1/1 năm Giáp Thìn");
        assert_eq!(lunar_long(&l), "ngày 1 tháng 1 năm Giáp Thìn");
        assert_eq!(lunar_named(&l), "mùng 1 tháng Giêng năm Giáp Thìn");
    }
}
