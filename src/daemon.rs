//! The daemon: `ngayle serve` put together from the pieces — schedule, store, feeds, HTTP.
//!
//! It holds no calendar logic: it loads the schedule, records feed revisions in the store,
//! renders the feeds and serves them until the shutdown future completes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, NaiveDate, Utc};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::delivery;
use crate::feed::{self, FeedSpec};
use crate::http::{self, AppState, Feeds, RenderedFeed};
use crate::mail::Mailer;
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
    #[error("{0}")]
    Mail(#[from] crate::mail::MailError),
    #[error("bộ hẹn giờ: {0}")]
    Scheduler(#[from] tokio_cron_scheduler::JobSchedulerError),
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

/// Runs the service until `shutdown` completes: the HTTP feeds and, every minute (and once at
/// start, to catch up after downtime), a reminder tick.
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
    let mailer = Mailer::new(&schedule.settings)?;
    let feeds = build_feeds(&schedule, &store, today, now).await?;
    let state = AppState::new(feeds, schedule.settings.feed_token.clone(), store.clone());
    let addr = opts.listener.local_addr()?;
    tracing::info!(
        %addr,
        events = schedule.events.len(),
        groups = schedule.groups.len(),
        version = %schedule.version,
        mail = mailer.describe(),
        "ngayle đang chạy: http://{addr}/calendar.ics"
    );

    // One shutdown signal, fanned out to the HTTP server and the reminder loop.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_flag = Arc::new(AtomicBool::new(false));
    let reminders = tokio::spawn(reminder_loop(
        Arc::new(schedule),
        store,
        mailer,
        stop_rx.clone(),
        Arc::clone(&stop_flag),
    ));
    let mut http_stop = stop_rx;
    let http = http::serve(opts.listener, http::router(state), async move {
        let _ = http_stop.wait_for(|s| *s).await;
    });
    let signal = async {
        shutdown.await;
        stop_flag.store(true, Ordering::Relaxed);
        let _ = stop_tx.send(true);
    };
    let (served, ()) = tokio::join!(http, signal);
    match reminders.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "vòng gửi thư dừng vì lỗi"),
        Err(e) => tracing::error!(error = %e, "vòng gửi thư bị hủy"),
    }
    served?;
    tracing::info!("đã dừng");
    Ok(())
}

/// Every minute, at second 0 (tokio-cron-scheduler uses six fields, seconds first).
pub const TICK_CRON: &str = "0 * * * * *";

/// Ticks at start and then every minute until `stop`. Ticks never overlap: one that takes
/// longer than a minute makes the next wait (the channel holds one pending tick).
async fn reminder_loop(
    schedule: Arc<Schedule>,
    store: Store,
    mailer: Mailer,
    mut stop: watch::Receiver<bool>,
    stop_flag: Arc<AtomicBool>,
) -> Result<(), DaemonError> {
    let (tick_tx, mut tick_rx) = mpsc::channel::<()>(1);
    let mut scheduler = JobScheduler::new().await?;
    let job = Job::new_async(TICK_CRON, move |_, _| {
        let tx = tick_tx.clone();
        Box::pin(async move {
            // A full channel means a tick is already waiting: nothing to add.
            let _ = tx.try_send(());
        })
    })?;
    scheduler.add(job).await?;
    scheduler.start().await?;
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                got = tick_rx.recv() => if got.is_none() { break },
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        first = false;
        if *stop.borrow() {
            break;
        }
        let now = Utc::now();
        match delivery::tick(&schedule, &store, &mailer, now, false, &stop_flag).await {
            Ok(r) if r.messages + r.skipped + r.failed > 0 || r.deferred => tracing::info!(
                messages = r.messages,
                sent = r.sent,
                late = r.late,
                skipped = r.skipped,
                failed = r.failed,
                retrying = r.retrying,
                deferred = r.deferred,
                "lượt gửi thư"
            ),
            Ok(_) => tracing::debug!("lượt gửi thư: không có gì đến hạn"),
            Err(e) => tracing::error!(error = %e, "lượt gửi thư lỗi cơ sở dữ liệu"),
        }
    }
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!(error = %e, "dừng bộ hẹn giờ");
    }
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
