//! The tasks file (`calendars/tasks.yaml`): the kinds of work, their lead times and who does
//! them.
//!
//! Holds the checks of `tasks:` and of `who:` against the staff. Does not know about events.

use std::collections::BTreeMap;

use super::syntax::parse_duration;
use super::{ALL, Defined, Resolver, SourceFile, ids_help};
use crate::schedule::{Assignee, Group, Person, Task, raw};

impl Resolver {
    pub(super) fn tasks<'a>(
        &mut self,
        f: &'a SourceFile,
        groups: &[Group],
        people: &[Person],
    ) -> Vec<Task> {
        let Some(t) = self.parse::<raw::Tasks>(f) else {
            return Vec::new();
        };
        self.unknown_keys(f, &[], &t.unknown, raw::Tasks::KEYS);
        if t.tasks.as_ref().is_none_or(Vec::is_empty) {
            self.warning(f, &[], "chưa có loại việc nào trong `tasks:`", "");
        }
        let mut ids: BTreeMap<String, Defined<'a>> = BTreeMap::new();
        let mut who_ids: Vec<&str> = vec![ALL];
        who_ids.extend(groups.iter().map(|g| g.id.as_str()));
        who_ids.extend(people.iter().map(|p| p.id.as_str()));
        let group_set: std::collections::HashSet<&str> =
            groups.iter().map(|g| g.id.as_str()).collect();
        let person_set: std::collections::HashSet<&str> =
            people.iter().map(|p| p.id.as_str()).collect();
        let mut out = Vec::new();
        for (i, raw) in t.tasks.iter().flatten().enumerate() {
            let (item, id) = self.item(f, ("tasks", i), raw, &mut ids, "việc");
            let at = |key| item.at(key);
            let title = self.text((f, &at("title"), &raw.title), "tên việc");
            let what = self.text_lines((f, &at("do"), &raw.what), "nội dung việc cần làm");
            let before = self.text((f, &at("before"), &raw.before), "thời gian làm trước").and_then(|b| {
                match parse_duration(&b, &['d', 'w']) {
                    Ok(d) => u32::try_from(d.num_days()).ok(),
                    Err(why) => {
                        self.error(
                            f,
                            &at("before"),
                            format!("thời gian `{b}` không hợp lệ: {why}"),
                            "viết số ngày hoặc tuần trước sự kiện: `0d` (ngay hôm đó), `1d`, `7d`, `2w`",
                        );
                        None
                    }
                }
            });
            let at_time = match self.optional_text((f, &at("at"), &raw.at), "giờ nhắc") {
                None => Some(None),
                Some(s) => self.time_of_day(f, &at("at"), &s).map(Some),
            };
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
                        if w == ALL {
                            who.push(Assignee::All);
                        } else if group_set.contains(w) {
                            who.push(Assignee::Group(w.to_string()));
                        } else if person_set.contains(w) {
                            who.push(Assignee::Person(w.to_string()));
                        } else {
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
            if let (Some(id), Some(title), Some(what), Some(before_days), Some(at)) =
                (id, title, what, before, at_time)
            {
                out.push(Task {
                    id,
                    title,
                    what,
                    before_days,
                    at,
                    who,
                });
            }
        }
        out
    }
}
