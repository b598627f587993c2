//! What the running service knows about itself: health (for `/healthz`) and metrics (for
//! `/metrics`, with the `prometheus-client` crate).
//!
//! One [`ServiceStatus`] is shared by the HTTP handlers, the reminder loop and the reloader. Counters
//! only go up; the reminders by status are read from the store when `/metrics` is scraped.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::delivery::{TickControl, TickReport};
use crate::store::{ReminderStatus, Store};

/// A tick that has made no progress for this long (no email answered, or no tick at all for
/// this long) means the scheduler is stuck: `/healthz` answers 503. A long tick that keeps
/// sending is not stuck.
pub const TICK_OVERDUE: chrono::Duration = chrono::Duration::minutes(3);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabel {
    /// `all` or `group`.
    feed: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    /// `permanent` (refused, not retried) or `temporary` (retried later).
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

/// The last reload that failed: when, and every diagnostic (`FILE:LINE:COL: …`).
#[derive(Debug, Clone, Serialize)]
pub struct ReloadError {
    pub at: DateTime<Utc>,
    pub errors: usize,
    pub diagnostics: Vec<String>,
}

/// The last reload, kept but suspicious: calendar files that lost more events than
/// `reload.warn_shrink` allows (a file emptied or cut by a bad save).
#[derive(Debug, Clone, Serialize)]
pub struct ReloadWarning {
    pub at: DateTime<Utc>,
    pub files: Vec<crate::schedule::Shrunk>,
}

#[derive(Debug, Default)]
struct Health {
    version: String,
    loaded_at: Option<DateTime<Utc>>,
    reload_error: Option<ReloadError>,
    reload_warning: Option<ReloadWarning>,
    tick_started: Option<DateTime<Utc>>,
    tick_finished: Option<DateTime<Utc>>,
    tick_error: Option<String>,
    started_at: Option<DateTime<Utc>>,
    scheduler_stopped: bool,
}

impl Health {
    /// Whether the reminder loop runs and gets things done: a tick in progress that made
    /// progress (started, or got an answer for an email) less than [`TICK_OVERDUE`] ago, or a
    /// last tick that finished less than that ago (before the first: started less than that ago).
    fn scheduler_ok(&self, progress: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        let running = self.tick_started > self.tick_finished;
        let since = if running {
            self.tick_started.max(progress)
        } else {
            self.tick_finished.or(self.started_at)
        };
        !self.scheduler_stopped && since.is_some_and(|t| now - t < TICK_OVERDUE)
    }
}

/// Health and metrics of one running service.
pub struct ServiceStatus {
    registry: Registry,
    reminders: Family<StatusLabel, Gauge>,
    emails_sent: Counter,
    reminders_sent: Counter,
    send_failures: Family<KindLabel, Counter>,
    reminders_skipped: Counter,
    ticks: Counter,
    last_tick: Gauge<f64, AtomicU64>,
    reloads: Counter,
    reload_errors: Counter,
    feed_requests: Family<FeedLabel, Counter>,
    feed_not_modified: Family<FeedLabel, Counter>,
    /// The two families' counters of the full feed (`[0]`) and of the group feeds (`[1]`):
    /// requests and 304s. Made at start, so the series exist at 0 before the first request
    /// (`rate()` sees it), and counted per request without the family's lock and lookup.
    feed_counters: [[Counter; 2]; 2],
    schedule_info: Family<VersionLabel, Gauge>,
    schedule_loaded: Gauge<f64, AtomicU64>,
    control: Arc<TickControl>,
    health: Mutex<Health>,
}

impl std::fmt::Debug for ServiceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceStatus").finish_non_exhaustive()
    }
}

impl ServiceStatus {
    /// `control` is the one the reminder loop gives its ticks: its progress tells a long tick
    /// from a stuck one.
    pub fn new(started_at: DateTime<Utc>, control: Arc<TickControl>) -> ServiceStatus {
        let mut registry = Registry::with_prefix("ngayle");
        let feed_requests = Family::<FeedLabel, Counter>::default();
        let feed_not_modified = Family::<FeedLabel, Counter>::default();
        let feed_counters = ["all", "group"].map(|feed| {
            let label = FeedLabel { feed };
            [
                feed_requests.get_or_create_owned(&label),
                feed_not_modified.get_or_create_owned(&label),
            ]
        });
        let s = ServiceStatus {
            reminders: Family::default(),
            emails_sent: Counter::default(),
            reminders_sent: Counter::default(),
            send_failures: Family::default(),
            reminders_skipped: Counter::default(),
            ticks: Counter::default(),
            last_tick: Gauge::default(),
            reloads: Counter::default(),
            reload_errors: Counter::default(),
            feed_requests,
            feed_not_modified,
            feed_counters,
            schedule_info: Family::default(),
            schedule_loaded: Gauge::default(),
            control,
            health: Mutex::new(Health {
                started_at: Some(started_at),
                ..Health::default()
            }),
            registry: Registry::default(),
        };
        registry.register(
            "reminders",
            "Reminders in the store, by status",
            s.reminders.clone(),
        );
        registry.register("emails_sent", "Emails sent", s.emails_sent.clone());
        registry.register(
            "reminders_sent",
            "Reminders sent (an email may hold several)",
            s.reminders_sent.clone(),
        );
        registry.register(
            "send_failures",
            "Reminders whose email failed: permanent (refused) or temporary (retried)",
            s.send_failures.clone(),
        );
        registry.register(
            "reminders_skipped",
            "Reminders found later than catch_up: recorded, not sent",
            s.reminders_skipped.clone(),
        );
        registry.register("ticks", "Reminder ticks run", s.ticks.clone());
        registry.register(
            "last_tick_timestamp_seconds",
            "When the last reminder tick finished (Unix time)",
            s.last_tick.clone(),
        );
        registry.register("reloads", "Successful schedule reloads", s.reloads.clone());
        registry.register(
            "reload_errors",
            "Reloads refused because the files had errors (the last good schedule stays)",
            s.reload_errors.clone(),
        );
        registry.register(
            "feed_requests",
            "Feed requests answered (200 or 304)",
            s.feed_requests.clone(),
        );
        registry.register(
            "feed_not_modified",
            "Feed requests answered 304 Not Modified",
            s.feed_not_modified.clone(),
        );
        registry.register(
            "schedule_info",
            "The schedule version being served (a hash of every input file)",
            s.schedule_info.clone(),
        );
        registry.register(
            "schedule_loaded_timestamp_seconds",
            "When the schedule being served was loaded (Unix time)",
            s.schedule_loaded.clone(),
        );
        ServiceStatus { registry, ..s }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        match self.health.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A schedule was loaded (at start or by a reload).
    pub fn loaded(&self, version: &str, at: DateTime<Utc>, reload: bool) {
        let mut h = self.health();
        if h.version != version {
            self.schedule_info.clear();
            self.schedule_info
                .get_or_create(&VersionLabel {
                    version: version.to_string(),
                })
                .set(1);
        }
        h.version = version.to_string();
        h.loaded_at = Some(at);
        h.reload_error = None;
        self.schedule_loaded.set(unix(at));
        if reload {
            self.reloads.inc();
        }
    }

    /// What the last reload that swapped the schedule found suspicious (`None`: nothing).
    /// A warning leaves the status `ok`: the schedule is served as the admin saved it.
    pub fn reload_warning(&self, warning: Option<ReloadWarning>) {
        self.health().reload_warning = warning;
    }

    /// A reload failed; the last good schedule stays.
    pub fn reload_failed(&self, error: ReloadError) {
        self.reload_errors.inc();
        self.health().reload_error = Some(error);
    }

    pub fn tick_started(&self, at: DateTime<Utc>) {
        self.health().tick_started = Some(at);
    }

    /// A tick ended, with its report or the store's error.
    pub fn tick_finished(&self, at: DateTime<Utc>, result: Result<&TickReport, String>) {
        self.ticks.inc();
        self.last_tick.set(unix(at));
        let mut h = self.health();
        h.tick_finished = Some(at);
        match result {
            Ok(r) => {
                h.tick_error = None;
                self.emails_sent.inc_by(r.messages as u64);
                self.reminders_sent.inc_by(r.sent as u64);
                self.reminders_skipped.inc_by(r.skipped as u64);
                for (kind, n) in [("permanent", r.failed), ("temporary", r.temporary_failures)] {
                    if n > 0 {
                        self.send_failures
                            .get_or_create(&KindLabel { kind })
                            .inc_by(n as u64);
                    }
                }
            }
            Err(e) => h.tick_error = Some(e),
        }
    }

    /// The reminder loop ended (shutdown, or an error).
    pub fn scheduler_stopped(&self) {
        self.health().scheduler_stopped = true;
    }

    /// A feed request answered; `not_modified` for a 304.
    pub fn feed_request(&self, group: bool, not_modified: bool) {
        let [requests, not_modified_count] = &self.feed_counters[usize::from(group)];
        requests.inc();
        if not_modified {
            not_modified_count.inc();
        }
    }

    /// The metrics in the Prometheus / OpenMetrics text format, with the reminders by status
    /// read from the store now.
    pub async fn metrics(&self, store: &Store) -> Result<String, std::fmt::Error> {
        if let Ok(counts) = store.counts().await {
            for st in ReminderStatus::ALL {
                let n = counts.get(&st).copied().unwrap_or(0);
                self.reminders
                    .get_or_create(&StatusLabel {
                        status: st.as_str(),
                    })
                    .set(n);
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// The health report, asking the store whether it answers.
    pub async fn report(&self, store: &Store, now: DateTime<Utc>) -> HealthReport {
        let store_error =
            match tokio::time::timeout(std::time::Duration::from_secs(2), store.health()).await {
                Ok(e) => e,
                Err(_) => Some("cơ sở dữ liệu không trả lời sau 2 giây".to_string()),
            };
        let store_ok = store_error.is_none();
        let h = self.health();
        // The scheduler is healthy while it runs and ticks: a tick in progress for less than
        // TICK_OVERDUE, or the last one finished less than TICK_OVERDUE ago (or, before the
        // first, the service started less than that ago).
        let scheduler_ok = h.scheduler_ok(self.control.last_progress(), now);
        let status = if !store_ok || !scheduler_ok {
            "error"
        } else if h.reload_error.is_some() || h.tick_error.is_some() {
            "degraded"
        } else {
            "ok"
        };
        HealthReport {
            status,
            schedule_version: h.version.clone(),
            loaded_at: h.loaded_at,
            last_reload_error: h.reload_error.clone(),
            last_reload_warning: h.reload_warning.clone(),
            last_tick: h.tick_finished,
            last_tick_error: h.tick_error.clone(),
            store_reachable: store_ok,
            store_error,
            scheduler_running: scheduler_ok,
        }
    }
}

/// `/healthz`: `ok`; `degraded` (serving, but the last reload or tick failed: see why);
/// `error` with 503 when the store does not answer or failed its last operation, or the
/// scheduler is not ticking.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub status: &'static str,
    pub schedule_version: String,
    pub loaded_at: Option<DateTime<Utc>>,
    pub last_reload_error: Option<ReloadError>,
    pub last_reload_warning: Option<ReloadWarning>,
    pub last_tick: Option<DateTime<Utc>>,
    pub last_tick_error: Option<String>,
    /// The store answers and its last operation succeeded.
    pub store_reachable: bool,
    /// Why not, when it does not (a full disk, a deleted state file, …).
    pub store_error: Option<String>,
    pub scheduler_running: bool,
}

/// What `/healthz` tells anyone: the status only.
#[derive(Debug, Clone, Serialize)]
pub struct PublicHealth {
    pub status: &'static str,
}

impl HealthReport {
    pub fn healthy(&self) -> bool {
        self.status != "error"
    }

    /// The part for the public: no paths, files, addresses or errors.
    pub fn public(&self) -> PublicHealth {
        PublicHealth {
            status: self.status,
        }
    }
}

fn unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(minute: u32, second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 4, 29, 0, minute, second)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn a_long_tick_that_keeps_sending_is_not_stuck() {
        let h = Health {
            started_at: Some(at(0, 0)),
            tick_started: Some(at(1, 0)),
            tick_finished: Some(at(0, 1)),
            ..Health::default()
        };
        // Ten minutes into one tick, the last email answered a minute ago: healthy.
        assert!(h.scheduler_ok(Some(at(10, 0)), at(11, 0)));
        // The same tick with no answer for over three minutes: stuck.
        assert!(!h.scheduler_ok(Some(at(10, 0)), at(13, 1)));
        // Progress from an earlier tick does not count for this one.
        assert!(!h.scheduler_ok(Some(at(0, 30)), at(4, 1)));
        assert!(h.scheduler_ok(None, at(3, 59)));
    }

    #[test]
    fn no_tick_for_three_minutes_or_a_stopped_loop_is_unhealthy() {
        let mut h = Health {
            started_at: Some(at(0, 0)),
            ..Health::default()
        };
        assert!(h.scheduler_ok(None, at(2, 59)));
        assert!(!h.scheduler_ok(None, at(3, 0)));
        h.tick_started = Some(at(1, 0));
        h.tick_finished = Some(at(1, 2));
        assert!(h.scheduler_ok(None, at(4, 1)));
        assert!(!h.scheduler_ok(None, at(4, 3)));
        h.scheduler_stopped = true;
        assert!(!h.scheduler_ok(None, at(1, 3)));
    }
}
