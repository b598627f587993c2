//! The syntax of single values: ids (`is_valid_id`, `suggest_id`), email addresses, solar and
//! lunar dates, durations and days off.
//!
//! Pure functions of one string, each returning the value or why not (in Vietnamese, for the
//! diagnostic). Does not know where the value was written nor report anything.

use chrono::NaiveDate;

use crate::schedule::DateRule;

/// Ids are lower-case ASCII words joined by single dashes: `giai-phong-mien-nam`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// An id that would be valid, made from free text (strips Vietnamese diacritics).
pub fn suggest_id(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        let c = fold_vietnamese(c);
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "ten-su-kien".to_string()
    } else {
        out
    }
}

fn fold_vietnamese(c: char) -> char {
    const GROUPS: &[(&str, char)] = &[
        ("àáạảãâầấậẩẫăằắặẳẵ", 'a'),
        ("èéẹẻẽêềếệểễ", 'e'),
        ("ìíịỉĩ", 'i'),
        ("òóọỏõôồốộổỗơờớợởỡ", 'o'),
        ("ùúụủũưừứựửữ", 'u'),
        ("ỳýỵỷỹ", 'y'),
        ("đ", 'd'),
    ];
    GROUPS
        .iter()
        .find(|(set, _)| set.contains(c))
        .map_or(c, |&(_, base)| base)
}

/// Whether the mailer (lettre) takes `addr` as a recipient, and it looks like an Internet
/// address (a dot in the domain); else why not, for the help text.
pub(super) fn deliverable(addr: &str) -> Result<(), &'static str> {
    match addr.parse::<lettre::Address>() {
        Err(e) => Err(address_problem(e)),
        Ok(_) if !is_plausible_email(addr) => Err("tên miền sau `@` cần có dấu chấm"),
        Ok(_) => Ok(()),
    }
}

/// What is wrong, in Vietnamese, from the mailer's parse error.
pub(super) fn address_problem(e: lettre::address::AddressError) -> &'static str {
    use lettre::address::AddressError as E;
    match e {
        E::MissingParts => "thiếu `@` hoặc phần trước, phần sau `@`",
        E::InvalidUser => {
            "phần trước `@` không hợp lệ (chỉ một `@`, không có hai dấu chấm liền nhau, dấu cách hay ký tự lạ)"
        }
        E::InvalidDomain => {
            "tên miền sau `@` không hợp lệ (chữ, số, `-` và dấu chấm; không bắt đầu hay kết thúc bằng `-`)"
        }
        E::Unbalanced => "thiếu dấu `<` hoặc `>` quanh địa chỉ",
        _ => "trình gửi thư không nhận địa chỉ này",
    }
}

fn is_plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',')
}

fn days_in_month(month: u8, year: Option<i32>) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 => match year {
            Some(y) if !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) => 28,
            _ => 29,
        },
        _ => 31,
    }
}

/// `D/M` (every year), `D/M/YYYY` or `YYYY-MM-DD` (once).
pub fn parse_solar(s: &str) -> Result<DateRule, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(DateRule::Once(d));
    }
    let parts: Vec<&str> = s.split('/').map(str::trim).collect();
    let num = |p: &str| p.parse::<u32>().ok().filter(|_| p.len() <= 4);
    match parts.as_slice() {
        [d, m] | [d, m, _] => {
            let (Some(day), Some(month)) = (num(d), num(m)) else {
                return Err(format!("`{s}` không phải ngày dạng NGÀY/THÁNG"));
            };
            let year = match parts.get(2) {
                None => None,
                Some(y) => match y.parse::<i32>() {
                    Ok(y @ 1..=9999) => Some(y),
                    _ => return Err(format!("`{}` không phải một năm", y)),
                },
            };
            if !(1..=12).contains(&month) {
                return Err(format!("tháng {month} không tồn tại (tháng từ 1 đến 12)"));
            }
            let month = month as u8;
            let max = days_in_month(month, year);
            if !(1..=u32::from(max)).contains(&day) {
                let when = year.map(|y| format!("/{y}")).unwrap_or_default();
                return Err(format!(
                    "ngày {day}/{month}{when} không tồn tại: tháng {month} có {max} ngày"
                ));
            }
            let day = day as u8;
            Ok(match year {
                None => DateRule::Solar { day, month },
                Some(y) => NaiveDate::from_ymd_opt(y, month.into(), day.into())
                    .map(DateRule::Once)
                    .ok_or_else(|| format!("ngày {s} không tồn tại"))?,
            })
        }
        _ => Err(format!("`{s}` không phải ngày dạng NGÀY/THÁNG")),
    }
}

/// `true` (the event's own days), `false`, or `A..B`: from A to B days after the event's first
/// day, both included (`-1..3`: the day before to the third day after).
pub fn parse_day_off(s: &str, days: u32) -> Result<Option<(i32, i32)>, String> {
    match s.trim() {
        "true" => return Ok(Some((0, i32::try_from(days).unwrap_or(1) - 1))),
        "false" => return Ok(None),
        _ => {}
    }
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| "không phải `true`, `false` hay `A..B`".to_string())?;
    let num = |x: &str| {
        x.trim()
            .trim_start_matches('+')
            .parse::<i32>()
            .ok()
            .filter(|n| (-30..=30).contains(n))
            .ok_or_else(|| format!("`{}` không phải số ngày từ -30 đến 30", x.trim()))
    };
    let (a, b) = (num(a)?, num(b)?);
    if a > b {
        return Err(format!("{a} ở sau {b}"));
    }
    Ok(Some((a, b)))
}

/// `D/M` of the lunar calendar.
pub fn parse_lunar(s: &str) -> Result<DateRule, String> {
    let parts: Vec<&str> = s.split('/').map(str::trim).collect();
    let num = |p: &str| p.parse::<u32>().ok().filter(|_| p.len() <= 4);
    match parts.as_slice() {
        [d, m] => {
            let (Some(day), Some(month)) = (num(d), num(m)) else {
                return Err(format!("`{s}` không phải ngày âm lịch dạng NGÀY/THÁNG"));
            };
            if !(1..=12).contains(&month) {
                return Err(format!(
                    "tháng âm lịch {month} không tồn tại (tháng từ 1 đến 12)"
                ));
            }
            if !(1..=30).contains(&day) {
                return Err(format!(
                    "ngày âm lịch {day} không tồn tại (tháng âm lịch có 29 hoặc 30 ngày)"
                ));
            }
            Ok(DateRule::Lunar {
                day: day as u8,
                month: month as u8,
            })
        }
        [_, _, _] => Err(format!(
            "ngày âm lịch `{s}` có năm: `lunar` là ngày âm lịch lặp lại hằng năm"
        )),
        _ => Err(format!("`{s}` không phải ngày âm lịch dạng NGÀY/THÁNG")),
    }
}

/// A whole number of seconds or minutes (`30s`, `2m`) from `min` to `max`, both included.
pub fn seconds_or_minutes(
    s: &str,
    min: std::time::Duration,
    max: std::time::Duration,
) -> Option<std::time::Duration> {
    parse_duration(s, &['s', 'm'])
        .ok()
        .and_then(|d| d.to_std().ok())
        .filter(|d| (min..=max).contains(d))
}

/// `s` (`7d`, `2w`, `90m`, `3 ngày`) as a length of time, in one of `units` (`s`, `m`, `h`,
/// `d`, `w`, or the Vietnamese word of one), at most a year.
pub fn parse_duration(s: &str, units: &[char]) -> Result<chrono::Duration, String> {
    let (n, unit) = parse_span(s, units)?;
    Ok(unit.of(n))
}

/// The unit of a length of time as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
}

impl Unit {
    const ALL: [Unit; 5] = [
        Unit::Second,
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Week,
    ];

    /// The letter of the short form (`7d`).
    fn letter(self) -> char {
        match self {
            Unit::Second => 's',
            Unit::Minute => 'm',
            Unit::Hour => 'h',
            Unit::Day => 'd',
            Unit::Week => 'w',
        }
    }

    /// The Vietnamese word (`7 ngày`).
    fn word(self) -> &'static str {
        match self {
            Unit::Second => "giây",
            Unit::Minute => "phút",
            Unit::Hour => "giờ",
            Unit::Day => "ngày",
            Unit::Week => "tuần",
        }
    }

    /// The unit `written` names: its letter or its Vietnamese word (in any case).
    fn named(written: &str) -> Option<Unit> {
        let lower = written.to_lowercase();
        Unit::ALL
            .into_iter()
            .find(|u| (written.len() == 1 && written.starts_with(u.letter())) || lower == u.word())
    }

    /// `n` of this unit.
    pub fn of(self, n: u32) -> chrono::Duration {
        let n = i64::from(n);
        match self {
            Unit::Second => chrono::Duration::seconds(n),
            Unit::Minute => chrono::Duration::minutes(n),
            Unit::Hour => chrono::Duration::hours(n),
            Unit::Day => chrono::Duration::days(n),
            Unit::Week => chrono::Duration::weeks(n),
        }
    }
}

/// `s` as a number and its unit, one of `units` (by letter; the Vietnamese word of one is
/// taken too, with or without a space: `1 tuần`, `3ngày`), at most a year long. A refused unit
/// is named as written.
pub fn parse_span(s: &str, units: &[char]) -> Result<(u32, Unit), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("trống".to_string());
    }
    // The unit is the letters at the end; the number what is before them.
    let number_end = s
        .char_indices()
        .rev()
        .take_while(|&(_, c)| c.is_alphabetic())
        .last()
        .map_or(s.len(), |(i, _)| i);
    let (number, written) = (s[..number_end].trim(), &s[number_end..]);
    let allowed: Vec<Unit> = Unit::ALL
        .into_iter()
        .filter(|u| units.contains(&u.letter()))
        .collect();
    let list = allowed
        .iter()
        .map(|u| format!("`{}` hoặc `{}`", u.letter(), u.word()))
        .collect::<Vec<_>>()
        .join(", ");
    if written.is_empty() {
        return Err(format!("thiếu đơn vị sau `{number}` (dùng {list})"));
    }
    let Some(u) = Unit::named(written).filter(|u| allowed.contains(u)) else {
        // `tuan` for `tuần`: the word meant, when only its accents differ.
        let folded: String = written
            .to_lowercase()
            .chars()
            .map(fold_vietnamese)
            .collect();
        let meant = allowed
            .iter()
            .find(|u| u.word().chars().map(fold_vietnamese).eq(folded.chars()))
            .map(|u| format!(": có phải là `{}`?", u.word()))
            .unwrap_or_default();
        return Err(format!(
            "đơn vị `{written}` không dùng được{meant} (dùng {list})"
        ));
    };
    if number.is_empty() {
        return Err(format!("thiếu số trước `{written}`"));
    }
    let n = number
        .parse::<u32>()
        .map_err(|_| format!("`{number}` không phải số nguyên không âm"))?;
    if u.of(n) > chrono::Duration::days(366) {
        return Err("dài quá một năm".to_string());
    }
    Ok((n, u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solar_dates() {
        let once = DateRule::Once(NaiveDate::from_ymd_opt(2024, 11, 1).unwrap_or_default());
        for (text, want) in [
            ("30/4", DateRule::Solar { day: 30, month: 4 }),
            ("29/2", DateRule::Solar { day: 29, month: 2 }),
            ("1/11/2024", once),
            ("2024-11-01", once),
        ] {
            assert_eq!(parse_solar(text), Ok(want), "{text}");
        }
        for bad in [
            "31/2",
            "0/5",
            "12/13",
            "32/1",
            "29/2/2023",
            "31/4",
            "x/5",
            "5",
            "1/2/3/4",
            "99999999999/1",
        ] {
            assert!(parse_solar(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lunar_dates() {
        for (text, want) in [
            ("10/3", DateRule::Lunar { day: 10, month: 3 }),
            ("30/12", DateRule::Lunar { day: 30, month: 12 }),
        ] {
            assert_eq!(parse_lunar(text), Ok(want), "{text}");
        }
        for bad in ["10/13", "31/1", "0/1", "1/0", "15/8/2024", "rằm"] {
            assert!(parse_lunar(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("0d", &['d', 'w']),
            Ok(chrono::Duration::days(0))
        );
        assert_eq!(
            parse_duration("2w", &['d', 'w']),
            Ok(chrono::Duration::days(14))
        );
        assert_eq!(
            parse_duration("90m", &['m', 'h']),
            Ok(chrono::Duration::minutes(90))
        );
        for (text, want) in [
            ("1 tuần", 7),
            ("3ngày", 3),
            ("3 Ngày", 3),
            ("1 w", 7),
            ("0 ngày", 0),
        ] {
            assert_eq!(
                parse_duration(text, &['d', 'w']),
                Ok(chrono::Duration::days(want)),
                "{text}"
            );
        }
        assert_eq!(
            parse_duration("30 phút", &['m', 'h']),
            Ok(chrono::Duration::minutes(30))
        );
        assert_eq!(
            parse_duration("2giờ", &['m', 'h']),
            Ok(chrono::Duration::hours(2))
        );
        // The unit refused is the one written; the word meant is named when only the accents
        // differ.
        for (text, named) in [
            ("1 tuan", "`tuan` không dùng được: có phải là `tuần`?"),
            ("3 ngay", "`ngay`"),
            ("2x", "`x`"),
            (
                "2 giờ",
                "`giờ` không dùng được (dùng `d` hoặc `ngày`, `w` hoặc `tuần`)",
            ),
        ] {
            let why = parse_duration(text, &['d', 'w']).err().unwrap_or_default();
            assert!(why.contains(named), "{text}: {why}");
        }
        for bad in [
            "2x",
            "",
            "d",
            "5",
            "tuần",
            "1 tuần 2",
            "1.5 ngày",
            "-1d",
            "1.5d",
            "3h",
            "400d",
            "99999999999d",
            "ngày",
        ] {
            assert!(parse_duration(bad, &['d', 'w']).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_off() {
        assert_eq!(parse_day_off("true", 1), Ok(Some((0, 0))));
        assert_eq!(parse_day_off("true", 3), Ok(Some((0, 2))));
        assert_eq!(parse_day_off("false", 1), Ok(None));
        assert_eq!(parse_day_off("-1..3", 1), Ok(Some((-1, 3))));
        assert_eq!(parse_day_off("0..+1", 1), Ok(Some((0, 1))));
        for bad in ["yes", "3..1", "-99..0", "1..", "a..b"] {
            assert!(parse_day_off(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids() {
        assert!(is_valid_id("giai-phong-mien-nam"));
        assert!(is_valid_id("tet-2024"));
        for bad in ["", "Tet", "tet--x", "-tet", "tet-", "tết", "a b", "a_b"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
        assert_eq!(suggest_id("Giỗ Tổ Hùng Vương"), "gio-to-hung-vuong");
    }
}
