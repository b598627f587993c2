//! The reminder plan: who must be told what, and when.
//!
//! Pure: occurrence × task × person → a due instant, in Asia/Ho_Chi_Minh (UTC+7, no daylight
//! saving). The due day is the event's first day minus the task's `before`, at the task's `at`
//! (or the unit's `send_at`); a due day outside `workdays` or on an official day off (an event's
//! `day_off`) moves to the previous workday. Each reminder has a stable [`ReminderKey`] — event
//! id, occurrence date, task id, person id — that edits elsewhere in the schedule do not change;
//! the store's unique key on it is what makes a second send impossible.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, TimeZone, Utc};

use crate::occurrence::{Occurrence, happenings, occurrences};
use crate::schedule::{Person, Schedule, Task};

/// Vietnam's offset: UTC+7 all year.
pub const VIETNAM: FixedOffset = match FixedOffset::east_opt(7 * 3600) {
    Some(z) => z,
    None => panic!("UTC+7 is a valid offset"),
};

/// Vietnam's offset (see [`VIETNAM`]).
pub fn zone() -> FixedOffset {
    VIETNAM
}

/// What identifies a reminder for ever. The ids are shared (`Arc<str>`): a plan holds one
/// key per person and task, and copying the ids would be most of its work.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReminderKey {
    pub event_id: Arc<str>,
    /// The occurrence's first day.
    pub date: NaiveDate,
    pub task_id: Arc<str>,
    pub person_id: Arc<str>,
}

impl fmt::Display for ReminderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.event_id, self.date, self.task_id, self.person_id
        )
    }
}

/// One reminder: a task of an occurrence, for one person, due at one instant.
#[derive(Debug, Clone)]
pub struct Reminder<'s> {
    pub key: ReminderKey,
    pub due: DateTime<Utc>,
    /// Shared by the reminders of one occurrence (a task for a whole staff is one clone).
    pub occurrence: Arc<Occurrence<'s>>,
    pub task: &'s Task,
    pub person: &'s Person,
    /// True when the due day was moved off a non-workday.
    pub moved: bool,
}

impl Reminder<'_> {
    /// The due instant in Vietnamese time.
    pub fn due_local(&self) -> DateTime<FixedOffset> {
        self.due.with_timezone(&zone())
    }
}

/// The reminders due in `from..=to`, sorted by due instant, then person, event and task.
pub fn plan(schedule: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Reminder<'_>> {
    if from > to {
        return Vec::new();
    }
    let tz = VIETNAM;
    let (first, last) = (
        from.with_timezone(&tz).date_naive(),
        to.with_timezone(&tz).date_naive(),
    );
    let max_before = schedule.max_before_days();
    // Events whose reminders can fall in the window: up to `max_before` days (and a few more
    // for the move to a workday) after it.
    let horizon = last
        .checked_add_days(Days::new(u64::from(max_before) + MAX_MOVE))
        .unwrap_or(last);
    let off = days_off(
        schedule,
        first.checked_sub_days(Days::new(MAX_MOVE)).unwrap_or(first),
        horizon,
    );
    let occurrences: Vec<Arc<Occurrence>> = occurrences(schedule, first, horizon)
        .into_iter()
        .map(Arc::new)
        .collect();
    // The plan's order — due instant, person id, then the key (event id, date, task id) — is
    // found on small records of numbers (ranks in id order), and the reminders are made once,
    // in that order. Ids are unique per kind, so comparing ranks is comparing ids.
    let person_rank = ranks(schedule.people.iter().map(|p| p.id.as_str()));
    let event_ids = sorted_ids(occurrences.iter().map(|o| o.event.id.as_str()));
    let task_ids = sorted_ids(schedule.tasks.iter().map(|t| t.id.as_str()));
    let mut pending: Vec<Pending> = Vec::new();
    for (occurrence, o) in occurrences.iter().enumerate() {
        let event = rank_of(&event_ids, &o.event.id);
        for (task_pos, &task) in o.tasks.iter().enumerate() {
            let Some((due, moved)) = due_of(schedule, &off, o.date, task) else {
                continue;
            };
            if due < from || due > to {
                continue;
            }
            let task_rank = rank_of(&task_ids, &task.id);
            for (person, _) in schedule.assignee_indices(task) {
                pending.push(Pending {
                    order: Order {
                        due,
                        person: person_rank.get(person).copied().unwrap_or(u32::MAX),
                        event,
                        date: o.date,
                        task: task_rank,
                    },
                    occurrence: index_u32(occurrence),
                    task: index_u32(task_pos),
                    person: index_u32(person),
                    moved,
                });
            }
        }
    }
    // Keys are unique: an unstable sort gives the one order, faster.
    pending.sort_unstable_by(|a, b| a.order.cmp(&b.order));
    // Each id once per plan, shared by its keys.
    let event_id: Vec<Arc<str>> = occurrences
        .iter()
        .map(|o| Arc::from(o.event.id.as_str()))
        .collect();
    let person_id: Vec<Arc<str>> = schedule
        .people
        .iter()
        .map(|p| Arc::from(p.id.as_str()))
        .collect();
    let task_id: Vec<Arc<str>> = task_ids.iter().map(|&id| Arc::from(id)).collect();
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        let (occurrence, task, person) =
            (p.occurrence as usize, p.task as usize, p.person as usize);
        let (Some(o), Some(event_id), Some(person_id), Some(task_id)) = (
            occurrences.get(occurrence),
            event_id.get(occurrence),
            person_id.get(person),
            task_id.get(p.order.task as usize),
        ) else {
            continue;
        };
        let (Some(&task), Some(person)) = (o.tasks.get(task), schedule.people.get(person)) else {
            continue;
        };
        out.push(Reminder {
            key: ReminderKey {
                event_id: Arc::clone(event_id),
                date: o.date,
                task_id: Arc::clone(task_id),
                person_id: Arc::clone(person_id),
            },
            due: p.order.due,
            occurrence: Arc::clone(o),
            task,
            person,
            moved: p.moved,
        });
    }
    out
}

/// A reminder before it is made: where it goes in the plan, and indices to make it from.
struct Pending {
    order: Order,
    /// Index in the plan's occurrences.
    occurrence: u32,
    /// Index in that occurrence's tasks.
    task: u32,
    /// Index in `schedule.people`.
    person: u32,
    moved: bool,
}

/// The plan's order (field order matters: the derived `Ord` compares in this order).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Order {
    due: DateTime<Utc>,
    /// Ranks in id order.
    person: u32,
    event: u32,
    date: NaiveDate,
    task: u32,
}

/// Each id's rank in id order, by its position in `ids`.
fn ranks<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Vec<u32> {
    let ids: Vec<&str> = ids.collect();
    let mut by_id: Vec<usize> = (0..ids.len()).collect();
    by_id.sort_unstable_by_key(|&i| ids[i]);
    let mut rank = vec![0; ids.len()];
    for (r, &i) in by_id.iter().enumerate() {
        rank[i] = index_u32(r);
    }
    rank
}

/// The distinct ids, sorted: an id's rank is its position.
fn sorted_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut ids: Vec<&str> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The rank of `id` in `sorted` (from [`sorted_ids`], which holds it).
fn rank_of(sorted: &[&str], id: &str) -> u32 {
    index_u32(sorted.binary_search(&id).unwrap_or_else(|i| i))
}

/// An index as `u32` (a plan has far fewer than 4 billion people, tasks or occurrences).
fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// When a task of an occurrence on `date` is due, and whether it was moved off a non-workday.
/// `off` must hold the days off around `date` (see [`days_off`]).
pub fn due_of(
    schedule: &Schedule,
    off: &BTreeSet<NaiveDate>,
    date: NaiveDate,
    task: &Task,
) -> Option<(DateTime<Utc>, bool)> {
    let (day, moved) = due_day(schedule, off, date, task)?;
    let time = task.at.unwrap_or(schedule.settings.send_at);
    let due = VIETNAM.from_local_datetime(&day.and_time(time)).single()?;
    Some((due.with_timezone(&Utc), moved))
}

/// How far back a due day may move to find a workday (Tết and a weekend fit easily).
const MAX_MOVE: u64 = 30;

/// The due day of `task` for an occurrence on `date`, moved to the previous workday if needed.
fn due_day(
    schedule: &Schedule,
    off: &BTreeSet<NaiveDate>,
    date: NaiveDate,
    task: &Task,
) -> Option<(NaiveDate, bool)> {
    let mut day = date.checked_sub_days(Days::new(task.before_days.into()))?;
    let mut moved = false;
    for _ in 0..MAX_MOVE {
        if is_workday(schedule, off, day) {
            return Some((day, moved));
        }
        day = day.pred_opt()?;
        moved = true;
    }
    // No workday within a month (a misconfiguration): keep the original day.
    Some((
        date.checked_sub_days(Days::new(task.before_days.into()))?,
        false,
    ))
}

fn is_workday(schedule: &Schedule, off: &BTreeSet<NaiveDate>, day: NaiveDate) -> bool {
    schedule.settings.workdays.contains(&day.weekday()) && !off.contains(&day)
}

/// The official days off (events with `day_off`) between `from` and `to`.
pub fn days_off(schedule: &Schedule, from: NaiveDate, to: NaiveDate) -> BTreeSet<NaiveDate> {
    let mut set = BTreeSet::new();
    let (Some(wide_from), Some(wide_to)) = (
        from.checked_sub_days(Days::new(MAX_MOVE)),
        to.checked_add_days(Days::new(MAX_MOVE)),
    ) else {
        return set;
    };
    for (event, when) in happenings(schedule, wide_from, wide_to) {
        let Some((a, b)) = event.day_off else {
            continue;
        };
        for offset in a..=b {
            let day = if offset < 0 {
                when.date
                    .checked_sub_days(Days::new(offset.unsigned_abs().into()))
            } else {
                when.date
                    .checked_add_days(Days::new(offset.unsigned_abs().into()))
            };
            if let Some(d) = day.filter(|d| (from..=to).contains(d)) {
                set.insert(d);
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan is exactly the naive one: every task of every occurrence for every assignee,
    /// sorted (stably) by due instant, person id and key — over three years of the shipped
    /// files, where many reminders share a due instant and a person.
    #[test]
    fn the_plan_is_every_reminder_in_the_documented_order() {
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ngayle.yaml");
        let today = NaiveDate::from_ymd_opt(2024, 9, 5).unwrap_or_default();
        let report = crate::schedule::load(&config, today);
        let Some(schedule) = report.schedule else {
            panic!("the shipped files load: {:?}", report.diagnostics);
        };
        let instant = |y, m, d, h| {
            VIETNAM
                .with_ymd_and_hms(y, m, d, h, 0, 0)
                .single()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        let (from, to) = (instant(2024, 1, 1, 0), instant(2026, 12, 31, 23));
        let (first, last) = (
            NaiveDate::from_ymd_opt(2023, 1, 1).unwrap_or_default(),
            NaiveDate::from_ymd_opt(2027, 12, 31).unwrap_or_default(),
        );
        let off = days_off(&schedule, first, last);
        let mut naive = Vec::new();
        for o in occurrences(&schedule, first, last) {
            for &task in &o.tasks {
                let Some((due, _)) = due_of(&schedule, &off, o.date, task) else {
                    continue;
                };
                if due < from || due > to {
                    continue;
                }
                for (_, person) in schedule.assignee_indices(task) {
                    let key = format!("{}/{}/{}/{}", o.event.id, o.date, task.id, person.id);
                    naive.push((due, person.id.clone(), key));
                }
            }
        }
        naive.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
        let planned: Vec<(DateTime<Utc>, String, String)> = plan(&schedule, from, to)
            .iter()
            .map(|r| (r.due, r.person.id.clone(), r.key.to_string()))
            .collect();
        assert!(planned.len() > 500, "{} reminders", planned.len());
        let shared = planned
            .windows(2)
            .filter(|w| w[0].0 == w[1].0 && w[0].1 == w[1].1)
            .count();
        assert!(shared > 100, "{shared} pairs share due and person");
        assert_eq!(planned, naive);
        // Each reminder's parts agree with its key.
        for r in plan(&schedule, from, to) {
            assert_eq!(&*r.key.event_id, r.occurrence.event.id);
            assert_eq!(r.key.date, r.occurrence.date);
            assert_eq!(&*r.key.task_id, r.task.id);
            assert_eq!(&*r.key.person_id, r.person.id);
        }
    }
}
