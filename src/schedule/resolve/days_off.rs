//! The days-off decisions file (`calendars/ngay-nghi.yaml`): each year's decisions on the
//! official days off, over the Labour Code's rules (`crate::days_off`).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Weekday};

use super::syntax::parse_solar;
use super::{Item, Resolver, Seg, SourceFile, k};
use crate::days_off::{Decision, Holiday};
use crate::diag::did_you_mean;
use crate::schedule::{DateRule, raw};
use crate::yaml::{List, Scalar};

/// The stem of the decisions file in the calendars folder (optional).
pub const DAYS_OFF_STEM: &str = "ngay-nghi";

/// The longest range one entry of `off`, `work` or `cancel` may span (a Tết break with its
/// weekends is 9 or 10 days).
const MAX_RANGE_DAYS: i64 = 31;

impl Resolver {
    /// The decisions of the file; a decision with a mistake is left out (its error says why).
    pub(super) fn days_off(
        &mut self,
        f: &SourceFile,
        workdays: Option<&[Weekday]>,
    ) -> Vec<Decision> {
        let Some(file) = self.parse::<raw::DaysOff>(f) else {
            return Vec::new();
        };
        self.unknown_keys(f, &[], &file.unknown, raw::DaysOff::KEYS);
        let mut out = Vec::new();
        // (year, holiday) → the decision that first decided it, for "decided twice".
        let mut decided: BTreeMap<(i32, Holiday), usize> = BTreeMap::new();
        for (i, raw) in file.decisions.iter().flatten().enumerate() {
            let item = Item {
                list: "decisions",
                index: i,
            };
            self.unknown_keys(f, &item.path(), &raw.unknown, raw::Decision::KEYS);
            let at = |key| item.at(key);
            let year = self.decision_year(f, &at("year"), raw.year.as_ref());
            let mut holidays = Vec::new();
            let mut ok = year.is_some();
            for (path, id) in item.entries("holiday", raw.holiday.as_ref()) {
                match Holiday::from_id(id) {
                    Some(h) => {
                        if let Some(y) = year {
                            if let Some(first) = decided.get(&(y, h)) {
                                self.error(
                                    f,
                                    &path,
                                    format!("năm {y} đã có quyết định về `{id}` (quyết định thứ {})", first + 1),
                                    "mỗi ngày lễ một quyết định mỗi năm: gộp các ngày vào quyết định đó",
                                );
                                ok = false;
                            } else {
                                decided.insert((y, h), i);
                            }
                        }
                        holidays.push(h);
                    }
                    None => {
                        let ids: Vec<&str> = Holiday::ALL.iter().map(|h| h.id()).collect();
                        let help = match did_you_mean(id, ids.iter().copied()) {
                            Some(s) => format!("có phải `{s}`? Các ngày lễ: {}", ids.join(", ")),
                            None => format!(
                                "các ngày lễ theo Bộ luật Lao động 2019, Điều 112: {}; bỏ `holiday:` cho ngày nghỉ khác",
                                ids.join(", ")
                            ),
                        };
                        self.error(f, &path, format!("không có ngày lễ `{id}`"), help);
                        ok = false;
                    }
                }
            }
            let name = self.optional_text((f, &at("name"), &raw.name), "tên đợt nghỉ");
            let document = self.optional_text((f, &at("document"), &raw.document), "văn bản");
            let source = self.optional_text((f, &at("source"), &raw.source), "nguồn");
            let (Some(y), true) = (year, ok) else {
                continue;
            };
            let off = self.decision_days(f, item, "off", raw.off.as_ref(), y);
            let work = self.decision_days(f, item, "work", raw.work.as_ref(), y);
            let cancel = self.decision_days(f, item, "cancel", raw.cancel.as_ref(), y);
            let (Some(off), Some(work), Some(cancel)) = (off, work, cancel) else {
                continue;
            };
            if off.is_empty() && work.is_empty() && cancel.is_empty() {
                self.error(
                    f,
                    &item.path(),
                    "quyết định không có ngày nào",
                    "ghi `off:` (ngày nghỉ, ví dụ `off: 14/2..22/2`), `work:` (ngày làm bù) hoặc `cancel:` (ngày không nghỉ nữa)",
                );
                continue;
            }
            if let Some(workdays) = workdays {
                for (j, day) in work.iter().enumerate() {
                    if workdays.contains(&day.weekday()) {
                        self.warning(
                            f,
                            &[k("decisions"), Seg::Index(i), k("work")],
                            format!(
                                "ngày làm bù {} ({}) vốn đã là ngày làm việc (mục thứ {} của `work`)",
                                day.format("%-d/%-m/%Y"),
                                crate::vietnam::weekday(*day),
                                j + 1
                            ),
                            "ngày làm bù thường là một thứ Bảy; kiểm tra lại văn bản",
                        );
                    }
                }
            }
            out.push(Decision {
                year: y,
                holidays,
                name,
                off,
                work,
                cancel,
                document,
                source,
            });
        }
        out
    }

    fn decision_year(&mut self, f: &SourceFile, path: &[Seg], v: Option<&Scalar>) -> Option<i32> {
        let Some(text) = v.and_then(|s| s.text()).map(str::trim) else {
            self.error(
                f,
                path,
                "thiếu `year` (năm của quyết định)",
                "ví dụ `year: 2026`",
            );
            return None;
        };
        match text.parse::<i32>() {
            Ok(y) if (1900..=2199).contains(&y) => Some(y),
            _ => {
                self.error(
                    f,
                    path,
                    format!("`{text}` không phải một năm từ 1900 đến 2199"),
                    "ví dụ `year: 2026`",
                );
                None
            }
        }
    }

    /// The days of `key` (`off`, `work`, `cancel`): dates `D/M` of the decision's year or
    /// `D/M/YYYY`, and ranges `A..B`; `None` after an error.
    fn decision_days(
        &mut self,
        f: &SourceFile,
        item: Item,
        key: &'static str,
        list: Option<&List>,
        year: i32,
    ) -> Option<Vec<NaiveDate>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (path, text) in item.entries(key, list) {
            match days_of(text, year) {
                Ok(days) => out.extend(days),
                Err(why) => {
                    self.error(
                        f,
                        &path,
                        format!("`{text}`: {why}"),
                        "viết một ngày `NGÀY/THÁNG` (trong năm của quyết định) hoặc `NGÀY/THÁNG/NĂM`, hay một khoảng `14/2..22/2`",
                    );
                    ok = false;
                }
            }
        }
        out.sort();
        out.dedup();
        ok.then_some(out)
    }
}

/// One entry: a date or a range `A..B` (both included).
fn days_of(text: &str, year: i32) -> Result<Vec<NaiveDate>, String> {
    let date = |s: &str| -> Result<NaiveDate, String> {
        match parse_solar(s.trim())? {
            DateRule::Solar { day, month } => {
                NaiveDate::from_ymd_opt(year, month.into(), day.into())
                    .ok_or_else(|| format!("ngày {day}/{month}/{year} không tồn tại"))
            }
            DateRule::Once(d) => Ok(d),
            _ => Err("không phải một ngày dương lịch".into()),
        }
    };
    let Some((a, b)) = text.split_once("..") else {
        return Ok(vec![date(text)?]);
    };
    let (a, b) = (date(a)?, date(b)?);
    if b < a {
        return Err(format!(
            "khoảng ngày ngược: {} sau {}",
            a.format("%-d/%-m/%Y"),
            b.format("%-d/%-m/%Y")
        ));
    }
    if (b - a).num_days() >= MAX_RANGE_DAYS {
        return Err(format!("khoảng ngày dài quá {MAX_RANGE_DAYS} ngày"));
    }
    Ok(a.iter_days().take_while(|d| *d <= b).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_dates_of_the_year_or_ranges() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
        assert_eq!(days_of("4/5", 2024), Ok(vec![d(2024, 5, 4)]));
        assert_eq!(days_of("31/12/2023", 2024), Ok(vec![d(2023, 12, 31)]));
        assert_eq!(
            days_of("27/4..1/5", 2024),
            Ok(vec![
                d(2024, 4, 27),
                d(2024, 4, 28),
                d(2024, 4, 29),
                d(2024, 4, 30),
                d(2024, 5, 1)
            ])
        );
        assert!(days_of("1/5..27/4", 2024).is_err());
        assert!(days_of("1/1..28/2", 2024).is_err());
        assert!(days_of("30/2", 2024).is_err());
    }
}
