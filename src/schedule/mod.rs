//! The schedule: the unit, its people, the kinds of work and the events, checked and resolved.
//!
//! A [`Schedule`] is immutable and complete: every id it holds refers to something that exists,
//! every date rule is valid. It is built by [`load`] (which reads the files) from the raw types
//! in [`raw`] by [`resolve`] (which is pure), and it is what every other part of ngayle (the
//! occurrences, the feeds, the reminder plan) is a view of. On reload the service swaps a whole
//! new `Schedule` in or keeps the old one.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{NaiveDate, NaiveTime, Weekday};

mod env;
mod load;
pub mod raw;
mod resolve;
mod shrink;

pub use env::{ENV_KEYS, EnvValue};
pub use load::{LoadReport, load, normalize, read_source};
pub use resolve::{DAYS_OFF_STEM, SourceFile, Sources, resolve, suggest_id};
pub use shrink::{Shrunk, events_per_file, shrunk};

/// The shipped `config/` and `calendars/`, loaded as of `today` (for unit tests).
#[cfg(test)]
pub(crate) fn shipped(today: NaiveDate) -> Schedule {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ngayle.yaml");
    let report = load(&config, today);
    let Some(schedule) = report.schedule else {
        panic!("the shipped files load: {:?}", report.diagnostics);
    };
    schedule
}

/// The only time zone ngayle computes in (the Vietnamese civil and lunar calendars).
pub const TIMEZONE: &str = "Asia/Ho_Chi_Minh";

/// Everything ngayle knows, checked.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// A hash of every input file (paths and texts): changes when anything is edited.
    pub version: String,
    pub unit: Unit,
    pub settings: Settings,
    pub layers: Vec<Layer>,
    /// Events in file order (layers sorted by file name, events in the order written).
    pub events: Vec<Event>,
    pub tasks: Vec<Task>,
    pub groups: Vec<Group>,
    pub people: Vec<Person>,
    task_index: BTreeMap<String, usize>,
    /// Person id → index in `people`.
    person_index: BTreeMap<String, usize>,
    /// Group id → indices in `people` of its members, in staff order.
    members: BTreeMap<String, Vec<usize>>,
    /// The email templates, compiled and checked.
    pub templates: crate::template::Templates,
    /// Each year's decisions on the official days off (`calendars/ngay-nghi.yaml`), over the
    /// Labour Code's rules (`crate::days_off`).
    pub decisions: Vec<crate::days_off::Decision>,
}

impl Schedule {
    /// Builds the lookup tables of a resolved schedule.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        version: String,
        unit: Unit,
        settings: Settings,
        layers: Vec<Layer>,
        events: Vec<Event>,
        tasks: Vec<Task>,
        groups: Vec<Group>,
        people: Vec<Person>,
        templates: crate::template::Templates,
    ) -> Schedule {
        let task_index = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        let person_index = people
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let mut members: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, p) in people.iter().enumerate() {
            for g in &p.groups {
                members.entry(g.clone()).or_default().push(i);
            }
        }
        Schedule {
            version,
            unit,
            settings,
            layers,
            events,
            tasks,
            groups,
            people,
            task_index,
            person_index,
            members,
            templates,
            decisions: Vec::new(),
        }
    }

    /// This schedule with the days-off decisions of `calendars/ngay-nghi.yaml`.
    pub(crate) fn with_decisions(mut self, decisions: Vec<crate::days_off::Decision>) -> Schedule {
        self.decisions = decisions;
        self
    }

    /// True on the unit's weekly rest days (the days `reminders.workdays` leaves out).
    pub fn is_rest_day(&self, day: NaiveDate) -> bool {
        use chrono::Datelike as _;
        !self.settings.workdays.contains(&day.weekday())
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.task_index.get(id).and_then(|&i| self.tasks.get(i))
    }

    pub fn person(&self, id: &str) -> Option<&Person> {
        self.person_index.get(id).and_then(|&i| self.people.get(i))
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// How many days before an event's first day any reminder of it can be (its deadline's
    /// offset and its longest lead, plus a day for a lead in hours that crosses midnight).
    pub fn max_before_days(&self) -> u32 {
        self.tasks
            .iter()
            .map(|t| {
                let lead = t.remind.first().map_or(0, Lead::days_up);
                let due = u32::try_from(-t.due.days.min(0)).unwrap_or(0);
                lead.saturating_add(due)
            })
            .max()
            .unwrap_or(0)
    }

    /// How many days after an event's first day any reminder of it can be (a deadline after
    /// the day, `due: +2d`).
    pub fn max_after_days(&self) -> u32 {
        self.tasks
            .iter()
            .map(|t| u32::try_from(t.due.days.max(0)).unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    /// The people a task is assigned to, each once, in the order of `staff.yaml`. Looked up by
    /// group and id (a province-sized staff list is not scanned per task).
    pub fn assignees(&self, task: &Task) -> Vec<&Person> {
        self.assignee_indices(task)
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// Who is told when `task` is not done by its deadline, in staff order: its
    /// `escalate_to`; else the leads of the groups it is given to; else the members of
    /// [`ESCALATE_DEFAULT_GROUP`]. A person it is given to alone is not told of it.
    pub fn escalation_recipients(&self, task: &Task) -> Vec<&Person> {
        let mut which: Vec<usize> = Vec::new();
        let from = |which: &mut Vec<usize>, list: &[Assignee]| {
            for w in list {
                match w {
                    Assignee::All => which.extend(0..self.people.len()),
                    Assignee::Group(g) => which.extend(self.members.get(g).into_iter().flatten()),
                    Assignee::Person(id) => which.extend(self.person_index.get(id)),
                }
            }
        };
        match &task.escalate_to {
            Some(list) => from(&mut which, list),
            None => {
                for w in &task.who {
                    if let Assignee::Group(g) = w
                        && let Some(lead) = self
                            .groups
                            .iter()
                            .find(|x| x.id == *g)
                            .and_then(|x| x.lead.as_ref())
                    {
                        which.extend(self.person_index.get(lead));
                    }
                }
                if which.is_empty() {
                    from(
                        &mut which,
                        &[Assignee::Group(ESCALATE_DEFAULT_GROUP.to_string())],
                    );
                }
            }
        }
        which.sort_unstable();
        which.dedup();
        let assigned = self.assignee_positions(task);
        // Nobody is told of their own task alone.
        if assigned.len() == 1 {
            which.retain(|i| !assigned.contains(i));
        }
        which.iter().filter_map(|&i| self.people.get(i)).collect()
    }

    /// [`Schedule::assignees`] with each person's index in `people`.
    pub fn assignee_indices(&self, task: &Task) -> Vec<(usize, &Person)> {
        self.assignee_positions(task)
            .into_iter()
            .filter_map(|i| Some((i, self.people.get(i)?)))
            .collect()
    }

    /// The indices in `people` of [`Schedule::assignees`], ascending.
    pub fn assignee_positions(&self, task: &Task) -> Vec<usize> {
        if task.who.iter().any(|w| matches!(w, Assignee::All)) {
            return (0..self.people.len()).collect();
        }
        let mut which: Vec<usize> = Vec::new();
        for w in &task.who {
            match w {
                Assignee::All => {}
                Assignee::Group(g) => which.extend(self.members.get(g).into_iter().flatten()),
                Assignee::Person(id) => which.extend(self.person_index.get(id)),
            }
        }
        which.sort_unstable();
        which.dedup();
        which.retain(|&i| i < self.people.len());
        which
    }
}

/// The school or office that runs ngayle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    pub place: String,
}

/// Service settings from `config/ngayle.yaml`, with paths made absolute or relative to the
/// working directory (they are written relative to the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub config_path: PathBuf,
    pub calendars_dir: PathBuf,
    pub staff_path: PathBuf,
    pub listen: SocketAddr,
    pub public_url: String,
    pub feed_token: Option<Secret>,
    /// The most HTTP connections open at once (`http.max_connections`).
    pub max_connections: usize,
    pub mail_from: String,
    pub reply_to: Option<String>,
    pub smtp: Option<Secret>,
    /// The SMTP password from the environment (`schedule::env` reads it: its file, else its
    /// variable), over the one in `smtp`'s URL.
    pub smtp_password: Option<Secret>,
    /// The secret of the personal feed links from the environment (`NGAYLE_FEED_SECRET`);
    /// `None`: the one kept in the state database (`store::FeedKeys`).
    pub feed_secret: Option<Secret>,
    pub outbox: PathBuf,
    pub state: PathBuf,
    pub send_at: NaiveTime,
    pub workdays: Vec<Weekday>,
    /// How late a reminder may still go out after downtime.
    pub catch_up: chrono::Duration,
    /// How long after a task's deadline its "Đã xong" link still works (`reminders.ack_valid_for`).
    pub ack_valid_for: chrono::Duration,
    /// How long after a task's deadline, when it is not done, its escalation goes out
    /// (`reminders.escalate_after`).
    pub escalate_after: chrono::Duration,
    /// How long a process's claim on a reminder it is sending lasts without renewal: a process
    /// that dies mid-send blocks that reminder for at most this long.
    pub lease: std::time::Duration,
    /// How long `serve` waits for sends and requests in flight when asked to stop.
    pub shutdown_grace: std::time::Duration,
    /// A reload that leaves a calendar file with more than this share (in %) fewer events
    /// is kept but reported (`reload.warn_shrink`).
    pub reload_warn_shrink: u8,
}

/// `http.max_connections` when it is not set: under the 1,024 descriptors a process gets by
/// default (outside the unit, or in a container) with half left for everything else, and far
/// more than a school's phones and calendars hold open at once (they poll every few hours).
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// A value that must never be printed: `Debug` shows `[redacted]`, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One calendar file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The file name without `.yaml`.
    pub id: String,
    pub name: String,
    pub path: PathBuf,
}

/// A commemoration day or holiday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub name: String,
    /// Index into [`Schedule::layers`].
    pub layer: usize,
    pub rule: DateRule,
    /// The origin year: the anniversary number in year Y is Y − since.
    pub since: Option<i32>,
    /// Listed only in năm tròn and năm lẻ 5 years.
    pub only_round: bool,
    /// Length in days (1 for a single day).
    pub days: u32,
    pub category: Category,
    /// The official days off around it, as offsets from its first day (both included):
    /// `(0, 0)` for the day itself, `(-1, 3)` for Tết's five days.
    pub day_off: Option<(i32, i32)>,
    pub tasks: Vec<String>,
    pub round_tasks: Vec<String>,
    pub note: Option<String>,
    /// The first day it applies (`from:`, a year meaning its 1/1): a day instituted later than
    /// what it commemorates (Ngày Văn hóa Việt Nam, from 2026).
    pub from: Option<NaiveDate>,
    /// The last day it applies (`until:`, a year meaning its 31/12): a day that ended, a unit
    /// that was merged away.
    pub until: Option<NaiveDate>,
    /// The official title when the rule's form does not fit (`title:`), with `{n}` for the
    /// anniversary number, `{year}` for the occurrence's year and `{can_chi}` for the lunar
    /// year's name.
    pub title: Option<String>,
}

/// What an event's `title:` may hold besides text.
pub const TITLE_PLACEHOLDERS: [&str; 3] = ["{n}", "{year}", "{can_chi}"];

/// When an event happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateRule {
    /// A solar day and month, every year (29/2 falls on 28/2 in common years).
    Solar { day: u8, month: u8 },
    /// A Vietnamese lunar day and month, every year.
    Lunar { day: u8, month: u8 },
    /// A single date.
    Once(NaiveDate),
}

impl fmt::Display for DateRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateRule::Solar { day, month } => write!(f, "{day}/{month}"),
            DateRule::Lunar { day, month } => write!(f, "{day}/{month} âm lịch"),
            DateRule::Once(d) => write!(f, "{}", d.format("%-d/%-m/%Y")),
        }
    }
}

/// What kind of day an event is (from the reference dataset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Holiday,
    PartyState,
    Historical,
    LeaderBirthday,
    SectorDay,
    Children,
    Other,
}

impl Category {
    pub const ALL: &[(&str, Category)] = &[
        ("holiday", Category::Holiday),
        ("party-state", Category::PartyState),
        ("historical", Category::Historical),
        ("leader-birthday", Category::LeaderBirthday),
        ("sector-day", Category::SectorDay),
        ("children", Category::Children),
        ("other", Category::Other),
    ];

    pub fn id(self) -> &'static str {
        Category::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("other", |(id, _)| id)
    }

    /// The Vietnamese name, for feeds and emails.
    pub fn name_vi(self) -> &'static str {
        match self {
            Category::Holiday => "Ngày lễ",
            Category::PartyState => "Ngày của Đảng, Nhà nước",
            Category::Historical => "Sự kiện lịch sử",
            Category::LeaderBirthday => "Ngày sinh lãnh tụ",
            Category::SectorDay => "Ngày truyền thống ngành",
            Category::Children => "Thiếu nhi",
            Category::Other => "Khác",
        }
    }
}

/// A kind of work an event calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    pub title: String,
    /// What to do.
    pub what: String,
    /// When the work must be done (`due`).
    pub due: Due,
    /// The reminders (`remind`, or the one of `before`), as lead times before the deadline,
    /// longest first, each once.
    pub remind: Vec<Lead>,
    /// The time of day of a reminder whose lead is in days, if not the unit's `send_at`.
    pub at: Option<NaiveTime>,
    pub who: Vec<Assignee>,
    /// Where a reminder goes when its day is not a workday (`move`).
    pub moves: Move,
    /// Whose "Đã xong" settles it for the others assigned (`done_when`).
    pub done_when: DoneWhen,
    /// Who is told when it is not done by its deadline (`escalate_to`); `None`: the leads of
    /// its groups, else Ban giám hiệu ([`ESCALATE_DEFAULT_GROUP`]). An empty list: nobody.
    pub escalate_to: Option<Vec<Assignee>>,
}

/// The group told of undone tasks when neither the task nor its groups say who.
pub const ESCALATE_DEFAULT_GROUP: &str = "ban-giam-hieu";

/// When a task given to several people counts as done (a task's `done_when`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DoneWhen {
    /// When one of them says it is done: the others' reminders stop too (the default).
    #[default]
    Any,
    /// When each of them has said so: each one's own reminders stop.
    All,
}

impl DoneWhen {
    pub const WORDS: [&str; 2] = ["any", "all"];

    pub fn from_word(w: &str) -> Option<DoneWhen> {
        match w {
            "any" => Some(DoneWhen::Any),
            "all" => Some(DoneWhen::All),
            _ => None,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            DoneWhen::Any => "any",
            DoneWhen::All => "all",
        }
    }
}

/// Where a reminder due on a rest day or a day off goes (a task's `move`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Move {
    /// To the last workday before (the default).
    #[default]
    Earlier,
    /// To the first workday after, unless that is past the deadline (then earlier).
    Later,
    /// Nowhere: it goes out that day (the guard who hangs the flag works on days off).
    Keep,
}

impl Move {
    pub const WORDS: [&str; 3] = ["earlier", "later", "keep"];

    pub fn from_word(w: &str) -> Option<Move> {
        match w {
            "earlier" => Some(Move::Earlier),
            "later" => Some(Move::Later),
            "keep" => Some(Move::Keep),
            _ => None,
        }
    }
}

/// A task's deadline, relative to the event's first day: `due: -1d 17:00` is the day before
/// at 17:00. Without a time it is the start of the working day (the unit's `send_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Due {
    /// Days after the event's first day (−1: the day before).
    pub days: i32,
    pub time: Option<NaiveTime>,
}

/// How long before its deadline a reminder goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lead {
    /// On the day this many days before the deadline's day, at the task's `at` (or
    /// `send_at`): `7d`, `2w`.
    Days(u32),
    /// Exactly this many minutes before the deadline: `2h`, `30m`.
    Minutes(u32),
}

impl Lead {
    /// Whole days before the deadline's day, rounded up (for how far to look ahead).
    pub fn days_up(&self) -> u32 {
        match *self {
            Lead::Days(n) => n,
            Lead::Minutes(m) => m.div_ceil(24 * 60),
        }
    }

    /// How it is written, normalized (`14d`, `90m`): part of the reminder's key.
    pub fn label(&self) -> String {
        match self {
            Lead::Days(n) => format!("{n}d"),
            Lead::Minutes(m) => format!("{m}m"),
        }
    }

    /// Longer leads first; between a lead in days and one in minutes, the days (a reminder on
    /// an earlier day) when it is at least a day.
    fn reach(&self) -> u64 {
        match *self {
            Lead::Days(n) => u64::from(n) * 24 * 60,
            Lead::Minutes(m) => u64::from(m),
        }
    }

    /// Sorts leads longest first and drops repeats.
    pub fn normalize(leads: &mut Vec<Lead>) {
        leads.sort_by(|a, b| b.reach().cmp(&a.reach()).then(a.cmp(b)));
        leads.dedup();
    }
}

/// Who a task is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    All,
    Group(String),
    Person(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// The person who answers for the group's work (`lead`): gets the escalation of a task
    /// of the group nobody answered "Đã xong" for.
    pub lead: Option<String>,
    /// `digest: daily HH:MM`: its members get their escalations in one email a day, then.
    pub digest: Option<NaiveTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub title: Option<String>,
    pub email: String,
    pub groups: Vec<String>,
    /// When this person wants escalations gathered into one email a day (`digest: daily
    /// 07:00`, on the person or on a group of theirs): the time of that email.
    pub digest: Option<NaiveTime>,
}
