//! The staff file (`config/staff.yaml`): groups and people, their ids, names and addresses.
//!
//! Holds the checks of `groups:` and `people:` (an unknown group, an address used twice, a group
//! nobody is in). Does not know about tasks or events.

use std::collections::BTreeMap;

use super::syntax::deliverable;
use super::{Defined, Resolver, SourceFile, StaffIds, ids_help, k};
use chrono::NaiveTime;

use crate::schedule::{Group, Person, raw};
use crate::yaml::Seg;

impl Resolver {
    /// A `digest`: `daily HH:MM` (or `hằng ngày HH:MM`); `Some(None)` when absent, `None`
    /// after an error (reported).
    fn digest(
        &mut self,
        f: &SourceFile,
        path: &[Seg],
        v: &Option<crate::yaml::Scalar>,
    ) -> Option<Option<NaiveTime>> {
        let Some(text) = self.optional_text((f, path, v), "giờ gửi thư tổng hợp") else {
            return Some(None);
        };
        let time = text
            .strip_prefix("daily ")
            .or_else(|| text.strip_prefix("hằng ngày "))
            .and_then(|t| NaiveTime::parse_from_str(t.trim(), "%H:%M").ok());
        match time {
            Some(t) => Some(Some(t)),
            None => {
                self.error(
                    f,
                    path,
                    format!("`digest: {text}` không hợp lệ"),
                    "viết `daily` (hoặc `hằng ngày`) và giờ gửi thư tổng hợp, ví dụ `digest: daily 07:00`",
                );
                None
            }
        }
    }

    /// The groups and people that are right, and the ids of all (see [`StaffIds`]); `None`
    /// ids when the file does not parse.
    pub(super) fn staff<'a>(
        &mut self,
        f: &'a SourceFile,
    ) -> (Vec<Group>, Vec<Person>, Option<StaffIds>) {
        let Some(s) = self.parse::<raw::Staff>(f) else {
            return (Vec::new(), Vec::new(), None);
        };
        self.unknown_keys(f, &[], &s.unknown, raw::Staff::KEYS);
        let mut ids: BTreeMap<String, Defined<'a>> = BTreeMap::new();
        let mut known = StaffIds::default();
        let mut groups = Vec::new();
        // Each group's place in `groups:` with its id, for the "nobody is in it" warning.
        let mut group_places = Vec::new();
        // Each group's `lead`, checked once the people are known.
        let mut leads: Vec<(Vec<Seg>, String)> = Vec::new();
        for (i, g) in s.groups.iter().flatten().enumerate() {
            let (item, id) = self.item(f, ("groups", i), g, &mut ids, "nhóm");
            let name = self.text((f, &item.at("name"), &g.name), "tên nhóm");
            if id.as_deref() == Some(crate::feed::DAYS_OFF_FEED) {
                self.error(
                    f,
                    &item.at("id"),
                    format!(
                        "mã nhóm `{}` dành cho lịch ngày nghỉ (/calendar/{}.ics)",
                        crate::feed::DAYS_OFF_FEED,
                        crate::feed::DAYS_OFF_FEED
                    ),
                    "đặt mã khác cho nhóm",
                );
            }
            if let Some(id) = &id {
                known.groups.push(id.clone());
                group_places.push((i, id.clone()));
            }
            let lead = self.optional_text((f, &item.at("lead"), &g.lead), "trưởng nhóm");
            if let Some(l) = &lead {
                leads.push((item.at("lead").to_vec(), l.clone()));
            }
            let digest = self.digest(f, &item.at("digest"), &g.digest);
            if let (Some(id), Some(name), Some(digest)) = (id, name, digest) {
                groups.push(Group {
                    id,
                    name,
                    lead,
                    digest,
                });
            }
        }
        let group_ids = known.groups.clone();
        let group_set: std::collections::HashSet<&str> =
            group_ids.iter().map(String::as_str).collect();
        let mut people = Vec::new();
        let mut emails: BTreeMap<String, Defined<'a>> = BTreeMap::new();
        for (i, p) in s.people.iter().flatten().enumerate() {
            let (item, id) = self.item(f, ("people", i), p, &mut ids, "người");
            if let Some(id) = &id {
                known.people.push(id.clone());
            }
            let at = |key| item.at(key);
            let name = self.text((f, &at("name"), &p.name), "họ tên");
            let title = self.optional_text((f, &at("title"), &p.title), "chức vụ");
            let email = match self.text((f, &at("email"), &p.email), "địa chỉ email") {
                Some(e) if deliverable(&e).is_ok() => {
                    let key = e.to_lowercase();
                    if let Some(first) = emails.get(&key) {
                        self.warning(
                            f,
                            &at("email"),
                            format!("địa chỉ `{e}` đã dùng cho người khác"),
                            format!("đã có ở {}", first.describe(self)),
                        );
                    } else {
                        emails.insert(
                            key,
                            Defined {
                                file: f,
                                path: at("email").to_vec(),
                            },
                        );
                    }
                    Some(e)
                }
                Some(e) => {
                    let why = deliverable(&e).err().unwrap_or_default();
                    self.error(
                        f,
                        &at("email"),
                        format!("`{e}` không phải địa chỉ email"),
                        format!("{why}; ví dụ `hieutruong@truong.edu.vn`"),
                    );
                    None
                }
                None => None,
            };
            let mut groups_of = Vec::new();
            for (path, g) in item.entries("groups", p.groups.as_ref()) {
                if group_set.contains(g) {
                    groups_of.push(g.to_string());
                } else {
                    let known: Vec<&str> = group_ids.iter().map(String::as_str).collect();
                    self.error(
                        f,
                        &path,
                        format!("không có nhóm `{g}`"),
                        ids_help(g, &known, "các nhóm trong `groups:`"),
                    );
                }
            }
            let own = self.digest(f, &at("digest"), &p.digest);
            // A person's own `digest` wins; else the first of their groups' that has one.
            let digest = own.map(|own| {
                own.or_else(|| {
                    groups_of.iter().find_map(|g| {
                        groups
                            .iter()
                            .find(|x: &&Group| x.id == *g)
                            .and_then(|x| x.digest)
                    })
                })
            });
            if let (Some(id), Some(name), Some(email), Some(digest)) = (id, name, email, digest) {
                people.push(Person {
                    id,
                    name,
                    title,
                    email,
                    groups: groups_of,
                    digest,
                });
            }
        }
        for (path, lead) in &leads {
            if !known.people.contains(lead) {
                let ids: Vec<&str> = known.people.iter().map(String::as_str).collect();
                self.error(
                    f,
                    path,
                    format!("không có người nào mã `{lead}` để làm trưởng nhóm"),
                    ids_help(lead, &ids, "mã người trong `people:`"),
                );
            }
        }
        let named_in_people: std::collections::HashSet<&str> = s
            .people
            .iter()
            .flatten()
            .flat_map(|p| p.groups.iter().flat_map(|l| l.0.iter()))
            .filter_map(|g| g.text().map(str::trim))
            .collect();
        for (i, id) in &group_places {
            if !named_in_people.contains(id.as_str()) {
                self.warning(
                    f,
                    &[k("groups"), Seg::Index(*i), k("id")],
                    format!("nhóm `{id}` chưa có ai"),
                    "thêm mã nhóm vào `groups:` của người thuộc nhóm",
                );
            }
        }
        if people.is_empty() && s.people.as_ref().is_none_or(Vec::is_empty) {
            self.warning(
                f,
                &[],
                "chưa có ai trong `people:`: không ai nhận thư nhắc",
                "",
            );
        }
        (groups, people, Some(known))
    }
}
