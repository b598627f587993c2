//! The daemon: `ngayle serve` put together from the pieces — schedule, store, feeds, HTTP.
//!
//! It holds no calendar logic: it loads the schedule, records feed revisions in the store,
//! renders the feeds and serves them until the shutdown future completes.

use std::future::Future;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use tokio::net::TcpListener;

use crate::feed::{self, FeedSpec};
use crate::http::{self, AppState, Feeds, RenderedFeed};
use crate::schedule::{LoadReport, Schedule, load};
use crate::store::{Store, StoreError};

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("lịch có {0} lỗi; sửa rồi chạy `ngayle check`")]
    Invalid(usize),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("lỗi mạng: {0}")]
    Io(#[from] std::io::Error),
}

/// The date and instant "now" in Vietnam.
pub fn now() -> (NaiveDate, DateTime<Utc>) {
    let now = Utc::now();
    ((now + chrono::Duration::hours(7)).date_naive(), now)
}

/// Loads the schedule and logs every diagnostic; the schedule only if there is no error.
pub fn load_logged(config: &Path, today: NaiveDate) -> (Option<Schedule>, LoadReport) {
    let report = load(config, today);
    for d in &report.diagnostics {
        if d.is_error() {
            tracing::error!(diagnostic = %d, "lịch không hợp lệ");
        } else {
            tracing::warn!(diagnostic = %d, "cảnh báo");
        }
    }
    (report.schedule.clone(), report)
}

/// Renders every feed of `schedule` (the full one and one per group) for the years around
/// `today`, recording revisions in the store.
pub async fn build_feeds(
    schedule: &Schedule,
    store: &Store,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Feeds, StoreError> {
    let all = render_one(schedule, store, &FeedSpec::around(today, None), now).await?;
    let mut groups = std::collections::HashMap::new();
    for g in &schedule.groups {
        let spec = FeedSpec::around(today, Some(g));
        groups.insert(g.id.clone(), render_one(schedule, store, &spec, now).await?);
    }
    Ok(Feeds {
        all,
        groups,
        schedule_version: schedule.version.clone(),
        loaded_at: now,
    })
}

/// One feed's text, with its revisions recorded first.
pub async fn feed_text(
    schedule: &Schedule,
    store: &Store,
    spec: &FeedSpec<'_>,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let prints = feed::fingerprints(schedule, spec);
    let revisions = store.revisions(&spec.key(), &prints, now).await?;
    Ok(feed::render(schedule, spec, &revisions))
}

async fn render_one(
    schedule: &Schedule,
    store: &Store,
    spec: &FeedSpec<'_>,
    now: DateTime<Utc>,
) -> Result<RenderedFeed, StoreError> {
    Ok(RenderedFeed::new(
        feed_text(schedule, store, spec, now).await?,
    ))
}

/// What `serve` needs from its caller.
#[derive(Debug)]
pub struct ServeOptions {
    pub config: PathBuf,
    pub listener: TcpListener,
}

/// Runs the service until `shutdown` completes.
pub async fn serve(
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let (today, now) = now();
    let (schedule, report) = load_logged(&opts.config, today);
    let Some(schedule) = schedule else {
        return Err(DaemonError::Invalid(report.errors()));
    };
    let store = Store::open(&schedule.settings.state).await?;
    let feeds = build_feeds(&schedule, &store, today, now).await?;
    let state = AppState::new(feeds, schedule.settings.feed_token.clone(), store);
    let addr = opts.listener.local_addr()?;
    tracing::info!(
        %addr,
        events = schedule.events.len(),
        groups = schedule.groups.len(),
        version = %schedule.version,
        "ngayle đang chạy: http://{addr}/calendar.ics"
    );
    http::serve(opts.listener, http::router(state), shutdown).await?;
    tracing::info!("đã dừng");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("nhận SIGINT, đang dừng"),
        () = term => tracing::info!("nhận SIGTERM, đang dừng"),
    }
}
