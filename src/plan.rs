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

use crate::occurrence::{Occurrence, occurrences};
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
    // Each reminder with its person's rank in id order: the sort below compares numbers, not
    // ids, and gives the same order as comparing the ids.
    let mut out: Vec<(usize, Reminder)> = Vec::new();
    let mut by_id: Vec<usize> = (0..schedule.people.len()).collect();
    by_id.sort_unstable_by(|&a, &b| schedule.people[a].id.cmp(&schedule.people[b].id));
    let mut rank = vec![0; by_id.len()];
    for (r, &i) in by_id.iter().enumerate() {
        rank[i] = r;
    }
    // Each id once per plan, shared by its keys.
    let person_ids: Vec<Arc<str>> = schedule
        .people
        .iter()
        .map(|p| Arc::from(p.id.as_str()))
        .collect();
    let mut task_ids: std::collections::HashMap<&str, Arc<str>> = std::collections::HashMap::new();
    for o in occurrences(schedule, first, horizon) {
        let o = Arc::new(o);
        let event_id: Arc<str> = Arc::from(o.event.id.as_str());
        for &task in &o.tasks {
            let Some((due, moved)) = due_of(schedule, &off, o.date, task) else {
                continue;
            };
            if due < from || due > to {
                continue;
            }
            let task_id = task_ids
                .entry(task.id.as_str())
                .or_insert_with(|| Arc::from(task.id.as_str()))
                .clone();
            for (index, person) in schedule.assignee_indices(task) {
                let person_rank = rank.get(index).copied().unwrap_or(usize::MAX);
                out.push((
                    person_rank,
                    Reminder {
                        key: ReminderKey {
                            event_id: Arc::clone(&event_id),
                            date: o.date,
                            task_id: Arc::clone(&task_id),
                            person_id: person_ids
                                .get(index)
                                .map_or_else(|| Arc::from(person.id.as_str()), Arc::clone),
                        },
                        due,
                        occurrence: Arc::clone(&o),
                        task,
                        person,
                        moved,
                    },
                ));
            }
        }
    }
    // By due instant, person id (its rank) and key. Keys are unique: an unstable sort gives
    // the same order, faster.
    out.sort_unstable_by(|(ra, a), (rb, b)| (a.due, ra, &a.key).cmp(&(b.due, rb, &b.key)));
    out.into_iter().map(|(_, r)| r).collect()
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
    for o in occurrences(schedule, wide_from, wide_to) {
        let Some((a, b)) = o.event.day_off else {
            continue;
        };
        for offset in a..=b {
            let day = if offset < 0 {
                o.date
                    .checked_sub_days(Days::new(offset.unsigned_abs().into()))
            } else {
                o.date
                    .checked_add_days(Days::new(offset.unsigned_abs().into()))
            };
            if let Some(d) = day.filter(|d| (from..=to).contains(d)) {
                set.insert(d);
            }
        }
    }
    set
}
