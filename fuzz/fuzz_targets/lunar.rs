//! Fuzz target `lunar`: arbitrary lunar dates, solar dates and years through every public
//! conversion of `ngayle::lunar`; none panics, and whatever succeeds round-trips.
#![no_main]

use chrono::{Datelike, Days, NaiveDate};
use libfuzzer_sys::fuzz_target;
use ngayle::lunar::{
    FIRST_YEAR, LAST_YEAR, LunarDate, LunarError, leap_month, lunar_to_solar, month_len,
    month_name, month_start, range, solar_to_lunar, year_name,
};

/// The input read as fixed-size fields; missing bytes are zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take())
    }
    /// A year: any `i32` when `wide`, else one of 1800 to 2299 (the supported range with a
    /// margin on each side, where most of the arithmetic is).
    fn year(&mut self, wide: bool) -> i32 {
        if wide {
            self.i32()
        } else {
            1800 + i32::from(self.u16() % 500)
        }
    }
    /// A solar date: any date chrono has when `wide`, else one in the years of [`Input::year`].
    fn date(&mut self, wide: bool) -> NaiveDate {
        if wide {
            NaiveDate::from_num_days_from_ce_opt(self.i32()).unwrap_or(NaiveDate::MIN)
        } else {
            let days = u64::from(self.u16()) * 3 % (500 * 366);
            NaiveDate::from_ymd_opt(1800, 1, 1)
                .and_then(|d| d.checked_add_days(Days::new(days)))
                .unwrap_or(NaiveDate::MIN)
        }
    }
}

fn supported(date: NaiveDate) -> bool {
    (FIRST_YEAR..=LAST_YEAR).contains(&date.year())
}

/// solar → lunar → solar is the identity, and the lunar date is a real one.
fn check_solar(date: NaiveDate) {
    let _ = ngayle::vietnam::weekday(date);
    let lunar = match solar_to_lunar(date) {
        Ok(l) => l,
        Err(LunarError::OutOfRange { .. }) => {
            assert!(!supported(date), "{date} refused inside the range");
            return;
        }
        Err(e) => panic!("{date}: {e}"),
    };
    assert!(supported(date), "{date} accepted outside the range");
    assert_eq!(lunar_to_solar(lunar), Ok(date), "{date} → {lunar}");
    let LunarDate {
        year,
        month,
        day,
        leap,
    } = lunar;
    assert!((1..=12).contains(&month), "{date} → {lunar}");
    let len = month_len(year, month, leap).unwrap_or_else(|e| panic!("{date} → {lunar}: {e}"));
    assert!(
        (29..=30).contains(&len) && (1..=len).contains(&day),
        "{lunar} in a {len}-day month"
    );
    let start = month_start(year, month, leap).unwrap_or_else(|e| panic!("{lunar}: {e}"));
    assert_eq!(
        start.checked_add_days(Days::new(u64::from(day - 1))),
        Some(date)
    );
    if leap {
        assert_eq!(leap_month(year), Ok(Some(month)), "{lunar}");
    }
    let _ = (year_name(year), month_name(month), lunar.to_string());
}

/// lunar → solar → lunar is the identity; the months agree with their starts and lengths.
fn check_lunar(lunar: LunarDate) {
    let LunarDate {
        year,
        month,
        day,
        leap,
    } = lunar;
    let _ = (year_name(year), month_name(month), lunar.to_string());
    let start = month_start(year, month, leap);
    let len = month_len(year, month, leap);
    if let Ok(len) = len {
        assert!((29..=30).contains(&len), "{month}/{year}: {len} days");
    }
    match leap_month(year) {
        Ok(Some(m)) => {
            assert!((1..=12).contains(&m), "{year}: leap month {m}");
            if leap && month != m {
                assert!(
                    start.is_err(),
                    "{month}n/{year} starts, the leap month is {m}"
                );
            }
        }
        Ok(None) => {
            if leap {
                assert!(
                    start.is_err(),
                    "{year} has no leap month, yet {month}n starts"
                );
            }
        }
        Err(_) => assert!(
            start.is_err() && len.is_err(),
            "{year} refused and accepted"
        ),
    }
    if let Ok(s) = start {
        assert_eq!(
            solar_to_lunar(s),
            Ok(LunarDate { day: 1, ..lunar }),
            "the start of {month}/{year}"
        );
        assert!(len.is_ok(), "{month}/{year} starts but has no length");
    }
    match lunar_to_solar(lunar) {
        Ok(date) => {
            assert!((1..=12).contains(&month) && day >= 1, "{lunar} accepted");
            assert_eq!(solar_to_lunar(date), Ok(lunar), "{lunar} → {date}");
            let first = start.unwrap_or_else(|e| panic!("{lunar} exists, its month not: {e}"));
            assert_eq!(
                first.checked_add_days(Days::new(u64::from(day - 1))),
                Some(date)
            );
        }
        Err(LunarError::NoSuchDay { len, .. }) => {
            assert!(
                day == 0 || day > len,
                "{lunar} refused in a {len}-day month"
            );
        }
        Err(_) => {}
    }
}

/// The fast walk agrees with day-by-day conversion.
fn check_range(from: NaiveDate, to: NaiveDate) {
    let Ok(days) = range(from, to) else {
        assert!(!supported(from) || !supported(to), "{from}..{to} refused");
        return;
    };
    assert!(supported(from) && supported(to), "{from}..{to} accepted");
    let mut expected = Some(from);
    // Checking every day of up to 300 years would make each run slow: the first 400 and the
    // count (which is cheap) are enough to catch a walk that loses its place.
    let mut count: i64 = 0;
    for (date, lunar) in days {
        if count < 400 {
            assert_eq!(Some(date), expected, "{from}..{to}");
            assert_eq!(solar_to_lunar(date), Ok(lunar), "{date} in {from}..{to}");
            expected = date.succ_opt();
        }
        count += 1;
    }
    let span = (to - from).num_days() + 1;
    assert_eq!(count, span.max(0), "{from}..{to}");
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.u8();
    let wide = flags & 1 != 0;
    let lunar = LunarDate {
        year: input.year(wide),
        month: input.u8() % if flags & 2 != 0 { 255 } else { 14 },
        day: input.u8() % if flags & 4 != 0 { 255 } else { 32 },
        leap: flags & 8 != 0,
    };
    check_lunar(lunar);
    check_solar(input.date(wide));
    let from = input.date(wide);
    // A short range most of the time (where the walk's month changes are), any otherwise.
    let to = if flags & 16 != 0 {
        input.date(wide)
    } else {
        from.checked_add_days(Days::new(u64::from(input.u8()) * 3))
            .unwrap_or(from)
    };
    check_range(from, to);
    let _ = leap_month(input.year(flags & 32 != 0));
});
