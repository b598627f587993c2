//! "Đã xong": each person's answer for a task of an occurrence (migration 0006), and the
//! reminders it stops.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::{BEGIN_WRITE, Store, StoreError, from_ts, ts};
use crate::ack::{AckKey, Answer};
use crate::plan::ReminderKey;
use crate::schedule::DoneWhen;

/// One kept answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRecord {
    pub person_id: String,
    pub done: bool,
    pub note: String,
    pub link: String,
    /// When it was first answered, and last changed.
    pub first_at: DateTime<Utc>,
    pub answered_at: DateTime<Utc>,
}

/// What recording an answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The first answer of this person for this task occurrence.
    New,
    /// A different answer than the one kept (done after not done, another note or link).
    Changed,
    /// The same answer again (a second click, a resent form): nothing changed.
    Same,
}

/// Why a reminder of a task already done is not sent (shown in `upcoming` and the log).
pub const SKIPPED_DONE: &str = "việc đã được báo xong";

/// The condition, on a `reminders` row, that its task occurrence is done for its person.
pub(super) const DONE_SQL: &str = "EXISTS (SELECT 1 FROM acks a
        WHERE a.done = 1 AND a.event_id = reminders.event_id
          AND a.occurrence_date = reminders.occurrence_date AND a.task_id = reminders.task_id
          AND ((a.person_id = reminders.person_id AND reminders.lead <> 'sau-han')
               OR a.scope = 'any'))";

impl Store {
    /// Keeps `answer` of `key`'s person (idempotent: the same answer twice changes nothing)
    /// and, when it says done, skips the reminders of that task occurrence still waiting:
    /// the person's own, or everyone's when `done_when` is `any`. One transaction.
    pub async fn acknowledge(
        &self,
        key: &AckKey,
        answer: &Answer,
        done_when: DoneWhen,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let r = async {
            let pool = self.pool().await?;
            let mut tx = pool.begin_with(BEGIN_WRITE).await?;
            let date = key.date.format("%Y-%m-%d").to_string();
            let kept = sqlx::query(
                "SELECT done, note, link FROM acks WHERE event_id = ? AND occurrence_date = ?
                   AND task_id = ? AND person_id = ?",
            )
            .bind(&key.event_id)
            .bind(&date)
            .bind(&key.task_id)
            .bind(&key.person_id)
            .fetch_optional(&mut *tx)
            .await?;
            let recorded = match kept {
                None => Recorded::New,
                Some(row) => {
                    let same = row.try_get::<i64, _>("done")? == i64::from(answer.done)
                        && row.try_get::<&str, _>("note")? == answer.note
                        && row.try_get::<&str, _>("link")? == answer.link;
                    if same {
                        Recorded::Same
                    } else {
                        Recorded::Changed
                    }
                }
            };
            if recorded != Recorded::Same {
                sqlx::query(
                    "INSERT INTO acks (event_id, occurrence_date, task_id, person_id, done, scope,
                                       note, link, first_at, answered_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
                     ON CONFLICT (event_id, occurrence_date, task_id, person_id) DO UPDATE SET
                         done = excluded.done, scope = excluded.scope, note = excluded.note,
                         link = excluded.link, answered_at = excluded.answered_at",
                )
                .bind(&key.event_id)
                .bind(&date)
                .bind(&key.task_id)
                .bind(&key.person_id)
                .bind(i64::from(answer.done))
                .bind(done_when.word())
                .bind(&answer.note)
                .bind(&answer.link)
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
            }
            if answer.done {
                skip_done_rows(&mut tx, now).await?;
            }
            tx.commit().await?;
            Ok(recorded)
        }
        .await;
        self.note(r)
    }

    /// Skips every reminder still waiting whose task occurrence is done for its person (an
    /// answer recorded by another process, or before the reminder was planned); returns how
    /// many.
    pub async fn skip_done(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let r = async {
            let pool = self.pool().await?;
            let mut tx = pool.begin_with(BEGIN_WRITE).await?;
            let n = skip_done_rows(&mut tx, now).await?;
            tx.commit().await?;
            Ok(n)
        }
        .await;
        self.note(r)
    }

    /// Skips the waiting reminders of `keys` as settled by the answers (an escalation of a task
    /// every person did).
    pub async fn skip_settled(
        &self,
        keys: &[&ReminderKey],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let r = async {
            let pool = self.pool().await?;
            for key in keys {
                sqlx::query(
                    "UPDATE reminders SET status = 'skipped', skip_reason = ?, claimed_by = NULL,
                            lease_until = NULL, updated_at = ?
                     WHERE event_id = ? AND occurrence_date = ? AND task_id = ? AND person_id = ?
                       AND lead = ? AND (status = 'pending'
                           OR (status = 'sending' AND (lease_until IS NULL OR lease_until <= ?)))",
                )
                .bind(SKIPPED_DONE)
                .bind(ts(now))
                .bind(&*key.event_id)
                .bind(key.date.format("%Y-%m-%d").to_string())
                .bind(&*key.task_id)
                .bind(&*key.person_id)
                .bind(&*key.lead)
                .bind(Utc::now().timestamp_millis())
                .execute(&pool)
                .await?;
            }
            Ok(())
        }
        .await;
        self.note(r)
    }

    /// Every answer for the occurrences of `first..=last`, by (event, day, task), first
    /// answered first.
    pub async fn acks_between(
        &self,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<crate::report::Answers, StoreError> {
        let r = async {
            let pool = self.pool().await?;
            let rows = sqlx::query(
                "SELECT event_id, occurrence_date, task_id, person_id, done, note, link, first_at,
                        answered_at FROM acks
                 WHERE occurrence_date >= ? AND occurrence_date <= ?
                 ORDER BY first_at, person_id",
            )
            .bind(first.format("%Y-%m-%d").to_string())
            .bind(last.format("%Y-%m-%d").to_string())
            .fetch_all(&pool)
            .await?;
            let mut out = crate::report::Answers::new();
            for row in rows {
                let date: &str = row.try_get("occurrence_date")?;
                let Ok(date) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
                    continue;
                };
                out.entry((row.try_get("event_id")?, date, row.try_get("task_id")?))
                    .or_default()
                    .push(record_of(&row)?);
            }
            Ok(out)
        }
        .await;
        self.note_read(r)
    }

    /// Every answer for the task of an occurrence, first answered first.
    pub async fn acks_of(
        &self,
        event_id: &str,
        date: NaiveDate,
        task_id: &str,
    ) -> Result<Vec<AckRecord>, StoreError> {
        let r = async {
            let pool = self.pool().await?;
            let rows = sqlx::query(
                "SELECT person_id, done, note, link, first_at, answered_at FROM acks
                 WHERE event_id = ? AND occurrence_date = ? AND task_id = ?
                 ORDER BY first_at, person_id",
            )
            .bind(event_id)
            .bind(date.format("%Y-%m-%d").to_string())
            .bind(task_id)
            .fetch_all(&pool)
            .await?;
            rows.iter().map(record_of).collect()
        }
        .await;
        self.note_read(r)
    }
}

/// An `acks` row's answer.
fn record_of(row: &sqlx::sqlite::SqliteRow) -> Result<AckRecord, StoreError> {
    Ok(AckRecord {
        person_id: row.try_get("person_id")?,
        done: row.try_get::<i64, _>("done")? == 1,
        note: row.try_get("note")?,
        link: row.try_get("link")?,
        first_at: from_ts(row.try_get("first_at")?),
        answered_at: from_ts(row.try_get("answered_at")?),
    })
}

/// The task occurrences answered done in a range of occurrence days.
pub(super) struct Done {
    /// (event, date, task) → `None` when done for everyone (`any`), else the people done.
    tasks: std::collections::HashMap<(String, String, String), Option<Vec<String>>>,
}

impl Done {
    pub(super) async fn read(
        conn: &mut sqlx::SqliteConnection,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Done, StoreError> {
        let rows = sqlx::query(
            "SELECT event_id, occurrence_date, task_id, person_id, scope FROM acks
             WHERE done = 1 AND occurrence_date >= ? AND occurrence_date <= ?",
        )
        .bind(first.format("%Y-%m-%d").to_string())
        .bind(last.format("%Y-%m-%d").to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut tasks: std::collections::HashMap<_, Option<Vec<String>>> =
            std::collections::HashMap::new();
        for row in rows {
            let key = (
                row.try_get("event_id")?,
                row.try_get("occurrence_date")?,
                row.try_get("task_id")?,
            );
            let any = row.try_get::<&str, _>("scope")? == "any";
            let entry = tasks.entry(key).or_insert_with(|| Some(Vec::new()));
            match entry {
                Some(people) if !any => people.push(row.try_get("person_id")?),
                _ => *entry = None,
            }
        }
        Ok(Done { tasks })
    }

    /// True when `key`'s task occurrence is done for its person.
    pub(super) fn covers(&self, key: &ReminderKey) -> bool {
        let id = (
            key.event_id.to_string(),
            key.date.format("%Y-%m-%d").to_string(),
            key.task_id.to_string(),
        );
        match self.tasks.get(&id) {
            None => false,
            Some(None) => true,
            // An escalation's person is the one told, not one who did the work.
            Some(Some(people)) => {
                *key.lead != *crate::plan::ESCALATION_LEAD
                    && people.iter().any(|p| **p == *key.person_id)
            }
        }
    }
}

/// The reminders waiting (pending, or `sending` under a lease that ran out) of task
/// occurrences that are done, made `skipped`.
pub(super) async fn skip_done_rows(
    tx: &mut sqlx::SqliteConnection,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let sql = format!(
        "UPDATE reminders SET status = 'skipped', skip_reason = ?, claimed_by = NULL,
                lease_until = NULL, updated_at = ?
         WHERE (status = 'pending'
                OR (status = 'sending' AND (lease_until IS NULL OR lease_until <= ?)))
           AND {DONE_SQL}"
    );
    // Audited: `sql` is built from constants only; every value is bound.
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(SKIPPED_DONE)
        .bind(ts(now))
        .bind(Utc::now().timestamp_millis())
        .execute(&mut *tx)
        .await?;
    Ok(done.rows_affected())
}
