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
use crate::store::{Change, Planned, ReminderState, SKIPPED_WHEN_FOUND, Status, Store, StoreError};
use crate::template::{ItemCtx, MailContext, PersonCtx, UnitCtx};
use std::future::Future;

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
#[derive(Clone)]
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

    // Too late: newly found ones were recorded as skipped (and are logged here); every
    // reminder still waiting whose window closed — also one that no plan reaches any more, or
    // that waited longer than the look-back — is recorded skipped by the store, with why.
    for (r, s) in reminders.iter().zip(&states) {
        if s.new && s.status == Status::Skipped {
            tracing::info!(
                reminder = %r.key,
                email = %r.person.email,
                due = %r.due_local().to_rfc3339(),
                reason = SKIPPED_WHEN_FOUND,
                "quá hạn gửi bù: ghi là bỏ qua, không gửi"
            );
            report.skipped += 1;
        }
    }
    if dry_run {
        report.skipped += reminders
            .iter()
            .zip(&states)
            .filter(|(r, s)| !s.new && r.due < too_late && s.status == Status::Pending)
            .count();
    } else {
        for e in store.expire(too_late, now).await? {
            tracing::info!(
                reminder = %e.key,
                email = %e.email,
                due = %e.due.with_timezone(&VIETNAM).to_rfc3339(),
                reason = %e.reason,
                "quá hạn gửi bù: ghi là bỏ qua, không gửi"
            );
            report.skipped += 1;
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
    if dry_run {
        let mut teams = Teams::default();
        for ((due, _), batch) in &batches {
            let p = prepare(schedule, mailer, &mut teams, now, *due, batch.clone());
            if let Ok((_, subject)) = &p.composed {
                let to = batch
                    .reminders
                    .first()
                    .map_or("", |(r, _)| r.person.email.as_str());
                report.would_send.push(format!(
                    "{} → {to}: {subject}",
                    due.with_timezone(&VIETNAM).format("%Y-%m-%dT%H:%M%:z")
                ));
                report.messages += 1;
                report.sent += p.keys.len();
            } else {
                report.failed += p.keys.len();
            }
        }
        return Ok(report);
    }
    let sender = Sender {
        schedule,
        store,
        mailer,
        now,
        lease: schedule.settings.lease,
    };
    sender.send_all(&batches, control, &mut report).await?;
    Ok(report)
}

/// What the emails of a tick share.
struct Sender<'t> {
    schedule: &'t Schedule,
    store: &'t Store,
    mailer: &'t Mailer,
    now: DateTime<Utc>,
    lease: std::time::Duration,
}

/// Why an email's content was not let out after its envelope.
enum Gate {
    /// The store failed recording the last outcome or confirming this claim.
    Store(StoreError),
    /// This email's claim was lost (its lease ran out and another process took it).
    Lost,
}

impl<'t> Sender<'t> {
    /// Sends the batches one email at a time, in order. Each email's reminders are claimed in
    /// the store first (the next one's while this one is on the wire): a batch another process
    /// claimed is left to it. The outcome of one email is recorded — and the next one's claim
    /// confirmed — while the next one's envelope goes out; its content, which makes the server
    /// take it, leaves only once that is committed. So a crash can repeat the email in flight,
    /// and only it, and two processes never send one reminder.
    async fn send_all<'a, 's>(
        &self,
        batches: &'a BTreeMap<(DateTime<Utc>, &'s str), Batch<'a, 's>>,
        control: &TickControl,
        report: &mut TickReport,
    ) -> Result<(), StoreError>
    where
        't: 's,
        's: 'a,
    {
        let mut teams = Teams::default();
        let mut queue = batches.iter();
        let mut done: Option<(Vec<&'a ReminderKey>, Outcome)> = None;
        let mut next = self.claim_next(&mut teams, &mut queue).await?;
        while let Some(this) = next.take() {
            if control.stopping() {
                // Shutting down: this one goes back to pending for the next start.
                report.deferred = true;
                self.store
                    .settle(&[(&this.keys, Change::Release)], &[], self.lease, self.now)
                    .await?;
                break;
            }
            let (message, _subject) = match &this.composed {
                Ok(m) => m,
                Err(e) => {
                    // A template that fails on real data (it passed the load-time test render).
                    tracing::error!(error = %e, reminders = %this.seed, "không soạn được thư");
                    self.store
                        .settle(
                            &[(&this.keys, Change::Failed { error: e })],
                            &[],
                            self.lease,
                            self.now,
                        )
                        .await?;
                    report.failed += this.keys.len();
                    next = self.claim_next(&mut teams, &mut queue).await?;
                    continue;
                }
            };
            let previous = done.take();
            // The next claim waits for this gate: two writes at once from one process would
            // make one of them wait in SQLite's busy handler (milliseconds per email).
            let (gated, after_gate) = tokio::sync::oneshot::channel::<()>();
            let gate = async {
                let prev: Vec<(&[&ReminderKey], Change)> = previous
                    .iter()
                    .map(|(keys, o)| (keys.as_slice(), o.change()))
                    .collect();
                let settled = self
                    .store
                    .settle(&prev, &this.keys, self.lease, self.now)
                    .await;
                let _ = gated.send(());
                match settled {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(Gate::Lost),
                    Err(e) => Err(Gate::Store(e)),
                }
            };
            let sending = self.renewing(&this.keys, self.mailer.send_after(message, gate));
            let following = async {
                let _ = after_gate.await;
                self.claim_next(&mut teams, &mut queue).await
            };
            let (sent, following) = tokio::join!(sending, following);
            control.progressed();
            let to = this.to;
            let sent = match sent {
                Ok(r) => r,
                Err(Gate::Lost) => {
                    tracing::warn!(to = %to, reminders = %this.seed, "lời nhắc đã do tiến trình khác gửi: bỏ qua ở đây");
                    next = following?;
                    continue;
                }
                Err(Gate::Store(e)) => {
                    // Nothing of this email left: its claim runs out and it is sent later.
                    if let Ok(Some(n)) = following {
                        let _ = self
                            .store
                            .settle(&[(&n.keys, Change::Release)], &[], self.lease, self.now)
                            .await;
                    }
                    return Err(e);
                }
            };
            next = following?;
            match sent {
                Ok(()) => {
                    report.messages += 1;
                    report.sent += this.keys.len();
                    if this.late {
                        report.late += this.keys.len();
                    }
                    tracing::info!(to = %to, reminders = this.keys.len(), late = this.late, message_id = %this.message_id, "đã gửi thư nhắc việc");
                    done = Some((this.keys, Outcome::Sent));
                }
                Err(SendError::Permanent(e)) => {
                    report.failed += this.keys.len();
                    tracing::error!(to = %to, error = %e, "thư bị từ chối, không gửi lại");
                    done = Some((this.keys, Outcome::Failed(e)));
                }
                Err(err @ (SendError::Transient(_) | SendError::Unavailable(_))) => {
                    let at = self.now + backoff(this.attempts + 1);
                    let text = err.to_string();
                    report.retrying += this.keys.len();
                    report.temporary_failures += this.keys.len();
                    tracing::warn!(
                        to = %to,
                        error = %text,
                        retry_at = %at.with_timezone(&VIETNAM),
                        "gửi thư chưa được, sẽ thử lại"
                    );
                    done = Some((this.keys, Outcome::Retry(text, at)));
                    if matches!(err, SendError::Unavailable(_)) {
                        // The others would fail the same way: they wait for the next tick, and
                        // each says why it waits (a skip later names the mail server).
                        report.deferred = true;
                        let mut waiting: Vec<&ReminderKey> = Vec::new();
                        if let Some(n) = next.take() {
                            self.store
                                .settle(&[(&n.keys, Change::Release)], &[], self.lease, self.now)
                                .await?;
                            waiting.extend(n.keys);
                        }
                        waiting.extend(
                            queue
                                .by_ref()
                                .flat_map(|(_, b)| b.reminders.iter().map(|(r, _)| &r.key)),
                        );
                        self.store
                            .waiting(&waiting, &err.to_string(), self.now)
                            .await?;
                        break;
                    }
                }
            }
        }
        if let Some((prev, outcome)) = done {
            self.store
                .settle(&[(&prev, outcome.change())], &[], self.lease, self.now)
                .await?;
        }
        Ok(())
    }

    /// The next batch this process wins, composed for the reminders it won (another process
    /// may hold some or all of a batch), or `None` at the end.
    async fn claim_next<'a, 's>(
        &self,
        teams: &mut Teams<'s>,
        queue: &mut impl Iterator<Item = (&'a (DateTime<Utc>, &'s str), &'a Batch<'a, 's>)>,
    ) -> Result<Option<Prepared<'a, 's>>, StoreError>
    where
        't: 's,
        's: 'a,
    {
        for ((due, _), batch) in queue.by_ref() {
            let p = prepare(
                self.schedule,
                self.mailer,
                teams,
                self.now,
                *due,
                batch.clone(),
            );
            let won = self
                .store
                .claim(&p.keys, &p.message_id, self.lease, self.now)
                .await?;
            if won.len() == p.keys.len() {
                return Ok(Some(p));
            }
            if won.is_empty() {
                continue;
            }
            let mine = Batch {
                reminders: won
                    .iter()
                    .filter_map(|&i| batch.reminders.get(i).copied())
                    .collect(),
            };
            let mut again = prepare(self.schedule, self.mailer, teams, self.now, *due, mine);
            // The claim was made with the first Message-ID: keep it, it is the one recorded.
            again.message_id = p.message_id;
            return Ok(Some(again));
        }
        Ok(None)
    }

    /// Runs `send`, renewing this process's claim on `keys` while it takes long (a server may
    /// take up to ten minutes to answer a message): the lease covers the email in flight.
    async fn renewing<F: Future>(&self, keys: &[&ReminderKey], send: F) -> F::Output {
        tokio::pin!(send);
        let every = self.lease / 3;
        loop {
            tokio::select! {
                out = &mut send => return out,
                () = tokio::time::sleep(every) => {
                    match self.store.renew(keys, self.lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(
                            "lời nhắc đang gửi đã hết hạn giữ và được tiến trình khác nhận"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "không gia hạn được lời nhắc đang gửi")
                        }
                    }
                }
            }
        }
    }
}

/// An email composed ahead of its turn.
struct Prepared<'a, 's> {
    late: bool,
    keys: Vec<&'a ReminderKey>,
    /// The recipient's address, for logs.
    to: &'s str,
    /// The most attempts of its reminders so far (for the backoff).
    attempts: i64,
    /// The reminders' keys, for logs and the Message-ID.
    seed: String,
    message_id: String,
    composed: Result<(crate::mail::Letter, String), String>,
}

/// Composes the email of a batch.
fn prepare<'a, 's>(
    schedule: &'s Schedule,
    mailer: &Mailer,
    teams: &mut Teams<'s>,
    now: DateTime<Utc>,
    due: DateTime<Utc>,
    batch: Batch<'a, 's>,
) -> Prepared<'a, 's> {
    let late = now - due > LATE_AFTER;
    let keys: Vec<&ReminderKey> = batch.reminders.iter().map(|(r, _)| &r.key).collect();
    let seed = keys
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let message_id = mailer.new_message_id(&seed);
    let composed = compose(schedule, mailer, teams, &batch, late, &message_id);
    Prepared {
        late,
        to: batch
            .reminders
            .first()
            .map_or("", |(r, _)| r.person.email.as_str()),
        attempts: batch
            .reminders
            .iter()
            .map(|(_, s)| s.attempts)
            .max()
            .unwrap_or(0),
        keys,
        seed,
        message_id,
        composed,
    }
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
