//! The tasks file (`calendars/tasks.yaml`): the kinds of work, their lead times and who does
//! them.
//!
//! Holds the checks of `tasks:` and of `who:` against the staff. Does not know about events.

use std::collections::BTreeMap;

use chrono::NaiveTime;

use super::syntax::{Unit, parse_span};
use super::{ALL, Defined, Resolver, Seg, SourceFile, StaffIds, ids_help};
use crate::schedule::{Assignee, DoneWhen, Due, Lead, Move, Task, raw};

impl Resolver {
    /// The tasks that are right, and the ids of all, also of a task with another field wrong
    /// (it is known by its id: an event naming it is not an error); `None` ids when the file
    /// does not parse. `who` is checked against `staff` unless it is `None`.
    pub(super) fn tasks<'a>(
        &mut self,
        f: &'a SourceFile,
        staff: Option<&StaffIds>,
        send_at: Option<NaiveTime>,
    ) -> (Vec<Task>, Option<Vec<String>>) {
        let Some(t) = self.parse::<raw::Tasks>(f) else {
            return (Vec::new(), None);
        };
        self.unknown_keys(f, &[], &t.unknown, raw::Tasks::KEYS);
        if t.tasks.as_ref().is_none_or(Vec::is_empty) {
            self.warning(f, &[], "chưa có loại việc nào trong `tasks:`", "");
        }
        let mut ids: BTreeMap<String, Defined<'a>> = BTreeMap::new();
        let no_staff = StaffIds::default();
        let staff_ids = staff.unwrap_or(&no_staff);
        let mut who_ids: Vec<&str> = vec![ALL];
        who_ids.extend(staff_ids.groups.iter().map(String::as_str));
        who_ids.extend(staff_ids.people.iter().map(String::as_str));
        let group_set: std::collections::HashSet<&str> =
            staff_ids.groups.iter().map(String::as_str).collect();
        let person_set: std::collections::HashSet<&str> =
            staff_ids.people.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        let mut known = Vec::new();
        for (i, raw) in t.tasks.iter().flatten().enumerate() {
            let (item, id) = self.item(f, ("tasks", i), raw, &mut ids, "việc");
            known.extend(id.clone());
            let at = |key| item.at(key);
            let title = self.text((f, &at("title"), &raw.title), "tên việc");
            let what = self.text_lines((f, &at("do"), &raw.what), "nội dung việc cần làm");
            let at_time = match self.optional_text((f, &at("at"), &raw.at), "giờ nhắc") {
                None => Some(None),
                Some(s) => self.time_of_day(f, &at("at"), &s).map(Some),
            };
            let due = match self.optional_text((f, &at("due"), &raw.due), "hạn") {
                None => Some(Due::default()),
                Some(s) => self.due(f, &at("due"), &s),
            };
            let remind = self.remind(f, item, raw);
            let moves = match self.optional_text((f, &at("move"), &raw.moves), "cách dời ngày nhắc")
            {
                None => Some(Move::default()),
                Some(w) => match Move::from_word(&w) {
                    Some(m) => Some(m),
                    None => {
                        self.error(
                            f,
                            &at("move"),
                            format!("`move: {w}` không hợp lệ"),
                            "`earlier` (nhắc vào ngày làm việc liền trước, mặc định), `later` (ngày làm việc liền sau, không quá hạn) hoặc `keep` (nhắc đúng ngày đó, kể cả ngày nghỉ)",
                        );
                        None
                    }
                },
            };
            let done_when = match self
                .optional_text((f, &at("done_when"), &raw.done_when), "khi nào coi là xong")
            {
                None => Some(DoneWhen::default()),
                Some(w) => match DoneWhen::from_word(&w) {
                    Some(d) => Some(d),
                    None => {
                        self.error(
                            f,
                            &at("done_when"),
                            format!("`done_when: {w}` không hợp lệ"),
                            "`any` (một người bấm \"Đã xong\" là xong cho cả nhóm, mặc định) hoặc `all` (mỗi người tự báo xong phần của mình)",
                        );
                        None
                    }
                },
            };
            if let (Some(due), Some(remind), Some(at_time), Some(send_at)) =
                (due, &remind, at_time, send_at)
            {
                self.reminders_before_due(f, item, raw, due, remind, at_time.unwrap_or(send_at));
            }
            let mut who = Vec::new();
            match &raw.who {
                None => self.error(
                    f,
                    &at("who"),
                    "thiếu `who` (ai làm việc này)",
                    "ví dụ `who: [csvc]`; dùng mã nhóm hoặc mã người trong config/staff.yaml, hoặc `all`",
                ),
                Some(list) if list.0.is_empty() => self.error(
                    f,
                    &at("who"),
                    "danh sách `who` trống: không ai được giao việc này",
                    "ví dụ `who: [csvc]`",
                ),
                Some(list) => {
                    for (path, w) in item.entries("who", Some(list)) {
                        if let Some(a) = assignee(w, &group_set, &person_set) {
                            who.push(a);
                        } else if staff.is_some() {
                            self.error(
                                f,
                                &path,
                                format!("không có nhóm hay người nào mã `{w}`"),
                                ids_help(w, &who_ids, "mã nhóm/người trong config/staff.yaml"),
                            );
                        }
                    }
                }
            }
            let escalate_to = raw.escalate_to.as_ref().map(|list| {
                let mut to = Vec::new();
                for (path, w) in item.entries("escalate_to", Some(list)) {
                    if let Some(a) = assignee(w, &group_set, &person_set) {
                        to.push(a);
                    } else if staff.is_some() {
                        self.error(
                            f,
                            &path,
                            format!(
                                "không có nhóm hay người nào mã `{w}` để báo khi việc chưa xong"
                            ),
                            ids_help(
                                w,
                                &who_ids,
                                "mã nhóm/người trong config/staff.yaml; `[]` để không báo ai",
                            ),
                        );
                    }
                }
                to
            });
            if let (
                Some(id),
                Some(title),
                Some(what),
                Some(due),
                Some(remind),
                Some(at),
                Some(moves),
                Some(done_when),
            ) = (id, title, what, due, remind, at_time, moves, done_when)
            {
                out.push(Task {
                    id,
                    title,
                    what,
                    due,
                    remind,
                    at,
                    who,
                    moves,
                    done_when,
                    escalate_to,
                });
            }
        }
        (out, Some(known))
    }

    /// `due: -1d 17:00`: days from the event's first day (signed; `0d` the day itself) and/or a
    /// time of day.
    fn due(&mut self, f: &SourceFile, path: &[Seg], text: &str) -> Option<Due> {
        let mut due = Due::default();
        let mut ok = true;
        let mut days_seen = false;
        for word in words_of_due(text) {
            let word = word.as_str();
            if word.contains(':') {
                match NaiveTime::parse_from_str(word, "%H:%M") {
                    Ok(t) if due.time.is_none() => due.time = Some(t),
                    _ => ok = false,
                }
                continue;
            }
            let (sign, rest) = match word.strip_prefix('-') {
                Some(r) => (-1, r),
                None => (1, word.strip_prefix('+').unwrap_or(word)),
            };
            match parse_span(rest, &['d', 'w']) {
                Ok((n, unit)) if !days_seen => {
                    let n = i32::try_from(n).unwrap_or(i32::MAX);
                    let days = if unit == Unit::Week {
                        n.saturating_mul(7)
                    } else {
                        n
                    };
                    if days != 0 && !word.starts_with(['-', '+']) {
                        self.error(
                            f,
                            path,
                            format!("hạn `{text}`: `{word}` là trước hay sau ngày lễ?"),
                            format!("viết `-{rest}` (trước ngày lễ) hoặc `+{rest}` (sau ngày lễ)"),
                        );
                        return None;
                    }
                    due.days = sign * days;
                    days_seen = true;
                }
                _ => ok = false,
            }
        }
        if !ok || text.trim().is_empty() {
            self.error(
                f,
                path,
                format!("hạn `{text}` không hợp lệ"),
                "viết số ngày so với ngày lễ và/hoặc giờ: `-1d 17:00` (17 giờ hôm trước, cũng viết `-1 ngày 17:00`), `0d` (đầu giờ làm việc ngày lễ), `\"16:00\"`, `+2d 11:00`",
            );
            return None;
        }
        Some(due)
    }

    /// The task's reminders: `remind: [7d, 1d]`, or the one of `before:` (the old form).
    fn remind(&mut self, f: &SourceFile, item: super::Item, raw: &raw::Task) -> Option<Vec<Lead>> {
        let at = |key| item.at(key);
        match (&raw.remind, &raw.before) {
            (Some(_), Some(_)) => {
                self.error(
                    f,
                    &at("before"),
                    "có cả `remind` và `before`",
                    "bỏ `before`: `remind` thay cho nó (ví dụ `before: 7d` là `remind: [7d]`)",
                );
                None
            }
            (None, None) => {
                self.error(
                    f,
                    &item.at("id"),
                    "thiếu `remind` (nhắc trước hạn bao lâu)",
                    "ví dụ `remind: [7d, 1d]` (nhắc trước 7 ngày và trước 1 ngày) hoặc `remind: 2h`",
                );
                None
            }
            (None, Some(_)) => {
                let b = self.text((f, &at("before"), &raw.before), "thời gian nhắc trước")?;
                match parse_span(&b, &['d', 'w']) {
                    Ok((n, unit)) => Some(vec![lead(n, unit)]),
                    Err(why) => {
                        self.error(
                            f,
                            &at("before"),
                            format!("thời gian `{b}` không hợp lệ: {why}"),
                            "viết số ngày hoặc tuần trước sự kiện: `0d` (ngay hôm đó), `1d`, `7d`, `2w`, hoặc `3 ngày`, `1 tuần`",
                        );
                        None
                    }
                }
            }
            (Some(list), None) => {
                if list.0.is_empty() {
                    self.error(
                        f,
                        &at("remind"),
                        "danh sách `remind` trống",
                        "ví dụ `remind: [7d, 1d]`",
                    );
                    return None;
                }
                let mut out = Vec::new();
                let mut ok = true;
                for (path, text) in item.entries("remind", Some(list)) {
                    match parse_span(text, &['m', 'h', 'd', 'w']) {
                        Ok((n, unit)) => {
                            let l = lead(n, unit);
                            if out.contains(&l) {
                                self.warning(f, &path, format!("`{text}` lặp lại"), "");
                            }
                            out.push(l);
                        }
                        Err(why) => {
                            ok = false;
                            self.error(
                                f,
                                &path,
                                format!("thời gian nhắc `{text}` không hợp lệ: {why}"),
                                "viết bao lâu trước hạn: `7d`, `1d`, `0d` (ngày đến hạn), `2w`, `2h`, `30m`, hoặc `7 ngày`, `2 tuần`, `2 giờ`, `30 phút`",
                            );
                        }
                    }
                }
                Lead::normalize(&mut out);
                ok.then_some(out)
            }
        }
    }

    /// A reminder in days goes out at `at` on its day: on the deadline's own day, that must not
    /// be after the deadline.
    fn reminders_before_due(
        &mut self,
        f: &SourceFile,
        item: super::Item,
        raw: &raw::Task,
        due: Due,
        remind: &[Lead],
        at: NaiveTime,
    ) {
        let Some(deadline) = due.time else {
            return;
        };
        if remind.contains(&Lead::Days(0)) && at > deadline {
            let key = if raw.remind.is_some() {
                "remind"
            } else {
                "before"
            };
            self.error(
                f,
                &item.at(key),
                format!(
                    "lời nhắc trong ngày đến hạn lúc {} muộn hơn hạn {}",
                    at.format("%H:%M"),
                    deadline.format("%H:%M")
                ),
                "đặt `at` sớm hơn hạn, hoặc nhắc trước theo giờ (ví dụ `remind: [2h]`)",
            );
        }
    }
}

/// The words of a `due`, a number and the unit written after it apart joined (`-1 ngày` is
/// one word, as `-1ngày` or `-1d`).
fn words_of_due(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let after_number = out.last().is_some_and(|w| {
            w.trim_start_matches(['-', '+'])
                .chars()
                .all(|c| c.is_ascii_digit())
        });
        match out.last_mut() {
            Some(last) if after_number && word.chars().all(char::is_alphabetic) => {
                last.push(' ');
                last.push_str(word);
            }
            _ => out.push(word.to_string()),
        }
    }
    out
}

/// A lead as written: days and weeks are a day before the deadline's day, hours and minutes
/// exactly that long before it.
fn lead(n: u32, unit: Unit) -> Lead {
    match unit {
        Unit::Week => Lead::Days(n.saturating_mul(7)),
        Unit::Day => Lead::Days(n),
        Unit::Hour => Lead::Minutes(n.saturating_mul(60)),
        Unit::Minute | Unit::Second => Lead::Minutes(n),
    }
}

/// Whom `w` names in a `who` or `escalate_to` list, if the staff has it.
fn assignee(
    w: &str,
    groups: &std::collections::HashSet<&str>,
    people: &std::collections::HashSet<&str>,
) -> Option<Assignee> {
    if w == ALL {
        Some(Assignee::All)
    } else if groups.contains(w) {
        Some(Assignee::Group(w.to_string()))
    } else if people.contains(w) {
        Some(Assignee::Person(w.to_string()))
    } else {
        None
    }
}
