//! The reminder plan: who must be told what, and when.
//!
//! Pure: occurrence × task × lead × person → a send instant, in Asia/Ho_Chi_Minh (UTC+7, no
//! daylight saving). A task of an occurrence has a deadline (its `due`, relative to the
//! event's first day; by default the start of the working day, `send_at`, on that day) and one
//! reminder per lead time of its `remind` (the old `before` is one). A lead in days goes out on
//! the day that many days before the deadline's, at the task's `at` (or `send_at`); a lead in
//! hours or minutes exactly that long before the deadline. A send day outside `workdays` or on
//! an official day off (`crate::days_off`: the Labour Code's holidays and nghỉ bù, each year's
//! decisions, an event's `day_off`) moves by the task's `move`: to the previous workday (the
//! default), to the next one (never past the deadline), or not at all; a make-up working
//! Saturday is a workday. The deadline does not move. Each reminder has a stable [`ReminderKey`] — event id, occurrence date, task id,
//! person id, lead — that edits elsewhere in the schedule do not change; the store's unique key
//! on it is what makes a second send impossible.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, TimeZone, Utc};

use crate::days_off::Calendar;
use crate::occurrence::{Occurrence, happenings, occurrences};
use crate::schedule::{Event, Lead, Move, Person, Schedule, Task};
use crate::vietnam::ZONE;

/// What identifies a reminder for ever. The ids are shared (`Arc<str>`): a plan holds one
/// key per person and task, and copying the ids would be most of its work.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReminderKey {
    pub event_id: Arc<str>,
    /// The occurrence's first day.
    pub date: NaiveDate,
    pub task_id: Arc<str>,
    pub person_id: Arc<str>,
    /// Which of the task's reminders: its lead, normalized (`7d`, `1d`, `120m`; see
    /// [`lead_keys`]), so that a lead keeps its key whatever other leads are added or dropped.
    /// Rows recorded before tasks had leads have `''`; the store gives each the lead of the
    /// planned reminder due nearest its instant (`store::adopt_legacy`).
    pub lead: Arc<str>,
}

impl fmt::Display for ReminderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.event_id, self.date, self.task_id, self.person_id
        )?;
        if !self.lead.is_empty() {
            write!(f, "/{}", self.lead)?;
        }
        Ok(())
    }
}

/// One reminder: a task of an occurrence, for one person, sent at one instant (`due`) ahead of
/// the task's deadline.
#[derive(Debug, Clone)]
pub struct Reminder<'s> {
    pub key: ReminderKey,
    /// When it goes out ("Nhắc lúc").
    pub due: DateTime<Utc>,
    /// When the work must be done ("Hạn").
    pub deadline: DateTime<Utc>,
    /// Its lead time before the deadline.
    pub lead: Lead,
    /// Shared by the reminders of one occurrence (a task for a whole staff is one clone).
    pub occurrence: Arc<Occurrence<'s>>,
    pub task: &'s Task,
    pub person: &'s Person,
    /// True when the due day was moved off a non-workday.
    pub moved: bool,
    /// A reminder of the task to its person, or the escalation of a task not done.
    pub kind: Kind,
}

/// What a [`Reminder`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// To a person the task is given to, ahead of its deadline.
    Reminder,
    /// To whoever answers for the task (`escalate_to`, the group's lead, Ban giám hiệu), after
    /// its deadline, when it was not answered "Đã xong": its person is the one told.
    Escalation,
}

/// The lead part of an escalation's key: no lead of `remind` is written so.
pub const ESCALATION_LEAD: &str = "sau-han";

impl Reminder<'_> {
    /// The send instant in Vietnamese time.
    pub fn due_local(&self) -> DateTime<FixedOffset> {
        self.due.with_timezone(&ZONE)
    }

    /// The deadline in Vietnamese time.
    pub fn deadline_local(&self) -> DateTime<FixedOffset> {
        self.deadline.with_timezone(&ZONE)
    }
}

/// The keys' lead part of each of `task`'s reminders, in the order of its `remind`: its label.
pub fn lead_keys(task: &Task) -> Vec<Arc<str>> {
    task.remind.iter().map(|l| Arc::from(l.label())).collect()
}

/// The reminders due in `from..=to`, sorted by due instant, then person, event and task, then
/// the task's leads in their `remind` order.
pub fn plan(schedule: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Reminder<'_>> {
    if from > to {
        return Vec::new();
    }
    let tz = ZONE;
    let (first, last) = (
        from.with_timezone(&tz).date_naive(),
        to.with_timezone(&tz).date_naive(),
    );
    let max_before = schedule.max_before_days();
    // Events whose reminders can fall in the window: up to `max_before` days (and a few more
    // for the move to a workday) after it, or `max_after` days before it (a deadline after the
    // event's day).
    let horizon = last
        .checked_add_days(Days::new(u64::from(max_before) + MAX_MOVE + 1))
        .unwrap_or(last);
    let start = first
        .checked_sub_days(Days::new(u64::from(schedule.max_after_days())))
        .unwrap_or(first);
    let off = days_off(
        schedule,
        start.checked_sub_days(Days::new(MAX_MOVE)).unwrap_or(start),
        horizon,
    );
    let occurrences: Vec<Arc<Occurrence>> = occurrences(schedule, start, horizon)
        .into_iter()
        .map(Arc::new)
        .collect();
    // The plan's order — due instant, person id, then the key (event id, date, task id) — is
    // found on numbers (ranks in id order; ids are unique per kind, so comparing ranks is
    // comparing ids), and each reminder is made once, in that order.
    let person_rank = ranks(schedule.people.iter().map(|p| p.id.as_str()));
    let event_ids = sorted_ids(occurrences.iter().map(|o| o.event.id.as_str()));
    let task_ids = sorted_ids(schedule.tasks.iter().map(|t| t.id.as_str()));
    // Each task's assignees and lead keys once per plan, by task rank.
    let mut assignees: Vec<Vec<usize>> = vec![Vec::new(); task_ids.len()];
    let mut leads: Vec<Vec<Arc<str>>> = vec![Vec::new(); task_ids.len()];
    for task in &schedule.tasks {
        let rank = rank_of(&task_ids, &task.id) as usize;
        if let (Some(a), Some(l)) = (assignees.get_mut(rank), leads.get_mut(rank)) {
            *a = schedule.assignee_positions(task);
            *l = lead_keys(task);
        }
    }
    // One group per task of an occurrence due in the window: its reminders differ only by
    // person.
    let mut groups: Vec<TaskRun> = Vec::new();
    for (occurrence, o) in occurrences.iter().enumerate() {
        let event = rank_of(&event_ids, &o.event.id);
        for &task in &o.tasks {
            let Some(timing) = timing(schedule, &off, o.date, task) else {
                continue;
            };
            let task_rank = rank_of(&task_ids, &task.id);
            for r in timing.reminders {
                if r.at < from || r.at > to {
                    continue;
                }
                groups.push(TaskRun {
                    order: Order {
                        due: r.at,
                        person: 0,
                        event,
                        date: o.date,
                        task: task_rank,
                        lead: index_u32(r.index),
                    },
                    occurrence,
                    task,
                    deadline: timing.deadline,
                    lead: r.lead,
                    moved: r.moved,
                    people: assignees.get(task_rank as usize).map_or(&[], Vec::as_slice),
                });
            }
        }
    }
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
    let mut out = Vec::with_capacity(groups.iter().map(|g| g.people.len()).sum());
    Sorted::new(&groups, &person_rank).for_each(|g, person| {
        let (Some(g), Some(p)) = (groups.get(g), schedule.people.get(person)) else {
            return;
        };
        let (Some(o), Some(event_id), Some(task_id), Some(person_id), Some(lead)) = (
            occurrences.get(g.occurrence),
            event_id.get(g.occurrence),
            task_id.get(g.order.task as usize),
            person_id.get(person),
            leads
                .get(g.order.task as usize)
                .and_then(|l| l.get(g.order.lead as usize)),
        ) else {
            return;
        };
        out.push(Reminder {
            key: ReminderKey {
                event_id: Arc::clone(event_id),
                date: o.date,
                task_id: Arc::clone(task_id),
                person_id: Arc::clone(person_id),
                lead: Arc::clone(lead),
            },
            due: g.order.due,
            deadline: g.deadline,
            lead: g.lead,
            occurrence: Arc::clone(o),
            task: g.task,
            person: p,
            moved: g.moved,
            kind: Kind::Reminder,
        });
    });
    out
}

/// The first instant at or after `t` whose Vietnamese time of day is `at`.
fn next_at(t: DateTime<Utc>, at: chrono::NaiveTime) -> DateTime<Utc> {
    let local = t.with_timezone(&ZONE);
    let same_day = ZONE
        .from_local_datetime(&local.date_naive().and_time(at))
        .single()
        .map(|d| d.with_timezone(&Utc));
    match same_day {
        Some(d) if d >= t => d,
        Some(d) => d + chrono::Duration::days(1),
        None => t,
    }
}

/// The escalations due in `from..=to`: for each task of an occurrence, one per person told
/// ([`Schedule::escalation_recipients`]), at its deadline plus `reminders.escalate_after`
/// (not moved off days off: it says the work was not done in time) — for a person with a
/// `digest`, at the next time of their daily email, so that one email gathers them. Its `deadline` is the
/// task's. Sorted by due instant, person, then key. Whether the task was done is for the
/// store to tell.
pub fn escalations(
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Reminder<'_>> {
    let mut out = Vec::new();
    if from > to {
        return out;
    }
    let after = schedule.settings.escalate_after;
    let (Some(first), Some(last)) = (
        // A digest sends up to a day after the escalation's own instant.
        (from - after - chrono::Duration::days(1))
            .with_timezone(&ZONE)
            .date_naive()
            .checked_sub_days(Days::new(u64::from(schedule.max_after_days()) + 1)),
        to.with_timezone(&ZONE)
            .date_naive()
            .checked_add_days(Days::new(u64::from(schedule.max_before_days()) + 1)),
    ) else {
        return out;
    };
    let lead: Arc<str> = Arc::from(ESCALATION_LEAD);
    for o in occurrences(schedule, first, last) {
        let o = Arc::new(o);
        let event_id: Arc<str> = Arc::from(o.event.id.as_str());
        for &task in &o.tasks {
            let Some(deadline) = deadline_of(schedule, o.date, task) else {
                continue;
            };
            let due = deadline + after;
            let task_id: Arc<str> = Arc::from(task.id.as_str());
            for person in schedule.escalation_recipients(task) {
                // Gathered into the person's daily email: the first one at or after it.
                let due = match person.digest {
                    Some(t) => next_at(due, t),
                    None => due,
                };
                if due < from || due > to {
                    continue;
                }
                out.push(Reminder {
                    key: ReminderKey {
                        event_id: Arc::clone(&event_id),
                        date: o.date,
                        task_id: Arc::clone(&task_id),
                        person_id: Arc::from(person.id.as_str()),
                        lead: Arc::clone(&lead),
                    },
                    due,
                    deadline,
                    lead: Lead::Minutes(0),
                    occurrence: Arc::clone(&o),
                    task,
                    person,
                    moved: false,
                    kind: Kind::Escalation,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (
            a.due,
            &a.key.person_id,
            &a.key.event_id,
            a.key.date,
            &a.key.task_id,
        )
            .cmp(&(
                b.due,
                &b.key.person_id,
                &b.key.event_id,
                b.key.date,
                &b.key.task_id,
            ))
    });
    out
}

/// The reminders of one lead of one task of one occurrence: the same but for the person. (Not
/// a group of staff, `schedule::Group`.)
struct TaskRun<'s, 'p> {
    /// The order of its reminders, but for the person (0 here).
    order: Order,
    /// Index in the plan's occurrences.
    occurrence: usize,
    task: &'s Task,
    deadline: DateTime<Utc>,
    lead: Lead,
    moved: bool,
    /// Indices in `schedule.people`.
    people: &'p [usize],
}

/// The plan's order (field order matters: the derived `Ord` compares in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Order {
    due: DateTime<Utc>,
    /// Ranks in id order.
    person: u32,
    event: u32,
    date: NaiveDate,
    task: u32,
    /// The index in the task's `remind`.
    lead: u32,
}

/// The reminders of some groups in plan order, as (group, person) indices.
///
/// Each reminder's order is packed into one `u128` — offsets from the first due instant and
/// date, ranks, then the group and person indices — when the widths fit (a plan of a few years
/// for thousands of people needs ~70 bits), so the sort compares integers in a small array;
/// otherwise whole orders are compared field by field. Orders are unique (ids are), so the
/// indices never decide and both give the same sequence.
enum Sorted {
    Packed(Packing, Vec<u128>),
    Fields(Vec<(Order, usize, usize)>),
}

impl Sorted {
    fn new(groups: &[TaskRun], person_rank: &[u32]) -> Sorted {
        let Some(pack) = Packing::new(groups, person_rank.len()) else {
            return Sorted::by_fields(groups, person_rank);
        };
        let mut keys = Vec::with_capacity(groups.iter().map(|g| g.people.len()).sum());
        for (i, g) in groups.iter().enumerate() {
            let bits = pack.group_bits(g, i);
            for &p in g.people {
                keys.push(pack.key(bits, rank_of_person(person_rank, p), p));
            }
        }
        keys.sort_unstable();
        Sorted::Packed(pack, keys)
    }

    /// The same sequence, always compared field by field.
    fn by_fields(groups: &[TaskRun], person_rank: &[u32]) -> Sorted {
        let mut all = Vec::with_capacity(groups.iter().map(|g| g.people.len()).sum());
        for (i, g) in groups.iter().enumerate() {
            for &p in g.people {
                let person = rank_of_person(person_rank, p);
                all.push((Order { person, ..g.order }, i, p));
            }
        }
        all.sort_unstable_by_key(|a| a.0);
        Sorted::Fields(all)
    }

    fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        match self {
            Sorted::Packed(pack, keys) => keys.iter().for_each(|&k| {
                let (g, p) = pack.split(k);
                f(g, p)
            }),
            Sorted::Fields(all) => all.iter().for_each(|&(_, g, p)| f(g, p)),
        }
    }
}

/// How a reminder's order and indices are packed into a `u128`, most significant first: due
/// (seconds after the first), person rank, event rank, date (days after the first), task rank,
/// lead index, group index, person index.
struct Packing {
    due_base: i64,
    date_base: i64,
    /// Bit widths of all but the due.
    rank: u32,
    event: u32,
    date: u32,
    task: u32,
    lead: u32,
    group: u32,
    person: u32,
}

/// `v << s`, 0 when every bit is shifted out (a field of width 0 holds only 0).
fn shl(v: u128, s: u32) -> u128 {
    v.checked_shl(s).unwrap_or(0)
}

impl Packing {
    /// The packing for these groups, or `None` when their orders need more than 128 bits (or
    /// there are none).
    fn new(groups: &[TaskRun], people: usize) -> Option<Packing> {
        // Due instants are whole seconds (times are HH:MM); anything finer goes by fields.
        if groups
            .iter()
            .any(|g| g.order.due.timestamp_subsec_nanos() != 0)
        {
            return None;
        }
        let width = |max: u64| u64::BITS - max.leading_zeros();
        let due = |g: &TaskRun| g.order.due.timestamp();
        let day = |g: &TaskRun| i64::from(g.order.date.num_days_from_ce());
        let (due_base, due_max) = (groups.iter().map(due).min()?, groups.iter().map(due).max()?);
        let (date_base, date_max) = (groups.iter().map(day).min()?, groups.iter().map(day).max()?);
        let max = |f: fn(&Order) -> u32| groups.iter().map(|g| u64::from(f(&g.order))).max();
        let pack = Packing {
            due_base,
            date_base,
            rank: width(people as u64),
            event: width(max(|o| o.event)?),
            date: width(date_max.abs_diff(date_base)),
            task: width(max(|o| o.task)?),
            lead: width(max(|o| o.lead)?),
            group: width(groups.len() as u64),
            person: width(people as u64),
        };
        let total = width(due_max.abs_diff(due_base)) + pack.rank + pack.below_rank();
        (total <= u128::BITS).then_some(pack)
    }

    fn below_rank(&self) -> u32 {
        self.event + self.date + self.task + self.lead + self.group + self.person
    }

    /// A group's part of its reminders' keys (all but the person's rank and index).
    fn group_bits(&self, g: &TaskRun, index: usize) -> u128 {
        let due = u128::from(g.order.due.timestamp().abs_diff(self.due_base));
        let day = i64::from(g.order.date.num_days_from_ce()).abs_diff(self.date_base);
        let mut low = 0u128;
        for (value, bits) in [
            (u64::from(g.order.event), self.event),
            (day, self.date),
            (u64::from(g.order.task), self.task),
            (u64::from(g.order.lead), self.lead),
            (index as u64, self.group),
        ] {
            low = shl(low, bits) | u128::from(value);
        }
        shl(due, self.rank + self.below_rank()) | shl(low, self.person)
    }

    fn key(&self, group_bits: u128, rank: u32, person: usize) -> u128 {
        group_bits | shl(u128::from(rank), self.below_rank()) | person as u128
    }

    /// The (group, person) indices of a key.
    fn split(&self, key: u128) -> (usize, usize) {
        let mask = |bits: u32| shl(1, bits).wrapping_sub(1);
        let person = key & mask(self.person);
        let group = (key >> self.person) & mask(self.group);
        (group as usize, person as usize)
    }
}

/// Each id's rank in id order, by its position in `ids`.
fn ranks<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<u32> {
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
    // The ids were collected from the same occurrences and tasks that are ranked: a missing
    // one would give a wrong order, not a smaller plan.
    index_u32(
        sorted
            .binary_search(&id)
            .expect("the sorted ids hold every id of the plan"),
    )
}

/// The rank of person `p`, an index into the schedule's people (a group's people are such
/// indices, and `person_rank` ranks every person).
fn rank_of_person(person_rank: &[u32], p: usize) -> u32 {
    *person_rank
        .get(p)
        .expect("a group's people are indices into the schedule's people")
}

/// An index as `u32` (a plan has far fewer than 4 billion people, tasks or occurrences).
fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// When a task of an occurrence on `date` must be done, and when each of its reminders goes
/// out. `off` must hold the days off around `date` (see [`days_off`]).
pub fn timing(schedule: &Schedule, off: &Calendar, date: NaiveDate, task: &Task) -> Option<Timing> {
    let deadline = deadline_of(schedule, date, task)?;
    let local = deadline.with_timezone(&ZONE);
    let at = task.at.unwrap_or(schedule.settings.send_at);
    let mut reminders = Vec::with_capacity(task.remind.len());
    for (index, &lead) in task.remind.iter().enumerate() {
        let planned = match lead {
            Lead::Days(n) => {
                let day = local.date_naive().checked_sub_days(Days::new(n.into()))?;
                let t = ZONE.from_local_datetime(&day.and_time(at)).single()?;
                // On the deadline's own day at a later hour (check refuses it): at the deadline.
                t.with_timezone(&Utc).min(deadline)
            }
            Lead::Minutes(m) => deadline - chrono::Duration::minutes(m.into()),
        };
        let (at, moved) = to_workday(schedule, off, planned, task.moves, deadline)?;
        reminders.push(Remind {
            lead,
            index,
            planned,
            at,
            moved,
        });
    }
    Some(Timing {
        deadline,
        reminders,
    })
}

/// The deadline of `task` for an occurrence on `date`: `due`'s days after it, at `due`'s time.
/// Without one, the start of the working day (`send_at`) — or, when the task reminds on the
/// deadline's own day at a later hour (the old `before: 0d` with `at: "08:00"`), that hour: a
/// task never has a reminder after its deadline. It does not move off days off.
pub fn deadline_of(schedule: &Schedule, date: NaiveDate, task: &Task) -> Option<DateTime<Utc>> {
    let offset = task.due.days;
    let day = if offset < 0 {
        date.checked_sub_days(Days::new(offset.unsigned_abs().into()))?
    } else {
        date.checked_add_days(Days::new(offset.unsigned_abs().into()))?
    };
    let send_at = schedule.settings.send_at;
    let time = task.due.time.unwrap_or_else(|| {
        if task.remind.contains(&Lead::Days(0)) {
            send_at.max(task.at.unwrap_or(send_at))
        } else {
            send_at
        }
    });
    let t = ZONE.from_local_datetime(&day.and_time(time)).single()?;
    Some(t.with_timezone(&Utc))
}

/// A task's deadline for one occurrence and its reminders, in the order of its `remind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    pub deadline: DateTime<Utc>,
    pub reminders: Vec<Remind>,
}

/// One reminder of a [`Timing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remind {
    pub lead: Lead,
    /// Its index in the task's `remind`.
    pub index: usize,
    /// When it would go out but for days off (the feeds' alarms ring then).
    pub planned: DateTime<Utc>,
    /// When it goes out.
    pub at: DateTime<Utc>,
    /// True when its day was moved off a non-workday.
    pub moved: bool,
}

/// How far a send day may move to find a workday (Tết and a weekend fit easily).
const MAX_MOVE: u64 = 30;

/// `t`, or the same time of day on a workday when its day is not one — the last before it
/// (`Move::Earlier`), the first after it unless that is past `deadline` (`Move::Later`; then
/// the last before it), or none (`Move::Keep`) — and whether it moved.
fn to_workday(
    schedule: &Schedule,
    off: &Calendar,
    t: DateTime<Utc>,
    policy: Move,
    deadline: DateTime<Utc>,
) -> Option<(DateTime<Utc>, bool)> {
    let local = t.with_timezone(&ZONE).naive_local();
    let rest = |d: NaiveDate| schedule.is_rest_day(d);
    if policy == Move::Keep || off.is_workday(&rest, local.date()) {
        return Some((t, false));
    }
    let at = |day: NaiveDate| -> Option<DateTime<Utc>> {
        let moved = ZONE
            .from_local_datetime(&day.and_time(local.time()))
            .single()?;
        Some(moved.with_timezone(&Utc))
    };
    if policy == Move::Later {
        let mut day = local.date();
        for _ in 0..MAX_MOVE {
            day = day.succ_opt()?;
            if off.is_workday(&rest, day) {
                match at(day) {
                    Some(moved) if moved <= deadline => return Some((moved, true)),
                    _ => break,
                }
            }
        }
    }
    let mut day = local.date();
    for _ in 0..MAX_MOVE {
        day = day.pred_opt()?;
        if off.is_workday(&rest, day) {
            return Some((at(day)?, true));
        }
    }
    // No workday within a month (a misconfiguration): keep the original day.
    Some((t, false))
}

/// The official days off and make-up working days between `from` and `to`: the Labour
/// Code's holidays with nghỉ bù and each year's decisions (`crate::days_off`), and the days
/// of events with `day_off`.
pub fn days_off(schedule: &Schedule, from: NaiveDate, to: NaiveDate) -> Calendar {
    let rest = |d: NaiveDate| schedule.is_rest_day(d);
    let mut cal = Calendar::between(&schedule.decisions, &rest, from, to);
    cal.off.extend(
        unit_days_off(schedule, from, to)
            .into_iter()
            .map(|(d, _)| d),
    );
    cal
}

/// The unit's own days off between `from` and `to`: the days of events with `day_off`, each
/// with its event, in date order (a day two events give off comes twice).
pub fn unit_days_off(
    schedule: &Schedule,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<(NaiveDate, &Event)> {
    let mut out = Vec::new();
    let (Some(wide_from), Some(wide_to)) = (
        from.checked_sub_days(Days::new(MAX_MOVE)),
        to.checked_add_days(Days::new(MAX_MOVE)),
    ) else {
        return out;
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
                out.push((d, event));
            }
        }
    }
    out.sort_by_key(|(d, _)| *d);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan is exactly the naive one: every task of every occurrence for every assignee,
    /// sorted by due instant, person id and key (a task's leads in `remind` order) — over three years of the shipped
    /// files, where many reminders share a due instant and a person.
    #[test]
    fn the_plan_is_every_reminder_in_the_documented_order() {
        let today = NaiveDate::from_ymd_opt(2024, 9, 5).unwrap_or_default();
        let schedule = crate::schedule::shipped(today);
        let instant = |y, m, d, h| {
            ZONE.with_ymd_and_hms(y, m, d, h, 0, 0)
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
                let Some(timing) = timing(&schedule, &off, o.date, task) else {
                    continue;
                };
                for (i, (r, lead)) in timing.reminders.iter().zip(lead_keys(task)).enumerate() {
                    if r.at < from || r.at > to {
                        continue;
                    }
                    for (_, person) in schedule.assignee_indices(task) {
                        let base = format!("{}/{}/{}/{}", o.event.id, o.date, task.id, person.id);
                        let key = format!("{base}/{lead}");
                        naive.push((r.at, person.id.clone(), base, i, key));
                    }
                }
            }
        }
        // By due, person, then event, date, task and person as written, then the task's leads
        // in their `remind` order (two of them can fall on one instant: moved off Tết).
        naive.sort_by(|a, b| (a.0, &a.1, &a.2, a.3).cmp(&(b.0, &b.1, &b.2, b.3)));
        let naive: Vec<(DateTime<Utc>, String, String)> =
            naive.into_iter().map(|(t, p, _, _, k)| (t, p, k)).collect();
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

    /// Packed keys sort exactly as the orders compared field by field, ties in the leading
    /// fields included; orders too wide to pack are still sorted.
    #[test]
    fn packed_orders_sort_as_the_fields_do() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let task = Task {
            id: "t".into(),
            title: String::new(),
            what: String::new(),
            due: crate::schedule::Due::default(),
            remind: vec![Lead::Days(0)],
            at: None,
            who: Vec::new(),
            moves: Move::Earlier,
            done_when: crate::schedule::DoneWhen::Any,
            escalate_to: None,
        };
        let day0 = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        // 60 people, their ranks a permutation; groups with overlapping dues, events, tasks.
        let people = 60;
        let mut person_rank: Vec<u32> = (0..people).collect();
        for i in (1..person_rank.len()).rev() {
            let j = usize::try_from(next(i as u64 + 1)).unwrap_or(0);
            person_rank.swap(i, j);
        }
        // Who each group is for: a third of the staff, drawn at random.
        let members: Vec<Vec<usize>> = (0..300)
            .map(|_| (0..people as usize).filter(|_| next(3) == 0).collect())
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        let mut groups = Vec::new();
        while groups.len() < members.len() {
            let date = day0 + Days::new(next(120));
            let order = Order {
                due: (date - Days::new(next(3)))
                    .and_hms_opt(u32::try_from(next(2)).unwrap_or(0) + 7, 0, 0)
                    .unwrap_or_default()
                    .and_utc(),
                person: 0,
                event: u32::try_from(next(70)).unwrap_or(0),
                date,
                task: u32::try_from(next(11)).unwrap_or(0),
                lead: u32::try_from(next(2)).unwrap_or(0),
            };
            // Unique keys, as ids make them in a plan.
            if !seen.insert((order.event, order.date, order.task, order.lead)) {
                continue;
            }
            groups.push(TaskRun {
                order,
                occurrence: 0,
                task: &task,
                deadline: order.due,
                lead: Lead::Days(0),
                moved: false,
                people: &members[groups.len()],
            });
        }
        let pairs = |sorted: Sorted| {
            let mut v = Vec::new();
            sorted.for_each(|g, p| v.push((g, p)));
            v
        };
        let packed = Sorted::new(&groups, &person_rank);
        assert!(matches!(packed, Sorted::Packed(..)));
        let packed = pairs(packed);
        let fields = pairs(Sorted::by_fields(&groups, &person_rank));
        assert!(packed.len() > 4_000, "{}", packed.len());
        assert_eq!(packed, fields);
        let order_of = |&(g, p): &(usize, usize)| Order {
            person: person_rank[p],
            ..groups[g].order
        };
        assert!(packed.windows(2).all(|w| order_of(&w[0]) < order_of(&w[1])));
        let shared = packed
            .windows(2)
            .filter(|w| order_of(&w[0]).due == order_of(&w[1]).due)
            .count();
        assert!(shared > 1_000, "{shared}");

        // Ranks of 32 bits each and dates millennia apart do not fit in 128 bits.
        let far = |y, rank| TaskRun {
            order: Order {
                due: NaiveDate::from_ymd_opt(y, 1, 1)
                    .unwrap_or_default()
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default()
                    .and_utc(),
                person: 0,
                event: rank,
                date: NaiveDate::from_ymd_opt(y, 1, 1).unwrap_or_default(),
                task: rank,
                lead: 0,
            },
            occurrence: 0,
            task: &task,
            deadline: DateTime::UNIX_EPOCH,
            lead: Lead::Days(0),
            moved: false,
            people: &[0, 1],
        };
        let wide = vec![far(200_000, 0), far(-200_000, u32::MAX), far(2026, 7)];
        let sorted = Sorted::new(&wide, &[1, 0]);
        assert!(matches!(sorted, Sorted::Fields(..)));
        assert_eq!(
            pairs(sorted),
            vec![(1, 1), (1, 0), (2, 1), (2, 0), (0, 1), (0, 0)]
        );
    }
}
