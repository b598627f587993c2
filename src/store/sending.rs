//! Sending's promises as types: a reminder's email goes to the server only under a claim this
//! store won, and its content leaves only with a [`Permit`] — which only [`Store::clear`] makes,
//! by committing the previous email's outcome and confirming this email's claim.
//!
//! The chain, for one process's send loop:
//!
//! ```text
//! Store::turn()  ──► Turn ─┐
//!                          ├─► Store::clear(previous, &claim) ──► Permit ──► mail: the content
//! Store::claim() ──► Claim ┘        ▲ commits the previous outcome              │ (Key::open)
//!                                   │ and confirms this claim                   ▼
//!                          Unsettled ◄── Unsettled::new(claim, outcome, Spent) ◄─ Spent
//! ```
//!
//! - A [`Turn`] is one store's right to have an email in flight; there is one per store at a
//!   time (a lock), so "one message in flight per process" holds by construction.
//! - A [`Claim`] exists only for rows this store won; it is not `Clone`, and ends by being moved
//!   into its outcome ([`Unsettled`], [`Store::record`]) or released ([`Store::release`]).
//! - A [`Permit`] cannot be built outside this module. `mail` opens a sealed message's content
//!   only with one (`mail::Key`), so a transport cannot write a reminder's content without it.
//! - The turn travels inside the permit, then inside the [`Spent`] the transport hands back, then
//!   inside the [`Unsettled`] outcome: the next permit can only be had by giving that outcome to
//!   [`Store::clear`], which commits it. Dropping an outcome unrecorded is a `must_use` lint
//!   (an error under `clippy -D warnings`); its rows then stay `sending` until their lease runs
//!   out, like a crash.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{KEYS_PER_STATEMENT, Store, StoreError, bind_key, date_text, keys_sql, ts};
use crate::plan::ReminderKey;

/// One store's right to have an email in flight (see the module's docs).
#[must_use = "a turn is what the next permit is made from"]
#[derive(Debug)]
pub struct Turn {
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

/// Reminders this store won for one email: only it may send them, until its lease runs out.
#[must_use = "a claim must end in an outcome (`Unsettled::new`, `Store::record`) or `Store::release`"]
#[derive(Debug)]
pub struct Claim<'k> {
    keys: Vec<&'k ReminderKey>,
    /// Positions, in the keys asked for, of the ones won.
    won: Vec<usize>,
    message_id: String,
}

impl<'k> Claim<'k> {
    /// The reminders held.
    pub fn keys(&self) -> &[&'k ReminderKey] {
        &self.keys
    }

    /// Where the held reminders were in the keys asked for (all of them, or a part another
    /// process did not take first).
    pub fn won(&self) -> &[usize] {
        &self.won
    }

    /// The Message-ID recorded with the claim: the email's.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The claim was found taken by another process (its lease ran out): nothing to record.
    pub fn lost(self) {}
}

/// Proof, as of its making, that every earlier email's outcome of this store is committed and
/// that `message_id`'s claim is still held: what lets that email's content leave.
#[must_use = "a permit unused leaves the email unsent; spend it to get the turn back"]
#[derive(Debug)]
pub struct Permit<'c> {
    message_id: &'c str,
    turn: Turn,
}

impl Permit<'_> {
    /// The email this permit lets go.
    pub fn message_id(&self) -> &str {
        self.message_id
    }

    /// Used up: the content went (or the email was given up before it); the turn goes on to
    /// the email's outcome.
    pub fn spend(self) -> Spent {
        Spent { turn: self.turn }
    }
}

/// A used permit: what an email's outcome is made with.
#[must_use = "an email's outcome must be made with it: `Unsettled::new`"]
#[derive(Debug)]
pub struct Spent {
    turn: Turn,
}

/// How an email ended, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Refused for good: never sent again.
    Failed(String),
    /// Failed for now: pending again, not before the instant.
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

/// An email's outcome, not yet committed: it holds the turn, so the next permit can only be
/// had by committing it ([`Store::clear`]), or the loop ends with [`Store::settle`].
#[must_use = "an email's outcome must be committed: `Store::clear` or `Store::settle`"]
#[derive(Debug)]
pub struct Unsettled<'k> {
    claim: Claim<'k>,
    outcome: Outcome,
    turn: Turn,
}

impl<'k> Unsettled<'k> {
    pub fn new(claim: Claim<'k>, outcome: Outcome, spent: Spent) -> Self {
        Unsettled {
            claim,
            outcome,
            turn: spent.turn,
        }
    }
}

/// What comes before the next email: nothing yet (the turn), or an outcome to commit first.
#[derive(Debug)]
pub enum Previous<'k> {
    Start(Turn),
    Email(Unsettled<'k>),
}

impl From<Turn> for Previous<'_> {
    fn from(t: Turn) -> Self {
        Previous::Start(t)
    }
}

impl<'k> From<Unsettled<'k>> for Previous<'k> {
    fn from(u: Unsettled<'k>) -> Self {
        Previous::Email(u)
    }
}

/// Why [`Store::clear`] gave no permit.
#[derive(Debug)]
pub enum Refused {
    /// The previous outcome is committed, but this email's claim was lost (its lease ran out
    /// and another process took it): this email must not go. The turn comes back.
    Lost(Turn),
    /// The store failed; whether the previous outcome was committed is not known.
    Store(StoreError),
}

impl Store {
    /// This store's turn to have an email in flight: waits while another send loop of this
    /// store has one (one message in flight per process).
    pub async fn turn(&self) -> Turn {
        Turn {
            _guard: Arc::clone(&self.inner.sending).lock_owned().await,
        }
    }

    /// Claims reminders for one email: each of `keys` that is pending and due for an attempt
    /// at `now`, or left `sending` by a process whose lease ran out (by the wall clock), becomes
    /// `sending` for this store's owner until `lease` from now, with `message_id` — unless its
    /// task occurrence was answered "Đã xong" meanwhile (by another process). One statement:
    /// of several processes claiming one reminder, exactly one wins. `None` when none was won.
    pub async fn claim<'k>(
        &self,
        keys: &[&'k ReminderKey],
        message_id: String,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim<'k>>, StoreError> {
        let r = self.claim_rows(keys, &message_id, lease, now).await;
        let won = self.note(r)?;
        if won.is_empty() {
            return Ok(None);
        }
        Ok(Some(Claim {
            keys: won.iter().filter_map(|&i| keys.get(i).copied()).collect(),
            won,
            message_id,
        }))
    }

    /// Commits `previous`'s outcome (on rows still held) and confirms `claim` (extending its
    /// lease) in one call: the only way to a [`Permit`]. Their order on the wire is what the
    /// at-most-once promise needs — the previous email is recorded before this one's content
    /// can leave — and one call keeps it cheap (one round trip per email).
    pub async fn clear<'c>(
        &self,
        previous: Previous<'_>,
        claim: &'c Claim<'_>,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Permit<'c>, Refused> {
        let (turn, settled) = match previous {
            Previous::Start(turn) => (turn, self.settle_rows(&[], &claim.keys, lease, now).await),
            Previous::Email(u) => {
                let change = [(u.claim.keys.as_slice(), u.outcome.change())];
                let r = self.settle_rows(&change, &claim.keys, lease, now).await;
                (u.turn, r)
            }
        };
        match self.note(settled) {
            Ok(true) => Ok(Permit {
                message_id: &claim.message_id,
                turn,
            }),
            Ok(false) => Err(Refused::Lost(turn)),
            Err(e) => Err(Refused::Store(e)),
        }
    }

    /// Commits the last email's outcome; the turn ends.
    pub async fn settle(&self, last: Unsettled<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.end(&last.claim, last.outcome.change(), now).await
    }

    /// Records the outcome of an email whose content never left (it could not be composed).
    pub async fn record(
        &self,
        claim: Claim<'_>,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.end(&claim, outcome.change(), now).await
    }

    /// Gives a claim back, its attempt not counted: the email was never handed to the server
    /// (shutdown, the server unusable).
    pub async fn release(&self, claim: Claim<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.end(&claim, Change::Release, now).await
    }

    /// Writes how `claim` ended, confirming nothing.
    async fn end(
        &self,
        claim: &Claim<'_>,
        change: Change<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let r = self
            .settle_rows(&[(claim.keys.as_slice(), change)], &[], Duration::ZERO, now)
            .await;
        self.note(r).map(drop)
    }

    /// Extends this store's hold on `claim` to `lease` from now (an email still in flight);
    /// false when some of it is no longer its own.
    pub async fn renew(&self, claim: &Claim<'_>, lease: Duration) -> Result<bool, StoreError> {
        let r = self.settle_rows(&[], &claim.keys, lease, Utc::now()).await;
        self.note(r)
    }

    async fn claim_rows(
        &self,
        keys: &[&ReminderKey],
        message_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<usize>, StoreError> {
        let pool = self.pool().await?;
        let wall = Utc::now();
        let until = wall + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut won = Vec::new();
        let mut offset = 0;
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let sql = format!(
                "UPDATE reminders SET status = 'sending', message_id = ?, attempts = attempts + 1,
                        claimed_by = ?, lease_until = ?, updated_at = ?
                 WHERE ({}) AND (
                       (status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?))
                    OR (status = 'sending' AND (lease_until IS NULL OR lease_until <= ?)))
                   AND NOT {}
                 RETURNING event_id, occurrence_date, task_id, person_id, lead",
                keys_sql(chunk.len()),
                super::acks::DONE_SQL
            );
            // Audited: `sql` is built from constants and `?` placeholders only; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(message_id)
                .bind(&self.inner.owner)
                .bind(until.timestamp_millis())
                .bind(ts(now));
            for key in chunk {
                q = bind_key(q, key);
            }
            let rows = q
                .bind(ts(now))
                .bind(wall.timestamp_millis())
                .fetch_all(&pool)
                .await?;
            for row in rows {
                let (e, d, t, p, l): (String, String, String, String, String) = (
                    row.try_get("event_id")?,
                    row.try_get("occurrence_date")?,
                    row.try_get("task_id")?,
                    row.try_get("person_id")?,
                    row.try_get("lead")?,
                );
                if let Some(i) = chunk.iter().position(|k| {
                    *k.event_id == *e
                        && date_text(k) == d
                        && *k.task_id == *t
                        && *k.person_id == *p
                        && *k.lead == *l
                }) {
                    won.push(offset + i);
                }
            }
            offset += chunk.len();
        }
        won.sort_unstable();
        Ok(won)
    }

    /// Records outcomes of this owner's claims, in order, and confirms its claim on `confirm`
    /// (extending their lease): each change applies only to rows this owner still holds
    /// (`sending`, claimed by it), so a process whose lease ran out cannot overwrite what
    /// another recorded since. Returns whether every one of `confirm` is still this owner's.
    async fn settle_rows(
        &self,
        changes: &[(&[&ReminderKey], Change<'_>)],
        confirm: &[&ReminderKey],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        /// A value bound to a `?` of the statements.
        enum Bind<'v> {
            Text(&'v str),
            Int(i64),
        }
        if confirm.is_empty() && changes.iter().all(|(keys, _)| keys.is_empty()) {
            return Ok(true);
        }
        // Every statement of one settle goes to the database in one call, each committing by
        // itself (one round trip per email instead of four for a transaction: the mailer's
        // throughput, BENCHMARKS.md). They need not be atomic together: each outcome applies
        // only to rows still held, and the confirmation's rows say whether this email may go.
        // The keys' date texts, in the order they are bound (outcomes, then confirmations).
        let dates: Vec<String> = changes
            .iter()
            .flat_map(|(keys, _)| keys.iter())
            .chain(confirm.iter())
            .map(|k| date_text(k))
            .collect();
        let mut date = dates.iter();
        let mut sql = String::new();
        let mut binds: Vec<Bind> = Vec::new();
        fn push_key<'v>(binds: &mut Vec<Bind<'v>>, key: &'v ReminderKey, date: Option<&'v String>) {
            binds.push(Bind::Text(&key.event_id));
            binds.push(Bind::Text(date.map_or("", String::as_str)));
            binds.push(Bind::Text(&key.task_id));
            binds.push(Bind::Text(&key.person_id));
            binds.push(Bind::Text(&key.lead));
        }
        for (keys, change) in changes {
            for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                let set = match change {
                    Change::Sent => {
                        "status = 'sent', sent_at = ?, last_error = NULL, next_attempt_at = NULL"
                    }
                    Change::Retry { .. } => {
                        "status = 'pending', last_error = ?, next_attempt_at = ?"
                    }
                    Change::Failed { .. } => "status = 'failed', last_error = ?",
                    // Claimed but never handed to the server (shutdown, server unusable):
                    // back to pending, the attempt not counted.
                    Change::Release => "status = 'pending', attempts = MAX(attempts - 1, 0)",
                };
                sql.push_str(&format!(
                    "UPDATE reminders SET {set}, claimed_by = NULL, lease_until = NULL, updated_at = ?
                     WHERE ({}) AND status = 'sending' AND claimed_by = ?;\n",
                    keys_sql(chunk.len())
                ));
                match change {
                    Change::Sent => binds.push(Bind::Int(ts(now))),
                    Change::Retry { error, at } => {
                        binds.push(Bind::Text(error));
                        binds.push(Bind::Int(ts(*at)));
                    }
                    Change::Failed { error } => binds.push(Bind::Text(error)),
                    Change::Release => {}
                }
                binds.push(Bind::Int(ts(now)));
                for key in chunk {
                    push_key(&mut binds, key, date.next());
                }
                binds.push(Bind::Text(&self.inner.owner));
            }
        }
        let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        for chunk in confirm.chunks(KEYS_PER_STATEMENT) {
            sql.push_str(&format!(
                "UPDATE reminders SET lease_until = ?
                 WHERE ({}) AND status = 'sending' AND claimed_by = ?
                 RETURNING 1;\n",
                keys_sql(chunk.len())
            ));
            binds.push(Bind::Int(until.timestamp_millis()));
            for key in chunk {
                push_key(&mut binds, key, date.next());
            }
            binds.push(Bind::Text(&self.inner.owner));
        }
        let pool = self.pool().await?;
        // Audited: `sql` is built from constants and `?` placeholders only; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(n) => q.bind(n),
            };
        }
        let held = q.fetch_all(&pool).await?.len();
        Ok(held == confirm.len())
    }
}

/// What a settle writes on held rows.
#[derive(Debug, Clone)]
pub(super) enum Change<'a> {
    Sent,
    Retry {
        error: &'a str,
        at: DateTime<Utc>,
    },
    Failed {
        error: &'a str,
    },
    /// Claimed, but the email was never handed to the server.
    Release,
}
