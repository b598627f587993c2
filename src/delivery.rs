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

use std::future::Future;

use crate::mail::{ForReminder, Letter, Mailer, SendError};
use crate::plan::{Kind, Reminder, ReminderKey, escalations, plan};
use crate::report::Answers;
use crate::schedule::{Assignee, DoneWhen, Lead, Schedule};
use crate::store::{
    AckRecord, Claim, FeedKeys, Outcome, Planned, Previous, Refused, ReminderState, ReminderStatus,
    SKIPPED_BEFORE_START, SKIPPED_PAST_DEADLINE, SKIPPED_WHEN_FOUND, Store, StoreError, Unsettled,
};
use crate::template::{
    AnswerCtx, EscalationContext, EscalationItem, ItemCtx, MailContext, PersonCtx, UnitCtx,
};
use crate::vietnam;

/// How far before the catch-up window reminders are still looked at, to record them skipped.
pub const LOOKBACK: Duration = Duration::days(31);
/// A reminder sent more than this after its due time is marked late in its subject.
pub const LATE_AFTER: Duration = Duration::minutes(15);
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
    /// Reminders due before the store began keeping reminders (a new install), recorded as
    /// skipped without a line each.
    pub before_start: usize,
    /// Reminders newly recorded as skipped (too late to send).
    pub skipped: usize,
    /// Reminders not sent because their task was answered "Đã xong" (newly planned ones, and
    /// in a dry run every one that would have gone).
    pub done: usize,
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

/// The emails of a tick, in the order they go: by due instant, then person.
type Due<'a, 's> = BTreeMap<(DateTime<Utc>, &'s str, Kind), Batch<'a, 's>>;

/// Sends what is due at `now`. With `dry_run`, records and sends nothing and lists the emails
/// it would send. The steps: plan the window, record new reminders, skip what is too late,
/// choose what is due, send (each outcome recorded before the next email's content leaves).
pub async fn tick(
    schedule: &Schedule,
    store: &Store,
    mailer: &Mailer,
    now: DateTime<Utc>,
    dry_run: bool,
    control: &TickControl,
) -> Result<TickReport, StoreError> {
    let mut report = TickReport::default();
    let window = Window {
        now,
        too_late: now - schedule.settings.catch_up,
        late: now - LATE_AFTER,
        started: store.started_at(now, dry_run).await?,
    };
    let mut reminders = plan(schedule, window.too_late - LOOKBACK, now);
    reminders.extend(escalations(schedule, window.too_late - LOOKBACK, now));
    // Stable: the plan's order within an instant is kept.
    reminders.sort_by_key(|r| r.due);
    let mut states = if dry_run {
        window.look(store, &reminders).await?
    } else {
        window.record(store, &reminders).await?
    };
    let answers = escalated(schedule, store, &reminders, &mut states, dry_run, now).await?;
    control.progressed();
    window
        .skip(store, &reminders, &states, dry_run, &mut report)
        .await?;
    if report.before_start > 0 {
        tracing::info!(
            "{} lời nhắc đến hạn trước khi ngayle bắt đầu chạy ({}): không gửi",
            report.before_start,
            vietnam::time_day(vietnam::local(window.started))
        );
    }
    if report.skipped > 0 {
        tracing::warn!(
            skipped = report.skipped,
            catch_up_hours = schedule.settings.catch_up.num_hours(),
            "{} lời nhắc quá hạn (quá thời hạn gửi bù hoặc đã qua hạn công việc): ghi là bỏ qua, không gửi",
            report.skipped
        );
    }
    let due = window.due(&reminders, &states, &mut report);
    // Each email links to its reader's own feed. (A dry run keeps no new secret.)
    let keys = store
        .feed_keys(schedule.settings.feed_secret.as_ref(), !dry_run)
        .await?;
    if dry_run {
        list(schedule, &keys, &answers, now, &due, &mut report);
        return Ok(report);
    }
    let sender = Sender {
        schedule,
        store,
        mailer,
        now,
        lease: schedule.settings.lease,
        keys: &keys,
        answers: &answers,
    };
    sender.send_all(&due, control, &mut report).await?;
    Ok(report)
}

/// The instants a tick works with.
struct Window {
    now: DateTime<Utc>,
    /// Reminders due before this are not sent any more (`catch_up`).
    too_late: DateTime<Utc>,
    /// Reminders due before this are late (and not sent once their deadline has passed).
    late: DateTime<Utc>,
    /// When the store began keeping reminders: ones due before it are not pending work.
    started: DateTime<Utc>,
}

impl Window {
    /// Why `r` is not to be sent at all, if it is not: due before the store began, past its
    /// catch-up window, or late with its task's deadline passed.
    fn skip_reason(&self, r: &Reminder) -> Option<&'static str> {
        // A tick's own lateness (the first one a few minutes after a due time) is not "before".
        if r.due < self.started - LATE_AFTER {
            Some(SKIPPED_BEFORE_START)
        } else if r.due < self.too_late {
            Some(SKIPPED_WHEN_FOUND)
        } else if r.kind == Kind::Reminder && r.deadline < self.now && r.due < self.late {
            Some(SKIPPED_PAST_DEADLINE)
        } else {
            None
        }
    }

    /// What the store is told of each planned reminder: its key, address, times, and why it
    /// is skipped if it is found now.
    fn planned<'r>(&self, reminders: &'r [Reminder<'_>]) -> Vec<Planned<'r>> {
        reminders
            .iter()
            .map(|r| Planned {
                key: &r.key,
                email: &r.person.email,
                due: r.due,
                // An escalation comes after the deadline: it waits as long as `catch_up` lets it.
                deadline: match r.kind {
                    Kind::Reminder => r.deadline,
                    Kind::Escalation => r.due + (self.now - self.too_late),
                },
                skip: self.skip_reason(r),
            })
            .collect()
    }

    /// Records the new reminders of the plan (a too-late one as skipped) and returns every
    /// reminder's state.
    async fn record(
        &self,
        store: &Store,
        reminders: &[Reminder<'_>],
    ) -> Result<Vec<ReminderState>, StoreError> {
        store
            .record_planned(&self.planned(reminders), self.now)
            .await
    }

    /// What [`Window::record`] would return, recording nothing (a dry run).
    async fn look(
        &self,
        store: &Store,
        reminders: &[Reminder<'_>],
    ) -> Result<Vec<ReminderState>, StoreError> {
        let planned = self.planned(reminders);
        Ok(store
            .lookup(&planned)
            .await?
            .into_iter()
            .zip(&planned)
            .map(|(s, p)| {
                s.unwrap_or(ReminderState {
                    status: if p.skip.is_some() {
                        ReminderStatus::Skipped
                    } else {
                        ReminderStatus::Pending
                    },
                    attempts: 0,
                    next_attempt_at: None,
                    message_id: None,
                    last_error: None,
                    new: true,
                    done: false,
                })
            })
            .collect())
    }

    /// Not to be sent: newly found ones were recorded as skipped (and are logged here, those
    /// due before the store began only counted); every reminder still waiting whose window
    /// closed or whose deadline passed — also one that no plan reaches any more, or that
    /// waited longer than the look-back — is recorded skipped by the store, with why. Counts
    /// them in `report`.
    async fn skip(
        &self,
        store: &Store,
        reminders: &[Reminder<'_>],
        states: &[ReminderState],
        dry_run: bool,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        for (r, s) in reminders.iter().zip(states) {
            if s.done && (s.new || (dry_run && s.status == ReminderStatus::Pending)) {
                tracing::info!(
                    reminder = %r.key,
                    email = %r.person.email,
                    "{}",
                    if dry_run { "việc đã được báo xong: sẽ không gửi" } else { "việc đã được báo xong: ghi là bỏ qua, không gửi" }
                );
                report.done += 1;
                continue;
            }
            if !(s.new && s.status == ReminderStatus::Skipped) {
                continue;
            }
            match self.skip_reason(r) {
                Some(SKIPPED_BEFORE_START) => report.before_start += 1,
                reason => {
                    tracing::info!(
                        reminder = %r.key,
                        email = %r.person.email,
                        due = %r.due_local().to_rfc3339(),
                        deadline = %r.deadline_local().to_rfc3339(),
                        reason = reason.unwrap_or_default(),
                        "{}",
                        if dry_run { "sẽ bỏ qua, không gửi" } else { "ghi là bỏ qua, không gửi" }
                    );
                    report.skipped += 1;
                }
            }
        }
        if dry_run {
            report.skipped += reminders
                .iter()
                .zip(states)
                .filter(|(r, s)| {
                    !s.new
                        && !s.done
                        && s.status == ReminderStatus::Pending
                        && self.skip_reason(r).is_some()
                })
                .count();
            return Ok(());
        }
        for e in store.expire(self.too_late, self.late, self.now).await? {
            tracing::info!(
                reminder = %e.key,
                email = %e.email,
                due = %vietnam::local(e.due).to_rfc3339(),
                reason = %e.reason,
                "ghi là bỏ qua, không gửi"
            );
            report.skipped += 1;
        }
        Ok(())
    }

    /// The sendable reminders, one email per person and due instant; counts the ones waiting
    /// for a retry.
    fn due<'a, 's>(
        &self,
        reminders: &'a [Reminder<'s>],
        states: &'a [ReminderState],
        report: &mut TickReport,
    ) -> Due<'a, 's> {
        let mut batches: Due = BTreeMap::new();
        for (r, s) in reminders.iter().zip(states) {
            let open = self.skip_reason(r).is_none() && !s.done;
            let sendable = matches!(s.status, ReminderStatus::Pending | ReminderStatus::Sending)
                && open
                && s.next_attempt_at.is_none_or(|t| t <= self.now);
            if !sendable {
                if s.status == ReminderStatus::Pending && open {
                    report.retrying += 1;
                }
                continue;
            }
            batches
                .entry((r.due, r.person.id.as_str(), r.kind))
                .or_insert_with(|| Batch {
                    reminders: Vec::new(),
                })
                .reminders
                .push((r, s));
        }
        batches
    }
}

/// A dry run's listing: one line per email that would go.
fn list(
    schedule: &Schedule,
    keys: &FeedKeys,
    answers: &Answers,
    now: DateTime<Utc>,
    due: &Due,
    report: &mut TickReport,
) {
    let mut teams = Teams::default();
    for ((at, _, _), batch) in due {
        let late = now - *at > LATE_AFTER;
        match compose(schedule, keys, answers, &mut teams, batch, late) {
            Ok(email) => {
                let address = batch
                    .reminders
                    .first()
                    .map_or("", |(r, _)| r.person.email.as_str());
                report.would_send.push(format!(
                    "{} → {address}: {}",
                    vietnam::local(*at).format("%Y-%m-%dT%H:%M%:z"),
                    email.subject
                ));
                report.messages += 1;
                report.sent += batch.reminders.len();
                if late {
                    report.late += batch.reminders.len();
                }
            }
            Err(_) => report.failed += batch.reminders.len(),
        }
    }
}

/// What the emails of a tick share.
struct Sender<'t> {
    schedule: &'t Schedule,
    store: &'t Store,
    mailer: &'t Mailer,
    now: DateTime<Utc>,
    lease: std::time::Duration,
    /// The personal feed links' keys, read once per tick.
    keys: &'t FeedKeys,
    /// What the escalated tasks' people answered.
    answers: &'t Answers,
}

impl<'t> Sender<'t> {
    /// Sends the batches one email at a time, in order. Each email's reminders are claimed in
    /// the store first (the next one's while this one is on the wire): a batch another process
    /// claimed is left to it. The store's permit for an email — made by committing the previous
    /// outcome and confirming this claim — is asked for while its envelope goes out; its
    /// content, which makes the server take it, can only leave with that permit (the types of
    /// `store::sending` and `mail::letter`). So a crash can repeat the email in flight, and
    /// only it, and two processes never send one reminder.
    async fn send_all<'a, 's>(
        &self,
        batches: &'a Due<'a, 's>,
        control: &TickControl,
        report: &mut TickReport,
    ) -> Result<(), StoreError>
    where
        't: 's,
        's: 'a,
    {
        let mut teams = Teams::default();
        let mut queue = batches.iter();
        let mut previous: Previous<'a> = self.store.turn().await.into();
        let mut next = self.claim_next(&mut teams, &mut queue).await?;
        while let Some(this) = next.take() {
            if control.stopping() {
                // Shutting down: this one goes back to pending for the next start.
                report.deferred = true;
                self.store.release(this.claim, self.now).await?;
                break;
            }
            let letter = match this.letter {
                Ok(l) => l,
                Err(e) => {
                    // A template that fails on real data (it passed the load-time test render).
                    tracing::error!(error = %e, reminders = %this.seed, "không soạn được thư");
                    report.failed += this.claim.keys().len();
                    self.store
                        .record(this.claim, Outcome::Failed(e), self.now)
                        .await?;
                    next = self.claim_next(&mut teams, &mut queue).await?;
                    continue;
                }
            };
            // The next claim waits for the permit: two writes at once from one process would
            // make one of them wait in SQLite's busy handler (milliseconds per email).
            let (cleared, after_clear) = tokio::sync::oneshot::channel::<()>();
            let before = previous;
            let permit = async {
                let permit = self
                    .store
                    .clear(before, &this.claim, self.lease, self.now)
                    .await;
                let _ = cleared.send(());
                permit
            };
            let sending = self.renewing(&this.claim, self.mailer.send_reminder(&letter, permit));
            let following = async {
                let _ = after_clear.await;
                self.claim_next(&mut teams, &mut queue).await
            };
            let (sent, following) = tokio::join!(sending, following);
            control.progressed();
            let to = this.to;
            let (result, spent) = match sent {
                Ok(sent) => sent,
                Err(Refused::Lost(turn)) => {
                    tracing::warn!(to = %to, reminders = %this.seed, "lời nhắc đã do tiến trình khác gửi: bỏ qua ở đây");
                    this.claim.lost();
                    previous = turn.into();
                    next = following?;
                    continue;
                }
                Err(Refused::Store(e)) => {
                    // Nothing of this email left: its claim runs out and it is sent later.
                    if let Ok(Some(n)) = following {
                        let _ = self.store.release(n.claim, self.now).await;
                    }
                    return Err(e);
                }
            };
            next = following?;
            let keys = this.claim.keys().len();
            let outcome = match &result {
                Ok(()) => {
                    report.messages += 1;
                    report.sent += keys;
                    if this.late {
                        report.late += keys;
                    }
                    tracing::info!(to = %to, reminders = keys, late = this.late, message_id = %this.claim.message_id(), "đã gửi thư nhắc việc");
                    Outcome::Sent
                }
                Err(SendError::Permanent(e)) => {
                    report.failed += keys;
                    tracing::error!(to = %to, error = %e, "thư bị từ chối, không gửi lại");
                    Outcome::Failed(e.clone())
                }
                Err(err @ (SendError::Transient(_) | SendError::Unavailable(_))) => {
                    let at = self.now + backoff(this.attempts + 1);
                    report.retrying += keys;
                    report.temporary_failures += keys;
                    tracing::warn!(
                        to = %to,
                        error = %err,
                        retry_at = %vietnam::local(at),
                        "gửi thư chưa được, sẽ thử lại"
                    );
                    Outcome::Retry(err.to_string(), at)
                }
            };
            previous = Unsettled::new(this.claim, outcome, spent).into();
            if let Err(err @ SendError::Unavailable(_)) = &result {
                // The others would fail the same way: they wait for the next tick, and each
                // says why it waits (a skip later names the mail server).
                report.deferred = true;
                let mut waiting: Vec<&ReminderKey> = Vec::new();
                if let Some(n) = next.take() {
                    waiting.extend(n.claim.keys());
                    self.store.release(n.claim, self.now).await?;
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
        if let Previous::Email(last) = previous {
            self.store.settle(last, self.now).await?;
        }
        Ok(())
    }

    /// The next batch this process wins, composed for the reminders it won (another process
    /// may hold some or all of a batch), or `None` at the end.
    async fn claim_next<'a, 's>(
        &self,
        teams: &mut Teams<'s>,
        queue: &mut impl Iterator<Item = (&'a (DateTime<Utc>, &'s str, Kind), &'a Batch<'a, 's>)>,
    ) -> Result<Option<Email<'a, 's>>, StoreError>
    where
        't: 's,
        's: 'a,
    {
        for ((due, _, _), batch) in queue.by_ref() {
            let keys: Vec<&'a ReminderKey> = batch.reminders.iter().map(|(r, _)| &r.key).collect();
            let asked = seed(&keys);
            let message_id = self.mailer.new_message_id(&asked);
            let Some(claim) = self
                .store
                .claim(&keys, message_id, self.lease, self.now)
                .await?
            else {
                continue;
            };
            let whole = claim.won().len() == keys.len();
            let mine = if whole {
                batch.clone()
            } else {
                Batch {
                    reminders: claim
                        .won()
                        .iter()
                        .filter_map(|&i| batch.reminders.get(i).copied())
                        .collect(),
                }
            };
            let late = self.now - *due > LATE_AFTER;
            let letter =
                compose(self.schedule, self.keys, self.answers, teams, &mine, late).map(|e| {
                    self.mailer
                        .reminder(e.to, &e.subject, e.text, e.html, &claim)
                });
            return Ok(Some(Email {
                late,
                to: mine
                    .reminders
                    .first()
                    .map_or("", |(r, _)| r.person.email.as_str()),
                attempts: mine
                    .reminders
                    .iter()
                    .map(|(_, s)| s.attempts)
                    .max()
                    .unwrap_or(0),
                seed: if whole { asked } else { seed(claim.keys()) },
                claim,
                letter,
            }));
        }
        Ok(None)
    }

    /// Runs `send`, renewing this process's claim while it takes long (a server may take up
    /// to ten minutes to answer a message): the lease covers the email in flight.
    async fn renewing<F: Future>(&self, claim: &Claim<'_>, send: F) -> F::Output {
        tokio::pin!(send);
        let every = self.lease / 3;
        loop {
            tokio::select! {
                out = &mut send => return out,
                () = tokio::time::sleep(every) => {
                    match self.store.renew(claim, self.lease).await {
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

/// The reminders' keys in one line, for logs and the Message-ID.
fn seed(keys: &[&ReminderKey]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// An email claimed and composed ahead of its turn.
struct Email<'a, 's> {
    claim: Claim<'a>,
    late: bool,
    /// The recipient's address, for logs.
    to: &'s str,
    /// The most attempts of its reminders so far (for the backoff).
    attempts: i64,
    /// The reminders' keys, for logs.
    seed: String,
    letter: Result<Letter<ForReminder>, String>,
}

/// 1 min, 2 min, 4 min, … at most [`MAX_BACKOFF`].
pub fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    (Duration::minutes(1) * 2_i32.pow(exp)).min(MAX_BACKOFF)
}

/// An email's parts, rendered from the templates.
struct Composed {
    to: Mailbox,
    subject: String,
    text: String,
    html: String,
}

/// The answers of the task occurrences of the escalations waiting in this window; an
/// escalation whose task is done by now (`done_when: any` and one answered done, or every
/// person it is given to did) is marked done (and skipped in the store, but in a dry run).
async fn escalated(
    schedule: &Schedule,
    store: &Store,
    reminders: &[Reminder<'_>],
    states: &mut [ReminderState],
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<Answers, StoreError> {
    let waiting = |r: &Reminder, s: &ReminderState| {
        r.kind == Kind::Escalation
            && matches!(s.status, ReminderStatus::Pending | ReminderStatus::Sending)
    };
    let days = reminders
        .iter()
        .zip(states.iter())
        .filter(|(r, s)| waiting(r, s))
        .map(|(r, _)| r.key.date);
    let (Some(first), Some(last)) = (days.clone().min(), days.max()) else {
        return Ok(Answers::new());
    };
    // The answers of every waiting escalation's day span, in one query.
    let answers = store.acks_between(first, last).await?;
    let mut settled: Vec<&ReminderKey> = Vec::new();
    for (r, s) in reminders.iter().zip(states.iter_mut()) {
        if !waiting(r, s) {
            continue;
        }
        let id = (
            r.key.event_id.to_string(),
            r.key.date,
            r.key.task_id.to_string(),
        );
        let got = answers.get(&id).map_or(&[][..], Vec::as_slice);
        let done_by = |person: &str| got.iter().any(|a| a.done && a.person_id == person);
        let done = match r.task.done_when {
            DoneWhen::Any => got.iter().any(|a| a.done),
            DoneWhen::All => schedule.assignees(r.task).iter().all(|p| done_by(&p.id)),
        };
        if done {
            s.done = true;
            settled.push(&r.key);
        }
    }
    if !dry_run && !settled.is_empty() {
        store.skip_settled(&settled, now).await?;
    }
    Ok(answers)
}

/// A deadline, short, for subjects: `17:00 21/12`.
fn due_short(deadline: DateTime<chrono::FixedOffset>) -> String {
    format!(
        "{} {}",
        deadline.format("%H:%M"),
        deadline.format("%-d/%-m")
    )
}

/// What every email begins with: the unit, the reader, why it is late.
struct Head {
    unit: UnitCtx,
    person: PersonCtx,
    late_reason: String,
}

impl Head {
    fn of(
        schedule: &Schedule,
        person: &crate::schedule::Person,
        batch: &Batch<'_, '_>,
        late: bool,
    ) -> Head {
        Head {
            unit: UnitCtx {
                name: schedule.unit.name.clone(),
                place: schedule.unit.place.clone(),
            },
            person: PersonCtx {
                name: person.name.clone(),
                title: person.title.clone(),
                email: person.email.clone(),
            },
            late_reason: if late {
                late_reason(batch).to_string()
            } else {
                String::new()
            },
        }
    }
}

impl Composed {
    /// The rendered parts, to the person (with their name when the address takes one).
    fn new(
        person: &crate::schedule::Person,
        rendered: crate::template::Rendered,
    ) -> Result<Composed, String> {
        let to: Mailbox = format!("{} <{}>", person.name, person.email)
            .parse()
            .or_else(|_| person.email.parse())
            .map_err(|e: lettre::address::AddressError| format!("{}: {e}", person.email))?;
        Ok(Composed {
            to,
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        })
    }
}

/// The email of one batch.
fn compose<'s>(
    schedule: &'s Schedule,
    keys: &FeedKeys,
    answers: &Answers,
    teams: &mut Teams<'s>,
    batch: &Batch<'_, 's>,
    late: bool,
) -> Result<Composed, String> {
    let Some((first, _)) = batch.reminders.first() else {
        return Err("empty batch".to_string());
    };
    if first.kind == Kind::Escalation {
        return compose_escalation(schedule, answers, batch, late);
    }
    let person = first.person;
    let settings = &schedule.settings;
    // The reader's own feed: exactly their tasks, whichever group the first one is for.
    let feed_url = crate::feeds::person_url(&settings.public_url, &keys.token(&person.id));
    let mut events: Vec<&str> = batch
        .reminders
        .iter()
        .map(|(r, _)| &*r.key.event_id)
        .collect();
    events.sort_unstable();
    events.dedup();
    // Nearest deadline first: the subject names the first item's task and deadline.
    let mut reminders: Vec<&Reminder<'s>> = batch.reminders.iter().map(|&(r, _)| r).collect();
    reminders.sort_by_key(|r| r.deadline_local());
    let items = reminders
        .into_iter()
        .map(|r| item(schedule, keys, teams, r))
        .collect();
    let head = Head::of(schedule, person, batch, late);
    let ctx = MailContext {
        unit: head.unit,
        person: head.person,
        late,
        late_reason: head.late_reason,
        events: events.len(),
        items,
        feed_url,
        reply_to: settings.reply_to.clone(),
    };
    let rendered = schedule.templates.render(&ctx).map_err(|e| e.to_string())?;
    Composed::new(person, rendered)
}

/// Why an email goes out late: its reminders were tried, or waited on an unusable mail server,
/// or else nothing ran when they were due.
fn late_reason(batch: &Batch) -> &'static str {
    if batch
        .reminders
        .iter()
        .any(|(_, s)| s.attempts > 0 || s.last_error.is_some())
    {
        "máy chủ gửi thư bị gián đoạn khi đến giờ nhắc"
    } else {
        "dịch vụ nhắc việc không chạy khi đến giờ nhắc (máy tắt hoặc dịch vụ dừng)"
    }
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

/// The email of a batch of escalations: each task, who has not answered, who could not do it
/// and why, who did it.
fn compose_escalation(
    schedule: &Schedule,
    answers: &Answers,
    batch: &Batch<'_, '_>,
    late: bool,
) -> Result<Composed, String> {
    let Some((first, _)) = batch.reminders.first() else {
        return Err("empty batch".to_string());
    };
    let person = first.person;
    let mut reminders: Vec<&Reminder> = batch.reminders.iter().map(|&(r, _)| r).collect();
    reminders.sort_by_key(|r| r.deadline_local());
    let items = reminders
        .into_iter()
        .map(|r| {
            let o = &r.occurrence;
            let id = (
                r.key.event_id.to_string(),
                r.key.date,
                r.key.task_id.to_string(),
            );
            let got = answers.get(&id).map_or(&[][..], Vec::as_slice);
            let assigned = schedule.assignees(r.task);
            let name = |id: &str| {
                assigned
                    .iter()
                    .find(|p| p.id == id)
                    .map_or_else(|| id.to_string(), |p| p.name.clone())
            };
            let answer = |a: &AckRecord| AnswerCtx {
                name: name(&a.person_id),
                done: a.done,
                note: a.note.clone(),
                link: a.link.clone(),
                at: vietnam::time_day(vietnam::local(a.answered_at)),
            };
            let deadline = r.deadline_local();
            EscalationItem {
                event_title: o.title.clone(),
                event_subject: o.subject.clone(),
                event_date: vietnam::date(o.date),
                weekday: vietnam::weekday(o.date).to_string(),
                task_title: r.task.title.clone(),
                task_do: r.task.what.clone(),
                due: vietnam::time_day(deadline),
                due_short: due_short(deadline),
                done_when: r.task.done_when.word(),
                not_done: assigned
                    .iter()
                    .filter(|p| !got.iter().any(|a| a.person_id == p.id))
                    .map(|p| p.name.clone())
                    .collect(),
                cannot: got.iter().filter(|a| !a.done).map(answer).collect(),
                done: got.iter().filter(|a| a.done).map(answer).collect(),
            }
        })
        .collect();
    let head = Head::of(schedule, person, batch, late);
    let ctx = EscalationContext {
        unit: head.unit,
        person: head.person,
        late,
        late_reason: head.late_reason,
        items,
        reply_to: schedule.settings.reply_to.clone(),
    };
    let rendered = schedule
        .templates
        .render_escalation(&ctx)
        .map_err(|e| e.to_string())?;
    Composed::new(person, rendered)
}

fn item<'s>(
    schedule: &'s Schedule,
    keys: &FeedKeys,
    teams: &mut Teams<'s>,
    r: &Reminder<'s>,
) -> ItemCtx {
    let o = &r.occurrence;
    let done_url = crate::ack::url(
        &schedule.settings.public_url,
        keys,
        &crate::ack::AckKey {
            event_id: r.key.event_id.to_string(),
            date: r.key.date,
            task_id: r.key.task_id.to_string(),
            person_id: r.key.person_id.to_string(),
        },
        crate::ack::last_day(r.deadline, schedule.settings.ack_valid_for),
    );
    let lunar = o
        .lunar()
        .map(|l| vietnam::lunar_short(&l))
        .unwrap_or_default();
    let due = r.due_local();
    let deadline = r.deadline_local();
    // "Who else": the other people named for this task (a few names, then a count); not for a
    // task of everyone.
    let others = if r.task.who.iter().any(|w| !matches!(w, Assignee::All)) {
        let all: Vec<&str> = teams
            .of(schedule, r.task)
            .iter()
            .filter(|p| p.id != r.person.id)
            .map(|p| p.name.as_str())
            .collect();
        vietnam::some_names(&all)
            .into_iter()
            .map(|n| n.into_owned())
            .collect()
    } else {
        Vec::new()
    };
    let name = crate::occurrence::plain_name(&o.event.name);
    let short = match o.anniversary {
        Some(n) => format!("Kỷ niệm {n} năm {name}"),
        None => name,
    };
    ItemCtx {
        event_title: o.title.clone(),
        event_short: short,
        event_subject: o.subject.clone(),
        event_summary: o.summary.clone(),
        event_name: o.event.name.clone(),
        event_date: vietnam::date(o.date),
        event_date_short: vietnam::date_short(o.date),
        weekday: vietnam::weekday(o.date).to_string(),
        lunar,
        anniversary: o.anniversary,
        class: o.class.map(|c| c.name_vi().to_string()),
        task_title: r.task.title.clone(),
        task_do: r.task.what.clone(),
        before_days: match r.lead {
            Lead::Days(n) => n,
            Lead::Minutes(_) => 0,
        },
        remind_at: vietnam::time_day(due),
        due: vietnam::time_day(deadline),
        due_short: due_short(deadline),
        others,
        note: o.event.note.clone(),
        not_done_url: format!("{done_url}?ket_qua=chua"),
        done_url,
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
