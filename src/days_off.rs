//! Official days off: the rules of the Labour Code 2019 (Bộ luật Lao động 2019) — the public
//! holidays of Điều 112 and the nghỉ bù of Điều 111 (a holiday on a weekly rest day gives the
//! next workday off) — and each year's decisions over them (`calendars/ngay-nghi.yaml`: the
//! Tết break the Prime Minister fixed, which side of 2/9 is off, swapped days and make-up
//! working Saturdays).
//!
//! A decision for a holiday in a year replaces what the rule would give for it that year
//! (its days and their nghỉ bù); a decision without a holiday adds days off or working days.
//! Where no decision fixes a choice the law leaves to each year (the Tết days, the day beside
//! 2/9), the rule's default is used and [`Year::undecided`] says so.
//!
//! Pure: the weekly rest days come from the caller (the unit's `reminders.workdays`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};

use crate::lunar::{self, LunarDate};

/// The public holidays of Điều 112, khoản 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Holiday {
    /// Tết Dương lịch, 1/1.
    NewYear,
    /// Tết Âm lịch: 5 days, placed by the Prime Minister each year.
    Tet,
    /// Giỗ Tổ Hùng Vương, 10/3 âm lịch.
    HungKings,
    /// Ngày Chiến thắng, 30/4.
    Victory,
    /// Ngày Quốc tế lao động, 1/5.
    Labour,
    /// Quốc khánh: 2/9 and one day before or after it, chosen each year.
    National,
}

/// Where the law says it: every holiday day.
pub const LAW_HOLIDAYS: &str = "Bộ luật Lao động 2019, Điều 112";
/// Where the law says it: nghỉ bù.
pub const LAW_MAKE_UP: &str = "Bộ luật Lao động 2019, Điều 111 khoản 3";

impl Holiday {
    pub const ALL: [Holiday; 6] = [
        Holiday::NewYear,
        Holiday::Tet,
        Holiday::HungKings,
        Holiday::Victory,
        Holiday::Labour,
        Holiday::National,
    ];

    /// How `ngay-nghi.yaml` names it.
    pub fn id(self) -> &'static str {
        match self {
            Holiday::NewYear => "tet-duong-lich",
            Holiday::Tet => "tet",
            Holiday::HungKings => "gio-to",
            Holiday::Victory => "30-4",
            Holiday::Labour => "1-5",
            Holiday::National => "quoc-khanh",
        }
    }

    pub fn from_id(id: &str) -> Option<Holiday> {
        Holiday::ALL.into_iter().find(|h| h.id() == id)
    }

    /// Its name for people, in `year` (Tết with the lunar year's name).
    pub fn name(self, year: i32) -> String {
        match self {
            Holiday::NewYear => "Tết Dương lịch".into(),
            Holiday::Tet => format!("Tết Nguyên đán {}", lunar::year_name(year)),
            Holiday::HungKings => "Giỗ Tổ Hùng Vương".into(),
            Holiday::Victory => "Ngày Chiến thắng 30/4".into(),
            Holiday::Labour => "Ngày Quốc tế Lao động 1/5".into(),
            Holiday::National => "Quốc khánh 2/9".into(),
        }
    }

    /// The holiday that falls on a solar (`lunar` false) or lunar `day`/`month` every year.
    pub fn on(lunar: bool, day: u8, month: u8) -> Option<Holiday> {
        match (lunar, day, month) {
            (false, 1, 1) => Some(Holiday::NewYear),
            (false, 30, 4) => Some(Holiday::Victory),
            (false, 1, 5) => Some(Holiday::Labour),
            (false, 2, 9) => Some(Holiday::National),
            (true, 1, 1) => Some(Holiday::Tet),
            (true, 10, 3) => Some(Holiday::HungKings),
            _ => None,
        }
    }

    /// True for the holidays whose days the law leaves to a yearly decision (khoản 3).
    pub fn decided_yearly(self) -> bool {
        matches!(self, Holiday::Tet | Holiday::National)
    }

    /// The rule's days of this holiday in solar `year`, before nghỉ bù; `rest` tells the
    /// weekly rest days. Tết: the last day of the old lunar year (29 or 30 tháng Chạp) and
    /// mùng 1 to mùng 4 (the 1 + 4 the Prime Minister has most often chosen). Quốc khánh: 2/9
    /// and the day beside it that joins a weekend (1/9 when 2/9 is a Tuesday, Wednesday,
    /// Friday or Saturday; 3/9 when it is a Monday, Thursday or Sunday).
    pub fn rule_days(self, year: i32, rest: &dyn Fn(NaiveDate) -> bool) -> Vec<NaiveDate> {
        let d = |m, day| NaiveDate::from_ymd_opt(year, m, day);
        let days = match self {
            Holiday::NewYear => vec![d(1, 1)],
            Holiday::Victory => vec![d(4, 30)],
            Holiday::Labour => vec![d(5, 1)],
            Holiday::HungKings => vec![lunar_day(year, 3, 10)],
            Holiday::Tet => match lunar_day(year, 1, 1) {
                Some(tet) => std::iter::once(tet.pred_opt())
                    .chain((0..4).map(|i| tet.checked_add_days(Days::new(i))))
                    .collect(),
                None => Vec::new(),
            },
            Holiday::National => {
                let Some(second) = d(9, 2) else {
                    return Vec::new();
                };
                let before = second.pred_opt();
                let after = second.succ_opt();
                let beside = match second.weekday() {
                    Weekday::Mon | Weekday::Thu | Weekday::Sun => after,
                    _ => before,
                };
                // A unit whose week is not Monday to Friday: the side that is not a rest day.
                let beside = match beside {
                    Some(b) if rest(b) => [before, after].into_iter().flatten().find(|x| !rest(*x)),
                    other => other,
                };
                let mut v = vec![beside, Some(second)];
                v.sort();
                v
            }
        };
        days.into_iter().flatten().collect()
    }
}

/// The solar day of lunar `month`/`day` of lunar year `year` (a 30th in a 29-day month: the
/// 29th).
fn lunar_day(year: i32, month: u8, day: u8) -> Option<NaiveDate> {
    let date = LunarDate {
        year,
        month,
        day,
        leap: false,
    };
    lunar::lunar_to_solar(date).ok()
}

/// One year's decision (a notice of the Prime Minister, the Government Office or the
/// ministry): the days it gives off, the days it makes working days, the days off of the rule
/// it takes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub year: i32,
    /// The holidays it decides (their rule days that year are replaced by `off`); empty for
    /// days off of their own.
    pub holidays: Vec<Holiday>,
    /// What people call the break (`Nghỉ Tết Nguyên đán Bính Ngọ`); default from the
    /// holidays.
    pub name: Option<String>,
    pub off: Vec<NaiveDate>,
    /// Make-up working days (a Saturday worked for a swapped day).
    pub work: Vec<NaiveDate>,
    /// Days off of the rule that are not off this year.
    pub cancel: Vec<NaiveDate>,
    /// The document (`Công văn 8662/VPCP-KGVX ngày 16/11/2023`).
    pub document: Option<String>,
    /// Where it is published.
    pub source: Option<String>,
}

impl Decision {
    /// The name of its days: its own, or the holidays'.
    pub fn title(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        if self.holidays.is_empty() {
            return "Ngày nghỉ".into();
        }
        format!("Nghỉ {}", join_names(&self.holidays, self.year))
    }
}

fn join_names(holidays: &[Holiday], year: i32) -> String {
    let names: Vec<String> = holidays.iter().map(|h| h.name(year)).collect();
    names.join(" và ")
}

/// Why a day is off, or a working day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// A holiday of the rule.
    Holiday(Holiday),
    /// The nghỉ bù of a holiday that fell on a weekly rest day.
    MakeUpFor(Holiday),
    /// A decision (its index in the schedule's decisions).
    Decided(usize),
}

/// A day of the days-off calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    /// A day off, or (false) a working day that would be a rest day.
    pub off: bool,
    pub why: Why,
}

/// The days off and make-up working days of one solar year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Year {
    pub year: i32,
    pub days: BTreeMap<NaiveDate, Day>,
    /// The holidays whose yearly choice no decision made, with the rule's days used.
    pub undecided: Vec<(Holiday, Vec<NaiveDate>)>,
}

/// The days off of `year`: the rule for every holiday no decision of that year names, with
/// nghỉ bù, then the decisions in order (their days off, their working days, their
/// cancellations). `rest` tells the unit's weekly rest days.
pub fn year(year: i32, decisions: &[Decision], rest: &dyn Fn(NaiveDate) -> bool) -> Year {
    let mine: Vec<(usize, &Decision)> = decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.year == year)
        .collect();
    let decided: BTreeSet<Holiday> = mine
        .iter()
        .flat_map(|(_, d)| d.holidays.iter().copied())
        .collect();
    let mut days: BTreeMap<NaiveDate, Day> = BTreeMap::new();
    let mut undecided = Vec::new();
    let mut on_rest = Vec::new();
    for h in Holiday::ALL {
        if decided.contains(&h) {
            continue;
        }
        let rule = h.rule_days(year, rest);
        if h.decided_yearly() {
            undecided.push((h, rule.clone()));
        }
        for d in rule {
            days.insert(
                d,
                Day {
                    off: true,
                    why: Why::Holiday(h),
                },
            );
            if rest(d) {
                on_rest.push((d, h));
            }
        }
    }
    // Nghỉ bù: each holiday on a weekly rest day gives the next workday that is not off.
    on_rest.sort();
    for (d, h) in on_rest {
        let mut next = d;
        for _ in 0..31 {
            let Some(n) = next.succ_opt() else { break };
            next = n;
            if !rest(next) && !days.get(&next).is_some_and(|x| x.off) {
                days.insert(
                    next,
                    Day {
                        off: true,
                        why: Why::MakeUpFor(h),
                    },
                );
                break;
            }
        }
    }
    for (i, d) in mine {
        for &date in &d.off {
            days.insert(
                date,
                Day {
                    off: true,
                    why: Why::Decided(i),
                },
            );
        }
        for &date in &d.work {
            days.insert(
                date,
                Day {
                    off: false,
                    why: Why::Decided(i),
                },
            );
        }
        for date in &d.cancel {
            days.remove(date);
        }
    }
    Year {
        year,
        days,
        undecided,
    }
}

/// The days off and the make-up working days from `from` to `to`, for planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    pub off: BTreeSet<NaiveDate>,
    pub work: BTreeSet<NaiveDate>,
}

impl Calendar {
    /// The official days off and working days of every year from `from` to `to` (each year
    /// whole, then cut to the range).
    pub fn between(
        decisions: &[Decision],
        rest: &dyn Fn(NaiveDate) -> bool,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Calendar {
        let mut c = Calendar::default();
        if from > to {
            return c;
        }
        for y in from.year()..=to.year() {
            for (date, day) in year(y, decisions, rest).days {
                if !(from..=to).contains(&date) {
                    continue;
                }
                if day.off {
                    c.off.insert(date);
                } else {
                    c.work.insert(date);
                }
            }
        }
        c
    }

    /// A day a unit works: a weekday of its week or a make-up working day, and not off.
    pub fn is_workday(&self, rest: &dyn Fn(NaiveDate) -> bool, day: NaiveDate) -> bool {
        (!rest(day) || self.work.contains(&day)) && !self.off.contains(&day)
    }
}

/// A stretch people are off: consecutive days off and the rest days around them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// Stable across edits of its dates: `nghi-2026-tet`, `nghi-2026-04-27`.
    pub id: String,
    pub name: String,
    pub first: NaiveDate,
    pub last: NaiveDate,
    /// Each day off in it and why (for the feed's description and `ngayle days-off`).
    pub days: Vec<(NaiveDate, String)>,
    /// Where its days off are decided: the law's articles or the decisions' documents, each
    /// once.
    pub basis: Vec<String>,
}

impl Break {
    /// Its days as people write them: `14/2–22/2/2026`, `30/12/2023–1/1/2024`, `18/4/2024`.
    pub fn span(&self) -> String {
        if self.first == self.last {
            return self.last.format("%-d/%-m/%Y").to_string();
        }
        let first = if self.first.year() == self.last.year() {
            self.first.format("%-d/%-m").to_string()
        } else {
            self.first.format("%-d/%-m/%Y").to_string()
        };
        format!("{first}–{}", self.last.format("%-d/%-m/%Y"))
    }
}

/// A make-up working day, as people read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkDay {
    pub id: String,
    pub name: String,
    pub date: NaiveDate,
    pub why: String,
}

/// Why `day` is what it is, for people: the holiday, the nghỉ bù, or the decision.
pub fn describe(day: &Day, year: i32, decisions: &[Decision]) -> String {
    match &day.why {
        Why::Holiday(h) => h.name(year),
        Why::MakeUpFor(h) => format!("Nghỉ bù {}", h.name(year)),
        Why::Decided(i) => decisions.get(*i).map_or_else(String::new, Decision::title),
    }
}

/// Where `day`'s status is written: the law's article or the decision's document.
pub fn basis(day: &Day, decisions: &[Decision]) -> String {
    match &day.why {
        Why::Holiday(_) => LAW_HOLIDAYS.into(),
        Why::MakeUpFor(_) => LAW_MAKE_UP.into(),
        Why::Decided(i) => decisions
            .get(*i)
            .map(|d| {
                [d.document.as_deref(), d.source.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" — ")
            })
            .unwrap_or_default(),
    }
}

/// The breaks of a year: each run of days off, joined by the rest days between and around
/// them, named after what they are for (a decision's name, else the holidays', nghỉ bù alone
/// as such); and its make-up working days.
pub fn breaks(
    y: &Year,
    decisions: &[Decision],
    rest: &dyn Fn(NaiveDate) -> bool,
) -> (Vec<Break>, Vec<WorkDay>) {
    let off: Vec<(&NaiveDate, &Day)> = y.days.iter().filter(|(_, d)| d.off).collect();
    let is_off = |d: NaiveDate| y.days.get(&d).is_some_and(|x| x.off);
    let is_work = |d: NaiveDate| y.days.get(&d).is_some_and(|x| !x.off);
    let free = |d: NaiveDate| is_off(d) || (rest(d) && !is_work(d));
    let mut out: Vec<Break> = Vec::new();
    for (&date, _) in off {
        if out.last().is_some_and(|b| date <= b.last) {
            continue;
        }
        let mut first = date;
        while let Some(p) = first.pred_opt().filter(|p| free(*p)) {
            first = p;
        }
        let mut last = date;
        while let Some(n) = last.succ_opt().filter(|n| free(*n)) {
            last = n;
        }
        let days: Vec<(NaiveDate, String)> = y
            .days
            .range(first..=last)
            .filter(|(_, d)| d.off)
            .map(|(date, d)| (*date, describe(d, y.year, decisions)))
            .collect();
        let whys: Vec<&Why> = y
            .days
            .range(first..=last)
            .filter(|(_, d)| d.off)
            .map(|(_, d)| &d.why)
            .collect();
        let mut bases: Vec<String> = Vec::new();
        for (_, d) in y.days.range(first..=last).filter(|(_, d)| d.off) {
            let b = basis(d, decisions);
            if !b.is_empty() && !bases.contains(&b) {
                bases.push(b);
            }
        }
        let (name, id) = break_name(&whys, y.year, decisions, days.first().map_or(date, |d| d.0));
        out.push(Break {
            id,
            name,
            first,
            last,
            days,
            basis: bases,
        });
    }
    let work = y
        .days
        .iter()
        .filter(|(_, d)| !d.off)
        .map(|(date, d)| WorkDay {
            id: format!("lam-bu-{}", date.format("%Y-%m-%d")),
            name: format!(
                "Làm bù {} {}",
                crate::vietnam::weekday(*date).to_lowercase(),
                date.format("%-d/%-m/%Y")
            ),
            date: *date,
            why: describe(d, y.year, decisions),
        })
        .collect();
    (out, work)
}

/// A break's name and stable id from why its days are off.
fn break_name(
    whys: &[&Why],
    year: i32,
    decisions: &[Decision],
    first_off: NaiveDate,
) -> (String, String) {
    if let Some(i) = whys.iter().find_map(|w| match w {
        Why::Decided(i) => Some(*i),
        _ => None,
    }) && let Some(d) = decisions.get(i)
    {
        let id = if d.holidays.is_empty() {
            format!("nghi-{}", first_off.format("%Y-%m-%d"))
        } else {
            let ids: Vec<&str> = d.holidays.iter().map(|h| h.id()).collect();
            format!("nghi-{year}-{}", ids.join("-"))
        };
        return (d.title(), id);
    }
    let mut holidays: Vec<Holiday> = Vec::new();
    let mut only_make_up = true;
    for w in whys {
        let h = match w {
            Why::Holiday(h) => {
                only_make_up = false;
                *h
            }
            Why::MakeUpFor(h) => *h,
            Why::Decided(_) => continue,
        };
        if !holidays.contains(&h) {
            holidays.push(h);
        }
    }
    let ids: Vec<&str> = holidays.iter().map(|h| h.id()).collect();
    let id = format!("nghi-{year}-{}", ids.join("-"));
    let names = join_names(&holidays, year);
    if only_make_up {
        (format!("Nghỉ bù {names}"), format!("{id}-bu"))
    } else {
        (format!("Nghỉ {names}"), id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    fn weekend(date: NaiveDate) -> bool {
        matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }

    fn off_days(y: &Year) -> Vec<NaiveDate> {
        y.days
            .iter()
            .filter(|(_, x)| x.off)
            .map(|(d, _)| *d)
            .collect()
    }

    #[test]
    fn the_rule_alone_gives_eleven_days_and_their_nghi_bu() {
        // 2028: 1/1 Saturday → Monday 3/1; 30/4 Sunday, 1/5 Monday → Tuesday 2/5;
        // 2/9 Saturday (1/9 Friday beside it) → Monday 4/9. Tết Mậu Thân 26/1/2028 (Wed):
        // 25/1..29/1, mùng 4 on Saturday 29/1 → Monday 31/1.
        let y = year(2028, &[], &weekend);
        let off = off_days(&y);
        for want in [
            d(2028, 1, 1),
            d(2028, 1, 3),
            d(2028, 1, 25),
            d(2028, 1, 29),
            d(2028, 1, 31),
            d(2028, 4, 30),
            d(2028, 5, 1),
            d(2028, 5, 2),
            d(2028, 9, 1),
            d(2028, 9, 2),
            d(2028, 9, 4),
        ] {
            assert!(off.contains(&want), "{want} in {off:?}");
        }
        assert_eq!(
            y.days.get(&d(2028, 5, 2)).map(|x| &x.why),
            Some(&Why::MakeUpFor(Holiday::Victory))
        );
        assert_eq!(y.undecided.len(), 2, "Tết and 2/9 are the rule's");
    }

    #[test]
    fn tet_starts_on_the_last_day_of_the_lunar_year_even_when_chap_has_29_days() {
        // Tết Bính Ngọ: 17/2/2026; tháng Chạp of Ất Tỵ has 29 days, so its last day is the
        // 29th, 16/2.
        let days = Holiday::Tet.rule_days(2026, &weekend);
        assert_eq!(days.first(), Some(&d(2026, 2, 16)));
        assert_eq!(days.len(), 5);
        assert_eq!(days.last(), Some(&d(2026, 2, 20)));
    }

    #[test]
    fn a_decision_replaces_the_rule_of_its_holiday_and_adds_its_working_days() {
        // 2024: 30/4–1/5 off from Saturday 27/4 to Wednesday 1/5, Monday 29/4 swapped with
        // Saturday 4/5 (VPCP 2450/VPCP-KGVX).
        let decisions = [Decision {
            year: 2024,
            holidays: vec![Holiday::Victory, Holiday::Labour],
            name: None,
            off: vec![d(2024, 4, 29), d(2024, 4, 30), d(2024, 5, 1)],
            work: vec![d(2024, 5, 4)],
            cancel: vec![],
            document: Some("Công văn 2450/VPCP-KGVX".into()),
            source: None,
        }];
        let y = year(2024, &decisions, &weekend);
        let cal = Calendar::between(&decisions, &weekend, d(2024, 4, 1), d(2024, 5, 31));
        assert!(!cal.is_workday(&weekend, d(2024, 4, 29)));
        assert!(
            cal.is_workday(&weekend, d(2024, 5, 4)),
            "the make-up Saturday"
        );
        assert!(cal.is_workday(&weekend, d(2024, 5, 2)));
        let (breaks, work) = breaks(&y, &decisions, &weekend);
        let b = breaks
            .iter()
            .find(|b| b.first <= d(2024, 4, 30) && d(2024, 4, 30) <= b.last)
            .cloned()
            .unwrap_or_else(|| panic!("{breaks:?}"));
        assert_eq!((b.first, b.last), (d(2024, 4, 27), d(2024, 5, 1)));
        assert_eq!(
            b.name,
            "Nghỉ Ngày Chiến thắng 30/4 và Ngày Quốc tế Lao động 1/5"
        );
        assert_eq!(b.id, "nghi-2024-30-4-1-5");
        assert_eq!(work.len(), 1);
        assert_eq!(work[0].name, "Làm bù thứ bảy 4/5/2024");
    }

    #[test]
    fn cancelled_days_are_workdays_again() {
        let decisions = [Decision {
            year: 2027,
            holidays: vec![],
            name: None,
            off: vec![],
            work: vec![],
            cancel: vec![d(2027, 1, 1)],
            document: None,
            source: None,
        }];
        let cal = Calendar::between(&decisions, &weekend, d(2027, 1, 1), d(2027, 1, 31));
        assert!(cal.is_workday(&weekend, d(2027, 1, 1)));
    }
}
