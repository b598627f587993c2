//! The store: ngayle's state in an embedded SQLite database (`state:` in the config).
//!
//! It holds what must survive a restart: every reminder by its key with its status (pending,
//! sending, sent, failed, skipped), attempts and Message-ID — the primary key is what makes a
//! second send impossible — and when each feed event last changed (so feeds are byte-stable
//! across processes). Migrations are embedded in the binary and run at open.
//! Async through sqlx, so no call blocks the runtime. It holds no calendar logic.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::feed::{Fingerprint, Revisions};
use crate::plan::ReminderKey;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("không tạo được thư mục {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("lỗi cơ sở dữ liệu: {0}")]
    Db(#[from] sqlx::Error),
    #[error("không nâng cấp được cơ sở dữ liệu: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// Transactions that read and then write take the write lock first: a deferred one that
/// reads, then finds another connection has written since, cannot upgrade and fails at once
/// with SQLITE_BUSY (the busy timeout does not apply) — e.g. a group feed's first request
/// during a tick.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| StoreError::Dir {
                    path: dir.display().to_string(),
                    source,
                })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        Store::connect(options).await
    }

    /// A private in-memory database, for tests and dry runs.
    pub async fn in_memory() -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        Store::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Store, StoreError> {
        // One connection for an in-memory database (each connection would be its own).
        // No ping before each use: the database is a local file (a ping would be one more
        // round trip to the SQLite worker for every statement).
        let pool = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(if options.get_filename() == Path::new(":memory:") {
                1
            } else {
                4
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("src/store/migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Records the feed's current fingerprints and returns when each UID's content last
    /// changed: unchanged content keeps its time, new or changed content gets `now`. One
    /// transaction. Rows of UIDs outside `prints` are kept: `ngayle ics` for other years must
    /// not reset the times of the years the server shows (a UID is one event in one year).
    pub async fn revisions(
        &self,
        feed: &str,
        prints: &[Fingerprint],
        now: DateTime<Utc>,
    ) -> Result<Revisions, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let rows = sqlx::query("SELECT uid, hash, modified_at FROM feed_revisions WHERE feed = ?")
            .bind(feed)
            .fetch_all(&mut *tx)
            .await?;
        let mut known: BTreeMap<String, (String, i64)> = BTreeMap::new();
        for row in rows {
            known.insert(
                row.try_get("uid")?,
                (row.try_get("hash")?, row.try_get("modified_at")?),
            );
        }
        let mut out = Revisions::new();
        for p in prints {
            let at = match known.remove(&p.uid) {
                Some((hash, at)) if hash == p.hash => at,
                _ => {
                    sqlx::query(
                        "INSERT INTO feed_revisions (feed, uid, hash, modified_at) VALUES (?, ?, ?, ?)
                         ON CONFLICT (feed, uid) DO UPDATE SET hash = excluded.hash, modified_at = excluded.modified_at",
                    )
                    .bind(feed)
                    .bind(&p.uid)
                    .bind(&p.hash)
                    .bind(now.timestamp())
                    .execute(&mut *tx)
                    .await?;
                    now.timestamp()
                }
            };
            out.insert(
                p.uid.clone(),
                DateTime::from_timestamp(at, 0).unwrap_or(now),
            );
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// Where a reminder is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Planned and not sent yet (possibly waiting to retry after a temporary failure).
    Pending,
    /// Handed to the mail server; if the process died here, it is sent again.
    Sending,
    Sent,
    /// Refused for good (a bad address).
    Failed,
    /// Found later than the catch-up window allows: recorded, never sent.
    Skipped,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Sending,
        Status::Sent,
        Status::Failed,
        Status::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Status {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .unwrap_or(Status::Pending)
    }
}

/// A reminder as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderState {
    pub status: Status,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub message_id: Option<String>,
    /// Recorded by this call (it was not known before).
    pub new: bool,
}

fn state_of(row: &sqlx::sqlite::SqliteRow) -> Result<ReminderState, sqlx::Error> {
    Ok(ReminderState {
        status: Status::parse(row.try_get::<&str, _>("status")?),
        attempts: row.try_get("attempts")?,
        next_attempt_at: row
            .try_get::<Option<i64>, _>("next_attempt_at")?
            .map(from_ts),
        message_id: row.try_get("message_id")?,
        new: false,
    })
}

/// A planned reminder to record: its key, address and due instant.
#[derive(Debug, Clone)]
pub struct Planned<'a> {
    pub key: &'a ReminderKey,
    pub email: &'a str,
    pub due: DateTime<Utc>,
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

impl Store {
    /// Records planned reminders that are not known yet — as `pending`, or as `skipped` when
    /// due before `too_late` — and returns the state of every one of them. A pending reminder
    /// whose due time or address changed in the schedule is updated; sent ones never change.
    /// One transaction; the known rows are read with one query.
    pub async fn record_planned(
        &self,
        planned: &[Planned<'_>],
        too_late: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReminderState>, StoreError> {
        let (Some(first), Some(last)) = (
            planned.iter().map(|p| p.key.date).min(),
            planned.iter().map(|p| p.key.date).max(),
        ) else {
            return Ok(Vec::new());
        };
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let rows = sqlx::query(
            "SELECT event_id, occurrence_date, task_id, person_id, email, due_at,
                    status, attempts, next_attempt_at, message_id
             FROM reminders WHERE occurrence_date >= ? AND occurrence_date <= ?",
        )
        .bind(first.format("%Y-%m-%d").to_string())
        .bind(last.format("%Y-%m-%d").to_string())
        .fetch_all(&mut *tx)
        .await?;
        // Key columns → (state, email, due_at) of the rows already recorded.
        type Known = BTreeMap<(String, String, String, String), (ReminderState, String, i64)>;
        let mut known: Known = BTreeMap::new();
        for row in &rows {
            let key = (
                row.try_get("event_id")?,
                row.try_get("occurrence_date")?,
                row.try_get("task_id")?,
                row.try_get("person_id")?,
            );
            known.insert(
                key,
                (
                    state_of(row)?,
                    row.try_get("email")?,
                    row.try_get("due_at")?,
                ),
            );
        }
        let mut out = Vec::with_capacity(planned.len());
        let mut inserts: Vec<(&Planned, String, Status)> = Vec::new();
        for p in planned {
            let date = p.key.date.format("%Y-%m-%d").to_string();
            let id = (
                p.key.event_id.to_string(),
                date.clone(),
                p.key.task_id.to_string(),
                p.key.person_id.to_string(),
            );
            match known.get(&id) {
                Some((state, email, due)) => {
                    if state.status == Status::Pending && (email != p.email || *due != ts(p.due)) {
                        sqlx::query(
                            "UPDATE reminders SET email = ?, due_at = ?, updated_at = ?
                             WHERE event_id = ? AND occurrence_date = ? AND task_id = ? AND person_id = ?",
                        )
                        .bind(p.email)
                        .bind(ts(p.due))
                        .bind(ts(now))
                        .bind(&*p.key.event_id)
                        .bind(&date)
                        .bind(&*p.key.task_id)
                        .bind(&*p.key.person_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    out.push(state.clone());
                }
                None => {
                    let status = if p.due < too_late {
                        Status::Skipped
                    } else {
                        Status::Pending
                    };
                    inserts.push((p, date, status));
                    out.push(ReminderState {
                        status,
                        attempts: 0,
                        next_attempt_at: None,
                        message_id: None,
                        new: true,
                    });
                }
            }
        }
        // New rows in chunks: one statement per hundred reminders.
        for chunk in inserts.chunks(100) {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO reminders (event_id, occurrence_date, task_id, person_id, email, due_at,
                                        status, created_at, updated_at) VALUES {rows}"
            );
            // Audited: `sql` is built from constants and `?` placeholders only; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (p, date, status) in chunk {
                q = q
                    .bind(&*p.key.event_id)
                    .bind(date)
                    .bind(&*p.key.task_id)
                    .bind(&*p.key.person_id)
                    .bind(p.email)
                    .bind(ts(p.due))
                    .bind(status.as_str())
                    .bind(ts(now))
                    .bind(ts(now));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The states of reminders, without recording anything (`None`: not known yet).
    pub async fn lookup(
        &self,
        keys: &[&ReminderKey],
    ) -> Result<Vec<Option<ReminderState>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let row = sqlx::query(
                "SELECT status, attempts, next_attempt_at, message_id FROM reminders
                 WHERE event_id = ? AND occurrence_date = ? AND task_id = ? AND person_id = ?",
            )
            .bind(&*key.event_id)
            .bind(key.date.format("%Y-%m-%d").to_string())
            .bind(&*key.task_id)
            .bind(&*key.person_id)
            .fetch_optional(&self.pool)
            .await?;
            out.push(row.as_ref().map(state_of).transpose()?);
        }
        Ok(out)
    }

    /// Sets the status of reminders (one transaction), with the Message-ID, error and retry
    /// time that go with it.
    pub async fn set_status(
        &self,
        keys: &[&ReminderKey],
        change: &Change<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.apply(&[(keys, change.clone())], now).await
    }

    /// Several status changes, one statement each (each atomic for all its reminders; they
    /// need not be atomic together: delivery records "the last one was sent", then "this one is
    /// being sent"). The statements go to the database in one call and each commits by itself:
    /// one round trip per email instead of four for a transaction.
    pub async fn apply(
        &self,
        changes: &[(&[&ReminderKey], Change<'_>)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // (change, keys) per statement: at most KEYS_PER_STATEMENT keys each, at most
        // STATEMENTS_PER_CALL statements per call (SQLite's limit on bound values is far away).
        const KEYS_PER_STATEMENT: usize = 200;
        const STATEMENTS_PER_CALL: usize = 16;
        let statements: Vec<(&Change, &[&ReminderKey])> = changes
            .iter()
            .flat_map(|(keys, change)| keys.chunks(KEYS_PER_STATEMENT).map(move |c| (change, c)))
            .collect();
        for call in statements.chunks(STATEMENTS_PER_CALL) {
            let mut sql = String::new();
            for (change, keys) in call {
                let set = match change {
                    Change::Sending { .. } => {
                        "status = 'sending', message_id = ?, attempts = attempts + 1"
                    }
                    Change::Sent => {
                        "status = 'sent', sent_at = ?, last_error = NULL, next_attempt_at = NULL"
                    }
                    Change::Retry { .. } => {
                        "status = 'pending', last_error = ?, next_attempt_at = ?"
                    }
                    Change::Failed { .. } => "status = 'failed', last_error = ?",
                    Change::Skipped => "status = 'skipped'",
                };
                // One primary-key search per key (SQLite's multi-index OR). `IN (VALUES …)` is
                // planned as a scan of the table by some SQLite versions (3.40 does).
                let key = "(event_id, occurrence_date, task_id, person_id) = (?, ?, ?, ?)";
                let which = vec![key; keys.len()].join(" OR ");
                sql.push_str(&format!(
                    "UPDATE reminders SET {set}, updated_at = ? WHERE {which};\n"
                ));
            }
            // Audited: `sql` is built from constants and `?` placeholders only; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (change, keys) in call {
                q = match change {
                    Change::Sending { message_id } => q.bind(*message_id),
                    Change::Sent => q.bind(ts(now)),
                    Change::Retry { error, at } => q.bind(*error).bind(ts(*at)),
                    Change::Failed { error } => q.bind(*error),
                    Change::Skipped => q,
                };
                q = q.bind(ts(now));
                for key in keys.iter() {
                    q = q
                        .bind(&*key.event_id)
                        .bind(key.date.format("%Y-%m-%d").to_string())
                        .bind(&*key.task_id)
                        .bind(&*key.person_id);
                }
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// How many reminders are in each status.
    pub async fn counts(&self) -> Result<BTreeMap<Status, i64>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM reminders GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut out: BTreeMap<Status, i64> = Status::ALL.into_iter().map(|s| (s, 0)).collect();
        for row in rows {
            out.insert(
                Status::parse(row.try_get::<&str, _>("status")?),
                row.try_get("n")?,
            );
        }
        Ok(out)
    }
}

/// A status change for [`Store::set_status`].
#[derive(Debug, Clone)]
pub enum Change<'a> {
    Sending { message_id: &'a str },
    Sent,
    Retry { error: &'a str, at: DateTime<Utc> },
    Failed { error: &'a str },
    Skipped,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn key(n: usize) -> ReminderKey {
        ReminderKey {
            event_id: "30-4".into(),
            date: NaiveDate::from_ymd_opt(2026, 4, 30).unwrap_or_default(),
            task_id: "treo-co".into(),
            person_id: format!("p{n:04}").into(),
        }
    }

    async fn store_with(keys: &[ReminderKey]) -> Store {
        let store = Store::in_memory().await.expect("store");
        let now = Utc::now();
        let planned: Vec<Planned> = keys
            .iter()
            .map(|k| Planned {
                key: k,
                email: "a@example.org",
                due: now,
            })
            .collect();
        store
            .record_planned(&planned, now - chrono::Duration::hours(1), now)
            .await
            .expect("record");
        store
    }

    async fn statuses(store: &Store, keys: &[ReminderKey]) -> Vec<Status> {
        let refs: Vec<&ReminderKey> = keys.iter().collect();
        store
            .lookup(&refs)
            .await
            .expect("lookup")
            .into_iter()
            .map(|s| s.map_or(Status::Skipped, |s| s.status))
            .collect()
    }

    #[tokio::test]
    async fn apply_runs_every_change_of_one_call() {
        // 450 + 3 keys: several statements per change (200 keys each), all in one call.
        let keys: Vec<ReminderKey> = (0..500).map(key).collect();
        let store = store_with(&keys).await;
        let sent: Vec<&ReminderKey> = keys[..450].iter().collect();
        let sending: Vec<&ReminderKey> = keys[450..453].iter().collect();
        let now = Utc::now();
        store
            .apply(
                &[
                    (&sent, Change::Sent),
                    (
                        &sending,
                        Change::Sending {
                            message_id: "<m@x>",
                        },
                    ),
                ],
                now,
            )
            .await
            .expect("apply");
        let got = statuses(&store, &keys).await;
        assert!(got[..450].iter().all(|s| *s == Status::Sent));
        assert!(got[450..453].iter().all(|s| *s == Status::Sending));
        assert!(got[453..].iter().all(|s| *s == Status::Pending));
        let counts = store.counts().await.expect("counts");
        assert_eq!(counts[&Status::Sent], 450);
        assert_eq!(counts[&Status::Sending], 3);
        assert_eq!(counts[&Status::Pending], 47);
    }
}
