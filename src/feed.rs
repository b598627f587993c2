//! The iCalendar feeds: the schedule's occurrences as RFC 5545 text that phones subscribe to.
//!
//! Pure: a feed is a function of the schedule, the [`FeedSpec`] (which years, which group) and
//! the revision times of its events. Rendering is done in two steps so that the bytes are
//! stable across renders and processes:
//!
//! 1. a [`Draft`] renders each event occurrence once, with the Unix epoch for its timestamps,
//!    and gives it its UID and a hash of that text ([`Draft::fingerprints`]);
//! 2. the caller looks up, in the store, when each hash was first seen (that instant is the
//!    event's `DTSTAMP` and `LAST-MODIFIED`), and [`Draft::finish`] writes the text with those
//!    instants in place of the epoch.
//!
//! So a feed changes only when its content changes, and changing one event changes only that
//! event's lines. Text is built with the `icalendar` crate, then re-folded here: the crate's
//! folding can leave 76-octet lines, and ours never splits a UTF-8 character. The occurrences
//! and days off of the feeds' years are worked out once for all the feeds of a schedule
//! ([`Inputs`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use icalendar::{Alarm, Calendar, Component, Event, EventLike, Property, Trigger};

use crate::occurrence::{Occurrence, occurrences};
use crate::plan;
use crate::schedule::{Assignee, Group, Person, Schedule, Task};
use crate::vietnam;

/// How often clients should refresh a subscription (REFRESH-INTERVAL, X-PUBLISHED-TTL).
pub const REFRESH: &str = "PT6H";

/// Which feed: every event, the events that give one group a task, or the events that give
/// one person a task (through a group of theirs, by name, or `all`) — a person's feed, with
/// only their tasks in the text and the alarms; `person` wins over `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedSpec<'s> {
    pub group: Option<&'s Group>,
    pub person: Option<&'s Person>,
    pub from_year: i32,
    pub to_year: i32,
    /// The days-off feed (`/calendar/ngay-nghi.ics`): only the official breaks and make-up
    /// working days (the full feed has them too, beside the events).
    pub days_off: bool,
}

/// The id of the days-off feed among the group feeds (`/calendar/ngay-nghi.ics`); no group
/// may take it.
pub const DAYS_OFF_FEED: &str = "ngay-nghi";

impl<'s> FeedSpec<'s> {
    /// The years served over HTTP: from last year to two years ahead.
    pub fn around(today: NaiveDate, group: Option<&'s Group>) -> Self {
        FeedSpec {
            group,
            person: None,
            from_year: today.year() - 1,
            to_year: today.year() + 2,
            days_off: false,
        }
    }

    /// The days-off feed for the years served over HTTP.
    pub fn days_off(today: NaiveDate) -> Self {
        FeedSpec {
            days_off: true,
            ..FeedSpec::around(today, None)
        }
    }

    /// A person's feed for the years served over HTTP.
    pub fn for_person(today: NaiveDate, person: &'s Person) -> Self {
        FeedSpec {
            person: Some(person),
            ..FeedSpec::around(today, None)
        }
    }

    /// The key of this feed in the revision store: `all`, `group:ID`, `person:ID` or
    /// `ngay-nghi`.
    pub fn key(&self) -> String {
        if self.days_off {
            return DAYS_OFF_FEED.to_string();
        }
        match (self.person, self.group) {
            (Some(p), _) => format!("person:{}", p.id),
            (None, None) => "all".to_string(),
            (None, Some(g)) => format!("group:{}", g.id),
        }
    }

    /// True for a group's or a person's feed: only their tasks, with alarms.
    fn narrowed(&self) -> bool {
        self.person.is_some() || self.group.is_some()
    }
}

/// An occurrence's identity and content hash, for the revision store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub uid: String,
    pub hash: String,
}

/// When each UID's content was last modified, from the store.
pub type Revisions = BTreeMap<String, DateTime<Utc>>;

/// The occurrences and days off that every feed of one schedule and one span of years is
/// made from (the lunar calendar and the moved days off are the costly part: once, not once
/// per feed).
pub struct Inputs<'s> {
    from_year: i32,
    to_year: i32,
    occurrences: Vec<Occurrence<'s>>,
    off: crate::days_off::Calendar,
    /// The official breaks and make-up working days of the feed's years.
    breaks: Vec<crate::days_off::Break>,
    work: Vec<crate::days_off::WorkDay>,
}

impl<'s> Inputs<'s> {
    /// For the feeds of `spec`'s years (the group does not matter).
    pub fn new(schedule: &'s Schedule, spec: &FeedSpec) -> Inputs<'s> {
        let (Some(from), Some(to)) = (
            NaiveDate::from_ymd_opt(spec.from_year, 1, 1),
            NaiveDate::from_ymd_opt(spec.to_year, 12, 31),
        ) else {
            return Inputs {
                from_year: spec.from_year,
                to_year: spec.to_year,
                occurrences: Vec::new(),
                off: crate::days_off::Calendar::default(),
                breaks: Vec::new(),
                work: Vec::new(),
            };
        };
        // The days off around the due days of every task, for the deadlines in descriptions.
        let max_before = schedule.max_before_days();
        let earliest = from
            .checked_sub_days(chrono::Days::new(u64::from(max_before) + 31))
            .unwrap_or(from);
        let rest = |d: NaiveDate| schedule.is_rest_day(d);
        let (mut breaks, mut work) = (Vec::new(), Vec::new());
        for y in spec.from_year..=spec.to_year {
            let year = crate::days_off::year(y, &schedule.decisions, &rest);
            let (b, w) = crate::days_off::breaks(&year, &schedule.decisions, &rest);
            breaks.extend(b);
            work.extend(w);
        }
        Inputs {
            from_year: spec.from_year,
            to_year: spec.to_year,
            occurrences: occurrences(schedule, from, to),
            off: plan::days_off(schedule, earliest, to),
            breaks,
            work,
        }
    }
}

/// A feed with its events rendered, waiting for their revision times.
pub struct Draft {
    /// `BEGIN:VCALENDAR` and the calendar's properties.
    head: String,
    events: Vec<DraftEvent>,
}

struct DraftEvent {
    uid: String,
    /// The folded VEVENT with the epoch as its timestamps; the hash is of this text.
    text: String,
    hash: String,
}

/// Below this many events per thread, one thread renders them all.
const MIN_EVENTS_PER_THREAD: usize = 32;

fn draft_event(e: &Entry) -> DraftEvent {
    let text = fold(&e.event(DateTime::UNIX_EPOCH).to_string());
    DraftEvent {
        hash: format!("{:016x}", crate::fnv1a(text.as_bytes())),
        uid: e.uid.clone(),
        text,
    }
}

/// `DTSTAMP` (of the event and its alarms) and `LAST-MODIFIED` as a draft has them. Each is
/// a whole content line: TEXT values escape line breaks, so no value can forge one.
const EPOCH_LINES: [(&str, &str); 2] = [
    ("\r\nDTSTAMP:19700101T000000Z\r\n", "DTSTAMP"),
    ("\r\nLAST-MODIFIED:19700101T000000Z\r\n", "LAST-MODIFIED"),
];

impl Draft {
    /// Renders the events of `spec` (whose years must be those of `inputs`).
    pub fn new(schedule: &Schedule, inputs: &Inputs, spec: &FeedSpec) -> Draft {
        debug_assert_eq!(
            (inputs.from_year, inputs.to_year),
            (spec.from_year, spec.to_year)
        );
        let entries = entries(schedule, inputs, spec);
        // The icalendar crate's rendering is most of the work: spread over the cores (a
        // schedule loads at start and on each reload, while nothing else runs).
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
            .min(entries.len().div_ceil(MIN_EVENTS_PER_THREAD).max(1));
        let chunk = entries.len().div_ceil(threads).max(1);
        let events = if threads > 1 {
            std::thread::scope(|scope| {
                let parts: Vec<_> = entries
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || part.iter().map(draft_event).collect::<Vec<_>>())
                    })
                    .collect();
                let mut events = Vec::with_capacity(entries.len());
                for part in parts {
                    match part.join() {
                        Ok(mut done) => events.append(&mut done),
                        // A panic in rendering is a bug; rethrow it here, as one thread would.
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
                events
            })
        } else {
            entries.iter().map(draft_event).collect()
        };
        Draft {
            head: head(schedule, spec),
            events,
        }
    }

    /// The UIDs and content hashes of the feed's events.
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        self.events
            .iter()
            .map(|e| Fingerprint {
                uid: e.uid.clone(),
                hash: e.hash.clone(),
            })
            .collect()
    }

    /// The feed text. An event whose UID has no revision time keeps the Unix epoch (the
    /// caller records revisions first; this only keeps `finish` total).
    pub fn finish(&self, revisions: &Revisions) -> String {
        let size = self.head.len() + self.events.iter().map(|e| e.text.len()).sum::<usize>();
        let mut out = String::with_capacity(size + 32);
        out.push_str(&self.head);
        for e in &self.events {
            match revisions.get(&e.uid) {
                Some(&stamp) if stamp != DateTime::UNIX_EPOCH => {
                    let mut text = e.text.clone();
                    for (line, key) in EPOCH_LINES {
                        text = text.replace(line, &format!("\r\n{key}:{}\r\n", utc(stamp)));
                    }
                    out.push_str(&text);
                }
                _ => out.push_str(&e.text),
            }
        }
        out.push_str("END:VCALENDAR\r\n");
        out
    }
}

/// The UIDs and content hashes of the feed's events.
pub fn fingerprints(schedule: &Schedule, spec: &FeedSpec) -> Vec<Fingerprint> {
    Draft::new(schedule, &Inputs::new(schedule, spec), spec).fingerprints()
}

/// The feed text (one feed on its own: [`Draft`] does the work once for several).
pub fn render(schedule: &Schedule, spec: &FeedSpec, revisions: &Revisions) -> String {
    Draft::new(schedule, &Inputs::new(schedule, spec), spec).finish(revisions)
}

/// `BEGIN:VCALENDAR` and the calendar's properties, folded.
fn head(schedule: &Schedule, spec: &FeedSpec) -> String {
    let mut cal = Calendar::empty();
    let unit = &schedule.unit;
    let (name, desc) = match spec.group {
        _ if spec.days_off => (
            format!("{} — Ngày nghỉ lễ, Tết", unit.name),
            format!(
                "Các đợt nghỉ lễ, Tết chính thức và ngày làm bù của cán bộ, công chức, viên chức (Bộ luật Lao động 2019 và quyết định của từng năm), theo lịch của {}.",
                unit.name
            ),
        ),
        _ if spec.person.is_some() => {
            let p = spec.person.map_or("", |p| p.name.as_str());
            (
                format!("{} — Việc của {p}", unit.name),
                format!(
                    "Các ngày lễ, ngày kỷ niệm có việc giao cho {p} ({}), với lời nhắc trước hạn.",
                    unit.name
                ),
            )
        }
        None => (
            format!("{} — Ngày lễ, kỷ niệm", unit.name),
            format!(
                "Các ngày lễ, ngày kỷ niệm và việc cần làm của {}{}.",
                unit.name,
                place_suffix(&unit.place)
            ),
        ),
        Some(g) => (
            format!("{} — {}", unit.name, g.name),
            format!(
                "Các ngày lễ, ngày kỷ niệm có việc giao cho {} ({}).",
                g.name, unit.name
            ),
        ),
    };
    for p in [
        Property::new("VERSION", "2.0"),
        Property::new(
            "PRODID",
            concat!("-//ngayle//ngayle ", env!("CARGO_PKG_VERSION"), "//VI"),
        ),
        Property::new("CALSCALE", "GREGORIAN"),
        Property::new("METHOD", "PUBLISH"),
        // X- properties are TEXT: the crate escapes them.
        Property::new("X-WR-CALNAME", &name),
        Property::new("X-WR-CALDESC", &desc),
        Property::new("X-WR-TIMEZONE", crate::schedule::TIMEZONE),
        Property::new("REFRESH-INTERVAL", REFRESH)
            .add_parameter("VALUE", "DURATION")
            .done(),
        Property::new("X-PUBLISHED-TTL", REFRESH),
    ] {
        cal.append_property(p);
    }
    let text = fold(&cal.to_string());
    match text.strip_suffix("END:VCALENDAR\r\n") {
        Some(head) => head.to_string(),
        None => text,
    }
}

/// One VEVENT to be: an occurrence, or a break or make-up working day, as the feed shows it.
struct Entry {
    uid: String,
    summary: String,
    first: NaiveDate,
    /// The day after the last (DTEND of an all-day event).
    end: NaiveDate,
    categories: String,
    description: String,
    /// The VALARMs: one per reminder of the group's own tasks, in a group feed.
    alarms: Vec<FeedAlarm>,
}

/// One VALARM: a reminder of a task, as an offset from the start of the all-day event.
struct FeedAlarm {
    text: String,
    uid: String,
    offset: chrono::Duration,
}

impl Entry {
    /// The event without its timestamps: what the hash covers.
    fn event(&self, stamp: DateTime<Utc>) -> Event {
        let mut ev = Event::new();
        ev.uid(&self.uid)
            .timestamp(stamp)
            .summary(&self.summary)
            .description(&self.description)
            .append_property(date_property("DTSTART", self.first))
            .append_property(date_property("DTEND", self.end))
            .append_property(Property::new("CATEGORIES", &self.categories))
            .append_property(Property::new("TRANSP", "TRANSPARENT"))
            .append_property(Property::new("LAST-MODIFIED", utc(stamp)));
        for a in &self.alarms {
            let mut alarm = Alarm::display(&a.text, Trigger::from(a.offset));
            // The crate adds a random UID and the current time when these are missing; both
            // would make the bytes differ on every render. UID in VALARM is RFC 9074.
            alarm.uid(&a.uid).timestamp(stamp);
            ev.alarm(alarm.done());
        }
        ev.done()
    }
}

fn entries(schedule: &Schedule, inputs: &Inputs, spec: &FeedSpec) -> Vec<Entry> {
    let off = &inputs.off;
    let full = !spec.narrowed();
    let events = inputs
        .occurrences
        .iter()
        .filter(|_| !spec.days_off)
        .filter_map(|o| {
            // The tasks this feed shows: all of them, or the group's or the person's own (their
            // alarms too).
            let tasks: Vec<&Task> = match (spec.person, spec.group) {
                (None, None) => o.tasks.clone(),
                (Some(p), _) => o
                    .tasks
                    .iter()
                    .copied()
                    .filter(|t| task_for_person(t, p))
                    .collect(),
                (None, Some(g)) => o
                    .tasks
                    .iter()
                    .copied()
                    .filter(|t| task_for_group(t, &g.id))
                    .collect(),
            };
            if spec.narrowed() && tasks.is_empty() {
                return None;
            }
            let layer = schedule
                .layers
                .get(o.event.layer)
                .map_or("", |l| l.name.as_str());
            let categories = [layer, o.event.category.name_vi()]
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| escape_text(c))
                .collect::<Vec<_>>()
                .join(",");
            Some(Entry {
                uid: self_uid(schedule, o),
                summary: o.summary.clone(),
                first: o.date,
                end: o.end(),
                description: description(schedule, off, o, &tasks),
                categories,
                alarms: if spec.narrowed() {
                    alarms(schedule, off, o, &tasks)
                } else {
                    Vec::new()
                },
            })
        });
    let mut out: Vec<Entry> = events.collect();
    if full || spec.days_off {
        out.extend(days_off_entries(schedule, inputs));
    }
    out
}

/// The official breaks and make-up working days as all-day events that do not block time
/// (TRANSP:TRANSPARENT, like every event of the feeds).
fn days_off_entries(schedule: &Schedule, inputs: &Inputs) -> Vec<Entry> {
    let unit = unit_slug(&schedule.unit.name);
    let category = escape_text("Ngày nghỉ");
    let mut out = Vec::new();
    for b in &inputs.breaks {
        let days = (b.last - b.first).num_days() + 1;
        let summary = format!("{} ({})", b.name, b.span());
        let mut d = String::new();
        let _ = write!(
            d,
            "Nghỉ {days} ngày liên tục, từ {} đến {}.",
            vietnam::day(b.first),
            vietnam::day(b.last)
        );
        // Each day and why, when the days differ (a holiday and its nghỉ bù; a decision's
        // break is one reason for all its days).
        let mut whys: Vec<&str> = b.days.iter().map(|(_, w)| w.as_str()).collect();
        whys.dedup();
        if whys.len() > 1 {
            for (date, why) in &b.days {
                let _ = write!(d, "\n• {}: {why}.", vietnam::day(*date));
            }
        }
        if !b.basis.is_empty() {
            let _ = write!(d, "\nCăn cứ: {}.", b.basis.join("; "));
        }
        out.push(Entry {
            uid: format!("{}@{unit}.ngayle", b.id),
            summary,
            first: b.first,
            end: b.last.succ_opt().unwrap_or(b.last),
            categories: category.clone(),
            description: d,
            alarms: Vec::new(),
        });
    }
    for w in &inputs.work {
        out.push(Entry {
            uid: format!("{}@{unit}.ngayle", w.id),
            summary: w.name.clone(),
            first: w.date,
            end: w.date.succ_opt().unwrap_or(w.date),
            categories: category.clone(),
            description: format!("Ngày làm việc bù: {}.", w.why),
            alarms: Vec::new(),
        });
    }
    out
}

/// One alarm per reminder of each task: at the instant its email goes out, with its deadline
/// in the text.
fn alarms(
    schedule: &Schedule,
    off: &crate::days_off::Calendar,
    o: &Occurrence,
    tasks: &[&Task],
) -> Vec<FeedAlarm> {
    let start = o.date.and_time(NaiveTime::MIN);
    let mut out = Vec::new();
    for &task in tasks {
        let Some(timing) = plan::timing(schedule, off, o.date, task) else {
            continue;
        };
        let deadline = timing.deadline.with_timezone(&vietnam::ZONE);
        let keys = plan::lead_keys(task);
        for (r, key) in timing.reminders.iter().zip(&keys) {
            let at = r.planned.with_timezone(&vietnam::ZONE).naive_local();
            out.push(FeedAlarm {
                text: format!(
                    "{} — hạn {} — {}",
                    task.title,
                    vietnam::time_day(deadline),
                    o.summary
                ),
                uid: alarm_uid(&self_uid(schedule, o), &task.id, key),
                offset: at - start,
            });
        }
    }
    out
}

/// The UID of an occurrence's VEVENT.
fn self_uid(schedule: &Schedule, o: &Occurrence) -> String {
    format!(
        "{}-{}@{}.ngayle",
        o.event.id,
        o.year,
        unit_slug(&schedule.unit.name)
    )
}

/// `EVENT-YEAR-TASK-LEAD@DOMAIN` from the event's `EVENT-YEAR@DOMAIN`: one per reminder, the
/// same whatever other leads the task gains or loses (like its reminder key).
fn alarm_uid(event_uid: &str, task: &str, lead: &str) -> String {
    match event_uid.split_once('@') {
        Some((local, domain)) => format!("{local}-{task}-{lead}@{domain}"),
        None => format!("{event_uid}-{task}-{lead}"),
    }
}

/// True when the task is the group's: named in `who`, or for everyone.
fn task_for_group(task: &Task, group: &str) -> bool {
    task.who.iter().any(|w| match w {
        Assignee::All => true,
        Assignee::Group(g) => g == group,
        Assignee::Person(_) => false,
    })
}

/// True when the task is the person's: for everyone, for a group of theirs, or theirs by name
/// (the people `Schedule::assignees` finds for it).
fn task_for_person(task: &Task, person: &Person) -> bool {
    task.who.iter().any(|w| match w {
        Assignee::All => true,
        Assignee::Group(g) => person.groups.contains(g),
        Assignee::Person(id) => *id == person.id,
    })
}

/// The Vietnamese description: the official title when the SUMMARY (the calendar's form) is
/// not it, and the full name when it holds a remark, the day (with its lunar date), the anniversary, the
/// tasks.
fn description(
    schedule: &Schedule,
    off: &crate::days_off::Calendar,
    o: &Occurrence,
    tasks: &[&Task],
) -> String {
    let mut s = String::new();
    let day = vietnam::day;
    if o.title != o.summary {
        let _ = writeln!(s, "{}.", o.title);
    }
    if !o.title.contains(o.event.name.as_str()) {
        let _ = writeln!(s, "Tên đầy đủ: {}.", o.event.name);
    }
    if o.event.days > 1 {
        let _ = write!(s, "Từ {} đến {}", day(o.date), day(o.last_day()));
    } else {
        let _ = write!(s, "{}", day(o.date));
    }
    if let Some(l) = o.lunar() {
        let _ = write!(s, " (âm lịch: {})", vietnam::lunar_long(&l));
    }
    s.push('.');
    if let (Some(_), Some(class)) = (o.anniversary, o.class) {
        let _ = write!(s, "\nNăm kỷ niệm: {}.", class.name_vi());
    }
    if !tasks.is_empty() {
        s.push_str("\n\nViệc cần làm:");
        for &t in tasks {
            let who = who_text(schedule, t);
            let _ = write!(s, "\n• {}", t.title);
            if let Some(timing) = plan::timing(schedule, off, o.date, t) {
                let local = |t: DateTime<Utc>| t.with_timezone(&vietnam::ZONE).naive_local();
                let due = local(timing.deadline);
                let _ = write!(s, " — hạn {} {}", due.format("%H:%M"), day(due.date()));
                let when: Vec<String> = timing
                    .reminders
                    .iter()
                    .map(|r| {
                        let at = local(r.at);
                        format!("{} {}", at.format("%H:%M"), vietnam::date_short(at.date()))
                    })
                    .collect();
                if !when.is_empty() {
                    let _ = write!(s, "; nhắc lúc {}", when.join(", "));
                }
            }
            let _ = write!(s, ".\n  {}", t.what);
            if !who.is_empty() {
                let _ = write!(s, "\n  Người thực hiện: {who}.");
            }
        }
    }
    if let Some(note) = &o.event.note {
        let _ = write!(s, "\n\nGhi chú: {note}");
    }
    s
}

/// Who does a task, as people read it: groups by name with their members (the first
/// [`vietnam::MAX_NAMES`], then a count), people by name.
fn who_text(schedule: &Schedule, task: &Task) -> String {
    let person = |p: &crate::schedule::Person| match &p.title {
        Some(title) => format!("{} ({title})", p.name),
        None => p.name.clone(),
    };
    task.who
        .iter()
        .map(|w| match w {
            Assignee::All => "toàn thể cán bộ, giáo viên, nhân viên".to_string(),
            Assignee::Group(g) => {
                let members: Vec<&str> = schedule
                    .people
                    .iter()
                    .filter(|p| p.groups.contains(g))
                    .map(|p| p.name.as_str())
                    .collect();
                let name = schedule.group(g).map_or(g.as_str(), |g| g.name.as_str());
                if members.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}: {}", vietnam::some_names(&members).join(", "))
                }
            }
            Assignee::Person(id) => schedule.person(id).map_or_else(|| id.clone(), person),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn place_suffix(place: &str) -> String {
    if place.is_empty() {
        String::new()
    } else {
        format!(" ({place})")
    }
}

fn date_property(key: &str, date: NaiveDate) -> Property {
    Property::new(key, date.format("%Y%m%d").to_string())
        .add_parameter("VALUE", "DATE")
        .done()
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// RFC 5545 §3.3.11 TEXT escaping, for the properties the crate does not type as TEXT.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Unfolds the crate's output and folds every line at 75 octets (RFC 5545 §3.1) without
/// splitting a UTF-8 character; lines end in CRLF.
pub fn fold(text: &str) -> String {
    const LIMIT: usize = 75;
    let mut unfolded = text.replace("\r\n ", "");
    if unfolded.contains("\r\n\t") {
        unfolded = unfolded.replace("\r\n\t", "");
    }
    let mut out = String::with_capacity(unfolded.len() + unfolded.len() / 64 * 3);
    for line in unfolded.split("\r\n").filter(|l| !l.is_empty()) {
        let clean;
        let mut rest = line;
        // A second line of defence behind `load`, which refuses them: RFC 5545 forbids control
        // characters in a value, and a bare CR (the crate escapes only LF) starts a line for a
        // reader that splits at CR. Tabs are allowed. The byte test is cheap; C1 controls
        // (U+0080–U+009F) start with 0xC2, as do a few letters, which the char test keeps.
        if line
            .bytes()
            .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f || b == 0xc2)
        {
            clean = line
                .chars()
                .filter(|&c| !c.is_control() || c == '\t')
                .collect::<String>();
            rest = &clean;
        }
        // The first line holds 75 octets; continuation lines start with a space, so 74 more.
        let mut room = LIMIT;
        while rest.len() > room {
            let mut cut = room;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&rest[..cut]);
            out.push_str("\r\n ");
            rest = &rest[cut..];
            room = LIMIT - 1;
        }
        out.push_str(rest);
        out.push_str("\r\n");
    }
    out
}

/// An ASCII slug of the unit's name, to make UIDs unique across schools.
fn unit_slug(name: &str) -> String {
    let id = crate::schedule::suggest_id(name);
    if id.is_empty() {
        "ngayle".to_string()
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_never_exceeds_75_octets_nor_splits_characters() {
        let long = format!(
            "DESCRIPTION:{}",
            "Kỷ niệm ngày Chiến thắng Điện Biên Phủ ".repeat(9)
        );
        let folded = fold(&format!("BEGIN:VCALENDAR\r\n{long}\r\nEND:VCALENDAR\r\n"));
        for line in folded.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
        assert_eq!(
            folded.replace("\r\n ", ""),
            format!("BEGIN:VCALENDAR\r\n{long}\r\nEND:VCALENDAR\r\n")
        );
        // Exactly 75 octets stays on one line; 76 is folded.
        let l75 = format!("X:{}", "a".repeat(73));
        assert_eq!(fold(&format!("{l75}\r\n")), format!("{l75}\r\n"));
        let l76 = format!("X:{}", "a".repeat(74));
        assert_eq!(
            fold(&format!("{l76}\r\n")),
            format!("X:{}\r\n a\r\n", "a".repeat(73))
        );
    }

    /// A group of a province's size is named by its first members and counted, not listed.
    #[test]
    fn a_large_group_is_named_by_its_first_members_then_counted() {
        let today = NaiveDate::from_ymd_opt(2024, 9, 5).unwrap_or_default();
        let mut schedule = crate::schedule::shipped(today);
        let Some(task) = schedule
            .tasks
            .iter()
            .find(|t| matches!(t.who.as_slice(), [Assignee::Group(_)]))
            .cloned()
        else {
            panic!("a shipped task for one group");
        };
        let [Assignee::Group(group)] = task.who.as_slice() else {
            unreachable!()
        };
        let before = schedule
            .people
            .iter()
            .filter(|p| p.groups.contains(group))
            .count();
        for i in 0..400 {
            schedule.people.push(Person {
                id: format!("gv-{i}"),
                name: format!("Giáo viên {i}"),
                title: None,
                email: format!("gv-{i}@example.org"),
                groups: vec![group.clone()],
                digest: None,
            });
        }
        let text = who_text(&schedule, &task);
        assert!(
            text.ends_with(&format!(
                "và {} người khác",
                before + 400 - vietnam::MAX_NAMES
            )),
            "{text}"
        );
        assert_eq!(text.matches(", ").count(), vietnam::MAX_NAMES, "{text}");
    }

    /// The draft (each event rendered once, its timestamps put in afterwards) writes exactly
    /// what rendering the whole calendar with its timestamps at once writes.
    #[test]
    fn a_draft_finished_is_the_calendar_rendered_whole() {
        let today = NaiveDate::from_ymd_opt(2024, 9, 5).unwrap_or_default();
        let schedule = crate::schedule::shipped(today);
        let group = schedule.groups.first();
        for spec in [
            FeedSpec::around(today, None),
            FeedSpec::around(today, group),
        ] {
            let inputs = Inputs::new(&schedule, &spec);
            let draft = Draft::new(&schedule, &inputs, &spec);
            let prints = draft.fingerprints();
            assert!(prints.len() > 40, "{}", prints.len());
            // Half the events modified at some instant, the others never recorded.
            let revisions: Revisions = prints
                .iter()
                .step_by(2)
                .enumerate()
                .filter_map(|(i, p)| {
                    let t = DateTime::from_timestamp(1_700_000_000 + i as i64 * 3_601, 0)?;
                    Some((p.uid.clone(), t))
                })
                .collect();
            // The head is the same code as before; the events are what the draft changes.
            let mut cal = Calendar::empty();
            for e in entries(&schedule, &inputs, &spec) {
                let stamp = revisions
                    .get(&e.uid)
                    .copied()
                    .unwrap_or(DateTime::UNIX_EPOCH);
                cal.push(e.event(stamp));
            }
            let whole = fold(&cal.to_string());
            let finished = draft.finish(&revisions);
            let events = finished.strip_prefix(head(&schedule, &spec).as_str());
            assert!(head(&schedule, &spec).starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
            assert_eq!(events, whole.strip_prefix("BEGIN:VCALENDAR\r\n"));
            assert!(
                finished.contains("DTSTAMP:20231114T"),
                "a revision time is used"
            );
        }
    }

    #[test]
    fn text_escaping() {
        assert_eq!(escape_text("a,b;c\\d\ne\r"), "a\\,b\\;c\\\\d\\ne");
    }
}
