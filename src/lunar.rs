//! The Vietnamese lunar calendar (âm lịch).
//!
//! This module converts between the Gregorian (solar) calendar and the
//! Vietnamese lunisolar calendar, and answers the questions a schedule needs:
//! the lunar date of a day ([`solar_to_lunar`]), the solar day of a lunar date
//! ([`lunar_to_solar`]), the leap month of a lunar year ([`leap_month`]), the
//! first day and length of a lunar month ([`month_start`], [`month_len`]), a
//! fast day-by-day walk over a span of days ([`range`]), and the Vietnamese
//! names of lunar years and months. (Weekday names and every written date form
//! are `vietnam`'s.)
//!
//! # Method
//!
//! The computation is Hồ Ngọc Đức's published astronomical method (his
//! article "Âm lịch Việt Nam" and its reference code), transcribed function by
//! function with the same constants, the same `f64` arithmetic in the same
//! order, and `INT` = `floor` (also for negative numbers):
//!
//! * `jdFromDate` / `jdToDate`: Julian day numbers of Gregorian dates;
//! * `getNewMoonDay`: the local day of the k-th new moon after 1900-01-01,
//!   from the series in Jean Meeus' *Astronomical Algorithms*;
//! * `getSunLongitude`: the 30° sector of the sun's longitude at local
//!   midnight, which tells which major solar term (trung khí) a month holds;
//! * `getLunarMonth11`: the start of lunar month 11, the month holding the
//!   winter solstice;
//! * `getLeapMonthOffset`: in a year of 13 lunar months, the first month
//!   without a major solar term is the leap month (tháng nhuận);
//! * `convertSolar2Lunar` / `convertLunar2Solar`.
//!
//! The time zone is fixed at UTC+7 (105° E), the meridian of the Vietnamese
//! calendar since 1968. Two deliberate departures from the article's code:
//!
//! * `convertSolar2Lunar` picks the new moon `k + 1`, or `k` if that one is
//!   after the day. On 2054-05-07 and 2062-04-09 both are after the day and the
//!   article's code answers "day 0". We step `k` back while the month start is
//!   after the day (and forward while the next month start is on or before
//!   it); those two days are day 30 of month 3/2054 and of month 2/2062.
//! * `convertLunar2Solar` silently ignores a leap flag in a year without a
//!   leap month and accepts day 30 of a 29-day month. [`lunar_to_solar`] is
//!   exact instead and answers an error.
//!
//! # Supported range
//!
//! Solar dates from [`FIRST_YEAR`]-01-01 to [`LAST_YEAR`]-12-31. Lunar dates
//! are accepted exactly when their solar day lies in that range; this includes
//! the tail of lunar year 1899 (its month 12 starts on 1900-01-01, and Tết
//! 1900 is 1900-01-31), so that every result of [`solar_to_lunar`] converts
//! back. Anything outside answers [`LunarError::OutOfRange`]; no input panics.
//!
//! # Dates before 1968
//!
//! Every year is computed with UTC+7. Before 1968, (North) Vietnam reckoned the
//! calendar with UTC+8, the meridian of the Chinese calendar, so a calendar
//! printed at the time can differ from ours by a day at a month boundary, and
//! occasionally by a month (a different leap month, or a different Tết). We do
//! not switch time zones for those years: results before 1968 are the UTC+7
//! calendar carried backwards, not a reproduction of the almanacs then in use.
//!
//! # Example
//!
//! ```
//! use chrono::NaiveDate;
//! use ngayle::lunar::{solar_to_lunar, LunarDate};
//!
//! let tet = NaiveDate::from_ymd_opt(2007, 2, 17).unwrap();
//! let lunar = solar_to_lunar(tet).unwrap();
//! assert_eq!(lunar, LunarDate { year: 2007, month: 1, day: 1, leap: false });
//! assert_eq!(lunar.to_string(), "1/1/2007");
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};

use chrono::{Datelike, NaiveDate};

/// The first solar year supported.
pub const FIRST_YEAR: i32 = 1900;
/// The last solar year supported.
pub const LAST_YEAR: i32 = 2199;

/// The time zone of the Vietnamese calendar, in hours east of UTC.
const TIME_ZONE: f64 = crate::vietnam::OFFSET_HOURS as f64;

/// Julian day number of 1900-01-01, the first supported day.
const FIRST_JD: i64 = 2_415_021;
/// Julian day number of 2199-12-31, the last supported day.
const LAST_JD: i64 = 2_524_593;

/// A date of the Vietnamese lunar calendar.
///
/// `leap` marks the leap month (tháng nhuận), which follows the ordinary month
/// of the same number. Ordering is chronological: year, month, leap flag, day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LunarDate {
    /// The lunar year; Tết is day 1 of month 1.
    pub year: i32,
    /// The month, 1 to 12.
    pub month: u8,
    /// The day of the month, 1 to 29 or 30.
    pub day: u8,
    /// Whether this is the leap month of that number.
    pub leap: bool,
}

impl Ord for LunarDate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.year
            .cmp(&other.year)
            .then(self.month.cmp(&other.month))
            .then(self.leap.cmp(&other.leap))
            .then(self.day.cmp(&other.day))
    }
}

impl PartialOrd for LunarDate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for LunarDate {
    /// `day/month/year`, e.g. `15/8/2024`; a leap month carries an `n` (for
    /// nhuận): `1/2n/2023`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = if self.leap { "n" } else { "" };
        write!(f, "{}/{}{}/{}", self.day, self.month, n, self.year)
    }
}

/// Why a conversion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LunarError {
    /// The date, or the solar day a lunar date falls on, is outside the
    /// supported range; `year` is the offending year.
    #[error("year {year} is outside {}–{}", FIRST_YEAR, LAST_YEAR)]
    OutOfRange {
        /// The year outside the range.
        year: i32,
    },
    /// The month is not 1 to 12, or `leap` is set on a month that is not the
    /// leap month of that year.
    #[error("lunar year {year} has no {}month {month}", if *.leap { "leap " } else { "" })]
    NoSuchMonth {
        /// The lunar year.
        year: i32,
        /// The month asked for.
        month: u8,
        /// Whether the leap month was asked for.
        leap: bool,
    },
    /// The day is 0, or beyond the length of the month.
    #[error("lunar month {}{}/{year} has {len} days, not day {day}", .month, if *.leap { "n" } else { "" })]
    NoSuchDay {
        /// The lunar year.
        year: i32,
        /// The month.
        month: u8,
        /// Whether it is the leap month.
        leap: bool,
        /// The day asked for.
        day: u8,
        /// The length of the month, 29 or 30.
        len: u8,
    },
}

// ---------------------------------------------------------------------------
// Hồ Ngọc Đức's functions, transcribed. Integers are i64; all inputs are
// range-checked before they get here, so no arithmetic can overflow.
// ---------------------------------------------------------------------------

/// `INT`: the greatest integer not exceeding `d` (floor, also for negatives).
fn int(d: f64) -> i64 {
    d.floor() as i64
}

/// `jdFromDate`: the Julian day number of a Gregorian date. (The article's
/// branch for Julian-calendar dates before 1582 is not needed here.)
fn jd_from_date(dd: i64, mm: i64, yy: i64) -> i64 {
    let a = (14 - mm).div_euclid(12);
    let y = yy + 4800 - a;
    let m = mm + 12 * a - 3;
    dd + (153 * m + 2).div_euclid(5) + 365 * y + y.div_euclid(4) - y.div_euclid(100)
        + y.div_euclid(400)
        - 32045
}

/// `jdToDate`: the Gregorian date `(day, month, year)` of a Julian day number
/// (Gregorian branch: the day must be after 1582-10-04).
fn jd_to_date(jd: i64) -> (i64, i64, i64) {
    let a = jd + 32044;
    let b = (4 * a + 3).div_euclid(146_097);
    let c = a - (b * 146_097).div_euclid(4);
    let d = (4 * c + 3).div_euclid(1461);
    let e = c - (1461 * d).div_euclid(4);
    let m = (5 * e + 2).div_euclid(153);
    let day = e - (153 * m + 2).div_euclid(5) + 1;
    let month = m + 3 - 12 * m.div_euclid(10);
    let year = b * 100 + d - 4800 + m.div_euclid(10);
    (day, month, year)
}

/// The new moons the supported range can ask for: k = [`K_FIRST`] to
/// `K_FIRST + MOON_COUNT - 1` (1898 to 2200, with a margin).
const K_FIRST: i64 = -40;
const MOON_COUNT: usize = 3_820;

/// Each new moon's day and the sun's sector on that day, computed once per
/// process: `jd * 16 + sector`, or 0 while not yet computed. Planning asks for
/// the same few dozen moons thousands of times (every lunar event of every
/// unit), and each costs 17 `sin` with its sector. Untouched entries stay in
/// zero pages.
static MOONS: [AtomicI64; MOON_COUNT] = [const { AtomicI64::new(0) }; MOON_COUNT];

/// The k-th new moon's local day and the sun's sector (see [`sun_longitude`])
/// on it, from [`MOONS`] when k is in its range. Two threads may both compute
/// an entry; they store the same value.
fn moon(k: i64) -> (i64, i64) {
    let slot = usize::try_from(k - K_FIRST).ok().and_then(|i| MOONS.get(i));
    if let Some(packed) = slot.map(|s| s.load(AtomicOrdering::Relaxed))
        && packed > 0
    {
        return (packed >> 4, packed & 15);
    }
    let day = compute_new_moon_day(k);
    let sector = sun_longitude(day);
    if let Some(slot) = slot
        && day > 0
        && (0..16).contains(&sector)
    {
        slot.store(day << 4 | sector, AtomicOrdering::Relaxed);
    }
    (day, sector)
}

/// The local (UTC+7) day of the k-th new moon, k = 0 being the new moon of
/// 1900-01-01 (memoized [`compute_new_moon_day`]).
fn new_moon_day(k: i64) -> i64 {
    moon(k).0
}

/// `getNewMoonDay`: the local (UTC+7) day of the k-th new moon, k = 0 being
/// the new moon of 1900-01-01.
fn compute_new_moon_day(k: i64) -> i64 {
    let k = k as f64;
    let t = k / 1236.85;
    let t2 = t * t;
    let t3 = t2 * t;
    let dr = std::f64::consts::PI / 180.0;
    let mut jd1 = 2415020.75933 + 29.53058868 * k + 0.0001178 * t2 - 0.000000155 * t3;
    jd1 += 0.00033 * ((166.56 + 132.87 * t - 0.009173 * t2) * dr).sin();
    let m = 359.2242 + 29.10535608 * k - 0.0000333 * t2 - 0.00000347 * t3;
    let mpr = 306.0253 + 385.81691806 * k + 0.0107306 * t2 + 0.00001236 * t3;
    let f = 21.2964 + 390.67050646 * k - 0.0016528 * t2 - 0.00000239 * t3;
    let mut c1 = (0.1734 - 0.000393 * t) * (m * dr).sin() + 0.0021 * (2.0 * dr * m).sin();
    c1 = c1 - 0.4068 * (mpr * dr).sin() + 0.0161 * (dr * 2.0 * mpr).sin();
    c1 -= 0.0004 * (dr * 3.0 * mpr).sin();
    c1 = c1 + 0.0104 * (dr * 2.0 * f).sin() - 0.0051 * (dr * (m + mpr)).sin();
    c1 = c1 - 0.0074 * (dr * (m - mpr)).sin() + 0.0004 * (dr * (2.0 * f + m)).sin();
    c1 = c1 - 0.0004 * (dr * (2.0 * f - m)).sin() - 0.0006 * (dr * (2.0 * f + mpr)).sin();
    c1 = c1 + 0.0010 * (dr * (2.0 * f - mpr)).sin() + 0.0005 * (dr * (2.0 * mpr + m)).sin();
    let deltat = if t < -11.0 {
        0.001 + 0.000839 * t + 0.0002261 * t2 - 0.00000845 * t3 - 0.000000081 * t * t3
    } else {
        -0.000278 + 0.000265 * t + 0.000262 * t2
    };
    let jd_new = jd1 + c1 - deltat;
    int(jd_new + 0.5 + TIME_ZONE / 24.0)
}

/// `getSunLongitude`: the sector (0 to 11, 30° each) of the sun's longitude at
/// local midnight starting day `jdn`.
fn sun_longitude(jdn: i64) -> i64 {
    let pi = std::f64::consts::PI;
    let t = (jdn as f64 - 2451545.5 - TIME_ZONE / 24.0) / 36525.0;
    let t2 = t * t;
    let dr = pi / 180.0;
    let m = 357.52910 + 35999.05030 * t - 0.0001559 * t2 - 0.00000048 * t * t2;
    let l0 = 280.46645 + 36000.76983 * t + 0.0003032 * t2;
    let mut dl = (1.914600 - 0.004817 * t - 0.000014 * t2) * (dr * m).sin();
    dl = dl + (0.019993 - 0.000101 * t) * (dr * 2.0 * m).sin() + 0.000290 * (dr * 3.0 * m).sin();
    let mut l = l0 + dl;
    l *= dr;
    l -= pi * 2.0 * (int(l / (pi * 2.0)) as f64);
    int(l / pi * 6.0)
}

/// `getLunarMonth11`: the Julian day on which lunar month 11 (the month of the
/// winter solstice) begins, in solar year `yy`.
fn lunar_month_11(yy: i64) -> i64 {
    let off = jd_from_date(31, 12, yy) - 2415021;
    let k = int(off as f64 / 29.530588853);
    let (nm, sector) = moon(k);
    if sector >= 9 { new_moon_day(k - 1) } else { nm }
}

/// The index k of the new moon that starts on day `a11` (as the article
/// computes it in `getLeapMonthOffset` and `convertLunar2Solar`).
fn new_moon_index(a11: i64) -> i64 {
    int((a11 as f64 - 2415021.076998695) / 29.530588853 + 0.5)
}

/// `getLeapMonthOffset`: in the 13-month span starting with month 11 on day
/// `a11`, the offset (1 to 12) of the leap month: the first month without a
/// major solar term.
fn leap_month_offset(a11: i64) -> i64 {
    let k = new_moon_index(a11);
    let mut i = 1;
    let mut arc = moon(k + i).1;
    loop {
        let last = arc;
        i += 1;
        arc = moon(k + i).1;
        if arc == last || i >= 14 {
            break;
        }
    }
    i - 1
}

/// A lunar date as plain integers.
struct Lunar {
    day: i64,
    month: i64,
    year: i64,
    leap: bool,
}

/// `convertSolar2Lunar` for the day `day_number` of solar year `yy`, with the
/// month search guarded against "day 0" (see the module docs).
fn convert_solar2lunar(day_number: i64, yy: i64) -> Lunar {
    let mut k = int((day_number as f64 - 2415021.076998695) / 29.530588853);
    let mut month_start = new_moon_day(k + 1);
    while month_start > day_number {
        k -= 1;
        month_start = new_moon_day(k + 1);
    }
    while new_moon_day(k + 2) <= day_number {
        k += 1;
        month_start = new_moon_day(k + 1);
    }
    let mut a11 = lunar_month_11(yy);
    let mut b11 = a11;
    let mut lunar_year;
    if a11 >= month_start {
        lunar_year = yy;
        a11 = lunar_month_11(yy - 1);
    } else {
        lunar_year = yy + 1;
        b11 = lunar_month_11(yy + 1);
    }
    let lunar_day = day_number - month_start + 1;
    let diff = (month_start - a11).div_euclid(29);
    let mut leap = false;
    let mut lunar_month = diff + 11;
    if b11 - a11 > 365 {
        let leap_month_diff = leap_month_offset(a11);
        if diff >= leap_month_diff {
            lunar_month = diff + 10;
            if diff == leap_month_diff {
                leap = true;
            }
        }
    }
    if lunar_month > 12 {
        lunar_month -= 12;
    }
    if lunar_month >= 11 && diff < 4 {
        lunar_year -= 1;
    }
    Lunar {
        day: lunar_day,
        month: lunar_month,
        year: lunar_year,
        leap,
    }
}

/// The new-moon index k of lunar month `month` (leap or not) of lunar year
/// `year`: the month-finding part of `convertLunar2Solar`, made exact (a leap
/// flag on a month that is not the leap month is an error).
fn month_index(year: i32, month: u8, leap: bool) -> Result<i64, LunarError> {
    if !(FIRST_YEAR - 1..=LAST_YEAR).contains(&year) {
        return Err(LunarError::OutOfRange { year });
    }
    let no_such_month = LunarError::NoSuchMonth { year, month, leap };
    if !(1..=12).contains(&month) {
        return Err(no_such_month);
    }
    let (y, m) = (i64::from(year), i64::from(month));
    let (a11, b11) = if m < 11 {
        (lunar_month_11(y - 1), lunar_month_11(y))
    } else {
        (lunar_month_11(y), lunar_month_11(y + 1))
    };
    let mut off = m - 11;
    if off < 0 {
        off += 12;
    }
    if b11 - a11 > 365 {
        let leap_off = leap_month_offset(a11);
        let mut leap_month = leap_off - 2;
        if leap_month < 0 {
            leap_month += 12;
        }
        if leap && m != leap_month {
            return Err(no_such_month);
        }
        if leap || off >= leap_off {
            off += 1;
        }
    } else if leap {
        return Err(no_such_month);
    }
    Ok(new_moon_index(a11) + off)
}

// ---------------------------------------------------------------------------
// Conversions between chrono dates and Julian day numbers.
// ---------------------------------------------------------------------------

fn jd_of(date: NaiveDate) -> i64 {
    jd_from_date(
        i64::from(date.day()),
        i64::from(date.month()),
        i64::from(date.year()),
    )
}

/// The solar year of Julian day `jd` (for error messages).
fn year_of_jd(jd: i64) -> i32 {
    let year = jd_to_date(jd).2;
    i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX })
}

/// The date of Julian day `jd`, which must be in the supported range.
fn date_of_jd(jd: i64) -> Result<NaiveDate, LunarError> {
    let out_of_range = LunarError::OutOfRange {
        year: year_of_jd(jd),
    };
    if !(FIRST_JD..=LAST_JD).contains(&jd) {
        return Err(out_of_range);
    }
    let (d, m, y) = jd_to_date(jd);
    match (i32::try_from(y), u32::try_from(m), u32::try_from(d)) {
        (Ok(y), Ok(m), Ok(d)) => NaiveDate::from_ymd_opt(y, m, d).ok_or(out_of_range),
        _ => Err(out_of_range),
    }
}

fn check_solar(date: NaiveDate) -> Result<(), LunarError> {
    let year = date.year();
    if (FIRST_YEAR..=LAST_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(LunarError::OutOfRange { year })
    }
}

/// Converts small integers known to be in range (days 1 to 30, months 1 to
/// 12, month lengths 29 and 30) to `u8`. They are computed from new moons of
/// the supported range, never taken from input: another value is a bug in
/// this module, and a day 0 in its place would be a wrong date, not an error.
fn small(x: i64) -> u8 {
    u8::try_from(x).expect("lunar days, months and month lengths are below 31")
}

/// Converts a lunar year known to be near the supported range to `i32`.
fn year_i32(y: i64) -> i32 {
    // Callers pass years of the checked range 1899..=2200, computed, not read.
    i32::try_from(y).expect("lunar years near 1900..=2199 fit an i32")
}

// ---------------------------------------------------------------------------
// Public API.
// ---------------------------------------------------------------------------

/// The lunar date of a solar day.
///
/// # Errors
///
/// [`LunarError::OutOfRange`] if `date` is outside 1900-01-01 to 2199-12-31.
pub fn solar_to_lunar(date: NaiveDate) -> Result<LunarDate, LunarError> {
    check_solar(date)?;
    let l = convert_solar2lunar(jd_of(date), i64::from(date.year()));
    Ok(LunarDate {
        year: year_i32(l.year),
        month: small(l.month),
        day: small(l.day),
        leap: l.leap,
    })
}

/// The solar day of a lunar date. Exact: a leap flag on a month that is not
/// the leap month, or day 30 of a 29-day month, is an error.
///
/// # Errors
///
/// [`LunarError::NoSuchMonth`], [`LunarError::NoSuchDay`], or
/// [`LunarError::OutOfRange`] if the day does not fall between 1900-01-01 and
/// 2199-12-31.
pub fn lunar_to_solar(date: LunarDate) -> Result<NaiveDate, LunarError> {
    let LunarDate {
        year,
        month,
        day,
        leap,
    } = date;
    let k = month_index(year, month, leap)?;
    let start = new_moon_day(k);
    if !(FIRST_JD..=LAST_JD).contains(&start) {
        return Err(LunarError::OutOfRange {
            year: year_of_jd(start),
        });
    }
    let len = small(new_moon_day(k + 1) - start);
    if !(1..=len).contains(&day) {
        return Err(LunarError::NoSuchDay {
            year,
            month,
            leap,
            day,
            len,
        });
    }
    date_of_jd(start + i64::from(day) - 1)
}

/// The leap month of lunar year `year`, if it has one.
///
/// # Errors
///
/// [`LunarError::OutOfRange`] unless `year` is 1899 (whose last month starts
/// on 1900-01-01) to 2199.
pub fn leap_month(year: i32) -> Result<Option<u8>, LunarError> {
    if !(FIRST_YEAR - 1..=LAST_YEAR).contains(&year) {
        return Err(LunarError::OutOfRange { year });
    }
    let y = i64::from(year);
    // Months 1 to 10 of `year` lie in the span from month 11 of solar year
    // y - 1; months 11 and 12 in the span from month 11 of solar year y.
    let before = Span::new(y - 1);
    if before.leap_off >= 3 {
        return Ok(Some(small(before.leap_off - 2)));
    }
    let after = Span::new(y);
    if (1..=2).contains(&after.leap_off) {
        return Ok(Some(small(after.leap_off + 10)));
    }
    Ok(None)
}

/// The solar day on which a lunar month begins.
///
/// # Errors
///
/// [`LunarError::NoSuchMonth`], or [`LunarError::OutOfRange`] if the month
/// does not begin between 1900-01-01 and 2199-12-31.
pub fn month_start(year: i32, month: u8, leap: bool) -> Result<NaiveDate, LunarError> {
    date_of_jd(new_moon_day(month_index(year, month, leap)?))
}

/// The length of a lunar month: 29 or 30 days.
///
/// # Errors
///
/// As [`month_start`].
pub fn month_len(year: i32, month: u8, leap: bool) -> Result<u8, LunarError> {
    let k = month_index(year, month, leap)?;
    let start = new_moon_day(k);
    date_of_jd(start)?;
    Ok(small(new_moon_day(k + 1) - start))
}

/// Every day from `from` to `to` (both included) with its lunar date, in
/// order; empty if `from` is after `to`.
///
/// Fast: each lunar month is computed once and its days are then counted.
///
/// # Errors
///
/// [`LunarError::OutOfRange`] if either end is outside 1900-01-01 to
/// 2199-12-31.
pub fn range(
    from: NaiveDate,
    to: NaiveDate,
) -> Result<impl Iterator<Item = (NaiveDate, LunarDate)>, LunarError> {
    check_solar(from)?;
    check_solar(to)?;
    Ok(Days::new(from, to))
}

const STEMS: [&str; 10] = [
    "Giáp", "Ất", "Bính", "Đinh", "Mậu", "Kỷ", "Canh", "Tân", "Nhâm", "Quý",
];
const BRANCHES: [&str; 12] = [
    "Tý", "Sửu", "Dần", "Mão", "Thìn", "Tỵ", "Ngọ", "Mùi", "Thân", "Dậu", "Tuất", "Hợi",
];
const MONTHS: [&str; 12] = [
    "Giêng",
    "Hai",
    "Ba",
    "Tư",
    "Năm",
    "Sáu",
    "Bảy",
    "Tám",
    "Chín",
    "Mười",
    "Mười Một",
    "Chạp",
];

/// The year's name in the sexagenary cycle (can chi): 2024 is Giáp Thìn.
pub fn year_name(year: i32) -> String {
    // In i64: `year + 8` overflows an i32 near its end.
    let year = i64::from(year);
    let stem = STEMS[usize::try_from((year + 6).rem_euclid(10)).expect("rem_euclid(10) is 0..10")];
    let branch =
        BRANCHES[usize::try_from((year + 8).rem_euclid(12)).expect("rem_euclid(12) is 0..12")];
    format!("{stem} {branch}")
}

/// The Vietnamese name of a lunar month: Giêng, Hai, … Mười Một, Chạp.
pub fn month_name(month: u8) -> &'static str {
    MONTHS[usize::from(month.clamp(1, 12) - 1)]
}

// ---------------------------------------------------------------------------
// The fast walk behind `range`.
// ---------------------------------------------------------------------------

/// The lunar months from month 11 of solar year `y` (inclusive) to month 11
/// of solar year `y + 1` (exclusive): 12 months, or 13 with a leap month.
struct Span {
    /// The solar year of its first month 11.
    y: i64,
    /// The new-moon index of its first month.
    k11: i64,
    /// 12 or 13.
    len: i64,
    /// The offset of the leap month from month 11 (1 to 12), or 0.
    leap_off: i64,
}

impl Span {
    fn new(y: i64) -> Span {
        let a11 = lunar_month_11(y);
        let b11 = lunar_month_11(y + 1);
        let (len, leap_off) = if b11 - a11 > 365 {
            (13, leap_month_offset(a11))
        } else {
            (12, 0)
        };
        Span {
            y,
            k11: new_moon_index(a11),
            len,
            leap_off,
        }
    }

    /// The label of the month at offset `diff`, with the arithmetic of
    /// `convertSolar2Lunar`.
    fn label(&self, diff: i64) -> (i32, u8, bool) {
        let mut month = diff + 11;
        let mut leap = false;
        if self.len == 13 && diff >= self.leap_off {
            month = diff + 10;
            leap = diff == self.leap_off;
        }
        if month > 12 {
            month -= 12;
        }
        let mut year = self.y + 1;
        if month >= 11 && diff < 4 {
            year -= 1;
        }
        (year_i32(year), small(month), leap)
    }
}

/// The iterator returned by [`range`].
struct Days {
    /// The next day to yield, and its Julian day number.
    date: NaiveDate,
    jd: i64,
    /// The Julian day number of the last day to yield.
    end: i64,
    /// The current span, the new-moon index of the current month, its first
    /// day and the first day of the next month.
    span: Span,
    k: i64,
    start: i64,
    next_start: i64,
    /// The label of the current month.
    year: i32,
    month: u8,
    leap: bool,
}

impl Days {
    fn new(from: NaiveDate, to: NaiveDate) -> Days {
        let jd = jd_of(from);
        // The month holding `from`, searched as in `convert_solar2lunar`.
        let mut k = new_moon_index(jd);
        while new_moon_day(k) > jd {
            k -= 1;
        }
        while new_moon_day(k + 1) <= jd {
            k += 1;
        }
        let mut span = Span::new(i64::from(from.year()));
        while k < span.k11 {
            span = Span::new(span.y - 1);
        }
        while k >= span.k11 + span.len {
            span = Span::new(span.y + 1);
        }
        let (year, month, leap) = span.label(k - span.k11);
        Days {
            date: from,
            jd,
            end: jd_of(to),
            start: new_moon_day(k),
            next_start: new_moon_day(k + 1),
            span,
            k,
            year,
            month,
            leap,
        }
    }

    /// Moves to the next lunar month.
    fn next_month(&mut self) {
        self.k += 1;
        if self.k >= self.span.k11 + self.span.len {
            self.span = Span::new(self.span.y + 1);
        }
        self.start = self.next_start;
        self.next_start = new_moon_day(self.k + 1);
        (self.year, self.month, self.leap) = self.span.label(self.k - self.span.k11);
    }
}

impl Iterator for Days {
    type Item = (NaiveDate, LunarDate);

    fn next(&mut self) -> Option<Self::Item> {
        if self.jd > self.end {
            return None;
        }
        while self.jd >= self.next_start {
            self.next_month();
        }
        let item = (
            self.date,
            LunarDate {
                year: self.year,
                month: self.month,
                day: small(self.jd - self.start + 1),
                leap: self.leap,
            },
        );
        self.jd += 1;
        match self.date.succ_opt() {
            Some(next) => self.date = next,
            None => self.end = i64::MIN,
        }
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Negative once the iteration is over (past the end, or `end` set to `i64::MIN` when
        // the calendar's last date was reached): nothing is left.
        let n = usize::try_from(self.end - self.jd + 1).unwrap_or(0);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Days {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memo gives what the article's functions compute, for every moon of its range and
    /// beyond it, before and after the entry is filled.
    #[test]
    fn remembered_new_moons_are_the_computed_ones() {
        let last = K_FIRST + i64::try_from(MOON_COUNT).unwrap_or(0);
        for k in K_FIRST - 5..last + 5 {
            let day = compute_new_moon_day(k);
            let want = (day, sun_longitude(day));
            assert_eq!(moon(k), want, "k = {k}");
            assert_eq!(moon(k), want, "k = {k}, remembered");
        }
        // The range covers every moon the supported years ask for.
        let needed = [
            lunar_month_11(i64::from(FIRST_YEAR) - 2),
            lunar_month_11(i64::from(LAST_YEAR) + 1),
        ];
        for a11 in needed {
            let k = new_moon_index(a11);
            assert!(k > K_FIRST && k + 14 < last, "k = {k}");
        }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    fn l(year: i32, month: u8, day: u8, leap: bool) -> LunarDate {
        LunarDate {
            year,
            month,
            day,
            leap,
        }
    }

    /// A solar date as (year, month, day).
    type Ymd = (i32, u32, u32);
    /// A lunar date as (year, month, day, leap).
    type Lymd = (i32, u8, u8, bool);

    /// Days whose lunar date is known, for both directions.
    const KNOWN: &[(Ymd, Lymd)] = &[
        // Tết: Vietnam (UTC+7) differs from China (UTC+8) in 1985 and 2007.
        ((1985, 1, 21), (1985, 1, 1, false)),
        ((1985, 1, 20), (1984, 12, 30, false)),
        ((2007, 2, 17), (2007, 1, 1, false)),
        ((2007, 2, 16), (2006, 12, 29, false)),
        ((1968, 1, 29), (1968, 1, 1, false)),
        ((2024, 2, 10), (2024, 1, 1, false)),
        ((2025, 1, 29), (2025, 1, 1, false)),
        ((2024, 9, 17), (2024, 8, 15, false)),
        // 2023: leap month 2 from 2023-03-22.
        ((2023, 3, 21), (2023, 2, 30, false)),
        ((2023, 3, 22), (2023, 2, 1, true)),
        ((2023, 4, 19), (2023, 2, 29, true)),
        ((2023, 4, 20), (2023, 3, 1, false)),
        // The naive month search answers "day 0" on these two days.
        ((2054, 5, 7), (2054, 3, 30, false)),
        ((2054, 5, 8), (2054, 4, 1, false)),
        ((2062, 4, 9), (2062, 2, 30, false)),
        ((2062, 4, 10), (2062, 3, 1, false)),
        // New moons within a couple of minutes of local midnight.
        ((2077, 11, 16), (2077, 10, 1, false)),
        ((2077, 11, 15), (2077, 9, 30, false)),
        ((2072, 12, 10), (2072, 11, 1, false)),
        ((2085, 10, 18), (2085, 9, 1, false)),
        ((2031, 4, 21), (2031, 3, 1, true)),
        ((2124, 1, 4), (2123, 11, 18, false)),
        ((2125, 1, 4), (2124, 12, 1, false)),
        ((2159, 5, 18), (2159, 4, 1, false)),
        // Leap month 11 of 2033.
        ((2033, 12, 22), (2033, 11, 1, true)),
        // The ends of the range.
        ((1900, 1, 1), (1899, 12, 1, false)),
        ((1900, 1, 31), (1900, 1, 1, false)),
        ((2199, 12, 31), (2199, 11, 14, false)),
    ];

    #[test]
    fn known_days() {
        for &((y, m, day), (ly, lm, ld, leap)) in KNOWN {
            let solar = d(y, m, day);
            let lunar = l(ly, lm, ld, leap);
            assert_eq!(solar_to_lunar(solar), Ok(lunar), "{solar}");
            assert_eq!(lunar_to_solar(lunar), Ok(solar), "{lunar}");
        }
    }

    #[test]
    fn display() {
        assert_eq!(l(2024, 8, 15, false).to_string(), "15/8/2024");
        assert_eq!(l(2023, 2, 1, true).to_string(), "1/2n/2023");
    }

    #[test]
    fn ordering_is_chronological() {
        let days = [
            l(2022, 12, 29, false),
            l(2023, 2, 1, false),
            l(2023, 2, 30, false),
            l(2023, 2, 1, true),
            l(2023, 2, 29, true),
            l(2023, 3, 1, false),
        ];
        assert!(days.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn leap_months() {
        let table: &[(i32, Option<u8>)] = &[
            (1984, None),
            (1985, Some(2)),
            (2020, Some(4)),
            (2021, None),
            (2023, Some(2)),
            (2024, None),
            (2025, Some(6)),
            (2028, Some(5)),
            (2031, Some(3)),
            (2033, Some(11)),
            (2034, None),
        ];
        for &(year, leap) in table {
            assert_eq!(leap_month(year), Ok(leap), "{year}");
        }
    }

    #[test]
    fn month_starts_and_lengths() {
        // (lunar year, month, leap, first solar day, length)
        let table: &[(i32, u8, bool, Ymd, u8)] = &[
            (2023, 1, false, (2023, 1, 22), 29),
            (2023, 2, false, (2023, 2, 20), 30),
            (2023, 2, true, (2023, 3, 22), 29),
            (2023, 3, false, (2023, 4, 20), 29),
            (2054, 3, false, (2054, 4, 8), 30),
            (2062, 2, false, (2062, 3, 11), 30),
            (2024, 12, false, (2024, 12, 31), 29),
            (1899, 12, false, (1900, 1, 1), 30),
            (2199, 11, false, (2199, 12, 18), 29),
        ];
        for &(year, month, leap, (y, m, day), len) in table {
            assert_eq!(month_start(year, month, leap), Ok(d(y, m, day)));
            assert_eq!(month_len(year, month, leap), Ok(len), "{month}/{year}");
        }
    }

    #[test]
    fn month_lengths_match_month_starts() {
        for year in FIRST_YEAR..=LAST_YEAR - 1 {
            let leap = leap_month(year).expect("in range");
            for month in 1..=12u8 {
                for is_leap in [false, true] {
                    let start = month_start(year, month, is_leap);
                    if is_leap && leap != Some(month) {
                        assert!(
                            matches!(start, Err(LunarError::NoSuchMonth { .. })),
                            "{month}n/{year}"
                        );
                        continue;
                    }
                    let start = start.expect("in range");
                    let len = month_len(year, month, is_leap).expect("in range");
                    assert!(len == 29 || len == 30);
                    let last = l(year, month, len, is_leap);
                    let end = lunar_to_solar(last).expect("in range");
                    assert_eq!((end - start).num_days() + 1, i64::from(len));
                    let next = end.succ_opt().expect("in range");
                    assert_eq!(solar_to_lunar(next).map(|x| x.day), Ok(1));
                }
            }
        }
    }

    #[test]
    fn exactness_errors() {
        assert_eq!(
            lunar_to_solar(l(2024, 3, 1, true)),
            Err(LunarError::NoSuchMonth {
                year: 2024,
                month: 3,
                leap: true
            })
        );
        // 2023 has a leap month, but it is month 2.
        assert!(matches!(
            lunar_to_solar(l(2023, 3, 1, true)),
            Err(LunarError::NoSuchMonth { .. })
        ));
        // Month 2n/2023 has 29 days.
        assert_eq!(
            lunar_to_solar(l(2023, 2, 30, true)),
            Err(LunarError::NoSuchDay {
                year: 2023,
                month: 2,
                leap: true,
                day: 30,
                len: 29
            })
        );
        assert!(matches!(
            lunar_to_solar(l(2023, 1, 0, false)),
            Err(LunarError::NoSuchDay { .. })
        ));
        for month in [0, 13, 255] {
            assert!(matches!(
                lunar_to_solar(l(2024, month, 1, false)),
                Err(LunarError::NoSuchMonth { .. })
            ));
            assert!(month_start(2024, month, false).is_err());
            assert!(month_len(2024, month, true).is_err());
        }
        assert!(lunar_to_solar(l(2024, 1, 31, false)).is_err());
        assert!(lunar_to_solar(l(2024, 1, 255, false)).is_err());
    }

    #[test]
    fn out_of_range() {
        fn err<T>(year: i32) -> Result<T, LunarError> {
            Err(LunarError::OutOfRange { year })
        }
        assert_eq!(solar_to_lunar(d(1899, 12, 31)), err(1899));
        assert_eq!(solar_to_lunar(d(2200, 1, 1)), err(2200));
        assert_eq!(solar_to_lunar(NaiveDate::MIN), err(NaiveDate::MIN.year()));
        assert_eq!(solar_to_lunar(NaiveDate::MAX), err(NaiveDate::MAX.year()));
        assert!(solar_to_lunar(d(1900, 1, 1)).is_ok());
        assert!(solar_to_lunar(d(2199, 12, 31)).is_ok());

        assert_eq!(lunar_to_solar(l(2300, 1, 1, false)), err(2300));
        assert_eq!(lunar_to_solar(l(i32::MIN, 1, 1, false)), err(i32::MIN));
        assert_eq!(lunar_to_solar(l(i32::MAX, 1, 1, false)), err(i32::MAX));
        assert_eq!(lunar_to_solar(l(1898, 12, 1, false)), err(1898));
        // Month 11 of 1899 begins in 1899; month 12 of 2199 in 2200.
        assert_eq!(lunar_to_solar(l(1899, 11, 1, false)), err(1899));
        assert_eq!(lunar_to_solar(l(2199, 12, 1, false)), err(2200));
        // Month 11 of 2199 begins in range but runs into 2200.
        assert_eq!(lunar_to_solar(l(2199, 11, 14, false)), Ok(d(2199, 12, 31)));
        assert_eq!(lunar_to_solar(l(2199, 11, 15, false)), err(2200));
        assert_eq!(month_start(2199, 12, false), err(2200));
        assert_eq!(month_len(1899, 11, false), err(1899));

        assert_eq!(leap_month(1898), err(1898));
        assert_eq!(leap_month(2200), err(2200));
        assert!(leap_month(1899).is_ok());
        assert!(leap_month(2199).is_ok());

        assert!(range(d(1899, 12, 31), d(1900, 1, 5)).is_err());
        assert!(range(d(2199, 12, 1), d(2200, 1, 1)).is_err());
    }

    #[test]
    fn error_messages() {
        let msg = |e: LunarError| e.to_string();
        assert_eq!(
            msg(LunarError::OutOfRange { year: 2300 }),
            "year 2300 is outside 1900–2199"
        );
        assert_eq!(
            msg(LunarError::NoSuchMonth {
                year: 2024,
                month: 3,
                leap: true
            }),
            "lunar year 2024 has no leap month 3"
        );
        assert_eq!(
            msg(LunarError::NoSuchMonth {
                year: 2024,
                month: 13,
                leap: false
            }),
            "lunar year 2024 has no month 13"
        );
        assert_eq!(
            msg(LunarError::NoSuchDay {
                year: 2023,
                month: 2,
                leap: true,
                day: 30,
                len: 29
            }),
            "lunar month 2n/2023 has 29 days, not day 30"
        );
    }

    #[test]
    fn julian_day_numbers() {
        // 1900-01-01 is JDN 2415021; chrono counts 0001-01-01 as day 1.
        for date in [
            d(1900, 1, 1),
            d(1968, 2, 29),
            d(2000, 3, 1),
            d(2199, 12, 31),
        ] {
            let jd = jd_of(date);
            assert_eq!(jd, i64::from(date.num_days_from_ce()) + 1_721_425);
            assert_eq!(date_of_jd(jd), Ok(date));
        }
        assert_eq!(jd_of(d(1900, 1, 1)), FIRST_JD);
        assert_eq!(jd_of(d(2199, 12, 31)), LAST_JD);
    }

    /// Every day of the whole range: `range` agrees with `solar_to_lunar`,
    /// and every lunar date converts back.
    #[test]
    fn range_matches_solar_to_lunar_and_round_trips() {
        let (first, last) = (d(FIRST_YEAR, 1, 1), d(LAST_YEAR, 12, 31));
        let mut expected = first;
        let mut previous: Option<LunarDate> = None;
        for (solar, lunar) in range(first, last).expect("in range") {
            assert_eq!(solar, expected);
            assert_eq!(solar_to_lunar(solar), Ok(lunar), "{solar}");
            assert_eq!(lunar_to_solar(lunar), Ok(solar), "{lunar}");
            if let Some(p) = previous {
                assert!(p < lunar, "{p} then {lunar}");
            }
            previous = Some(lunar);
            expected = solar.succ_opt().expect("in range");
        }
        assert_eq!(expected, d(LAST_YEAR + 1, 1, 1));
    }

    #[test]
    fn range_ends() {
        let days: Vec<_> = range(d(2023, 3, 20), d(2023, 3, 23))
            .expect("in range")
            .map(|(_, lunar)| lunar.to_string())
            .collect();
        assert_eq!(days, ["29/2/2023", "30/2/2023", "1/2n/2023", "2/2n/2023"]);
        assert_eq!(
            range(d(2023, 3, 20), d(2023, 3, 20)).map(Iterator::count),
            Ok(1)
        );
        assert_eq!(
            range(d(2023, 3, 21), d(2023, 3, 20)).map(Iterator::count),
            Ok(0)
        );
        // Starting on a month 11 and just before one.
        let first = range(d(2033, 12, 22), d(2033, 12, 22))
            .expect("in range")
            .next();
        assert_eq!(first, Some((d(2033, 12, 22), l(2033, 11, 1, true))));
        let count = range(d(2199, 12, 31), d(2199, 12, 31)).map(Iterator::count);
        assert_eq!(count, Ok(1));
    }

    #[test]
    fn weekdays() {
        let table = [
            ((2024, 9, 2), "Thứ Hai"),
            ((2024, 9, 3), "Thứ Ba"),
            ((2024, 9, 4), "Thứ Tư"),
            ((2024, 9, 5), "Thứ Năm"),
            ((2024, 9, 6), "Thứ Sáu"),
            ((2024, 9, 7), "Thứ Bảy"),
            ((2024, 9, 8), "Chủ nhật"),
        ];
        for ((y, m, day), name) in table {
            assert_eq!(crate::vietnam::weekday(d(y, m, day)), name);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

            /// No lunar date panics, and every accepted one converts back.
            #[test]
            fn any_lunar_date(year in prop_oneof![any::<i32>(), 1890..2210i32], month: u8, day: u8, leap: bool) {
                let date = LunarDate { year, month, day, leap };
                if let Ok(solar) = lunar_to_solar(date) {
                    prop_assert_eq!(solar_to_lunar(solar), Ok(date));
                }
                let start = month_start(year, month, leap);
                let len = month_len(year, month, leap);
                prop_assert_eq!(start.is_ok(), len.is_ok());
                if let Ok(len) = len {
                    prop_assert!(len == 29 || len == 30);
                }
                let _ = leap_month(year);
            }

            /// No solar date panics, and every accepted one converts back.
            #[test]
            fn any_solar_date(days in prop_oneof![any::<i32>(), 693_000..804_000i32], span in 0u64..100) {
                if let Some(date) = NaiveDate::from_num_days_from_ce_opt(days) {
                    let _ = crate::vietnam::weekday(date);
                    if let Ok(lunar) = solar_to_lunar(date) {
                        prop_assert_eq!(lunar_to_solar(lunar), Ok(date));
                    }
                    let to = date.checked_add_days(chrono::Days::new(span)).unwrap_or(date);
                    if let Ok(days) = range(date, to) {
                        for (solar, lunar) in days {
                            prop_assert_eq!(solar_to_lunar(solar), Ok(lunar));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(year_name(2024), "Giáp Thìn");
        assert_eq!(year_name(1975), "Ất Mão");
        assert_eq!(year_name(2025), "Ất Tỵ");
        assert_eq!(year_name(1945), "Ất Dậu");
        assert_eq!(month_name(1), "Giêng");
        assert_eq!(month_name(12), "Chạp");
    }

    /// Found by the `lunar` fuzz target: `year + 6` overflowed for years near `i32::MAX`.
    #[test]
    fn year_name_of_extreme_years_does_not_overflow() {
        // The cycle is 60 years: i32::MAX ≡ 1987 and i32::MIN ≡ 2032 (mod 60).
        assert_eq!(year_name(i32::MAX), year_name(1987));
        assert_eq!(year_name(i32::MAX), "Đinh Mão");
        assert_eq!(year_name(i32::MIN), year_name(2032));
    }
}
