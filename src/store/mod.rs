//! The store: ngayle's state in an embedded SQLite database (`state:` in the config).
//!
//! It holds what must survive a restart: when each feed event last changed (so feeds are
//! byte-stable across processes). Migrations are embedded in the binary and run at open.
//! Async through sqlx, so no call blocks the runtime. It holds no calendar logic.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::feed::{Fingerprint, Revisions};

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
        let pool = SqlitePoolOptions::new()
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
        let mut tx = self.pool.begin().await?;
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
