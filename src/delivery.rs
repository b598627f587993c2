//! Delivery: one scheduler step, [`tick`], that sends the reminders due at `now`.
//!
//! A tick plans the reminders due in the last `catch_up` (and, to record them as skipped, a
//! month before that), records new ones in the store, and sends each person one email per due
//! instant listing their tasks. The store's state decides: `sent`, `failed` and `skipped` rows
//! are never sent; a row left `sending` by a crash is sent again (the one possible duplicate).
//! Messages go one at a time, so at most one is in flight when the process dies. A temporary
//! failure backs that message off exponentially and the others go on; when the server itself is
//! unusable (down, wrong password) the rest wait for the next tick. A reminder found later than
//! `catch_up` is recorded as skipped and logged, never sent silently late; one sent late within
//! `catch_up` says so in its subject.
//!
//! Time is an argument: `serve` calls it every minute with the clock, `ngayle send-due --now`
//! with any instant, tests with fixed ones. A [`TickControl`] ends a tick between two emails
//! (shutdown) and tells its caller when the tick last made progress (health).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};
use lettre::message::Mailbox;

use crate::lunar;
use crate::mail::{Mailer, SendError};
use crate::plan::{Reminder, ReminderKey, VIETNAM, plan};
use crate::schedule::{Assignee, Schedule};
use crate::store::{Change, Planned, ReminderState, Status, Store, StoreError};
use crate::template::{ItemCtx, MailContext, PersonCtx, UnitCtx};

/// How far before the catch-up window reminders are still looked at, to record them skipped.
pub const LOOKBACK: Duration = Duration::days(31);
/// A reminder sent more than this after its due time is marked late in its subject.
pub const LATE_AFTER: Duration = Duration::minutes(15);
/// How many other people an email names for a task before it just counts them.
pub const MAX_OTHERS: usize = 8;
/// The longest wait between two attempts of one message.
pub const MAX_BACKOFF: Duration = Duration::hours(1);

/// Shared between a running tick and its caller.
#[derive(Debug, Default)]
pub struct TickControl {
    /// Set to end the tick after the email in flight.
    stop: AtomicBool,
    /// When the tick last got something done (Unix milliseconds; 0: never).
    progress: AtomicI64,
}

impl TickControl {
    /// Asks the running tick (and later ones) to stop after the email in flight.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// When a tick last made progress: planned its reminders, or got an answer for an email.
    /// A long tick (hundreds of emails to a slow server) keeps this fresh; a stuck one does not.
    pub fn last_progress(&self) -> Option<DateTime<Utc>> {
        match self.progress.load(Ordering::Relaxed) {
            0 => None,
            ms => DateTime::from_timestamp_millis(ms),
        }
    }

    fn progressed(&self) {
        self.progress
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }
}

/// What a tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Emails sent (each may list several reminders).
    pub messages: usize,
    /// Reminders sent.
    pub sent: usize,
    /// Of those, sent later than [`LATE_AFTER`].
    pub late: usize,
    /// Reminders newly recorded as skipped (too late to send).
    pub skipped: usize,
    /// Reminders refused for good.
    pub failed: usize,
    /// Reminders waiting for a retry after a temporary failure.
    pub retrying: usize,
    /// Of those, the ones whose email failed in this tick.
    pub temporary_failures: usize,
    /// True when the mail server was unusable and reminders were left for the next tick.
    pub deferred: bool,
    /// In a dry run: what would be sent, one line per email.
    pub would_send: Vec<String>,
}

/// One email to send: a person's reminders due at one instant.
struct Batch<'a, 's> {
    reminders: Vec<(&'a Reminder<'s>, &'a ReminderState)>,
}

/// Sends what is due at `now`. With `dry_run`, records and sends nothing and lists the emails
/// it would send.
pub async fn tick(
    schedule: &Schedule,
    store: &Store,
    mailer: &Mailer,
    now: DateTime<Utc>,
    dry_run: bool,
    control: &TickControl,
) -> Result<TickReport, StoreError> {
    let mut report = TickReport::default();
    let too_late = now - schedule.settings.catch_up;
    let reminders = plan(schedule, too_late - LOOKBACK, now);
    let planned: Vec<Planned> = reminders
        .iter()
        .map(|r| Planned {
            key: &r.key,
            email: &r.person.email,
            due: r.due,
        })
        .collect();
    let states: Vec<ReminderState> = if dry_run {
        let keys: Vec<_> = reminders.iter().map(|r| &r.key).collect();
        store
            .lookup(&keys)
            .await?
            .into_iter()
            .zip(&reminders)
            .map(|(s, r)| {
                s.unwrap_or(ReminderState {
                    status: if r.due < too_late {
                        Status::Skipped
                    } else {
                        Status::Pending
                    },
                    attempts: 0,
                    next_attempt_at: None,
                    message_id: None,
                    new: true,
                })
            })
            .collect()
    } else {
        store.record_planned(&planned, too_late, now).await?
    };
    control.progressed();

    // Too late: newly found ones were recorded as skipped; pending ones whose window closed
    // while they waited (retries) are skipped now. Both are logged, never sent.
    let mut expired = Vec::new();
    for (r, s) in reminders.iter().zip(&states) {
        let newly_skipped = s.new && s.status == Status::Skipped;
        let ran_out = r.due < too_late && matches!(s.status, Status::Pending | Status::Sending);
        if newly_skipped || ran_out {
            tracing::info!(
                reminder = %r.key,
                email = %r.person.email,
                due = %r.due_local().to_rfc3339(),
                "quá hạn gửi bù: ghi là bỏ qua, không gửi"
            );
            report.skipped += 1;
            if ran_out {
                expired.push(&r.key);
            }
        }
    }
    if report.skipped > 0 {
        tracing::warn!(
            skipped = report.skipped,
            catch_up_hours = schedule.settings.catch_up.num_hours(),
            "{} lời nhắc đã quá hạn gửi bù: ghi là bỏ qua, không gửi",
            report.skipped
        );
    }
    if !dry_run && !expired.is_empty() {
        store.set_status(&expired, &Change::Skipped, now).await?;
    }

    // The sendable ones, one email per person and due instant.
    let mut batches: BTreeMap<(DateTime<Utc>, &str), Batch> = BTreeMap::new();
    for (r, s) in reminders.iter().zip(&states) {
        let sendable = matches!(s.status, Status::Pending | Status::Sending)
            && r.due >= too_late
            && s.next_attempt_at.is_none_or(|t| t <= now);
        if !sendable {
            if s.status == Status::Pending && r.due >= too_late {
                report.retrying += 1;
            }
            continue;
        }
        batches
            .entry((r.due, r.person.id.as_str()))
            .or_insert_with(|| Batch {
                reminders: Vec::new(),
            })
            .reminders
            .push((r, s));
    }

    // Emails go one after the other, and ngayle does its own work while the server does its
    // own: the next email is composed while this one is on the wire, and the outcome of the
    // last one is recorded (with "sending" for this one) while this one's envelope goes out —
    // its content, which makes the server take it, leaves only once that record is committed.
    // So a crash can repeat the email in flight, and only it.
    let mut done: Option<(Vec<&ReminderKey>, Outcome)> = None;
    let mut teams = Teams::default();
    let mut queue = batches.iter();
    let mut next = prepare(schedule, mailer, &mut teams, now, queue.next());
    while let Some(this) = next.take() {
        if control.stopping() {
            // Shutting down: the rest stay pending for the next start.
            report.deferred = true;
            break;
        }
        let Prepared {
            due,
            batch,
            late,
            keys,
            seed,
            message_id,
            composed,
        } = this;
        let (message, subject) = match composed {
            Ok(m) => m,
            Err(e) => {
                // A template that fails on real data (it passed the load-time test render).
                tracing::error!(error = %e, reminders = %seed, "không soạn được thư");
                if !dry_run {
                    store
                        .set_status(&keys, &Change::Failed { error: &e }, now)
                        .await?;
                }
                report.failed += keys.len();
                next = prepare(schedule, mailer, &mut teams, now, queue.next());
                continue;
            }
        };
        if dry_run {
            let to = batch
                .reminders
                .first()
                .map_or("", |(r, _)| r.person.email.as_str());
            report.would_send.push(format!(
                "{} → {to}: {subject}",
                due.with_timezone(&VIETNAM).format("%Y-%m-%dT%H:%M%:z")
            ));
            report.messages += 1;
            report.sent += keys.len();
            next = prepare(schedule, mailer, &mut teams, now, queue.next());
            continue;
        }
        let sending = Change::Sending {
            message_id: &message_id,
        };
        let previous = done.take();
        let record = async {
            match &previous {
                Some((prev, outcome)) => {
                    store
                        .apply(&[(prev, outcome.change()), (&keys, sending)], now)
                        .await
                }
                None => store.set_status(&keys, &sending, now).await,
            }
        };
        let compose_next = async { prepare(schedule, mailer, &mut teams, now, queue.next()) };
        let (sent, following) = tokio::join!(mailer.send_after(&message, record), compose_next);
        next = following;
        control.progressed();
        let to = &batch.reminders[0].0.person.email;
        match sent? {
            Ok(()) => {
                report.messages += 1;
                report.sent += keys.len();
                if late {
                    report.late += keys.len();
                }
                tracing::info!(to = %to, reminders = keys.len(), late, message_id = %message_id, "đã gửi thư nhắc việc");
                done = Some((keys, Outcome::Sent));
            }
            Err(SendError::Permanent(e)) => {
                report.failed += keys.len();
                tracing::error!(to = %to, error = %e, "thư bị từ chối, không gửi lại");
                done = Some((keys, Outcome::Failed(e)));
            }
            Err(err @ (SendError::Transient(_) | SendError::Unavailable(_))) => {
                let attempts = batch
                    .reminders
                    .iter()
                    .map(|(_, s)| s.attempts)
                    .max()
                    .unwrap_or(0)
                    + 1;
                let at = now + backoff(attempts);
                let text = err.to_string();
                report.retrying += keys.len();
                report.temporary_failures += keys.len();
                tracing::warn!(
                    to = %to,
                    error = %text,
                    retry_at = %at.with_timezone(&VIETNAM),
                    "gửi thư chưa được, sẽ thử lại"
                );
                done = Some((keys, Outcome::Retry(text, at)));
                if matches!(err, SendError::Unavailable(_)) {
                    // The others would fail the same way: they wait for the next tick.
                    report.deferred = true;
                    break;
                }
            }
        }
    }
    if let Some((prev, outcome)) = done {
        store.set_status(&prev, &outcome.change(), now).await?;
    }
    Ok(report)
}

/// An email composed ahead of its turn.
struct Prepared<'a, 'b, 's> {
    due: DateTime<Utc>,
    batch: &'a Batch<'b, 's>,
    late: bool,
    keys: Vec<&'b ReminderKey>,
    /// The reminders' keys, for logs and the Message-ID.
    seed: String,
    message_id: String,
    composed: Result<(crate::mail::Letter, String), String>,
}

/// Composes the next email, if there is one.
fn prepare<'a, 'b, 's>(
    schedule: &'s Schedule,
    mailer: &Mailer,
    teams: &mut Teams<'s>,
    now: DateTime<Utc>,
    next: Option<(&'a (DateTime<Utc>, &'s str), &'a Batch<'b, 's>)>,
) -> Option<Prepared<'a, 'b, 's>> {
    let ((due, _), batch) = next?;
    let late = now - *due > LATE_AFTER;
    let keys: Vec<&ReminderKey> = batch.reminders.iter().map(|(r, _)| &r.key).collect();
    let seed = keys
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let message_id = mailer.new_message_id(&seed);
    let composed = compose(schedule, mailer, teams, batch, late, &message_id);
    Some(Prepared {
        due: *due,
        batch,
        late,
        keys,
        seed,
        message_id,
        composed,
    })
}

/// How a sent email ended, to be recorded.
enum Outcome {
    Sent,
    Failed(String),
    Retry(String, DateTime<Utc>),
}

impl Outcome {
    fn change(&self) -> Change<'_> {
        match self {
            Outcome::Sent => Change::Sent,
            Outcome::Failed(e) => Change::Failed { error: e },
            Outcome::Retry(e, at) => Change::Retry { error: e, at: *at },
        }
    }
}

/// 1 min, 2 min, 4 min, … at most [`MAX_BACKOFF`].
pub fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    (Duration::minutes(1) * 2_i32.pow(exp)).min(MAX_BACKOFF)
}

/// The email of one batch.
fn compose<'s>(
    schedule: &'s Schedule,
    mailer: &Mailer,
    teams: &mut Teams<'s>,
    batch: &Batch<'_, 's>,
    late: bool,
    message_id: &str,
) -> Result<(crate::mail::Letter, String), String> {
    let Some((first, _)) = batch.reminders.first() else {
        return Err("empty batch".to_string());
    };
    let person = first.person;
    let settings = &schedule.settings;
    let feed = match person.groups.first() {
        Some(g) => format!("{}/calendar/{g}.ics", settings.public_url),
        None => format!("{}/calendar.ics", settings.public_url),
    };
    let feed_url = match &settings.feed_token {
        Some(t) => format!("{feed}?token={}", t.expose()),
        None => feed,
    };
    let mut events: Vec<&str> = batch
        .reminders
        .iter()
        .map(|(r, _)| &*r.key.event_id)
        .collect();
    events.sort_unstable();
    events.dedup();
    let items = batch
        .reminders
        .iter()
        .map(|(r, _)| item(schedule, teams, r))
        .collect();
    let ctx = MailContext {
        unit: UnitCtx {
            name: schedule.unit.name.clone(),
            place: schedule.unit.place.clone(),
        },
        person: PersonCtx {
            name: person.name.clone(),
            title: person.title.clone(),
            email: person.email.clone(),
        },
        late,
        events: events.len(),
        items,
        feed_url,
        reply_to: settings.reply_to.clone(),
    };
    let rendered = schedule.templates.render(&ctx).map_err(|e| e.to_string())?;
    let to: Mailbox = format!("{} <{}>", person.name, person.email)
        .parse()
        .or_else(|_| person.email.parse())
        .map_err(|e: lettre::address::AddressError| format!("{}: {e}", person.email))?;
    let message = mailer
        .message(
            to,
            &rendered.subject,
            rendered.text,
            rendered.html,
            message_id,
        )
        .map_err(|e| e.to_string())?;
    Ok((message, rendered.subject))
}

/// The people named for each task (by id), computed once per tick: a task's team is the same
/// in every email that mentions it.
#[derive(Default)]
struct Teams<'s> {
    by_task: std::collections::HashMap<&'s str, Vec<&'s crate::schedule::Person>>,
}

impl<'s> Teams<'s> {
    fn of(
        &mut self,
        schedule: &'s Schedule,
        task: &'s crate::schedule::Task,
    ) -> &[&'s crate::schedule::Person] {
        self.by_task
            .entry(task.id.as_str())
            .or_insert_with(|| schedule.assignees(task))
    }
}

fn item<'s>(schedule: &'s Schedule, teams: &mut Teams<'s>, r: &Reminder<'s>) -> ItemCtx {
    let o = &r.occurrence;
    let lunar = o
        .lunar()
        .map(|l| {
            let leap = if l.leap { " nhuận" } else { "" };
            format!(
                "{}/{}{leap} năm {}",
                l.day,
                l.month,
                lunar::year_name(l.year)
            )
        })
        .unwrap_or_default();
    let due = r.due_local();
    // "Who else": the other people named for this task (a few names, then a count); not for a
    // task of everyone.
    let others = if r.task.who.iter().any(|w| !matches!(w, Assignee::All)) {
        let all: Vec<&str> = teams
            .of(schedule, r.task)
            .iter()
            .filter(|p| p.id != r.person.id)
            .map(|p| p.name.as_str())
            .collect();
        let mut shown: Vec<String> = all.iter().take(MAX_OTHERS).map(|n| n.to_string()).collect();
        if all.len() > MAX_OTHERS {
            shown.push(format!("và {} người khác", all.len() - MAX_OTHERS));
        }
        shown
    } else {
        Vec::new()
    };
    let short = match o.anniversary {
        Some(n) => format!("Kỷ niệm {n} năm {}", o.event.name),
        None => o.event.name.clone(),
    };
    ItemCtx {
        event_title: o.title.clone(),
        event_short: short,
        event_name: o.event.name.clone(),
        event_date: o.date.format("%d/%m/%Y").to_string(),
        event_date_short: o.date.format("%-d/%-m/%Y").to_string(),
        weekday: lunar::weekday_vi(o.date).to_string(),
        lunar,
        anniversary: o.anniversary,
        class: o.class.map(|c| c.name_vi().to_string()),
        task_title: r.task.title.clone(),
        task_do: r.task.what.clone(),
        before_days: r.task.before_days,
        due: format!(
            "{} {} {}",
            due.format("%H:%M"),
            lunar::weekday_vi(due.date_naive()),
            due.format("%d/%m/%Y")
        ),
        others,
        note: o.event.note.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let m = |n| Duration::minutes(n);
        assert_eq!(backoff(1), m(1));
        assert_eq!(backoff(2), m(2));
        assert_eq!(backoff(3), m(4));
        assert_eq!(backoff(6), m(32));
        assert_eq!(backoff(7), m(60));
        assert_eq!(backoff(100), m(60));
        assert_eq!(backoff(0), m(1));
    }
}
