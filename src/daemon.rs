//! The daemon: `ngayle serve` put together from the pieces — schedule, store, feeds, HTTP.
//!
//! It holds no calendar logic and renders nothing itself: it loads the schedule, has the feeds
//! built ([`crate::feeds`]: rendered off the async workers, revisions recorded in the store),
//! serves them, runs the reminder ticks and reloads, until the shutdown future completes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::delivery::{self, TickControl};
use crate::feeds::{self, FeedsError};
use crate::http::{self, AppState};
use crate::mail::Mailer;
use crate::schedule::{LoadReport, Schedule, load};
use crate::status::{ReloadError, ReloadWarning, ServiceStatus};
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
    /// A task of ours panicked or was cancelled: a bug, not the network.
    #[error("một tác vụ của ngayle dừng bất thường: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<FeedsError> for DaemonError {
    fn from(e: FeedsError) -> DaemonError {
        match e {
            FeedsError::Store(e) => DaemonError::Store(e),
            // Rendering panicked (a bug): the same error as a failed start.
            other => DaemonError::Io(std::io::Error::other(other)),
        }
    }
}

/// The date and instant "now" in Vietnam.
pub fn now() -> (NaiveDate, DateTime<Utc>) {
    let now = Utc::now();
    (crate::vietnam::today(now), now)
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

/// What `serve` needs from its caller.
#[derive(Debug)]
pub struct ServeOptions {
    pub config: PathBuf,
    pub listener: TcpListener,
    /// Reload when a file in the config or calendars folder changes.
    pub watch: bool,
    /// Reload on SIGHUP (the process's signal: only for the real service, not in-process tests).
    pub sighup: bool,
}

/// The schedule being served, shared by the reminder loop and the reloader.
type Current = watch::Sender<Arc<Schedule>>;

/// Runs the service until `shutdown` completes: the HTTP feeds, `/healthz`, `/metrics`, a
/// reminder tick every minute (and once at start, to catch up after downtime), and reloads of
/// the schedule (file changes, SIGHUP). On shutdown: no new connection or email is started;
/// requests and the email in flight get `shutdown_grace` to finish; then everything still
/// running is stopped and awaited, and `serve` returns.
pub async fn serve(
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    // First thing: SIGHUP's default action ends the process, and a reload asked for while the
    // service starts must wait for it (tokio keeps a signal that arrived before it is awaited).
    let hangup = if opts.sighup { hangup_signal() } else { None };
    let (today, now) = now();
    let (schedule, report) = load_logged(&opts.config, today);
    let Some(schedule) = schedule else {
        return Err(DaemonError::Invalid(report.errors()));
    };
    let addr = opts.listener.local_addr()?;
    // The database opens while the full feed's events are rendered (on other threads).
    let schedule = Arc::new(schedule);
    let drafting = feeds::start(&schedule, today);
    // The scheduler of the minute ticks starts meanwhile; it is shut down with the service.
    let (store, ticks) = tokio::join!(Store::open(&schedule.settings.state), start_ticks());
    let (mut scheduler, ticks) = ticks?;
    let ready = async {
        let store = store?;
        let mailer = Mailer::new(&schedule.settings)?;
        let feeds = drafting.finish(&store, now).await?;
        Ok::<_, DaemonError>((store, mailer, feeds))
    };
    let (store, mailer, feeds) = match ready.await {
        Ok(ready) => ready,
        Err(e) => {
            stop_ticks(&mut scheduler).await;
            return Err(e);
        }
    };
    let control = Arc::new(TickControl::default());
    let status = Arc::new(ServiceStatus::new(now, Arc::clone(&control)));
    status.loaded(&schedule.version, now, false);
    let state = AppState::new(feeds, store.clone(), Arc::clone(&status));
    let grace = schedule.settings.shutdown_grace;
    let max_connections = schedule.settings.max_connections;
    tracing::info!(
        version = %schedule.version,
        "ngayle đang chạy: http://{addr}/calendar.ics — {} sự kiện, {} nhóm; thư nhắc: {}",
        schedule.events.len(),
        schedule.groups.len(),
        mailer.describe()
    );

    // One shutdown signal, fanned out to the HTTP server, the reminder loop and the reloader.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (current, schedules) = watch::channel(schedule);
    let mut tasks = tokio::task::JoinSet::new();
    let mut http_stop = stop_rx.clone();
    let http = http::serve(
        opts.listener,
        http::App::new(Arc::clone(&state)),
        async move {
            let _ = http_stop.wait_for(|s| *s).await;
        },
        grace,
        max_connections,
    );
    let signal = async {
        shutdown.await;
        tracing::info!(grace_seconds = grace.as_secs_f32(), "đang dừng");
        control.stop();
        let _ = stop_tx.send(true);
    };
    // Started once the HTTP server has been polled (`join!` polls in order): the requests
    // already waiting at start are accepted before these take the cores.
    let background = async {
        // The feeds are gzipped beside the server (a request wanting gzip sooner has it made, off
        // the async workers too, and waits).
        let warm = state.feeds();
        tasks.spawn_blocking(move || {
            warm.compress();
            Ok(())
        });
        tasks.spawn(reminder_loop(
            ticks,
            schedules,
            store.clone(),
            Arc::new(mailer),
            stop_rx.clone(),
            Arc::clone(&control),
            Arc::clone(&status),
        ));
        tasks.spawn(reloader(
            opts.config.clone(),
            current,
            store,
            state,
            Arc::clone(&status),
            stop_rx,
            opts.watch,
            hangup,
        ));
    };
    let (served, (), ()) = tokio::join!(http, background, signal);
    // The reminder loop ends after the email in flight; the reloader at once. Past the grace
    // period (counted from the signal, the HTTP side having used its share) they are aborted.
    let drained = async {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "một phần của dịch vụ dừng vì lỗi"),
                Err(e) if e.is_cancelled() => {}
                Err(e) => tracing::error!(error = %e, "một phần của dịch vụ bị hủy"),
            }
        }
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!("hết thời gian chờ khi dừng: dừng ngay các việc còn lại");
        tasks.shutdown().await;
    }
    stop_ticks(&mut scheduler).await;
    served?;
    tracing::info!("đã dừng");
    Ok(())
}

/// A reload kept but reported: the calendar files `new` holds markedly fewer events in than
/// `old` (a bad save that emptied or cut a file), in the log and on `/healthz`.
fn warn_if_shrunk(old: &Schedule, new: &Schedule, status: &ServiceStatus, now: DateTime<Utc>) {
    let files = crate::schedule::shrunk(old, new, new.settings.reload_warn_shrink);
    for f in &files {
        tracing::warn!(
            file = %f.path,
            before = f.before,
            after = f.after,
            "tệp lịch mất nhiều sự kiện sau khi nạp lại ({f}, ngưỡng reload.warn_shrink {}%): vẫn dùng lịch mới; kiểm tra tệp có bị cắt cụt khi lưu không",
            new.settings.reload_warn_shrink
        );
    }
    status.reload_warning((!files.is_empty()).then_some(ReloadWarning { at: now, files }));
}

/// Reloads the schedule when asked (a file changed, SIGHUP) until `stop`. A reload validates
/// everything first; a schedule with errors is refused whole — the last good one keeps running,
/// every diagnostic is logged and shown by `/healthz` until a reload succeeds. A good one
/// replaces the feeds and the reminder loop's schedule at once.
#[allow(clippy::too_many_arguments)]
async fn reloader(
    config: PathBuf,
    current: Current,
    store: Store,
    state: Arc<AppState>,
    status: Arc<ServiceStatus>,
    mut stop: watch::Receiver<bool>,
    watch_files: bool,
    mut hangup: Hangup,
) -> Result<(), DaemonError> {
    let (wake_tx, mut wake) = mpsc::channel::<&'static str>(1);
    // The file watcher (its own thread, owned here: dropped when this returns).
    let mut watcher = None;
    if watch_files {
        match FileWatcher::start(&current.borrow().settings, wake_tx.clone()) {
            Ok(w) => watcher = Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "không theo dõi được thay đổi tệp: chỉ nạp lại khi nhận SIGHUP")
            }
        }
    }
    // The files of the last refused reload: the same mistakes seen again (an editor's save
    // arrives as several events) are not reported twice.
    let mut refused: Option<String> = None;
    loop {
        let why = tokio::select! {
            got = wake.recv() => match got { Some(why) => why, None => break },
            () = next_hangup(&mut hangup) => "SIGHUP",
            _ = stop.wait_for(|s| *s) => break,
        };
        if why == FILES_CHANGED {
            tokio::select! {
                () = settle(&mut wake) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        let (today, now) = now();
        let path = config.clone();
        let loaded = tokio::task::spawn_blocking(move || load(&path, today)).await;
        let report = match loaded {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "nạp lại bị hủy");
                continue;
            }
        };
        let Some(schedule) = report.schedule.clone() else {
            let attempt = report.sources.version();
            if refused.as_ref() == Some(&attempt) {
                continue;
            }
            refused = Some(attempt);
            let diagnostics: Vec<String> = report
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| match &d.help {
                    Some(help) if !help.is_empty() => format!("{d} — {help}"),
                    _ => d.to_string(),
                })
                .collect();
            for d in &report.diagnostics {
                tracing::error!(diagnostic = %d, "lịch không hợp lệ");
            }
            tracing::error!(
                reason = why,
                errors = diagnostics.len(),
                "không nạp lại: lịch có lỗi; vẫn dùng lịch cũ cho tới khi sửa xong"
            );
            status.reload_failed(ReloadError {
                at: now,
                errors: diagnostics.len(),
                diagnostics,
            });
            continue;
        };
        refused = None;
        if schedule.version == current.borrow().version {
            // Saved without a change (or changed back): nothing to swap, but healthy again.
            status.loaded(&schedule.version, now, false);
            tracing::info!(
                reason = why,
                version = %schedule.version,
                "lịch không đổi: vẫn dùng lịch đang chạy"
            );
            continue;
        }
        for d in &report.diagnostics {
            tracing::warn!(diagnostic = %d, "cảnh báo");
        }
        let schedule = Arc::new(schedule);
        match feeds::build(&schedule, &store, today, now).await {
            Ok(feeds) => {
                state.replace_feeds(feeds);
                status.loaded(&schedule.version, now, true);
                warn_if_shrunk(&current.borrow(), &schedule, &status, now);
                tracing::info!(
                    reason = why,
                    version = %schedule.version,
                    events = schedule.events.len(),
                    "đã nạp lại lịch"
                );
                if let Some(w) = watcher.as_mut() {
                    w.follow(&schedule.settings);
                }
                current.send_replace(schedule);
                let fresh = state.feeds();
                if let Err(e) = tokio::task::spawn_blocking(move || fresh.compress()).await {
                    tracing::warn!(error = %e, "nén lịch bị hủy");
                }
            }
            Err(e) => {
                match e {
                    FeedsError::Store(_) => {
                        tracing::error!(error = %e, "không nạp lại được: lỗi cơ sở dữ liệu")
                    }
                    _ => tracing::error!(error = %e, "không nạp lại được: dựng lịch lỗi"),
                }
                status.reload_failed(ReloadError {
                    at: now,
                    errors: 1,
                    diagnostics: vec![e.to_string()],
                });
            }
        }
    }
    drop(watcher);
    Ok(())
}

/// How long the folders must stay quiet before a reload (an editor's save is several events:
/// write a temporary file, rename it over the old one).
pub const WATCH_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(300);
/// The longest a reload waits for the folders to settle (files written without a pause).
const WATCH_SETTLE_MAX: std::time::Duration = std::time::Duration::from_secs(5);
/// Why a reload happens, when the watcher asked.
const FILES_CHANGED: &str = "tệp thay đổi";

/// Waits until no file event came for [`WATCH_DEBOUNCE`] (at most [`WATCH_SETTLE_MAX`]),
/// swallowing the events of the same burst.
async fn settle(wake: &mut mpsc::Receiver<&'static str>) {
    let give_up = tokio::time::Instant::now() + WATCH_SETTLE_MAX;
    while tokio::time::Instant::now() < give_up {
        match tokio::time::timeout(WATCH_DEBOUNCE, wake.recv()).await {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

/// Watches the folders a schedule is read from (the config's folder, with its templates, the
/// staff file's folder and the calendars folder) — folders, not files, since editors save by
/// rename — and wakes the reloader after each settled burst of changes.
struct FileWatcher {
    watcher: notify::RecommendedWatcher,
    watched: Vec<PathBuf>,
}

impl FileWatcher {
    fn start(
        settings: &crate::schedule::Settings,
        wake: mpsc::Sender<&'static str>,
    ) -> Result<FileWatcher, notify::Error> {
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Reading is not changing: notify reports opens and closes too, and every load
            // opens the files it watches — counting those would reload forever.
            let relevant = match &event {
                Ok(e) => {
                    !matches!(e.kind, notify::EventKind::Access(_))
                        && e.paths.iter().any(|p| is_input(p))
                }
                // Events were lost (queue overflow): a reload finds out what changed.
                Err(_) => true,
            };
            if relevant {
                // A full channel means a reload is already pending: enough.
                let _ = wake.try_send(FILES_CHANGED);
            }
        })?;
        let mut w = FileWatcher {
            watcher,
            watched: Vec::new(),
        };
        w.follow(settings);
        if w.watched.is_empty() {
            return Err(notify::Error::generic("không theo dõi được thư mục nào"));
        }
        Ok(w)
    }

    /// Watches the folders of `settings` (after a reload that moved them, the new ones).
    fn follow(&mut self, settings: &crate::schedule::Settings) {
        let mut dirs: Vec<PathBuf> = [
            settings.config_path.parent().map(Path::to_path_buf),
            settings.staff_path.parent().map(Path::to_path_buf),
            Some(settings.calendars_dir.clone()),
        ]
        .into_iter()
        .flatten()
        .map(|d| {
            if d.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                d
            }
        })
        .collect();
        dirs.sort();
        dirs.dedup();
        if dirs == self.watched {
            return;
        }
        for old in &self.watched {
            let _ = notify::Watcher::unwatch(&mut self.watcher, old);
        }
        self.watched.clear();
        for dir in dirs {
            // Recursive for the config folder's `templates/`; the others have no subfolders
            // that matter, and watching them recursively costs little.
            match notify::Watcher::watch(&mut self.watcher, &dir, notify::RecursiveMode::Recursive)
            {
                Ok(()) => self.watched.push(dir),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "không theo dõi được thư mục")
                }
            }
        }
    }
}

/// A file whose change can change the schedule: YAML and templates, not editors' swap files.
fn is_input(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp") {
        return false;
    }
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "j2")
    ) || path.extension().is_none()
}

/// SIGHUP, when the service listens to it.
#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "không nhận được SIGHUP");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

#[cfg(unix)]
async fn next_hangup(signal: &mut Hangup) {
    match signal {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending::<()>().await
}

/// Every minute, at second 0 (tokio-cron-scheduler uses six fields, seconds first).
pub const TICK_CRON: &str = "0 * * * * *";

/// Ticks at start and then every minute until `stop`, each with the schedule current then.
/// Ticks never overlap: one that takes longer than a minute makes the next wait (the channel
/// holds one pending tick).
async fn reminder_loop(
    mut tick_rx: mpsc::Receiver<()>,
    schedules: watch::Receiver<Arc<Schedule>>,
    store: Store,
    mailer: Arc<Mailer>,
    mut stop: watch::Receiver<bool>,
    control: Arc<TickControl>,
    status: Arc<ServiceStatus>,
) -> Result<(), DaemonError> {
    let mut first = true;
    let mut mailer = mailer;
    let mut mail_settings = schedules.borrow().settings.clone();
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
        let schedule = Arc::clone(&schedules.borrow());
        // A reload that changed the mail settings gets a new mailer (a new connection).
        if mail_changed(&mail_settings, &schedule.settings) {
            match Mailer::new(&schedule.settings) {
                Ok(m) => {
                    tracing::info!(mail = m.describe(), "cấu hình thư đã đổi");
                    mailer = Arc::new(m);
                    mail_settings = schedule.settings.clone();
                }
                Err(e) => {
                    tracing::error!(error = %e, "cấu hình thư mới không dùng được: giữ cấu hình cũ")
                }
            }
        }
        let now = Utc::now();
        status.tick_started(now);
        let result = delivery::tick(&schedule, &store, &mailer, now, false, &control).await;
        status.tick_finished(Utc::now(), result.as_ref().map_err(ToString::to_string));
        match result {
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
    status.scheduler_stopped();
    Ok(())
}

/// Starts the scheduler that sends a tick down the returned channel every minute
/// ([`TICK_CRON`]); the caller shuts it down ([`stop_ticks`]).
async fn start_ticks() -> Result<(JobScheduler, mpsc::Receiver<()>), DaemonError> {
    let (tick_tx, tick_rx) = mpsc::channel::<()>(1);
    let mut scheduler = JobScheduler::new().await?;
    let started = async {
        let job = Job::new_async(TICK_CRON, move |_, _| {
            let tx = tick_tx.clone();
            Box::pin(async move {
                // A full channel means a tick is already waiting: nothing to add.
                let _ = tx.try_send(());
            })
        })?;
        scheduler.add(job).await?;
        scheduler.start().await
    }
    .await;
    if let Err(e) = started {
        stop_ticks(&mut scheduler).await;
        return Err(e.into());
    }
    Ok((scheduler, tick_rx))
}

/// Shuts the scheduler's tasks down and waits for them.
async fn stop_ticks(scheduler: &mut JobScheduler) {
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!(error = %e, "dừng bộ hẹn giờ");
    }
}

/// True when the mailer must be rebuilt for `new`.
fn mail_changed(old: &crate::schedule::Settings, new: &crate::schedule::Settings) -> bool {
    old.smtp != new.smtp
        || old.mail_from != new.mail_from
        || old.reply_to != new.reply_to
        || old.outbox != new.outbox
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a SIGTERM that comes while `serve` starts (the listener bound,
/// early requests answered on other threads) stops the service as usual instead of ending
/// the process by the signal's default action.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let (int, term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            async fn next(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(int) => tracing::info!("nhận SIGINT, đang dừng"),
                () = next(term) => tracing::info!("nhận SIGTERM, đang dừng"),
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            tracing::info!("nhận SIGINT, đang dừng");
        }
    }
}
