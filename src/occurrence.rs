//! Occurrences: the dated instances of the schedule's events in a range of days.
//!
//! Pure: a function of the schedule and the range. It applies the date rules (solar, lunar,
//! one-off, spans), the anniversary number N = year − since with its class under
//! Nghị định 145/2013/NĐ-CP, Điều 3, the official title form, `only: round` and the extra tasks
//! of round years. The feeds and the reminder plan are built from these.
//!
//! Policies (also in `calendars/README.md`):
//! - a lunar day 30 in a 29-day month falls on day 29, the last day of that month;
//! - a lunar event in a month that has a leap twin falls in the regular (first) month;
//! - a lunar event belongs to the solar year its date falls in: the occurrences in a range are
//!   the days of its D/M in every lunar year that fall in (or, spanning, overlap) the range.
//!   Months 1–10 of lunar year Y always fall in solar year Y; months 11–12 may fall in
//!   January–February of Y + 1, so a solar year can hold two of them or none (25/11: 6/1/2024
//!   and 25/12/2024, then 13/1/2026). Its anniversary counts lunar years, N = lunar year −
//!   since, the years its title names (`25/11/2000 - 25/11/2025 âm lịch`): each N exactly once,
//!   where the solar year would give two 24th and no 25th; for months 1–10 the two agree;
//! - a solar 29/2 falls on 28/2 in common years, and its titles say so;
//! - an event does not occur before its `since` year and, in that year, appears under its plain
//!   name with no number;
//! - a remark in brackets in an event's name (`Lễ khai hội Xuân Ngọa Vân (Đông Triều)`) is not
//!   part of its titles: the official title has one pair of brackets, its dates.
//!
//! Two titles: the official one (`Kỷ niệm 70 năm Ngày Chiến thắng Điện Biên Phủ (7/5/1954 -
//! 7/5/2024)`), for descriptions and emails, and the calendar's, which leads with the subject so
//! that a month view's narrow chip still says what the day is (`Chiến thắng Điện Biên Phủ — 70
//! năm (năm tròn)`).

use std::fmt;

use chrono::{Datelike, Days, NaiveDate};

use crate::lunar::{self, LunarDate};
use crate::schedule::{DateRule, Event, Schedule, Task};

/// The class of an anniversary (Nghị định 145/2013/NĐ-CP, Điều 3 khoản 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoundClass {
    /// N ends in 0: năm tròn.
    Tron,
    /// N ends in 5: năm lẻ 5.
    Le5,
    /// Any other N: năm khác.
    Khac,
}

impl RoundClass {
    pub fn of(n: u32) -> RoundClass {
        match n % 10 {
            0 => RoundClass::Tron,
            5 => RoundClass::Le5,
            _ => RoundClass::Khac,
        }
    }

    /// The id used in tsv output: `tron`, `le5`, `khac`.
    pub fn id(self) -> &'static str {
        match self {
            RoundClass::Tron => "tron",
            RoundClass::Le5 => "le5",
            RoundClass::Khac => "khac",
        }
    }

    /// The Vietnamese name: `năm tròn`, `năm lẻ 5`, `năm khác`.
    pub fn name_vi(self) -> &'static str {
        match self {
            RoundClass::Tron => "năm tròn",
            RoundClass::Le5 => "năm lẻ 5",
            RoundClass::Khac => "năm khác",
        }
    }

    /// Năm tròn and năm lẻ 5 get the bigger ceremonies, the `round_tasks` and `only: round`.
    pub fn is_round(self) -> bool {
        self != RoundClass::Khac
    }
}

impl fmt::Display for RoundClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_vi())
    }
}

/// One event on one date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence<'s> {
    pub event: &'s Event,
    /// The first day.
    pub date: NaiveDate,
    /// The rule's year: the solar year, or the lunar year for lunar events (for months 11–12,
    /// possibly the solar year before the date's). N counts from it; the feed's UID carries it.
    pub year: i32,
    /// N, when the event has a `since` and this is not its origin year.
    pub anniversary: Option<u32>,
    pub class: Option<RoundClass>,
    /// The official title: `Kỷ niệm 70 năm Ngày Chiến thắng Điện Biên Phủ (7/5/1954 - 7/5/2024)`.
    pub title: String,
    /// The calendar title, subject first: `Chiến thắng Điện Biên Phủ — 70 năm (năm tròn)`.
    pub summary: String,
    /// What the day is about, no number, no dates, no remark: `Chiến thắng Điện Biên Phủ`.
    pub subject: String,
    /// The event's tasks, plus its `round_tasks` in năm tròn and năm lẻ 5.
    pub tasks: Vec<&'s Task>,
}

impl Occurrence<'_> {
    /// The day after the last day (the exclusive end, as iCalendar's DTEND wants it).
    pub fn end(&self) -> NaiveDate {
        end(self.event, self.date)
    }

    /// The last day of the occurrence.
    pub fn last_day(&self) -> NaiveDate {
        last_day(self.event, self.date)
    }

    /// The lunar date of the first day, when it is within the lunar calendar's range.
    pub fn lunar(&self) -> Option<LunarDate> {
        lunar::solar_to_lunar(self.date).ok()
    }
}

/// The occurrences that overlap `from..=to`, sorted by date (then by the order of the files).
pub fn occurrences(schedule: &Schedule, from: NaiveDate, to: NaiveDate) -> Vec<Occurrence<'_>> {
    let mut out = Vec::new();
    for (event, when) in happenings(schedule, from, to) {
        out.push(build(schedule, event, when));
    }
    out.sort_by_key(|o| o.date);
    out
}

/// The occurrence of `event` for rule year `year`, if it has one.
pub fn occurrence_in<'s>(
    schedule: &'s Schedule,
    event: &'s Event,
    year: i32,
) -> Option<Occurrence<'s>> {
    Some(build(schedule, event, happening(event, year)?))
}

/// When an event happens in one rule year: its first day, the year it counts as and its
/// anniversary number. What an occurrence is before its title and tasks are made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct When {
    pub(crate) date: NaiveDate,
    year: i32,
    anniversary: Option<u32>,
}

/// The events that happen in days overlapping `from..=to`, with when, in file order per rule
/// year (unsorted). Cheap: no titles, no task lists — the plan's days off need only this.
pub(crate) fn happenings(
    schedule: &Schedule,
    from: NaiveDate,
    to: NaiveDate,
) -> impl Iterator<Item = (&Event, When)> {
    // Earlier rule years too: a solar year Y − 1 for spans that started before `from`; lunar
    // years Y − 1 (months 11–12 fall as late as February of Y) and Y − 2 (a lunar year ends by
    // 20/2 of the next solar year, and a span of up to 366 days from then reaches into Y).
    // Lunar year Y + 1 begins in solar year Y + 1 (Tết is never before 21/1).
    let first = from.year().saturating_sub(1);
    let years = first.saturating_sub(1)..=to.year();
    years.filter(move |_| from <= to).flat_map(move |year| {
        schedule.events.iter().filter_map(move |event| {
            if year < first && !matches!(event.rule, DateRule::Lunar { .. }) {
                return None;
            }
            let when = happening(event, year)?;
            (when.date <= to && last_day(event, when.date) >= from).then_some((event, when))
        })
    })
}

/// When `event` happens for rule year `year`: not before its `since` year, only in round
/// years if `only: round`.
fn happening(event: &Event, year: i32) -> Option<When> {
    let date = date_in(event.rule, year)?;
    if event.until.is_some_and(|last| date > last) || event.from.is_some_and(|first| date < first) {
        return None;
    }
    let year = match event.rule {
        DateRule::Once(d) => d.year(),
        _ => year,
    };
    let anniversary = match event.since {
        Some(since) if year < since => return None,
        Some(since) => u32::try_from(year - since).ok().filter(|&n| n > 0),
        None => None,
    };
    if event.only_round && !anniversary.is_some_and(|n| RoundClass::of(n).is_round()) {
        return None;
    }
    Some(When {
        date,
        year,
        anniversary,
    })
}

/// The day after an event starting on `date` ends (see [`Occurrence::end`]).
fn end(event: &Event, date: NaiveDate) -> NaiveDate {
    date.checked_add_days(Days::new(event.days.into()))
        .unwrap_or(NaiveDate::MAX)
}

/// The last day of an event starting on `date` (see [`Occurrence::last_day`]).
fn last_day(event: &Event, date: NaiveDate) -> NaiveDate {
    end(event, date).pred_opt().unwrap_or(date)
}

/// The occurrence itself: title (the official form in anniversary years) and tasks (with the
/// round-year ones in round years, each task once).
fn build<'s>(schedule: &'s Schedule, event: &'s Event, when: When) -> Occurrence<'s> {
    let When {
        date,
        year,
        anniversary,
    } = when;
    let class = anniversary.map(RoundClass::of);
    let round = class.is_some_and(RoundClass::is_round);
    let name = plain_name(&event.name);
    let subject = subject_of(&name);
    let moved = moved_from(event.rule, date);
    let title = match (anniversary, event.since) {
        (Some(n), Some(since)) => official_title(n, &name, event.rule, since, year, date),
        _ => match &moved {
            Some(m) => format!("{name} ({m})"),
            None => name,
        },
    };
    // The event's own official title, when it has one (`title:`): its `{n}`, `{year}` and
    // `{can_chi}` filled in; without an anniversary it is the calendar title too (Tết Nguyên
    // đán Bính Ngọ).
    let own = event.title.as_ref().map(|t| {
        let can_chi = lunar::solar_to_lunar(date)
            .map(|l| lunar::year_name(l.year))
            .unwrap_or_default();
        t.replace(
            "{n}",
            &anniversary.map(|n| n.to_string()).unwrap_or_default(),
        )
        .replace("{year}", &year.to_string())
        .replace("{can_chi}", &can_chi)
    });
    let (title, subject) = match own {
        Some(t) if anniversary.is_none() => (t.clone(), subject_of(&plain_name(&t))),
        Some(t) => (t, subject),
        None => (title, subject),
    };
    let summary = summary(&subject, anniversary, class, moved.as_deref());
    let ids = event
        .tasks
        .iter()
        .chain(event.round_tasks.iter().filter(|_| round));
    let mut tasks: Vec<&Task> = Vec::new();
    for t in ids.filter_map(|id| schedule.task(id)) {
        if !tasks.iter().any(|have| have.id == t.id) {
            tasks.push(t);
        }
    }
    Occurrence {
        event,
        date,
        year,
        anniversary,
        class,
        title,
        summary,
        subject,
        tasks,
    }
}

/// The calendar title: the subject, then the anniversary (with its class when it is a round
/// one), then where a 29/2 went in a common year.
fn summary(
    subject: &str,
    anniversary: Option<u32>,
    class: Option<RoundClass>,
    moved: Option<&str>,
) -> String {
    let mut s = subject.to_string();
    if let Some(n) = anniversary {
        s.push_str(&format!(" — {n} năm"));
        if let Some(c) = class.filter(|c| c.is_round()) {
            s.push_str(&format!(" ({c})"));
        }
    }
    if let Some(m) = moved {
        s.push_str(&format!(" — {m}"));
    }
    s
}

/// `29/2 dời sang 28/2` when a solar 29/2 falls in a common year.
fn moved_from(rule: DateRule, date: NaiveDate) -> Option<String> {
    match rule {
        DateRule::Solar { day, month } if u32::from(day) != date.day() => Some(format!(
            "{day}/{month} dời sang {}/{}",
            date.day(),
            date.month()
        )),
        _ => None,
    }
}

/// The name without its remarks in round brackets (`Lễ hội đền An Sinh (Đông Triều)` → `Lễ hội
/// đền An Sinh`): a remark is for the description, not for a title. A name with unbalanced
/// brackets, or that is all remark, stays as it is.
pub fn plain_name(name: &str) -> String {
    if !name.contains(['(', ')']) {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '(' => depth += 1,
            ')' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return name.to_string(),
            },
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let plain = out.split_whitespace().collect::<Vec<_>>().join(" ");
    let plain = plain
        .trim_end_matches([',', ';', ':', ' ', '–', '-'])
        .to_string();
    if depth > 0 || plain.is_empty() {
        name.to_string()
    } else {
        plain
    }
}

/// What a day is about, from its plain name: a leading `Ngày` is dropped, so that the chips of
/// a month view do not all start alike (`Ngày Chiến thắng Điện Biên Phủ` → `Chiến thắng Điện
/// Biên Phủ`, `Ngày thành lập Đảng …` → `Thành lập Đảng …`) — but not from `Ngày sinh`, `Ngày
/// mất`, `Ngày hội`, where it is half of the word (birthday, death anniversary, festival day).
pub fn subject_of(name: &str) -> String {
    const COMPOUNDS: [&str; 3] = ["sinh", "mất", "hội"];
    let Some(rest) = name.strip_prefix("Ngày ") else {
        return name.to_string();
    };
    let next = rest.split(' ').next().unwrap_or_default();
    if next.is_empty() || COMPOUNDS.contains(&next) {
        return name.to_string();
    }
    let mut chars = rest.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => name.to_string(),
    }
}

/// The date a rule gives in `year`, or `None` (a one-off in another year, a lunar year outside
/// the calendar's range).
pub fn date_in(rule: DateRule, year: i32) -> Option<NaiveDate> {
    match rule {
        DateRule::Once(d) => (d.year() == year).then_some(d),
        DateRule::Solar { day, month } => NaiveDate::from_ymd_opt(year, month.into(), day.into())
            .or_else(|| NaiveDate::from_ymd_opt(year, month.into(), u32::from(day) - 1)),
        DateRule::Lunar { day, month } => {
            let len = lunar::month_len(year, month, false).ok()?;
            let day = day.min(len);
            lunar::lunar_to_solar(LunarDate {
                year,
                month,
                day,
                leap: false,
            })
            .ok()
        }
    }
}

/// `Kỷ niệm N năm NAME (D/M/SINCE - D/M/YEAR)`; lunar dates say so; a 29/2 in a common year
/// keeps its true origin date and says where it went: `(29/2/1980 - 28/2/2025, 29/2 dời sang
/// 28/2)`.
fn official_title(
    n: u32,
    name: &str,
    rule: DateRule,
    since: i32,
    year: i32,
    date: NaiveDate,
) -> String {
    let span = match rule {
        DateRule::Lunar { day, month } => {
            format!("{day}/{month}/{since} - {day}/{month}/{year} âm lịch")
        }
        DateRule::Solar { day, month } if u32::from(day) != date.day() => {
            let (d, m) = (date.day(), date.month());
            format!("{day}/{month}/{since} - {d}/{m}/{year}, {day}/{month} dời sang {d}/{m}")
        }
        _ => {
            let (d, m) = (date.day(), date.month());
            format!("{d}/{m}/{since} - {d}/{m}/{year}")
        }
    };
    format!("Kỷ niệm {n} năm {name} ({span})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let table = [
            (70, RoundClass::Tron),
            (80, RoundClass::Tron),
            (35, RoundClass::Le5),
            (65, RoundClass::Le5),
            (94, RoundClass::Khac),
            (49, RoundClass::Khac),
            (134, RoundClass::Khac),
            (1, RoundClass::Khac),
            (100, RoundClass::Tron),
        ];
        for (n, class) in table {
            assert_eq!(RoundClass::of(n), class, "{n}");
        }
    }

    #[test]
    fn titles() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
        assert_eq!(
            official_title(
                70,
                "Ngày Chiến thắng Điện Biên Phủ",
                DateRule::Solar { day: 7, month: 5 },
                1954,
                2024,
                d(2024, 5, 7)
            ),
            "Kỷ niệm 70 năm Ngày Chiến thắng Điện Biên Phủ (7/5/1954 - 7/5/2024)"
        );
        assert_eq!(
            official_title(
                5,
                "Lễ hội X",
                DateRule::Lunar { day: 10, month: 3 },
                2019,
                2024,
                d(2024, 4, 18)
            ),
            "Kỷ niệm 5 năm Lễ hội X (10/3/2019 - 10/3/2024 âm lịch)"
        );
    }

    #[test]
    fn remarks_in_brackets_are_not_in_titles() {
        let table = [
            (
                "Lễ khai hội Xuân Ngọa Vân (Đông Triều)",
                "Lễ khai hội Xuân Ngọa Vân",
            ),
            (
                "Ngày thành lập Chiến khu Trần Hưng Đạo (Chiến khu Đông Triều) – khởi nghĩa",
                "Ngày thành lập Chiến khu Trần Hưng Đạo – khởi nghĩa",
            ),
            ("Tết Nguyên đán (Tết Âm lịch)", "Tết Nguyên đán"),
            ("Ngày Thương binh - Liệt sĩ", "Ngày Thương binh - Liệt sĩ"),
            ("(chỉ ghi chú)", "(chỉ ghi chú)"),
            ("Lễ (dở", "Lễ (dở"),
            ("Lễ dở)", "Lễ dở)"),
        ];
        for (name, want) in table {
            assert_eq!(plain_name(name), want, "{name}");
        }
    }

    #[test]
    fn subjects_drop_a_leading_ngay_unless_it_is_half_of_a_word() {
        let table = [
            (
                "Ngày Chiến thắng Điện Biên Phủ",
                "Chiến thắng Điện Biên Phủ",
            ),
            ("Ngày Đại đoàn kết", "Đại đoàn kết"),
            (
                "Ngày sinh Chủ tịch Hồ Chí Minh",
                "Ngày sinh Chủ tịch Hồ Chí Minh",
            ),
            ("Ngày mất V.I. Lênin", "Ngày mất V.I. Lênin"),
            (
                "Ngày hội Quốc phòng toàn dân",
                "Ngày hội Quốc phòng toàn dân",
            ),
            (
                "Ngày thành lập Đảng Cộng sản Việt Nam",
                "Thành lập Đảng Cộng sản Việt Nam",
            ),
            (
                "Ngày toàn dân đưa trẻ đến trường",
                "Toàn dân đưa trẻ đến trường",
            ),
            ("Ngày  x", "Ngày  x"),
            ("Tết Trung thu", "Tết Trung thu"),
            ("Ngày", "Ngày"),
        ];
        for (name, want) in table {
            assert_eq!(subject_of(name), want, "{name}");
        }
    }

    #[test]
    fn calendar_titles_lead_with_the_subject() {
        let s = |n, c, m| summary("Chiến thắng Điện Biên Phủ", n, c, m);
        assert_eq!(
            s(Some(70), Some(RoundClass::Tron), None),
            "Chiến thắng Điện Biên Phủ — 70 năm (năm tròn)"
        );
        assert_eq!(
            s(Some(65), Some(RoundClass::Le5), None),
            "Chiến thắng Điện Biên Phủ — 65 năm (năm lẻ 5)"
        );
        assert_eq!(
            s(Some(71), Some(RoundClass::Khac), None),
            "Chiến thắng Điện Biên Phủ — 71 năm"
        );
        assert_eq!(s(None, None, None), "Chiến thắng Điện Biên Phủ");
        assert_eq!(
            s(Some(43), Some(RoundClass::Khac), Some("29/2 dời sang 28/2")),
            "Chiến thắng Điện Biên Phủ — 43 năm — 29/2 dời sang 28/2"
        );
    }

    #[test]
    fn a_29_february_in_a_common_year_says_where_it_went() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
        let rule = DateRule::Solar { day: 29, month: 2 };
        assert_eq!(
            official_title(45, "Ngày X", rule, 1980, 2025, d(2025, 2, 28)),
            "Kỷ niệm 45 năm Ngày X (29/2/1980 - 28/2/2025, 29/2 dời sang 28/2)"
        );
        assert_eq!(
            official_title(44, "Ngày X", rule, 1980, 2024, d(2024, 2, 29)),
            "Kỷ niệm 44 năm Ngày X (29/2/1980 - 29/2/2024)"
        );
        assert_eq!(
            moved_from(rule, d(2025, 2, 28)).as_deref(),
            Some("29/2 dời sang 28/2")
        );
        assert_eq!(moved_from(rule, d(2024, 2, 29)), None);
    }

    /// Every day of lunar months 1–10 of lunar year Y falls in solar year Y, 1900–2199: for
    /// them the lunar and the solar year agree (Tết, Giỗ Tổ Hùng Vương, Trung thu among them).
    /// Months 11–12 do not: 25/11 of lunar 2023 is 6/1/2024, 20/12 of lunar 2024 is 19/1/2025.
    #[test]
    fn lunar_months_1_to_10_fall_in_their_own_solar_year() {
        for year in lunar::FIRST_YEAR..=lunar::LAST_YEAR {
            for month in 1..=10 {
                for day in 1..=30 {
                    let rule = DateRule::Lunar { day, month };
                    let got = date_in(rule, year).map(|d| d.year());
                    assert_eq!(got, Some(year), "{rule} of lunar {year}");
                }
            }
        }
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day);
        let lunar = |day, month| DateRule::Lunar { day, month };
        assert_eq!(date_in(lunar(25, 11), 2023), d(2024, 1, 6));
        assert_eq!(date_in(lunar(20, 12), 2024), d(2025, 1, 19));
    }

    #[test]
    fn rule_dates() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day);
        let solar = |day, month| DateRule::Solar { day, month };
        let lunar = |day, month| DateRule::Lunar { day, month };
        let table = [
            (solar(29, 2), 2023, d(2023, 2, 28)),
            (solar(29, 2), 2024, d(2024, 2, 29)),
            (lunar(1, 1), 2024, d(2024, 2, 10)),
            (lunar(10, 3), 2024, d(2024, 4, 18)),
            (lunar(15, 8), 2024, d(2024, 9, 17)),
            // 2023 has a leap month 2: the event is in the regular month 2 (from 2023-02-20).
            (lunar(1, 2), 2023, d(2023, 2, 20)),
            // Lunar month 12 of 2024 falls in January 2025.
            (lunar(23, 12), 2024, d(2025, 1, 22)),
            (
                DateRule::Once(d(2024, 11, 1).unwrap_or_default()),
                2025,
                None,
            ),
            (
                DateRule::Once(d(2024, 11, 1).unwrap_or_default()),
                2024,
                d(2024, 11, 1),
            ),
        ];
        for (rule, year, want) in table {
            assert_eq!(date_in(rule, year), want, "{rule} in {year}");
        }
    }
}
