//! The calendar files (`calendars/<layer>.yaml`): a layer's name and its events, each with
//! its date rule, origin year, days off and tasks.
//!
//! Holds the checks of `events:` and their task references. Does not parse date syntax
//! ([`super::syntax`]) nor compute dates ([`crate::occurrence`]).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use super::syntax::{is_valid_id, parse_day_off, parse_lunar, parse_solar, suggest_id};
use super::{Defined, Field, Item, Resolver, SourceFile, ids_help, k};
use crate::days_off::Holiday;
use crate::diag::allowed_help;
use crate::schedule::{Category, DateRule, Event, Layer, raw};
use crate::yaml::{List, Seg};

impl Resolver {
    pub(super) fn layer<'a>(
        &mut self,
        f: &'a SourceFile,
        task_ids: Option<&[String]>,
        layers: &mut Vec<Layer>,
        events: &mut Vec<Event>,
        event_ids: &mut BTreeMap<String, Defined<'a>>,
    ) {
        let Some(l) = self.parse::<raw::Layer>(f) else {
            return;
        };
        self.unknown_keys(f, &[], &l.unknown, raw::Layer::KEYS);
        let stem = f
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if !is_valid_id(&stem) {
            self.warning(
                f,
                &[],
                format!("tên tệp `{stem}` nên chỉ gồm chữ thường không dấu, chữ số và `-`"),
                format!("đổi tên thành `{}.yaml`", suggest_id(&stem)),
            );
        }
        let name = self
            .optional_text((f, &[k("name")], &l.name), "tên lớp lịch")
            .unwrap_or_else(|| stem.clone());
        let layer = layers.len();
        layers.push(Layer {
            id: stem,
            name,
            path: f.path.clone(),
        });
        if l.events.as_ref().is_none_or(Vec::is_empty) {
            self.warning(f, &[], "tệp lịch chưa có sự kiện nào trong `events:`", "");
        }
        let task_ids: Option<Vec<&str>> =
            task_ids.map(|ids| ids.iter().map(String::as_str).collect());
        for (i, e) in l.events.iter().flatten().enumerate() {
            if let Some(ev) = self.event(f, i, e, layer, task_ids.as_deref(), event_ids) {
                events.push(ev);
            }
        }
    }

    fn event<'a>(
        &mut self,
        f: &'a SourceFile,
        i: usize,
        e: &raw::Event,
        layer: usize,
        task_ids: Option<&[&str]>,
        event_ids: &mut BTreeMap<String, Defined<'a>>,
    ) -> Option<Event> {
        let (item, id) = self.item(f, ("events", i), e, event_ids, "sự kiện");
        let at = |key| item.at(key);
        let name = self.text((f, &at("name"), &e.name), "tên sự kiện");
        let rule = match (&e.date, &e.lunar) {
            (Some(_), Some(_)) => {
                self.error(
                    f,
                    &[k("events"), Seg::Index(i), Seg::KeyName("lunar")],
                    "một sự kiện chỉ có một trong hai: `date` (dương lịch) hoặc `lunar` (âm lịch)",
                    "xóa một trong hai dòng",
                );
                None
            }
            (None, None) => {
                self.error(
                    f,
                    &item.path(),
                    "thiếu ngày: cần `date: NGÀY/THÁNG` (dương lịch) hoặc `lunar: NGÀY/THÁNG` (âm lịch)",
                    "ví dụ `date: 30/4`, `date: 1/11/2024` (một lần) hoặc `lunar: 10/3`",
                );
                None
            }
            (Some(_), None) => self
                .optional_text((f, &at("date"), &e.date), "ngày")
                .and_then(|d| {
                    self.checked(f, &at("date"), &d, |d| {
                        parse_solar(d).map_err(|why| (why, "viết `date: NGÀY/THÁNG` cho ngày hằng năm (`30/4`) hoặc `NGÀY/THÁNG/NĂM` cho một lần (`1/11/2024`)".into()))
                    })
                }),
            (None, Some(_)) => self
                .optional_text((f, &at("lunar"), &e.lunar), "ngày âm lịch")
                .and_then(|l| {
                    self.checked(f, &at("lunar"), &l, |l| {
                        parse_lunar(l).map_err(|why| (why, "viết `lunar: NGÀY/THÁNG` âm lịch: ngày 1–30, tháng 1–12, ví dụ `lunar: 10/3`".into()))
                    })
                }),
        };
        let (mut ok, mut since) = (true, None);
        if let Some(s) = self.optional_text((f, &at("since"), &e.since), "năm gốc") {
            match s.parse::<i32>() {
                Ok(y) if y > self.today.year() => {
                    ok = false;
                    self.error(
                        f,
                        &at("since"),
                        format!("năm gốc {y} ở tương lai (năm nay là {})", self.today.year()),
                        "`since` là năm xảy ra sự kiện gốc, ví dụ `since: 1975` cho 30/4/1975",
                    );
                }
                Ok(y) if y < 1 => {
                    ok = false;
                    self.error(
                        f,
                        &at("since"),
                        format!("năm gốc {y} không hợp lệ"),
                        "ghi năm dương lịch, ví dụ `since: 1954`",
                    );
                }
                Ok(y) => {
                    if let Some(DateRule::Solar { day: 29, month: 2 }) = rule
                        && NaiveDate::from_ymd_opt(y, 2, 29).is_none()
                    {
                        ok = false;
                        self.error(
                            f,
                            &at("since"),
                            format!("ngày 29/2/{y} không tồn tại: năm {y} không nhuận"),
                            "sự kiện gốc của ngày 29/2 phải ở một năm nhuận (chia hết cho 4, như 1976, 2000, 2024); sửa `since` hoặc `date`",
                        );
                    }
                    if let Some(DateRule::Once(d)) = rule
                        && y > d.year()
                    {
                        ok = false;
                        self.error(
                            f,
                            &at("since"),
                            format!("năm gốc {y} sau năm của ngày diễn ra ({})", d.year()),
                            "năm gốc phải trước hoặc bằng năm của `date`",
                        );
                    }
                    since = Some(y);
                }
                Err(_) => {
                    ok = false;
                    self.error(
                        f,
                        &at("since"),
                        format!("`{s}` không phải một năm"),
                        "ghi năm dương lịch, ví dụ `since: 1954`",
                    );
                }
            }
        }
        let only_round = match self.optional_text((f, &at("only"), &e.only), "điều kiện") {
            None => false,
            Some(o) if o == "round" => {
                if since.is_none() && e.since.is_none() {
                    ok = false;
                    self.error(
                        f,
                        &at("only"),
                        "`only: round` cần `since` để biết năm nào là năm tròn, năm lẻ 5",
                        "thêm `since: NĂM` hoặc bỏ `only`",
                    );
                }
                true
            }
            Some(o) => {
                ok = false;
                self.error(
                    f,
                    &at("only"),
                    format!("`only: {o}` không hợp lệ"),
                    allowed_help(&o, &["round"]),
                );
                false
            }
        };
        let days = match self.optional_text((f, &at("days"), &e.days), "số ngày") {
            None => 1,
            Some(d) => match d.parse::<u32>() {
                Ok(n @ 1..=366) => n,
                _ => {
                    ok = false;
                    self.error(
                        f,
                        &at("days"),
                        format!("số ngày `{d}` không hợp lệ"),
                        "một số nguyên từ 1 đến 366",
                    );
                    1
                }
            },
        };
        let categories: Vec<&str> = Category::ALL.iter().map(|c| c.0).collect();
        let category = match self.optional_text((f, &at("category"), &e.category), "loại") {
            None => Category::Other,
            Some(c) => match Category::ALL.iter().find(|(id, _)| *id == c) {
                Some(&(_, cat)) => cat,
                None => {
                    ok = false;
                    self.error(
                        f,
                        &at("category"),
                        format!("loại `{c}` không có"),
                        allowed_help(&c, &categories),
                    );
                    Category::Other
                }
            },
        };
        let day_off = match self.optional_text((f, &at("day_off"), &e.day_off), "ngày nghỉ") {
            None => None,
            Some(b) => match parse_day_off(&b, days) {
                Ok(off) => off,
                Err(why) => {
                    ok = false;
                    self.error(
                        f,
                        &at("day_off"),
                        format!("`day_off: {b}` không hợp lệ: {why}"),
                        "ghi `true` (những ngày của sự kiện), `false`, hoặc khoảng ngày so với ngày lễ như `-1..3` (Tết: từ 30 tháng Chạp đến mùng 4)",
                    );
                    None
                }
            },
        };
        // An upgraded install still carries the statutory days off it had to write by hand
        // (`day_off: -1..1` on 2/9 gave 1/9 to 3/9): they now add days off beyond the law's.
        let holiday = match rule {
            Some(DateRule::Solar { day, month }) => Holiday::on(false, day, month),
            Some(DateRule::Lunar { day, month }) => Holiday::on(true, day, month),
            _ => None,
        };
        if let (Some(h), Some(_)) = (holiday, day_off) {
            self.warning(
                f,
                &at("day_off"),
                format!(
                    "{} là ngày nghỉ theo luật ({}): ngayle tự tính ngày nghỉ này và đọc quyết định của từng năm trong `{}.yaml`; `day_off` ở đây cho đơn vị nghỉ thêm những ngày ngoài ngày nghỉ đó",
                    h.name(self.today.year()),
                    crate::days_off::LAW_HOLIDAYS,
                    super::days_off::DAYS_OFF_STEM,
                ),
                "bỏ `day_off` (ngày nghỉ theo luật và quyết định hằng năm đã có sẵn); chỉ giữ nếu đơn vị thật sự nghỉ thêm, và ghi rõ lý do trong `note`",
            );
        }
        let tasks = self.task_refs(f, item, "tasks", e.tasks.as_ref(), task_ids);
        let round_tasks = self.task_refs(f, item, "round_tasks", e.round_tasks.as_ref(), task_ids);
        if e.round_tasks.as_ref().is_some_and(|l| !l.0.is_empty()) && e.since.is_none() {
            self.warning(
                f,
                &at("round_tasks"),
                "`round_tasks` không bao giờ dùng đến vì sự kiện không có `since`",
                "thêm `since: NĂM` hoặc bỏ `round_tasks`",
            );
        }
        let note = self.scalar_text((f, &at("note"), &e.note), "ghi chú", true);
        let (from, from_ok) = self.bound(
            (f, &at("from"), &e.from),
            false,
            "ghi năm đầu tiên sự kiện áp dụng (`from: 2026`) hoặc ngày đầu (`from: 1/7/2025`)",
        );
        let (until, until_ok) = self.bound(
            (f, &at("until"), &e.until),
            true,
            "ghi năm cuối cùng sự kiện còn áp dụng (`until: 2025`) hoặc ngày cuối (`until: 30/6/2025`)",
        );
        ok &= from_ok && until_ok;
        if let (Some(a), Some(b)) = (from, until)
            && a > b
        {
            ok = false;
            self.error(
                f,
                &at("until"),
                format!(
                    "`until` ({}) trước `from` ({}): sự kiện không bao giờ diễn ra",
                    b.format("%-d/%-m/%Y"),
                    a.format("%-d/%-m/%Y")
                ),
                "kiểm tra lại hai năm",
            );
        }
        let title = match self.optional_text((f, &at("title"), &e.title), "tên chính thức") {
            None => None,
            Some(t) => {
                let mut rest = t.clone();
                for p in crate::schedule::TITLE_PLACEHOLDERS {
                    rest = rest.replace(p, "");
                }
                if let Some(i) = rest.find(['{', '}']) {
                    ok = false;
                    let near: String = rest[i..].chars().take(12).collect();
                    self.error(
                        f,
                        &at("title"),
                        format!("`title` có chỗ `{near}` không hiểu được"),
                        "trong `title` chỉ dùng `{n}` (lần kỷ niệm thứ mấy), `{year}` (năm) và `{can_chi}` (tên năm âm lịch, ví dụ Bính Ngọ)",
                    );
                } else if t.contains("{n}") && e.since.is_none() {
                    ok = false;
                    self.error(
                        f,
                        &at("title"),
                        "`{n}` trong `title` cần `since` để biết lần kỷ niệm thứ mấy",
                        "thêm `since: NĂM` hoặc bỏ `{n}`",
                    );
                }
                Some(t)
            }
        };
        if !ok {
            return None;
        }
        Some(Event {
            id: id?,
            name: name?,
            layer,
            rule: rule?,
            since,
            only_round,
            days,
            category,
            day_off,
            tasks: tasks?,
            round_tasks: round_tasks?,
            note,
            from,
            until,
            title,
        })
    }

    /// An event's `from` or `until` (`last`): the day, and false after an error (reported).
    fn bound(&mut self, (f, path, v): Field, last: bool, help: &str) -> (Option<NaiveDate>, bool) {
        let key = if last { "until" } else { "from" };
        let Some(text) =
            self.optional_text((f, path, v), if last { "ngày cuối" } else { "ngày đầu" })
        else {
            return (None, true);
        };
        match bound_of(&text, last) {
            Some(d) => (Some(d), true),
            None => {
                self.error(f, path, format!("`{key}: {text}` không hợp lệ"), help);
                (None, false)
            }
        }
    }

    /// The tasks an event names at `key`, checked against `task_ids` unless that is `None`
    /// (the tasks file is missing or does not parse, and has its own error).
    fn task_refs(
        &mut self,
        f: &SourceFile,
        item: Item,
        key: &'static str,
        list: Option<&List>,
        task_ids: Option<&[&str]>,
    ) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (path, t) in item.entries(key, list) {
            let Some(task_ids) = task_ids else {
                out.push(t.to_string());
                continue;
            };
            if task_ids.contains(&t) {
                if !out.iter().any(|o| o == t) {
                    out.push(t.to_string());
                }
            } else {
                ok = false;
                self.error(
                    f,
                    &path,
                    format!("không có việc `{t}` trong tasks.yaml"),
                    ids_help(t, task_ids, "các mã việc trong calendars/tasks.yaml"),
                );
            }
        }
        ok.then_some(out)
    }
}

/// `until: 2025` (its 31/12; `from: 2026`: its 1/1), `30/6/2025` or `2025-06-30`: the day.
fn bound_of(text: &str, last: bool) -> Option<NaiveDate> {
    let text = text.trim();
    if let Ok(y) = text.parse::<i32>() {
        let (m, d) = if last { (12, 31) } else { (1, 1) };
        return NaiveDate::from_ymd_opt(y, m, d).filter(|_| (1900..=2199).contains(&y));
    }
    match super::syntax::parse_solar(text).ok()? {
        DateRule::Once(d) => Some(d),
        _ => None,
    }
}
