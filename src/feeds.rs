//! The served feeds of one schedule version: built, with their revisions recorded, and kept
//! in memory for the HTTP server.
//!
//! [`Feeds`] holds the full feed, rendered when the schedule is loaded ([`start`] at start-up,
//! [`build`] on a reload), and each group's, rendered by its first request. Every render — the
//! draft of the events ([`feed::Draft::new`]), the text with its revision times
//! ([`feed::Draft::finish`]) and its hash, and gzip — runs on tokio's blocking threads, never
//! on the async workers that answer requests: a province's full feed takes ~200 ms to draft.
//! Between the draft and the text, the events' revision times are recorded in the store, so a
//! feed's bytes stay the same across renders and processes (see [`crate::feed`]).
//!
//! Not here: the iCalendar text itself (`feed`), and which bytes a request gets — ETags,
//! `304`, gzip negotiation (`http`).

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::OnceCell;
use tokio::task::{JoinError, JoinHandle};

use crate::feed::{self, FeedSpec, Revisions};
use crate::schedule::{Schedule, Secret};
use crate::store::{FeedKeys, Store, StoreError, same_secret};

/// Why a feed could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FeedsError {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Rendering or compressing on a blocking thread panicked (a bug) or was cancelled.
    #[error("dựng lịch bị dừng giữa chừng: {0}")]
    Render(#[from] JoinError),
    /// gzip failed. It writes into memory, which does not fail; kept as an error rather than
    /// an empty body so that a future encoder's failure cannot go out as a feed.
    #[error("nén lịch lỗi: {0}")]
    Gzip(#[source] std::io::Error),
}

/// One feed, ready to send.
#[derive(Debug)]
pub struct RenderedFeed {
    pub body: Bytes,
    /// `body` gzipped, made once: beside the server ([`Feeds::compress`]) or by the first
    /// request that needs it ([`RenderedFeed::gzip`]), both off the async workers.
    gzip: OnceCell<Bytes>,
    /// Strong ETag of `body`, quoted.
    pub etag: String,
    /// Strong ETag of the gzipped body (another representation, another tag).
    pub etag_gzip: String,
}

impl RenderedFeed {
    /// The feed of `text`, with its ETags. Hashing reads the whole text: call it on a blocking
    /// thread for a large feed.
    pub fn new(text: String) -> RenderedFeed {
        let hash = crate::fnv1a(text.as_bytes());
        RenderedFeed {
            body: Bytes::from(text),
            gzip: OnceCell::new(),
            etag: format!("\"{hash:016x}\""),
            etag_gzip: format!("\"{hash:016x}-gz\""),
        }
    }

    /// The gzipped body, if it has been made.
    pub fn gzip_ready(&self) -> Option<&Bytes> {
        self.gzip.get()
    }

    /// The gzipped body, compressed on a blocking thread by the first caller that needs it
    /// (the others wait for that one).
    pub async fn gzip(&self) -> Result<&Bytes, FeedsError> {
        self.gzip
            .get_or_try_init(|| async {
                let body = self.body.clone();
                tokio::task::spawn_blocking(move || gzip(&body))
                    .await?
                    .map_err(FeedsError::Gzip)
            })
            .await
    }

    /// Gzips the body now, on this thread, unless that is done (blocking: call it on a
    /// blocking thread).
    fn compress(&self) -> std::io::Result<()> {
        if self.gzip.initialized() {
            return Ok(());
        }
        // A request compressing at the same time may finish first: its bytes are the same,
        // and this `set` then fails harmlessly.
        let _ = self.gzip.set(gzip(&self.body)?);
        Ok(())
    }
}

/// `body` gzipped at the default level: 25 % faster than the best, 2.5 % larger on a feed.
fn gzip(body: &[u8]) -> std::io::Result<Bytes> {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 8),
        flate2::Compression::default(),
    );
    gz.write_all(body)?;
    Ok(Bytes::from(gz.finish()?))
}

/// Every feed of one schedule version: the full one rendered with the schedule, each group's
/// on its first request (a group feed is fetched by that group's phones, some never), each
/// person's on request, the last ones kept up to [`PERSON_CACHE_BYTES`].
#[derive(Debug)]
pub struct Feeds {
    pub all: RenderedFeed,
    groups: HashMap<String, OnceCell<RenderedFeed>>,
    /// When each event of the full feed last changed: the `DTSTAMP`s of the personal feeds
    /// (see [`Feeds::person`]).
    all_revisions: Arc<Revisions>,
    /// Every person's token, in staff order, for the keys they were made with.
    tokens: Mutex<Option<(FeedKeys, Arc<Vec<String>>)>>,
    /// The personal feeds rendered last.
    persons: Mutex<PersonCache>,
    schedule: Arc<Schedule>,
    /// The day the feeds' years are counted from.
    today: NaiveDate,
    pub schedule_version: String,
    pub loaded_at: DateTime<Utc>,
    /// The schedule's `http.feed_token`: feeds are private when it is set.
    pub token: Option<Secret>,
}

impl Feeds {
    fn new(
        schedule: Arc<Schedule>,
        (all, all_revisions): (RenderedFeed, Revisions),
        today: NaiveDate,
        loaded_at: DateTime<Utc>,
    ) -> Feeds {
        Feeds {
            all,
            all_revisions: Arc::new(all_revisions),
            tokens: Mutex::new(None),
            persons: Mutex::new(PersonCache::default()),
            groups: schedule
                .groups
                .iter()
                .map(|g| g.id.clone())
                .chain(std::iter::once(feed::DAYS_OFF_FEED.to_string()))
                .map(|id| (id, OnceCell::new()))
                .collect(),
            schedule_version: schedule.version.clone(),
            token: schedule.settings.feed_token.clone(),
            schedule,
            today,
            loaded_at,
        }
    }

    /// A group's feed (`None`: no such group), rendered by its first request — its revisions
    /// are recorded then — and kept for the next ones.
    pub async fn group(
        &self,
        id: &str,
        store: &Store,
    ) -> Option<Result<&RenderedFeed, FeedsError>> {
        let cell = self.groups.get(id)?;
        if id != feed::DAYS_OFF_FEED {
            self.schedule.group(id)?;
        }
        let id = id.to_string();
        Some(
            cell.get_or_try_init(|| async {
                let draft = draft(&self.schedule, Some(id.clone()), self.today).await?;
                let (feed, _) = finish(
                    &self.schedule,
                    Some(&id),
                    store,
                    draft,
                    self.today,
                    Utc::now(),
                )
                .await?;
                Ok(feed)
            })
            .await,
        )
    }

    /// The keys of the personal feed links now (the environment's secret if given, else the
    /// store's, made on first use; the generations from the store).
    /// The schedule these feeds are of.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub async fn keys(&self, store: &Store) -> Result<FeedKeys, StoreError> {
        store
            .feed_keys(self.schedule.settings.feed_secret.as_ref(), true)
            .await
    }

    /// Whose personal feed `token` opens under `keys` (`None`: nobody's). Every person's token
    /// is compared, each without an early exit, so that the answer's time tells neither who
    /// matched nor how much of a guess was right. The tokens are made once per schedule and
    /// keys (a revocation changes the keys: the next request makes them again, ~1 µs a person).
    pub fn person_of(&self, keys: &FeedKeys, token: &str) -> Option<usize> {
        let tokens = {
            let mut cached = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            match &*cached {
                Some((k, t)) if k == keys => Arc::clone(t),
                _ => {
                    let made: Arc<Vec<String>> = Arc::new(
                        self.schedule
                            .people
                            .iter()
                            .map(|p| keys.token(&p.id))
                            .collect(),
                    );
                    *cached = Some((keys.clone(), Arc::clone(&made)));
                    made
                }
            }
        };
        let mut found = None;
        for (i, t) in tokens.iter().enumerate() {
            if same_secret(t.as_bytes(), token.as_bytes()) {
                found = Some(i);
            }
        }
        found
    }

    /// The personal feed of the person at `index` in the staff (see [`Feeds::person_of`]):
    /// the events that give them a task, only their tasks in the text and one alarm per
    /// reminder. Rendered on a blocking thread on request, or taken from the last ones
    /// rendered. Its `DTSTAMP`s and `LAST-MODIFIED`s are the full feed's: every change to a
    /// person's event (a task, its deadline or reminders, who does it) changes that event in
    /// the full feed too, so the store keeps no rows per person and the bytes are the same in
    /// every process.
    pub async fn person(&self, index: usize) -> Option<Result<Arc<RenderedFeed>, FeedsError>> {
        self.schedule.people.get(index)?;
        let cached = self
            .persons
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(index);
        if let Some(feed) = cached {
            return Some(Ok(feed));
        }
        let schedule = Arc::clone(&self.schedule);
        let revisions = Arc::clone(&self.all_revisions);
        let today = self.today;
        let rendered = tokio::task::spawn_blocking(move || {
            let person = schedule.people.get(index)?;
            let spec = FeedSpec::for_person(today, person);
            let draft = feed::Draft::new(&schedule, &feed::Inputs::new(&schedule, &spec), &spec);
            Some(Arc::new(RenderedFeed::new(draft.finish(&revisions))))
        })
        .await;
        let feed = match rendered {
            Ok(feed) => feed?,
            Err(e) => return Some(Err(e.into())),
        };
        self.persons
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(index, Arc::clone(&feed));
        Some(Ok(feed))
    }

    /// Gzips every rendered feed that is not yet (blocking: run it on a blocking thread). A
    /// failure is logged: the request that needs that gzip tries again.
    pub fn compress(&self) {
        let rendered =
            std::iter::once(&self.all).chain(self.groups.values().filter_map(|c| c.get()));
        for feed in rendered {
            if let Err(e) = feed.compress() {
                tracing::error!(error = %e, "không nén được lịch");
            }
        }
    }
}

/// Where the personal feeds are served: `/calendar/me/TOKEN.ics` (see [`person_url`]).
pub const PERSON_FEED_PREFIX: &str = "/calendar/me/";

/// The URL of a person's own feed under the service's public URL (`http.public_url`). The
/// token is the whole credential: the feed token (`http.feed_token`), which guards the shared
/// feeds, is not asked for here.
pub fn person_url(public_url: &str, token: &str) -> String {
    format!("{public_url}{PERSON_FEED_PREFIX}{token}.ics")
}

/// How many bytes of personal feeds (text and gzip) are kept for their next requests. A
/// phone polls its feed every few hours ([`feed::REFRESH`]): a cache for every person would
/// hold each feed for hours to save one render (milliseconds) per poll, and a province's staff
/// would make it tens of megabytes. This keeps the feeds asked for last — a burst of polls,
/// an email's readers opening their links — at a bounded cost.
pub const PERSON_CACHE_BYTES: usize = 4 << 20;

/// The personal feeds rendered last, the oldest dropped first past [`PERSON_CACHE_BYTES`].
#[derive(Debug, Default)]
struct PersonCache {
    feeds: HashMap<usize, Arc<RenderedFeed>>,
    /// Staff indices, the oldest first.
    order: VecDeque<usize>,
    bytes: usize,
}

impl PersonCache {
    fn get(&self, index: usize) -> Option<Arc<RenderedFeed>> {
        self.feeds.get(&index).cloned()
    }

    /// Keeps `feed` (counted with room for its gzip, made later) and drops the oldest past
    /// the budget.
    fn put(&mut self, index: usize, feed: Arc<RenderedFeed>) {
        let size = |f: &RenderedFeed| f.body.len() + f.body.len() / 4;
        if let Some(old) = self.feeds.insert(index, Arc::clone(&feed)) {
            self.bytes -= size(&old);
            self.order.retain(|&i| i != index);
        }
        self.bytes += size(&feed);
        self.order.push_back(index);
        while self.bytes > PERSON_CACHE_BYTES && self.order.len() > 1 {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(f) = self.feeds.remove(&oldest) {
                self.bytes -= size(&f);
            }
        }
    }
}

/// The full feed of a schedule, being drafted on a blocking thread ([`start`]).
pub struct Pending {
    schedule: Arc<Schedule>,
    today: NaiveDate,
    draft: JoinHandle<feed::Draft>,
}

/// Starts drafting the full feed of `schedule` for the years around `today` on a blocking
/// thread: `serve` opens the store meanwhile, then [`Pending::finish`]es it.
pub fn start(schedule: &Arc<Schedule>, today: NaiveDate) -> Pending {
    Pending {
        schedule: Arc::clone(schedule),
        today,
        draft: draft(schedule, None, today),
    }
}

impl Pending {
    /// The feeds, once the full feed's revisions are recorded (at `now` for new events) and
    /// its text is written; gzip is left for later ([`Feeds::compress`]).
    pub async fn finish(self, store: &Store, now: DateTime<Utc>) -> Result<Feeds, FeedsError> {
        let draft = self.draft.await?;
        let all = finish(&self.schedule, None, store, draft, self.today, now).await?;
        Ok(Feeds::new(self.schedule, all, self.today, now))
    }
}

/// The feeds of `schedule` for the years around `today` (a reload): [`start`] then
/// [`Pending::finish`].
pub async fn build(
    schedule: &Arc<Schedule>,
    store: &Store,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Feeds, FeedsError> {
    start(schedule, today).finish(store, now).await
}

/// The feed of `group` (`None`: the full feed) for the years around `today`. `group` must be
/// one of the schedule's (the callers take it from there).
fn spec<'s>(schedule: &'s Schedule, group: Option<&str>, today: NaiveDate) -> FeedSpec<'s> {
    if group == Some(feed::DAYS_OFF_FEED) {
        return FeedSpec::days_off(today);
    }
    FeedSpec::around(today, group.and_then(|id| schedule.group(id)))
}

/// Drafts one feed's events on a blocking thread.
fn draft(
    schedule: &Arc<Schedule>,
    group: Option<String>,
    today: NaiveDate,
) -> JoinHandle<feed::Draft> {
    let schedule = Arc::clone(schedule);
    tokio::task::spawn_blocking(move || {
        let spec = spec(&schedule, group.as_deref(), today);
        feed::Draft::new(&schedule, &feed::Inputs::new(&schedule, &spec), &spec)
    })
}

/// Records the revisions of `draft`'s events, then writes and hashes its text on a blocking
/// thread; returns the revisions too.
async fn finish(
    schedule: &Schedule,
    group: Option<&str>,
    store: &Store,
    draft: feed::Draft,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(RenderedFeed, Revisions), FeedsError> {
    let key = spec(schedule, group, today).key();
    let revisions = store.revisions(&key, &draft.fingerprints(), now).await?;
    let rendered = tokio::task::spawn_blocking(move || {
        let feed = RenderedFeed::new(draft.finish(&revisions));
        (feed, revisions)
    })
    .await?;
    Ok(rendered)
}

/// One feed's text, with its revisions recorded first — rendered on the calling thread, for
/// one-shot callers (`ngayle ics`, the tests, the benches). The service renders through
/// [`Feeds`] instead, off its async workers.
pub async fn feed_text(
    schedule: &Schedule,
    store: &Store,
    spec: &FeedSpec<'_>,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let draft = feed::Draft::new(schedule, &feed::Inputs::new(schedule, spec), spec);
    let revisions = store
        .revisions(&spec.key(), &draft.fingerprints(), now)
        .await?;
    Ok(draft.finish(&revisions))
}
