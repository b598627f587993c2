//! The principal's report (issue 17, item 4), pure: for each task of each occurrence in a
//! range of days and each person it is given to, what was answered — done (when, note, link),
//! not done (why), or nothing yet (and whether the deadline has passed).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::occurrence::occurrences;
use crate::plan::deadline_of;
use crate::schedule::{DoneWhen, Schedule};
use crate::store::AckRecord;
use crate::vietnam;

/// The answers of a range, by (event, occurrence day, task).
pub type Answers = BTreeMap<(String, NaiveDate, String), Vec<AckRecord>>;

/// One line of the report: a task of an occurrence, for one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub date: NaiveDate,
    pub event_title: String,
    pub task_title: String,
    pub deadline: Option<DateTime<Utc>>,
    pub person: String,
    pub state: State,
    /// When it was answered (the last change), if it was.
    pub at: Option<DateTime<Utc>>,
    pub note: String,
    pub link: String,
}

/// What a line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The person answered "Đã xong".
    Done,
    /// Another person of the task did (`done_when: any`): their name.
    DoneBy(String),
    /// "Chưa làm được" (the reason is the note).
    NotDone,
    /// No answer, the deadline not passed.
    Waiting,
    /// No answer, past the deadline.
    Overdue,
}

impl State {
    /// The Vietnamese words of the report's "Kết quả" column.
    pub fn words(&self) -> String {
        match self {
            State::Done => "Đã xong".into(),
            State::DoneBy(name) => format!("Đã xong (do {name} báo)"),
            State::NotDone => "Chưa làm được".into(),
            State::Waiting => "Chưa đến hạn".into(),
            State::Overdue => "Quá hạn, chưa báo".into(),
        }
    }
}

/// The column headers, in Vietnamese, for every format.
pub const HEADER: [&str; 10] = [
    "Ngày",
    "Thứ",
    "Ngày lễ",
    "Việc",
    "Hạn",
    "Người thực hiện",
    "Kết quả",
    "Lúc báo",
    "Ghi chú",
    "Liên kết",
];

/// The report of the occurrences of `from..=to` at `now`, by day, event, task and person (in
/// the order of the files and of staff.yaml).
pub fn lines(
    schedule: &Schedule,
    answers: &Answers,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
) -> Vec<Line> {
    let mut out = Vec::new();
    for o in occurrences(schedule, from, to) {
        for task in &o.tasks {
            let got = answers
                .get(&(o.event.id.clone(), o.date, task.id.clone()))
                .map_or(&[][..], Vec::as_slice);
            let deadline = deadline_of(schedule, o.date, task);
            let assigned = schedule.assignees(task);
            let name_of = |id: &str| {
                assigned
                    .iter()
                    .find(|p| p.id == id)
                    .map_or_else(|| id.to_string(), |p| p.name.clone())
            };
            let first_done = got.iter().filter(|a| a.done).min_by_key(|a| a.first_at);
            for person in &assigned {
                let mine = got.iter().find(|a| a.person_id == person.id);
                let (state, answer) = match (mine, first_done) {
                    (Some(a), _) if a.done => (State::Done, Some(a)),
                    (_, Some(d)) if task.done_when == DoneWhen::Any => {
                        (State::DoneBy(name_of(&d.person_id)), Some(d))
                    }
                    (Some(a), _) => (State::NotDone, Some(a)),
                    (None, _) if deadline.is_some_and(|d| d < now) => (State::Overdue, None),
                    (None, _) => (State::Waiting, None),
                };
                out.push(Line {
                    date: o.date,
                    event_title: o.title.clone(),
                    task_title: task.title.clone(),
                    deadline,
                    person: person.name.clone(),
                    state,
                    at: answer.map(|a| a.answered_at),
                    note: answer.map(|a| a.note.clone()).unwrap_or_default(),
                    link: answer.map(|a| a.link.clone()).unwrap_or_default(),
                });
            }
        }
    }
    out
}

impl Line {
    /// The line as the report's cells, in [`HEADER`]'s order.
    pub fn cells(&self) -> [String; 10] {
        let time = |t: Option<DateTime<Utc>>| {
            t.map(|t| vietnam::local(t).format("%H:%M %d/%m/%Y").to_string())
                .unwrap_or_default()
        };
        [
            vietnam::date(self.date),
            vietnam::weekday(self.date).to_string(),
            self.event_title.clone(),
            self.task_title.clone(),
            time(self.deadline),
            self.person.clone(),
            self.state.words(),
            time(self.at),
            self.note.clone(),
            self.link.clone(),
        ]
    }
}
