//! The store: ngayle's state in an embedded SQLite database (`state:` in the config).
//!
//! It holds what must survive a restart: every reminder by its key with its status (pending,
//! sending, sent, failed, skipped), attempts, Message-ID and who holds it — the primary key is
//! what makes a second record impossible, and the claim (a conditional `pending → sending`
//! update that one process wins) is what makes a second send impossible — and when each feed
//! event last changed (so feeds are byte-stable across processes). Migrations are embedded in
//! the binary and run at open, one process at a time.
//!
//! Any number of processes may share the file (`serve`, a second `serve`, the hand catch-up
//! `send-due`): writes wait for each other (busy timeout), a claim is held under a lease that a
//! dead process's claim outlives only by its length. Every operation leaves its connection
//! usable after any error (a connection left inside a transaction is closed, not reused), and
//! the file is checked before each operation: a file replaced at its path is reopened, a
//! deleted one is not written to (nor created again) until it is back.
//! Async through sqlx, so no call blocks the runtime. It holds no calendar logic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row};

use crate::feed::{Fingerprint, Revisions};
use crate::plan::ReminderKey;

mod acks;
mod feed_tokens;
mod sending;
pub use acks::{AckRecord, Recorded, SKIPPED_DONE};
pub use feed_tokens::{FeedKeys, TOKEN_LEN, same_secret};
pub use sending::{Claim, Outcome, Permit, Previous, Refused, Spent, Turn, Unsettled};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("không tạo được thư mục {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("không mở được tệp dữ liệu {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("lỗi cơ sở dữ liệu: {0}")]
    Db(#[from] sqlx::Error),
    #[error("không nâng cấp được cơ sở dữ liệu: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "tệp dữ liệu {0} đã bị xoá trong khi dịch vụ chạy: không ghi gì nữa cho tới khi tệp được trả lại (hoặc khởi động lại dịch vụ để tạo tệp mới — các lời nhắc đã gửi sẽ không còn được nhớ)"
    )]
    Gone(String),
    #[error("trạng thái lời nhắc `{0}` không rõ trong cơ sở dữ liệu")]
    UnknownStatus(String),
}

/// How long a write waits for another process's write to finish before it fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The embedded migrations (`src/store/migrations/`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations");

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: RwLock<SqlitePool>,
    /// The file and its identity when opened; `None` for an in-memory database.
    file: Option<StateFile>,
    /// Who this store's claims belong to: unique per open store (process, time, randomness).
    owner: String,
    /// The last operation's error, until one succeeds (health).
    failing: Mutex<Option<String>>,
    /// Held by the [`Turn`] of the send loop that has an email in flight.
    sending: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug)]
struct StateFile {
    path: PathBuf,
    /// (device, inode) of the file the pool has open.
    identity: Mutex<Option<(u64, u64)>>,
    /// Serialises reopening (two operations that notice a replaced file reopen once).
    reopening: tokio::sync::Mutex<()>,
}

/// Transactions that read and then write take the write lock first: a deferred one that
/// reads, then finds another connection has written since, cannot upgrade and fails at once
/// with SQLITE_BUSY (the busy timeout does not apply) — e.g. a group feed's first request
/// during a tick.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

/// Creates `dir` (and its parents) private to the service's user: 0700 whatever the umask.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Creates the database file empty and 0600 if it does not exist, and takes group and other
/// permissions off an existing one. SQLite gives its WAL and shared-memory files the mode of
/// the database, so they are private too. True when the file is empty (a new database).
fn private_file(path: &Path) -> std::io::Result<bool> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = f.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            f.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    let empty = f.metadata()?.len() == 0;
    drop(f);
    Ok(empty)
}

/// Makes `dir` private (0700) if this process creates it; an existing folder is left as the
/// admin made it. Used for the state's and the outbox's folders.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    private_dir(dir)
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// Safe when several processes open one file at once.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let pool = open_pool(path).await?;
        Ok(Store::new(
            pool,
            Some(StateFile {
                path: path.to_path_buf(),
                identity: Mutex::new(identity(path)),
                reopening: tokio::sync::Mutex::new(()),
            }),
        ))
    }

    /// A private in-memory database, for tests and dry runs.
    pub async fn in_memory() -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection (each connection would be its own database).
        let pool = pool_options(1).connect_with(options).await?;
        migrate(&mut *pool.acquire().await?).await?;
        Ok(Store::new(pool, None))
    }

    fn new(pool: SqlitePool, file: Option<StateFile>) -> Store {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let random = {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        };
        Store {
            inner: Arc::new(Inner {
                pool: RwLock::new(pool),
                file,
                owner: format!("{}:{nanos:x}:{random:016x}", std::process::id()),
                failing: Mutex::new(None),
                sending: Arc::new(tokio::sync::Mutex::new(())),
            }),
        }
    }

    /// The pool to use now: the file is checked first. A file replaced at its path (a backup
    /// put back) is reopened; a deleted one is an error, so that nothing is written into an
    /// unlinked file and nothing is silently started afresh.
    async fn pool(&self) -> Result<SqlitePool, StoreError> {
        if let Some(file) = &self.inner.file {
            let now = identity(&file.path);
            let opened = *file.identity.lock().unwrap_or_else(|e| e.into_inner());
            match now {
                None => {
                    return Err(StoreError::Gone(file.path.display().to_string()));
                }
                Some(id) if Some(id) != opened => {
                    let _one = file.reopening.lock().await;
                    let opened = *file.identity.lock().unwrap_or_else(|e| e.into_inner());
                    if identity(&file.path) != opened {
                        tracing::warn!(
                            path = %file.path.display(),
                            "tệp dữ liệu đã được thay bằng tệp khác: mở lại tệp mới"
                        );
                        let fresh = open_pool(&file.path).await?;
                        let old = std::mem::replace(
                            &mut *self.inner.pool.write().unwrap_or_else(|e| e.into_inner()),
                            fresh,
                        );
                        *file.identity.lock().unwrap_or_else(|e| e.into_inner()) =
                            identity(&file.path);
                        old.close().await;
                    }
                }
                Some(_) => {}
            }
        }
        Ok(self
            .inner
            .pool
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    /// Notes a write's outcome for [`Store::health`].
    fn note<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        let mut failing = self.inner.failing.lock().unwrap_or_else(|e| e.into_inner());
        match &r {
            Ok(_) => *failing = None,
            Err(e) => *failing = Some(e.to_string()),
        }
        r
    }

    /// Notes a read's failure for [`Store::health`]; a read that succeeds says nothing about
    /// writes (a full disk still answers reads), so only a write clears the failure. Every
    /// tick writes (recording, expiring), so a failure clears within a tick of its cause.
    fn note_read<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &r {
            *self.inner.failing.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
        }
        r
    }

    /// `None` when the database answers and the last operation succeeded; else why not.
    pub async fn health(&self) -> Option<String> {
        let ping = async {
            let pool = self.pool().await?;
            sqlx::query("SELECT 1").execute(&pool).await?;
            Ok::<(), StoreError>(())
        };
        if let Err(e) = ping.await {
            return Some(e.to_string());
        }
        self.inner
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
        let r = self.revisions_inner(feed, prints, now).await;
        self.note(r)
    }

    async fn revisions_inner(
        &self,
        feed: &str,
        prints: &[Fingerprint],
        now: DateTime<Utc>,
    ) -> Result<Revisions, StoreError> {
        let pool = self.pool().await?;
        let mut tx = pool.begin_with(BEGIN_WRITE).await?;
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
        let mut changed = Vec::new();
        for p in prints {
            let at = match known.remove(&p.uid) {
                Some((hash, at)) if hash == p.hash => at,
                _ => {
                    changed.push(p);
                    now.timestamp()
                }
            };
            out.insert(
                p.uid.clone(),
                DateTime::from_timestamp(at, 0).unwrap_or(now),
            );
        }
        // Many rows per statement, not one: a new database (the first start) or a changed
        // province records hundreds to thousands, and each statement is a round trip to
        // sqlx's connection thread. Rows are applied in order, as one statement each would be.
        for chunk in changed.chunks(REVISIONS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO feed_revisions (feed, uid, hash, modified_at) VALUES {}
                 ON CONFLICT (feed, uid) DO UPDATE SET hash = excluded.hash, modified_at = excluded.modified_at",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            // Only placeholders are repeated into the text; every value is bound.
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for p in chunk {
                insert = insert
                    .bind(feed)
                    .bind(&p.uid)
                    .bind(&p.hash)
                    .bind(now.timestamp());
            }
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// Rows of one revisions `INSERT` (4 parameters each: far below SQLite's 32,766).
const REVISIONS_PER_INSERT: usize = 256;

fn pool_options(max: u32) -> SqlitePoolOptions {
    // No ping before each use: the database is a local file (a ping would be one more round
    // trip to the SQLite worker for every statement).
    SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(max)
        // A connection that comes back still inside a transaction (SQLite rolled it back by
        // itself after an error such as a full disk, and sqlx's own rollback then failed) is
        // closed: reused, it would refuse every later transaction ("begin_with at non-zero
        // transaction depth"). The ping first lets a queued rollback run.
        .after_release(|conn, _| {
            Box::pin(async move {
                if conn.is_in_transaction() {
                    let _ = conn.ping().await;
                }
                Ok(!conn.is_in_transaction())
            })
        })
}

/// Opens the file's pool: the file made private, then on the pool's first connection WAL mode
/// set once and the migrations run under the write lock (the pool's connections leave the
/// journal mode as the file has it). One connection for both, not one of its own for WAL:
/// each sqlx connection is a thread and a file to open, on the way to the first feed byte.
async fn open_pool(path: &Path) -> Result<SqlitePool, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(|source| StoreError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let new = private_file(path).map_err(|source| StoreError::File {
        path: path.display().to_string(),
        source,
    })?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = pool_options(4).connect_with(options).await?;
    let mut conn = pool.acquire().await?;
    let prepared = prepare(&mut conn, path, new).await;
    if prepared.is_err() {
        // It may still be unsynchronised (below): not for reuse.
        conn.close_on_drop();
    }
    drop(conn);
    prepared?;
    // Dropping hands the connection back to the pool in a spawned task: let it run, so that
    // the first operation (the feed's revisions, on the way to the first byte) finds it idle
    // instead of opening a second connection. (Only a shortcut: either way is correct.)
    tokio::task::yield_now().await;
    Ok(pool)
}

/// WAL mode and the migrations, on `conn`.
///
/// A new (empty) file is turned into a WAL database without SQLite's three `fsync`s (of the
/// rollback journal, the file and the folder: a millisecond here, tens on a school PC's disk,
/// all before the first feed byte). Instead the file is synced once, beside the migrations,
/// and that is awaited before the store is used, so what is recorded later is as safe as
/// ever; the migrations' first WAL write syncs the WAL and the folder as usual. A power cut
/// during the conversion itself (a few milliseconds, nothing recorded yet) can at worst leave
/// a file SQLite cannot read, which holds nothing: deleting it is the remedy.
async fn prepare(
    conn: &mut sqlx::SqliteConnection,
    path: &Path,
    new: bool,
) -> Result<(), StoreError> {
    if !new {
        set_wal(conn).await?;
        return migrate(conn).await;
    }
    sqlx::query("PRAGMA synchronous = OFF")
        .execute(&mut *conn)
        .await?;
    set_wal(conn).await?;
    sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(&mut *conn)
        .await?;
    let file = path.to_path_buf();
    let synced = tokio::task::spawn_blocking(move || std::fs::File::open(file)?.sync_data());
    let migrated = migrate(conn).await;
    let synced = match synced.await {
        Ok(synced) => synced,
        Err(e) => Err(std::io::Error::other(e)),
    };
    migrated?;
    synced.map_err(|source| StoreError::File {
        path: path.display().to_string(),
        source,
    })
}

/// Puts the file in WAL mode (once per file; it stays). Changing the journal mode needs an
/// exclusive lock that SQLite's busy timeout does not wait for, so a second process opening
/// a fresh file at the same moment got "database is locked": retry instead, as long as the
/// busy timeout.
async fn set_wal(conn: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode: Result<String, sqlx::Error> = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await;
        if mode.as_deref().is_ok_and(|m| m.eq_ignore_ascii_case("wal")) {
            break;
        }
        let set: Result<String, sqlx::Error> = sqlx::query_scalar("PRAGMA journal_mode = WAL")
            .fetch_one(&mut *conn)
            .await;
        match set {
            Ok(m) if m.eq_ignore_ascii_case("wal") => break,
            Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Ok(m) => {
                return Err(StoreError::Db(sqlx::Error::Protocol(format!(
                    "không đặt được chế độ WAL (đang là {m})"
                ))));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Runs the migrations inside one write transaction: a second process opening the file at the
/// same time waits (busy timeout), then finds them applied. (sqlx's SQLite migrator takes no
/// lock of its own; each migration runs in a savepoint of this transaction.)
async fn migrate(conn: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
    let mut tx = conn.begin_with(BEGIN_WRITE).await?;
    // `run_direct` on the connection, as sqlx's own docs point to: `run` takes an `Acquire`,
    // whose future is not `Send` for every lifetime, and `serve` needs a `Send` future.
    MIGRATOR.run_direct(None, &mut *tx, false).await?;
    tx.commit().await?;
    Ok(())
}

/// Where a reminder is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReminderStatus {
    /// Planned and not sent yet (possibly waiting to retry after a temporary failure).
    Pending,
    /// Claimed by a process for sending (maybe handed to the mail server); if that process
    /// died, it is claimed and sent again once its lease has run out.
    Sending,
    Sent,
    /// Refused for good (a bad address).
    Failed,
    /// Found later than the catch-up window allows: recorded, never sent.
    Skipped,
}

impl ReminderStatus {
    pub const ALL: [ReminderStatus; 5] = [
        ReminderStatus::Pending,
        ReminderStatus::Sending,
        ReminderStatus::Sent,
        ReminderStatus::Failed,
        ReminderStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReminderStatus::Pending => "pending",
            ReminderStatus::Sending => "sending",
            ReminderStatus::Sent => "sent",
            ReminderStatus::Failed => "failed",
            ReminderStatus::Skipped => "skipped",
        }
    }

    /// The status stored as `s`; the table's CHECK constraint allows no other.
    fn parse(s: &str) -> Result<ReminderStatus, StoreError> {
        ReminderStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::UnknownStatus(s.to_string()))
    }
}

/// A reminder as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderState {
    pub status: ReminderStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub message_id: Option<String>,
    /// The last send error, or why it waits (the mail server was unusable).
    pub last_error: Option<String>,
    /// Recorded by this call (it was not known before).
    pub new: bool,
    /// Its task occurrence was answered "Đã xong" (by its person, or by anyone when the
    /// task's `done_when` is `any`): it is not sent, whatever its status.
    pub done: bool,
}

fn state_of(row: &sqlx::sqlite::SqliteRow) -> Result<ReminderState, StoreError> {
    Ok(ReminderState {
        status: ReminderStatus::parse(row.try_get::<&str, _>("status")?)?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row
            .try_get::<Option<i64>, _>("next_attempt_at")?
            .map(from_ts),
        message_id: row.try_get("message_id")?,
        last_error: row.try_get("last_error")?,
        new: false,
        done: false,
    })
}

/// A planned reminder to record: its key, address, send instant and deadline, and, when it is
/// not to be sent at all, why (then it is recorded `skipped` if new).
#[derive(Debug, Clone)]
pub struct Planned<'a> {
    pub key: &'a ReminderKey,
    pub email: &'a str,
    pub due: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub skip: Option<&'static str>,
}

/// A reminder that was still pending when its catch-up window closed, now recorded skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub key: String,
    pub email: String,
    pub due: DateTime<Utc>,
    /// The last send error, if it ever was tried.
    pub last_error: Option<String>,
    /// Why it is skipped, in Vietnamese (also stored with the row).
    pub reason: String,
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

fn date_text(key: &ReminderKey) -> String {
    key.date.format("%Y-%m-%d").to_string()
}

/// `(event_id, occurrence_date, task_id, person_id, lead) = (?, ?, ?, ?, ?) OR …` for `n`
/// keys: one primary-key search per key (SQLite's multi-index OR). `IN (VALUES …)` is planned
/// as a scan of the table by some SQLite versions (3.40 does).
fn keys_sql(n: usize) -> String {
    let key = "(event_id, occurrence_date, task_id, person_id, lead) = (?, ?, ?, ?, ?)";
    vec![key; n].join(" OR ")
}

/// At most this many keys in one statement (SQLite's limit on bound values is far away).
const KEYS_PER_STATEMENT: usize = 200;

/// A reminder's key columns: event, date, task, person, lead.
type RowKey = (String, String, String, String, String);
/// Key columns → (state, email, due_at, deadline_at) of the rows already recorded.
type Known = BTreeMap<RowKey, (ReminderState, String, i64, Option<i64>)>;

fn row_key(key: &ReminderKey) -> RowKey {
    (
        key.event_id.to_string(),
        date_text(key),
        key.task_id.to_string(),
        key.person_id.to_string(),
        key.lead.to_string(),
    )
}

/// The first and last occurrence dates of `planned`.
fn date_span(planned: &[Planned<'_>]) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
    Some((
        planned.iter().map(|p| p.key.date).min()?,
        planned.iter().map(|p| p.key.date).max()?,
    ))
}

/// Every recorded reminder of the occurrences from `first` to `last`, read with one query.
async fn known_rows(
    conn: &mut sqlx::SqliteConnection,
    first: chrono::NaiveDate,
    last: chrono::NaiveDate,
) -> Result<Known, StoreError> {
    let rows = sqlx::query(
        "SELECT event_id, occurrence_date, task_id, person_id, lead, email, due_at,
                deadline_at, status, attempts, next_attempt_at, message_id, last_error
         FROM reminders WHERE occurrence_date >= ? AND occurrence_date <= ?",
    )
    .bind(first.format("%Y-%m-%d").to_string())
    .bind(last.format("%Y-%m-%d").to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut known = Known::new();
    for row in &rows {
        let key = (
            row.try_get("event_id")?,
            row.try_get("occurrence_date")?,
            row.try_get("task_id")?,
            row.try_get("person_id")?,
            row.try_get("lead")?,
        );
        known.insert(
            key,
            (
                state_of(row)?,
                row.try_get("email")?,
                row.try_get("due_at")?,
                row.try_get("deadline_at")?,
            ),
        );
    }
    Ok(known)
}

/// Gives each row recorded before reminders had leads (lead `''`, migration 0004: a task had
/// one reminder then) the lead of the planned reminder it was: of the planned reminders of
/// the same event, date, task and person that have no row of their own, the one due nearest
/// to the row's instant (the same instant when nothing changed; another when the days off
/// moved its send day, or the task gained a lead). A row no planned reminder matches (the
/// task left the event) keeps `''`: nothing new is sent in its name, and a pending one ends
/// skipped like any reminder no plan reaches. Returns each adopted row's key and its new lead
/// (for the caller to write); `known` is re-keyed in place.
fn adopt_legacy(known: &mut Known, planned: &[Planned<'_>]) -> Vec<(RowKey, String)> {
    // Base key (event, date, task, person) → (due, lead) of the planned reminders without a row.
    type Base = (String, String, String, String);
    let mut open: BTreeMap<Base, Vec<(i64, String)>> = BTreeMap::new();
    for p in planned {
        let id = row_key(p.key);
        if id.4.is_empty() || known.contains_key(&id) {
            continue;
        }
        open.entry((id.0, id.1, id.2, id.3))
            .or_default()
            .push((ts(p.due), id.4));
    }
    let legacy: Vec<(RowKey, i64)> = known
        .iter()
        .filter(|(k, _)| k.4.is_empty())
        .map(|(k, v)| (k.clone(), v.2))
        .collect();
    let mut adopted = Vec::new();
    for (key, due) in legacy {
        let base = (key.0.clone(), key.1.clone(), key.2.clone(), key.3.clone());
        let Some(lead) = open.get(&base).and_then(|leads| {
            leads
                .iter()
                .min_by_key(|(d, _)| (d - due).abs())
                .map(|(_, l)| l.clone())
        }) else {
            continue;
        };
        if let Some(leads) = open.get_mut(&base) {
            leads.retain(|(_, l)| *l != lead);
        }
        if let Some(row) = known.remove(&key) {
            known.insert((base.0, base.1, base.2, base.3, lead.clone()), row);
            adopted.push((key, lead));
        }
    }
    adopted
}

impl Store {
    /// When this store began keeping reminders (see migration 0004): reminders due before it
    /// are not pending work. A store without one takes `now`, and records it unless `look`
    /// (a dry run); of two processes starting together the first to write wins.
    pub async fn started_at(
        &self,
        now: DateTime<Utc>,
        look: bool,
    ) -> Result<DateTime<Utc>, StoreError> {
        let r = async {
            let pool = self.pool().await?;
            let read = "SELECT value FROM store_meta WHERE key = 'started_at'";
            if let Some(t) = sqlx::query_scalar::<_, i64>(read)
                .fetch_optional(&pool)
                .await?
            {
                return Ok(from_ts(t));
            }
            if look {
                return Ok(now);
            }
            sqlx::query("INSERT OR IGNORE INTO store_meta (key, value) VALUES ('started_at', ?)")
                .bind(ts(now))
                .execute(&pool)
                .await?;
            let t: i64 = sqlx::query_scalar(read).fetch_one(&pool).await?;
            Ok(from_ts(t))
        }
        .await;
        self.note(r)
    }

    /// Records planned reminders that are not known yet — as `pending`, or as `skipped` with
    /// the reason they carry — and returns the state of every one of them. A pending reminder
    /// whose send time, deadline or address changed in the schedule is updated; sent ones
    /// never change. One transaction; the known rows are read with one query.
    pub async fn record_planned(
        &self,
        planned: &[Planned<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<ReminderState>, StoreError> {
        let r = self.record_planned_inner(planned, now).await;
        self.note(r)
    }

    async fn record_planned_inner(
        &self,
        planned: &[Planned<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<ReminderState>, StoreError> {
        let Some((first, last)) = date_span(planned) else {
            return Ok(Vec::new());
        };
        let pool = self.pool().await?;
        let mut tx = pool.begin_with(BEGIN_WRITE).await?;
        acks::skip_done_rows(&mut tx, now).await?;
        let done = acks::Done::read(&mut tx, first, last).await?;
        let mut known = known_rows(&mut tx, first, last).await?;
        for (legacy, lead) in adopt_legacy(&mut known, planned) {
            sqlx::query(
                "UPDATE reminders SET lead = ?, updated_at = ?
                 WHERE event_id = ? AND occurrence_date = ? AND task_id = ? AND person_id = ?
                   AND lead = ''",
            )
            .bind(lead)
            .bind(ts(now))
            .bind(&legacy.0)
            .bind(&legacy.1)
            .bind(&legacy.2)
            .bind(&legacy.3)
            .execute(&mut *tx)
            .await?;
        }
        let mut out = Vec::with_capacity(planned.len());
        let mut inserts: Vec<(&Planned, String, ReminderStatus, Option<&str>)> = Vec::new();
        for p in planned {
            let id = row_key(p.key);
            let date = id.1.clone();
            let is_done = done.covers(p.key);
            match known.get(&id) {
                Some((state, email, due, deadline)) => {
                    if state.status == ReminderStatus::Pending
                        && (email != p.email
                            || *due != ts(p.due)
                            || *deadline != Some(ts(p.deadline)))
                    {
                        sqlx::query(
                            "UPDATE reminders SET email = ?, due_at = ?, deadline_at = ?, updated_at = ?
                             WHERE event_id = ? AND occurrence_date = ? AND task_id = ? AND person_id = ?
                               AND lead = ? AND status = 'pending'",
                        )
                        .bind(p.email)
                        .bind(ts(p.due))
                        .bind(ts(p.deadline))
                        .bind(ts(now))
                        .bind(&*p.key.event_id)
                        .bind(&date)
                        .bind(&*p.key.task_id)
                        .bind(&*p.key.person_id)
                        .bind(&*p.key.lead)
                        .execute(&mut *tx)
                        .await?;
                    }
                    out.push(ReminderState {
                        done: is_done,
                        ..state.clone()
                    });
                }
                None => {
                    let skip = p.skip.or(is_done.then_some(SKIPPED_DONE));
                    let status = if skip.is_some() {
                        ReminderStatus::Skipped
                    } else {
                        ReminderStatus::Pending
                    };
                    inserts.push((p, date, status, skip));
                    out.push(ReminderState {
                        status,
                        attempts: 0,
                        next_attempt_at: None,
                        message_id: None,
                        last_error: None,
                        new: true,
                        done: is_done,
                    });
                }
            }
        }
        // New rows in chunks: one statement per hundred reminders.
        for chunk in inserts.chunks(100) {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO reminders (event_id, occurrence_date, task_id, person_id, lead, email,
                                        due_at, deadline_at, status, skip_reason, created_at,
                                        updated_at) VALUES {rows}"
            );
            // Audited: `sql` is built from constants and `?` placeholders only; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (p, date, status, skip) in chunk {
                q = q
                    .bind(&*p.key.event_id)
                    .bind(date)
                    .bind(&*p.key.task_id)
                    .bind(&*p.key.person_id)
                    .bind(&*p.key.lead)
                    .bind(p.email)
                    .bind(ts(p.due))
                    .bind(ts(p.deadline))
                    .bind(status.as_str())
                    .bind(*skip)
                    .bind(ts(now))
                    .bind(ts(now));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The states of planned reminders as [`Store::record_planned`] would find them, recording
    /// nothing (`None`: not known yet): a dry run.
    pub async fn lookup(
        &self,
        planned: &[Planned<'_>],
    ) -> Result<Vec<Option<ReminderState>>, StoreError> {
        let r = async {
            let Some((first, last)) = date_span(planned) else {
                return Ok(Vec::new());
            };
            let pool = self.pool().await?;
            let mut conn = pool.acquire().await?;
            let mut known = known_rows(&mut conn, first, last).await?;
            let done = acks::Done::read(&mut conn, first, last).await?;
            adopt_legacy(&mut known, planned);
            Ok(planned
                .iter()
                .map(|p| {
                    let state = known.get(&row_key(p.key)).map(|k| k.0.clone());
                    if !done.covers(p.key) {
                        return state;
                    }
                    // What `record_planned` would record: a new one skipped, any one done.
                    Some(ReminderState {
                        done: true,
                        ..state.unwrap_or(ReminderState {
                            status: ReminderStatus::Skipped,
                            attempts: 0,
                            next_attempt_at: None,
                            message_id: None,
                            last_error: None,
                            new: true,
                            done: true,
                        })
                    })
                })
                .collect())
        }
        .await;
        self.note_read(r)
    }

    /// Notes on pending reminders why they wait (the mail server's error), without changing
    /// their status: a reminder skipped later then says it was the mail server.
    pub async fn waiting(
        &self,
        keys: &[&ReminderKey],
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let r = async {
            let pool = self.pool().await?;
            for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                let sql = format!(
                    "UPDATE reminders SET last_error = ?, updated_at = ?
                     WHERE ({}) AND status = 'pending'",
                    keys_sql(chunk.len())
                );
                // Audited: `sql` is built from constants and `?` placeholders only.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(error)
                    .bind(ts(now));
                for key in chunk {
                    q = bind_key(q, key);
                }
                q.execute(&pool).await?;
            }
            Ok(())
        }
        .await;
        self.note(r)
    }

    /// Records as skipped every reminder still waiting (pending, or `sending` under a lease
    /// that ran out) whose send time is before `too_late`, or whose deadline has passed at
    /// `now` while it is late (sent before `late`), wherever it is — also the ones no schedule
    /// plans any more — and returns them with the reason, for the log.
    pub async fn expire(
        &self,
        too_late: DateTime<Utc>,
        late: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Expired>, StoreError> {
        let r = async {
            let pool = self.pool().await?;
            let rows = sqlx::query(
                "UPDATE reminders SET status = 'skipped', claimed_by = NULL, lease_until = NULL,
                        skip_reason = CASE WHEN due_at >= ?4 THEN ?6
                                           WHEN last_error IS NULL THEN ?1
                                           ELSE ?2 || last_error END,
                        updated_at = ?3
                 WHERE (due_at < ?4 OR (deadline_at < ?3 AND due_at < ?7)) AND (status = 'pending'
                    OR (status = 'sending' AND (lease_until IS NULL OR lease_until <= ?5)))
                 RETURNING event_id, occurrence_date, task_id, person_id, lead, email, due_at,
                           last_error, skip_reason",
            )
            .bind(EXPIRED_UNTRIED)
            .bind(EXPIRED_AFTER_ERRORS)
            .bind(ts(now))
            .bind(ts(too_late))
            .bind(Utc::now().timestamp_millis())
            .bind(SKIPPED_PAST_DEADLINE)
            .bind(ts(late))
            .fetch_all(&pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let mut key = format!(
                    "{}/{}/{}/{}",
                    row.try_get::<&str, _>("event_id")?,
                    row.try_get::<&str, _>("occurrence_date")?,
                    row.try_get::<&str, _>("task_id")?,
                    row.try_get::<&str, _>("person_id")?
                );
                let lead: &str = row.try_get("lead")?;
                if !lead.is_empty() {
                    key = format!("{key}/{lead}");
                }
                out.push(Expired {
                    key,
                    email: row.try_get("email")?,
                    due: from_ts(row.try_get("due_at")?),
                    last_error: row.try_get("last_error")?,
                    reason: row.try_get("skip_reason")?,
                });
            }
            out.sort_by(|a, b| (a.due, &a.key).cmp(&(b.due, &b.key)));
            Ok(out)
        }
        .await;
        self.note(r)
    }

    /// How many reminders are in each status.
    pub async fn counts(&self) -> Result<BTreeMap<ReminderStatus, i64>, StoreError> {
        let r = async {
            let pool = self.pool().await?;
            let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM reminders GROUP BY status")
                .fetch_all(&pool)
                .await?;
            let mut out: BTreeMap<ReminderStatus, i64> =
                ReminderStatus::ALL.into_iter().map(|s| (s, 0)).collect();
            for row in rows {
                out.insert(
                    ReminderStatus::parse(row.try_get::<&str, _>("status")?)?,
                    row.try_get("n")?,
                );
            }
            Ok(out)
        }
        .await;
        self.note_read(r)
    }
}

/// Why a reminder due before the store began keeping reminders is not sent: a new install
/// does not send what was due before it existed.
pub const SKIPPED_BEFORE_START: &str =
    "đến hạn trước khi ngayle bắt đầu chạy (cơ sở dữ liệu mới): không phải việc còn chờ gửi";
/// Why a late reminder whose task's deadline has passed is not sent.
pub const SKIPPED_PAST_DEADLINE: &str =
    "đã quá hạn công việc khi có thể gửi (dịch vụ hoặc máy chủ thư bị gián đoạn đến sau hạn)";
/// Why a reminder found after its catch-up window is not sent (recorded with it, logged).
pub const SKIPPED_WHEN_FOUND: &str =
    "quá hạn gửi bù: dịch vụ không chạy khi lời nhắc đến hạn (tìm thấy khi đã quá thời hạn gửi bù)";
/// A reminder that waited its whole catch-up window without being tried.
const EXPIRED_UNTRIED: &str =
    "quá hạn gửi bù: không có lượt gửi nào trong thời hạn gửi bù (dịch vụ không chạy?)";
/// A reminder whose attempts failed until its catch-up window closed (the error follows).
const EXPIRED_AFTER_ERRORS: &str =
    "quá hạn gửi bù: máy chủ thư không nhận thư trong suốt thời hạn gửi bù; lỗi cuối: ";

fn bind_key<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    key: &'q ReminderKey,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    q.bind(&*key.event_id)
        .bind(date_text(key))
        .bind(&*key.task_id)
        .bind(&*key.person_id)
        .bind(&*key.lead)
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
            lead: "".into(),
        }
    }

    async fn record(store: &Store, keys: &[ReminderKey], due: DateTime<Utc>) {
        let planned: Vec<Planned> = keys
            .iter()
            .map(|k| Planned {
                key: k,
                email: "a@example.org",
                due,
                deadline: due + chrono::Duration::days(1),
                skip: None,
            })
            .collect();
        store.record_planned(&planned, due).await.expect("record");
    }

    const LEASE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn of_two_stores_on_one_file_only_one_claims_a_reminder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sqlite");
        let (a, b) = tokio::join!(Store::open(&path), Store::open(&path));
        let (a, b) = (a.expect("a"), b.expect("b"));
        let keys: Vec<ReminderKey> = (0..300).map(key).collect();
        let now = Utc::now();
        record(&a, &keys, now).await;
        record(&b, &keys, now).await;
        let refs: Vec<&ReminderKey> = keys.iter().collect();
        let (wa, wb) = tokio::join!(
            a.claim(&refs, "<a@x>".into(), LEASE, now),
            b.claim(&refs, "<b@x>".into(), LEASE, now)
        );
        let (wa, wb) = (wa.expect("claim a"), wb.expect("claim b"));
        let won = |c: &Option<Claim>| c.as_ref().map_or(Vec::new(), |c| c.won().to_vec());
        let (ia, ib) = (won(&wa), won(&wb));
        assert_eq!(ia.len() + ib.len(), 300, "every key won once");
        assert!(ia.iter().all(|i| !ib.contains(i)));
        // A claim already held is not won again, by either store.
        assert!(
            a.claim(&refs, "<a2@x>".into(), LEASE, now)
                .await
                .expect("again")
                .is_none()
        );
        assert!(
            b.claim(&refs, "<b2@x>".into(), LEASE, now)
                .await
                .expect("again")
                .is_none()
        );
        let counts = a.counts().await.expect("counts");
        assert_eq!(counts[&ReminderStatus::Sending], 300);
        assert_eq!(counts[&ReminderStatus::Sent], 0);
        for (store, claim) in [(&a, wa), (&b, wb)] {
            if let Some(c) = claim {
                store.release(c, now).await.expect("release");
            }
        }
    }

    #[tokio::test]
    async fn a_claim_whose_lease_ran_out_can_be_taken_and_the_old_owner_records_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sqlite");
        let a = Store::open(&path).await.expect("a");
        let b = Store::open(&path).await.expect("b");
        let keys = [key(1)];
        let refs: Vec<&ReminderKey> = keys.iter().collect();
        let now = Utc::now();
        record(&a, &keys, now).await;
        let mine = a
            .claim(&refs, "<a@x>".into(), Duration::from_millis(300), now)
            .await
            .expect("a")
            .expect("a wins");
        assert_eq!(mine.won(), [0]);
        // Held: nobody else gets it while the lease runs...
        assert!(
            a.claim(&refs, "<a2@x>".into(), LEASE, now)
                .await
                .expect("again")
                .is_none()
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        // ...and after it ran out, another process takes it over.
        let theirs = b
            .claim(&refs, "<b@x>".into(), LEASE, now)
            .await
            .expect("b")
            .expect("b wins");
        assert_eq!(theirs.won(), [0]);
        // The old owner gets no permit for it, and what it records changes nothing.
        match a.clear(a.turn().await.into(), &mine, LEASE, now).await {
            Err(Refused::Lost(_)) => {}
            other => panic!("a's claim is gone, got {other:?}"),
        }
        a.record(mine, Outcome::Sent, now).await.expect("a records");
        assert_eq!(a.counts().await.expect("counts")[&ReminderStatus::Sent], 0);
        let permit = b
            .clear(b.turn().await.into(), &theirs, LEASE, now)
            .await
            .expect("b's permit");
        assert_eq!(permit.message_id(), "<b@x>");
        let spent = permit.spend();
        let sent = Unsettled::new(theirs, Outcome::Sent, spent);
        b.settle(sent, now).await.expect("b settles");
        assert_eq!(a.counts().await.expect("counts")[&ReminderStatus::Sent], 1);
    }

    #[tokio::test]
    async fn the_next_permit_commits_the_previous_outcome_first() {
        let store = Store::in_memory().await.expect("store");
        let keys: Vec<ReminderKey> = (0..2).map(key).collect();
        let now = Utc::now();
        record(&store, &keys, now).await;
        let first = store
            .claim(&[&keys[0]], "<1@x>".into(), LEASE, now)
            .await
            .expect("claim")
            .expect("won");
        let second = store
            .claim(&[&keys[1]], "<2@x>".into(), LEASE, now)
            .await
            .expect("claim")
            .expect("won");
        let permit = store
            .clear(store.turn().await.into(), &first, LEASE, now)
            .await
            .expect("permit");
        let spent = permit.spend();
        let done = Unsettled::new(first, Outcome::Sent, spent);
        assert_eq!(
            store.counts().await.expect("counts")[&ReminderStatus::Sent],
            0
        );
        let permit = store
            .clear(done.into(), &second, LEASE, now)
            .await
            .expect("permit");
        assert_eq!(
            store.counts().await.expect("counts")[&ReminderStatus::Sent],
            1,
            "the first email is recorded before the second may go"
        );
        let spent = permit.spend();
        let done = Unsettled::new(second, Outcome::Sent, spent);
        store.settle(done, now).await.expect("settle");
        assert_eq!(
            store.counts().await.expect("counts")[&ReminderStatus::Sent],
            2
        );
    }

    #[tokio::test]
    async fn after_a_full_database_the_store_works_again_without_reopening() {
        // SQLITE_FULL, as on a full disk: a page limit the inserts run into.
        let store = Store::in_memory().await.expect("store");
        let pool = store.pool().await.expect("pool");
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&pool)
            .await
            .expect("page_count");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA max_page_count = {}",
            pages + 2
        )))
        .execute(&pool)
        .await
        .expect("limit");
        let keys: Vec<ReminderKey> = (0..2000).map(key).collect();
        let now = Utc::now();
        let planned: Vec<Planned> = keys
            .iter()
            .map(|k| Planned {
                key: k,
                email: "a@example.org",
                due: now,
                deadline: now,
                skip: None,
            })
            .collect();
        let full = store.record_planned(&planned, now).await;
        assert!(full.is_err(), "the page limit must be hit");
        assert!(store.health().await.is_some(), "a failing store says so");
        sqlx::query("PRAGMA max_page_count = 1073741823")
            .execute(&pool)
            .await
            .expect("unlimit");
        // Space is back: the next transaction works (it failed for ever: "begin_with at
        // non-zero transaction depth").
        store
            .record_planned(&planned, now)
            .await
            .expect("record after the disk was freed");
        assert!(store.health().await.is_none());
        assert_eq!(
            store.counts().await.expect("counts")[&ReminderStatus::Pending],
            2000
        );
    }

    #[tokio::test]
    async fn expire_skips_every_waiting_reminder_past_its_window_with_why() {
        let store = Store::in_memory().await.expect("store");
        let keys: Vec<ReminderKey> = (0..3).map(key).collect();
        let due = Utc::now() - chrono::Duration::days(40);
        record(&store, &keys, due).await;
        let refs: Vec<&ReminderKey> = keys[..1].iter().collect();
        let claim = store
            .claim(&refs, "<m@x>".into(), LEASE, due)
            .await
            .expect("claim")
            .expect("won");
        assert_eq!(claim.won(), [0]);
        let retry = Outcome::Retry("máy chủ thư không dùng được: 421".into(), due);
        store.record(claim, retry, due).await.expect("retry");
        let expired = store
            .expire(
                Utc::now() - chrono::Duration::days(3),
                Utc::now() - chrono::Duration::minutes(15),
                Utc::now(),
            )
            .await
            .expect("expire");
        assert_eq!(expired.len(), 3);
        assert!(expired.iter().any(|e| e.reason.contains("421")));
        assert!(
            expired
                .iter()
                .all(|e| e.reason.starts_with("quá hạn gửi bù"))
        );
        let counts = store.counts().await.expect("counts");
        assert_eq!(counts[&ReminderStatus::Skipped], 3);
        assert!(
            store
                .expire(Utc::now(), Utc::now(), Utc::now())
                .await
                .expect("again")
                .is_empty()
        );
    }
}
