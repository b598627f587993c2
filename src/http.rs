//! HTTP: the subscribed feeds and the health check, served from memory.
//!
//! The feeds come from [`crate::feeds`] (rendered once per schedule version, off the async
//! workers) and are swapped in whole; a request only picks the right bytes, answers `304` to a
//! matching `If-None-Match`, and checks the feed token in constant time. A gzip not made yet
//! is made off the async workers too, and waited for. Errors and refusals are responses made
//! here; the log gets method, path and status — never the query string, which may hold the
//! token.
//!
//! [`App`] is what each connection runs: `GET`/`HEAD /calendar.ics` — what every subscribed
//! calendar polls — is answered by its shortcut (`App::shortcut`) with the route's own code;
//! everything else goes through the [`router`].
//! [`serve`] is the accept loop: the listener and the shutdown signal are its arguments, so
//! tests bind `127.0.0.1:0` and cancel a future instead of sending signals.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Future, Ready};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::future::RouteFuture;
use axum::routing::get;
use chrono::Utc;
use futures_util::future::Either;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::net::TcpListener;
use tower::Service as _;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::feeds::{Feeds, RenderedFeed};
use crate::schedule::Secret;
use crate::status::ServiceStatus;
use crate::store::{Store, same_secret};

/// How long a request may take (the feeds are in memory: this only bounds slow clients).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a client may send as request line and headers.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Requests carry no body here, but for the "Đã xong" form.
pub const MAX_BODY_BYTES: usize = 1024;
/// The "Đã xong" form: a note and a link of at most 2,000 characters each, percent-encoded.
pub const MAX_FORM_BYTES: usize = 32 * 1024;

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    feeds: RwLock<Arc<Feeds>>,
    store: Store,
    status: Arc<ServiceStatus>,
}

impl AppState {
    pub fn new(feeds: Feeds, store: Store, status: Arc<ServiceStatus>) -> Arc<AppState> {
        Arc::new(AppState {
            feeds: RwLock::new(Arc::new(feeds)),
            store,
            status,
        })
    }

    /// The current feeds. The lock is held only to clone the `Arc`.
    pub fn feeds(&self) -> Arc<Feeds> {
        match self.feeds.read() {
            Ok(f) => Arc::clone(&f),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Swaps in the feeds of a new schedule, whole.
    pub fn replace_feeds(&self, feeds: Feeds) {
        let feeds = Arc::new(feeds);
        match self.feeds.write() {
            Ok(mut f) => *f = feeds,
            Err(poisoned) => *poisoned.into_inner() = feeds,
        }
    }
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    // The handlers that wait on something (the store, a first render) have a time limit; the
    // full feed answers from memory (at most after its one gzip, a few milliseconds) and is
    // spared a timer per request.
    let waiting = Router::new()
        .route("/calendar/{file}", get(group_feed))
        .route(PERSON_FEED_PREFIX_ROUTE, get(person_feed))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    let feeds = Router::new()
        .route(FULL_FEED_PATH, get(full_feed))
        .merge(waiting)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES));
    let pages = Router::new()
        .route(ACK_ROUTE, get(ack_page).post(ack_answer))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_FORM_BYTES));
    Router::new()
        .merge(feeds)
        .merge(pages)
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// The "Đã xong" pages' route (see [`crate::ack::url`]).
const ACK_ROUTE: &str = "/xong/{token}";

#[derive(Debug, Deserialize)]
struct AckQuery {
    ket_qua: Option<String>,
}

/// The page of a "Đã xong" link: shows the task and the form, records nothing.
async fn ack_page(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    Query(q): Query<AckQuery>,
) -> Response {
    let feeds = state.feeds();
    let r = crate::pages::ack(
        &feeds,
        &state.store,
        &token,
        None,
        q.ket_qua.as_deref(),
        Utc::now(),
    )
    .await;
    page_response(r)
}

/// The form of a "Đã xong" page, sent.
async fn ack_answer(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    form: Result<axum::Form<crate::pages::AckForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    // Not a form a browser sends (another content type, a body that does not decode).
    let Ok(axum::Form(form)) = form else {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Yêu cầu không đúng: hãy gửi câu trả lời bằng nút \"Gửi\" trên trang.\n",
        )
            .into_response();
    };
    let feeds = state.feeds();
    let r = crate::pages::ack(&feeds, &state.store, &token, Some(form), None, Utc::now()).await;
    page_response(r)
}

fn page_response(r: Result<(u16, String), crate::store::StoreError>) -> Response {
    match r {
        Ok((status, html)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (
                    header::HeaderName::from_static("referrer-policy"),
                    "no-referrer",
                ),
                (
                    header::HeaderName::from_static("x-content-type-options"),
                    "nosniff",
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "không đọc hay ghi được kho khi mở trang \"Đã xong\"");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (header::RETRY_AFTER, "60"),
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                ],
                "Dịch vụ tạm thời chưa ghi được, xin thử lại sau ít phút.\n",
            )
                .into_response()
        }
    }
}

/// The full feed's path: what every subscribed calendar polls.
pub const FULL_FEED_PATH: &str = "/calendar.ics";

/// The personal feeds' route (see [`crate::feeds::person_url`]).
const PERSON_FEED_PREFIX_ROUTE: &str = "/calendar/me/{file}";

#[derive(Debug, Deserialize)]
struct FeedQuery {
    token: Option<String>,
}

// The feed handlers take the request itself for its headers: the `HeaderMap` extractor
// would clone them on every request. Most `/calendar.ics` requests are answered by the
// shortcut before the router (`App::shortcut`); this route gets the rest (a body, a query
// that does not parse, a gzip not made yet).
async fn full_feed(
    State(state): State<Arc<AppState>>,
    Query(q): Query<FeedQuery>,
    request: Request,
) -> Response {
    let feeds = state.feeds();
    if !token_ok(feeds.token.as_ref(), q.token.as_deref()) {
        return not_found_response();
    }
    let response = feed_response(&feeds.all, request.headers(), feeds.token.is_some()).await;
    state.count(false, &response);
    response
}

async fn group_feed(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    Query(q): Query<FeedQuery>,
    request: Request,
) -> Response {
    let feeds = state.feeds();
    if !token_ok(feeds.token.as_ref(), q.token.as_deref()) {
        return not_found_response();
    }
    let Some(id) = file.strip_suffix(".ics") else {
        return not_found_response();
    };
    match feeds.group(id, &state.store).await {
        Some(Ok(feed)) => {
            let response = feed_response(feed, request.headers(), feeds.token.is_some()).await;
            state.count(true, &response);
            response
        }
        Some(Err(e)) => {
            tracing::error!(group = id, error = %e, "không dựng được lịch của nhóm");
            unavailable()
        }
        None => not_found_response(),
    }
}

/// A person's own feed, by the token in its path: the keys are read from the store on every
/// request (a few rows: the people whose link was revoked), so a revocation by
/// `ngayle feeds --revoke` — another process — closes the old link from the next request on,
/// with no restart and no window. A token that opens nothing is a 404, like any missing page:
/// the answer does not tell whether a token ever existed.
async fn person_feed(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    request: Request,
) -> Response {
    let Some(token) = file
        .strip_suffix(".ics")
        .filter(|t| t.len() == crate::store::TOKEN_LEN)
    else {
        return not_found_response();
    };
    let feeds = state.feeds();
    let keys = match feeds.keys(&state.store).await {
        Ok(keys) => keys,
        Err(e) => {
            tracing::error!(error = %e, "không đọc được khoá lịch riêng");
            return unavailable();
        }
    };
    let Some(index) = feeds.person_of(&keys, token) else {
        return not_found_response();
    };
    match feeds.person(index).await {
        Some(Ok(feed)) => feed_response(&feed, request.headers(), true).await,
        Some(Err(e)) => {
            tracing::error!(error = %e, "không dựng được lịch riêng");
            unavailable()
        }
        None => not_found_response(),
    }
}

/// A feed that cannot be had now (the store failed, a render or a compression broke).
fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "60")],
        "Lịch tạm thời chưa có, xin thử lại sau.\n",
    )
        .into_response()
}

impl AppState {
    fn count(&self, group: bool, response: &Response) {
        self.status
            .feed_request(group, response.status() == StatusCode::NOT_MODIFIED);
    }
}

/// Which representation of a feed a request gets, and whether it already has it.
#[derive(Debug, Clone, Copy)]
struct Choice {
    gzip: bool,
    not_modified: bool,
}

impl Choice {
    fn of(feed: &RenderedFeed, headers: &HeaderMap) -> Choice {
        let gzip = accepts_gzip(headers);
        let etag = if gzip { &feed.etag_gzip } else { &feed.etag };
        Choice {
            gzip,
            not_modified: if_none_match(headers, etag),
        }
    }
}

/// The representation `choice` sends (`None`: a `304`), if it is made already: `Err` when it
/// is the gzip and that is not made yet.
fn made(feed: &RenderedFeed, choice: Choice) -> Result<Option<&Bytes>, GzipNotMade> {
    if choice.not_modified {
        Ok(None)
    } else if choice.gzip {
        feed.gzip_ready().map(Some).ok_or(GzipNotMade)
    } else {
        Ok(Some(&feed.body))
    }
}

/// See [`made`].
#[derive(Debug)]
struct GzipNotMade;

/// The answer to a feed request, gzipping the body first (off the async workers) if that is
/// wanted and not done yet. A failed compression is a 503 and an error in the log, never an
/// empty body.
async fn feed_response(feed: &RenderedFeed, headers: &HeaderMap, private: bool) -> Response {
    let choice = Choice::of(feed, headers);
    let body = match made(feed, choice) {
        Ok(body) => body,
        Err(GzipNotMade) => match feed.gzip().await {
            Ok(gz) => Some(gz),
            Err(e) => {
                tracing::error!(error = %e, "không nén được lịch");
                return unavailable();
            }
        },
    };
    respond(feed, choice, body, private)
}

/// The response for `choice`: `body` is the representation to send, `None` for a `304`.
fn respond(feed: &RenderedFeed, choice: Choice, body: Option<&Bytes>, private: bool) -> Response {
    let etag = if choice.gzip {
        &feed.etag_gzip
    } else {
        &feed.etag
    };
    let etag = HeaderValue::from_str(etag)
        .expect("an ETag is hex digits between quotes, always a valid header value");
    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if private {
            "private, max-age=3600"
        } else {
            "public, max-age=3600"
        }),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let Some(body) = body else {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    };
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if choice.gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    // For HEAD, hyper sends the headers only (and axum drops the body on the router's path).
    *response.body_mut() = Body::from(body.clone());
    response
}

/// `If-None-Match` with the weak comparison RFC 9110 §13.1.2 asks for: `W/"x"` matches `"x"`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// True when `Accept-Encoding` allows gzip (explicitly or by `*`) with a non-zero quality.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut star = None;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(q > 0.0),
            "*" => star = Some(q > 0.0),
            _ => {}
        }
    }
    gzip.or(star).unwrap_or(false)
}

/// Compares the token without an early exit, so that timing does not tell how much of a
/// guess was right. (A wrong length fails at once: the length is not the secret.)
fn token_ok(expected: Option<&Secret>, given: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let Some(given) = given else {
        return false;
    };
    same_secret(expected.expose().as_bytes(), given.as_bytes())
}

/// The address of the client of a connection (set by [`App`] on each routed request).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// The health check (JSON): 200 while the service works — `ok`, or `degraded` when the last
/// reload or tick failed (the report says why: the files, lines and columns) — and 503 when the
/// store does not answer or the scheduler is not ticking.
///
/// `/healthz`: the status for everyone (and 503 when unhealthy); the whole report — reload
/// diagnostics name files and staff, store errors name paths — only with the feed token when
/// one is set, else only to a client on this machine (loopback).
async fn healthz(
    State(state): State<Arc<AppState>>,
    Query(q): Query<FeedQuery>,
    peer: Option<axum::Extension<Peer>>,
) -> Response {
    let report = state.status.report(&state.store, Utc::now()).await;
    let code = if report.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let detailed = match &state.feeds().token {
        Some(t) => token_ok(Some(t), q.token.as_deref()),
        None => peer.is_some_and(|p| p.0.0.ip().is_loopback()),
    };
    let mut response = if detailed {
        (code, Json(report)).into_response()
    } else {
        (code, Json(report.public())).into_response()
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The metrics, in the OpenMetrics text format that Prometheus scrapes.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match state.status.metrics(&state.store).await {
        Ok(text) => (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// One answer for everything that is not there, including a feed asked without its token:
/// a 401 or 403 would tell that the feed exists.
async fn not_found() -> Response {
    not_found_response()
}

fn not_found_response() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Không tìm thấy.\n",
    )
        .into_response()
}

/// Logs method, path and status; never the query, which may hold the feed token.
async fn log_request(request: Request, next: Next) -> Response {
    if !tracing::enabled!(tracing::Level::INFO) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    log_answer(&method, &path, &response, started);
    response
}

/// The log line of every answer, on both paths ([`App::shortcut`] and [`router`]). At debug
/// (calendars poll all day; `RUST_LOG=ngayle::http=debug` shows them). The token in the path
/// of a personal feed or of a "Đã xong" page is left out.
fn log_answer(method: &Method, path: &str, response: &Response, started: Instant) {
    let path = if path.starts_with(crate::ack::PATH_PREFIX) {
        "/xong/[ẩn]"
    } else if path.starts_with(crate::feeds::PERSON_FEED_PREFIX) {
        "/calendar/me/[ẩn].ics"
    } else {
        path
    };
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "yêu cầu HTTP"
    );
}

/// The service of every connection: the shortcut (`App::shortcut`) for the full feed, the
/// [`router`] for everything else, both behind the same `Host` check.
#[derive(Clone, Debug)]
pub struct App {
    state: Arc<AppState>,
    router: Router,
    /// The client of this connection, given to the routes as a [`Peer`] extension.
    peer: Option<std::net::SocketAddr>,
}

impl App {
    pub fn new(state: Arc<AppState>) -> App {
        App {
            router: router(Arc::clone(&state)),
            state,
            peer: None,
        }
    }

    /// This service for one connection from `peer`.
    pub fn for_peer(&self, peer: std::net::SocketAddr) -> App {
        App {
            peer: Some(peer),
            ..self.clone()
        }
    }

    /// The shortcut: the full feed answered before the router, or `None` to route the request.
    ///
    /// `GET` and `HEAD` [`FULL_FEED_PATH`] are nearly every request a deployment gets, from
    /// every subscribed calendar every few hours. Answered here from memory they are spared the
    /// router's matching, the body wrapping and the middleware's boxed futures — measured, a
    /// fifth of the server's time on the `304` path, and what keeps the feed at or above
    /// nginx's rate (BENCHMARKS.md, "plain router" rows).
    ///
    /// It takes only what it can answer exactly as the [`full_feed`] route would: no body (so
    /// the router's body limit has nothing to bound), a query that parses, and a representation
    /// already made (a gzip not made yet is waited for on the router's path, off the async
    /// workers). The rest — the token check, [`respond`], the counters and the log line
    /// ([`log_answer`]) — is the route's own code; the header size limit and timeout are the
    /// connection's, the same for both. `tests/it/http.rs` checks that both paths answer alike.
    fn shortcut(&self, request: &hyper::Request<Incoming>) -> Option<Response> {
        if request.uri().path() != FULL_FEED_PATH
            || !matches!(*request.method(), Method::GET | Method::HEAD)
            || !request.body().is_end_stream()
        {
            return None;
        }
        let started = Instant::now();
        let query = match request.uri().query() {
            None => None,
            Some(_) => Some(Query::<FeedQuery>::try_from_uri(request.uri()).ok()?.0),
        };
        let feeds = self.state.feeds();
        let response = if token_ok(
            feeds.token.as_ref(),
            query.as_ref().and_then(|q| q.token.as_deref()),
        ) {
            let choice = Choice::of(&feeds.all, request.headers());
            let body = made(&feeds.all, choice).ok()?;
            let response = respond(&feeds.all, choice, body, feeds.token.is_some());
            self.state.count(false, &response);
            response
        } else {
            not_found_response()
        };
        if tracing::enabled!(tracing::Level::INFO) {
            log_answer(request.method(), FULL_FEED_PATH, &response, started);
        }
        Some(response)
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, RouteFuture<Infallible>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        if !host_ok(&request) {
            let response = (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Yêu cầu không hợp lệ: HTTP/1.1 cần đúng một dòng Host.\n",
            )
                .into_response();
            if tracing::enabled!(tracing::Level::INFO) {
                let started = Instant::now();
                log_answer(request.method(), request.uri().path(), &response, started);
            }
            return Either::Left(std::future::ready(Ok(response)));
        }
        match self.shortcut(&request) {
            Some(response) => Either::Left(std::future::ready(Ok(response))),
            None => {
                if let Some(peer) = self.peer {
                    request.extensions_mut().insert(Peer(peer));
                }
                Either::Right(self.router.clone().call(request))
            }
        }
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request has exactly one `Host` (HTTP/1.0 may have none); a
/// request with none or several must be answered 400. hyper leaves that to the service.
fn host_ok<B>(request: &hyper::Request<B>) -> bool {
    request.version() != Version::HTTP_11 || {
        let mut hosts = request.headers().get_all(header::HOST).iter();
        hosts.next().is_some() && hosts.next().is_none()
    }
}

/// The send buffer of each connection (the kernel doubles it for its bookkeeping).
///
/// Left to itself Linux grows a connection's buffer up to `tcp_wmem`'s maximum (4 MB), so a
/// whole 360 kB feed is copied into the kernel at once and stays there until the client has
/// read it. A fixed buffer keeps that to ~256 kB per connection: the rest is written as the
/// client reads. With 16 clients on loopback this gave 6–15 % more full-feed requests per
/// second (BENCHMARKS.md); a slow phone ties up less kernel memory; 256 kB in flight still
/// fills a 20 Mbit/s link at 100 ms of round trip. Not smaller: at 32 KiB a loopback
/// connection (a reverse proxy on the same host; segments of 64 kB there) holds one segment,
/// waits for the client's delayed acknowledgement each time, and fell to 2 % of the rate.
pub const SEND_BUFFER_BYTES: usize = 128 * 1024;

/// Socket options of an accepted connection: [`SEND_BUFFER_BYTES`], and no Nagle delay — a
/// response is written in one go, and Nagle's algorithm would only hold its last segment back
/// until the client has acknowledged the others. A failure is logged and the connection kept.
fn tune(stream: &tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
    if let Err(e) = socket2::SockRef::from(stream).set_send_buffer_size(SEND_BUFFER_BYTES) {
        tracing::debug!(error = %e, "SO_SNDBUF not set");
    }
}

/// What the accept loop and one connection share: whether a request is in flight, and since
/// when the connection has been idle — the accept loop closes the longest idle first when the
/// connections reach their cap ([`serve`]).
#[derive(Debug)]
struct Conn {
    /// Requests between the service's call and the end of their response body.
    busy: AtomicU32,
    /// When the connection last became idle, in milliseconds after `epoch`, plus one; 0 while
    /// a request is in flight or its response is still in hyper's buffer.
    idle_since: AtomicU64,
    epoch: Instant,
}

impl Conn {
    fn new(epoch: Instant) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            busy: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            epoch,
        });
        // A new connection is idle until its first request has been read.
        conn.mark_idle();
        conn
    }

    fn mark_idle(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.idle_since.store(ms + 1, Ordering::Relaxed);
    }

    /// Since when it has been idle (`None`: busy).
    fn idle(&self) -> Option<u64> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        Some(self.idle_since.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }
}

/// Held from the service's call to the end of the response body (or until the request is
/// dropped): the connection is busy meanwhile.
#[derive(Debug)]
struct Busy(Arc<Conn>);

impl Busy {
    fn new(conn: &Arc<Conn>) -> Busy {
        conn.busy.fetch_add(1, Ordering::Relaxed);
        conn.idle_since.store(0, Ordering::Relaxed);
        Busy(Arc::clone(conn))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // Idle only once hyper has flushed the rest of the response ([`Io`]).
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// [`App`] on one connection, marking it busy while a request is answered.
#[derive(Debug)]
struct Counted {
    app: App,
    conn: Arc<Conn>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Counted {
    type Response = Response<CountedBody>;
    type Error = Infallible;
    type Future = CountedFuture<<App as hyper::service::Service<hyper::Request<Incoming>>>::Future>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let busy = Busy::new(&self.conn);
        CountedFuture {
            inner: self.app.call(request),
            busy: Some(busy),
        }
    }
}

#[derive(Debug)]
struct CountedFuture<F> {
    inner: F,
    busy: Option<Busy>,
}

impl<F> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response<CountedBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Poll::Ready(Ok(response)) = Pin::new(&mut this.inner).poll(cx) else {
            return Poll::Pending;
        };
        let busy = this.busy.take();
        Poll::Ready(Ok(response.map(|body| CountedBody { body, _busy: busy })))
    }
}

/// A response body that keeps its connection busy until hyper has sent it and dropped it.
#[derive(Debug)]
struct CountedBody {
    body: Body,
    _busy: Option<Busy>,
}

impl hyper::body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket. hyper flushes it once its own buffer is empty: a connection with
/// no request in flight is idle from then on (a response body ends before hyper has written
/// it out, and shedding the connection then would cut the response short).
#[derive(Debug)]
struct Io {
    inner: TokioIo<tokio::net::TcpStream>,
    conn: Arc<Conn>,
}

impl hyper::rt::Read for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        let conn = &self.conn;
        if flushed.is_ready()
            && conn.busy.load(Ordering::Relaxed) == 0
            && conn.idle_since.load(Ordering::Relaxed) == 0
        {
            conn.mark_idle();
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The open connections, as the accept loop sees them (it alone adds and removes).
#[derive(Debug, Default)]
struct Open {
    conns: HashMap<tokio::task::Id, (tokio::task::AbortHandle, Arc<Conn>)>,
    /// Idle connections closed for new ones since the last warning.
    shed: u64,
    warned: Option<Instant>,
}

impl Open {
    /// Closes the connection idle the longest (a client between requests, or one that has not
    /// finished its request yet): `false` when every connection is busy.
    fn shed_one(&mut self) -> bool {
        let oldest = self
            .conns
            .iter()
            .filter_map(|(id, (_, conn))| Some((conn.idle()?, *id)))
            .min();
        let Some((_, id)) = oldest else {
            return false;
        };
        if let Some((task, _)) = self.conns.remove(&id) {
            // Dropping the connection's future closes its socket.
            task.abort();
        }
        self.shed += 1;
        if self.warned.is_none_or(|t| t.elapsed() >= SHED_WARN_EVERY) {
            tracing::warn!(
                shed = self.shed,
                open = self.conns.len(),
                "too many connections: closed the ones idle the longest"
            );
            self.shed = 0;
            self.warned = Some(Instant::now());
        }
        true
    }
}

/// How often shedding is logged while it lasts.
const SHED_WARN_EVERY: Duration = Duration::from_secs(60);
/// What a connection over the cap gets when no open one is idle (then it is closed).
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n\
    Content-Length: 0\r\nConnection: close\r\n\r\n";
/// glibc keeps the memory of a burst of connections (their buffers) as free heap; after a
/// burst of at least this many connections, once none is open, it is given back.
const TRIM_AFTER_CONNECTIONS: u64 = 64;
/// Quiet wanted after the last connection closed before trimming, and the least time between
/// two trims.
const TRIM_QUIET: Duration = Duration::from_secs(1);
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and lets open
/// connections finish within `grace`; those still open then are closed. Every connection task
/// is owned here (none is left running). Each connection is HTTP/1.1 with a header size limit
/// and a header timeout (against slow clients, also between two requests of one connection).
///
/// At most `max_connections` are open at once. The loop keeps accepting (so that the kernel's
/// backlog does not fill and new clients are not left waiting in it): a connection over the cap
/// closes the one idle the longest — a client between requests, or one that has sent no
/// complete request yet — or, when every connection is busy with a request, is answered 503
/// and closed itself.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    max_connections: usize,
) -> std::io::Result<()> {
    warn_if_too_few_descriptors(max_connections);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut open = Open::default();
    let epoch = Instant::now();
    let mut accept_failing = false;
    let mut accepted_since_trim = 0u64;
    let mut last_trim: Option<Instant> = None;
    let mut trim_at: Option<tokio::time::Instant> = None;
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if accept_failing {
                        tracing::info!("accepting connections again");
                        accept_failing = false;
                    }
                    trim_at = None;
                    accepted_since_trim += 1;
                    if open.conns.len() >= max_connections && !open.shed_one() {
                        // Best effort: the socket is new, its buffer empty.
                        let _ = stream.try_write(REFUSED);
                        tracing::debug!("every connection busy: refused a new one");
                        continue;
                    }
                    tune(&stream);
                    let conn = Conn::new(epoch);
                    let service = Counted { app: app.for_peer(peer), conn: Arc::clone(&conn) };
                    let io = Io { inner: TokioIo::new(stream), conn: Arc::clone(&conn) };
                    let served = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .max_buf_size(MAX_HEADER_BYTES)
                        .serve_connection(io, service);
                    let served = graceful.watch(served);
                    let task = connections.spawn(async move {
                        if let Err(e) = served.await {
                            tracing::debug!(error = %e, "connection closed with an error");
                        }
                    });
                    open.conns.insert(task.id(), (task, conn));
                }
                Err(e) => {
                    // Out of descriptors (EMFILE, ENFILE) and the like: free one if a
                    // connection is idle, and back off instead of spinning; say so once.
                    if !accept_failing {
                        tracing::warn!(error = %e, open = open.conns.len(), "accept failed");
                        accept_failing = true;
                    }
                    open.shed_one();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections as they end.
            Some(done) = connections.join_next_with_id(), if !connections.is_empty() => {
                let id = match &done {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                open.conns.remove(&id);
                if open.conns.is_empty() && accepted_since_trim >= TRIM_AFTER_CONNECTIONS {
                    let earliest = last_trim.map_or(epoch, |t| t + TRIM_EVERY);
                    let at = earliest.max(Instant::now() + TRIM_QUIET);
                    trim_at = Some(tokio::time::Instant::from_std(at));
                }
            }
            () = tokio::time::sleep_until(trim_at.unwrap_or_else(tokio::time::Instant::now)),
                if trim_at.is_some() =>
            {
                trim_at = None;
                accepted_since_trim = 0;
                last_trim = Some(Instant::now());
                // Off the runtime's threads: trimming walks the heap. Owned like a connection.
                connections.spawn_blocking(give_memory_back);
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => tracing::warn!(
            open = connections.len(),
            "connections still open after the grace period: closed"
        ),
    }
    connections.shutdown().await;
    Ok(())
}

/// Returns the heap's free memory to the system.
fn give_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Warns when the process may open fewer descriptors than `max_connections` needs, with room
/// for the database, the log, the watcher and the connection being accepted.
fn warn_if_too_few_descriptors(max_connections: usize) {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return;
        }
        let need = max_connections as u64 + 64;
        if limit.rlim_cur < need {
            tracing::warn!(
                max_connections,
                descriptors = limit.rlim_cur,
                "too few file descriptors for http.max_connections: lower it, or raise \
                 LimitNOFILE (ulimit -n)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn gzip_negotiation() {
        let table = [
            (vec![], false),
            (vec![("accept-encoding", "gzip")], true),
            (vec![("accept-encoding", "br, gzip;q=0.5")], true),
            (vec![("accept-encoding", "gzip;q=0")], false),
            (vec![("accept-encoding", "*")], true),
            (vec![("accept-encoding", "*, gzip;q=0")], false),
            (vec![("accept-encoding", "identity")], false),
            (
                vec![("accept-encoding", "deflate"), ("accept-encoding", "GZIP")],
                true,
            ),
        ];
        for (h, want) in table {
            assert_eq!(accepts_gzip(&headers(&h)), want, "{h:?}");
        }
    }

    #[test]
    fn etag_matching() {
        let tag = "\"abc\"";
        assert!(if_none_match(
            &headers(&[("if-none-match", "\"abc\"")]),
            tag
        ));
        assert!(if_none_match(
            &headers(&[("if-none-match", "W/\"abc\"")]),
            tag
        ));
        assert!(if_none_match(
            &headers(&[("if-none-match", "\"x\", \"abc\"")]),
            tag
        ));
        assert!(if_none_match(&headers(&[("if-none-match", "*")]), tag));
        assert!(!if_none_match(
            &headers(&[("if-none-match", "\"abcd\"")]),
            tag
        ));
        assert!(!if_none_match(&headers(&[]), tag));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn accepted_connections_are_tuned() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let _client = client.unwrap_or_else(|e| panic!("{e}"));
        let (server, _) = accepted.unwrap_or_else(|e| panic!("{e}"));
        let before = socket2::SockRef::from(&server)
            .send_buffer_size()
            .unwrap_or_else(|e| panic!("{e}"));
        tune(&server);
        assert!(server.nodelay().unwrap_or_else(|e| panic!("{e}")));
        // Linux doubles the size asked for, and stops growing the buffer on its own.
        let after = socket2::SockRef::from(&server)
            .send_buffer_size()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((before == after, after), (false, 2 * SEND_BUFFER_BYTES));
    }

    #[tokio::test]
    async fn shedding_closes_the_longest_idle_and_never_a_busy_one() {
        let epoch = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let mut open = Open::default();
        let mut add = |idle_since: u64, busy: u32| {
            let conn = Conn::new(epoch);
            conn.idle_since.store(idle_since, Ordering::Relaxed);
            conn.busy.store(busy, Ordering::Relaxed);
            let task = tasks.spawn(std::future::pending::<()>());
            let id = task.id();
            open.conns.insert(id, (task, conn));
            id
        };
        let (busy, newer, oldest) = (add(1, 1), add(50, 0), add(10, 0));
        assert!(open.shed_one());
        assert!(!open.conns.contains_key(&oldest));
        assert!(open.shed_one());
        assert!(!open.conns.contains_key(&newer));
        // Only a busy connection is left: nothing to shed, the new one is refused instead.
        assert!(!open.shed_one());
        assert!(open.conns.contains_key(&busy));
        // The shed tasks were aborted, the busy one runs on.
        let mut cancelled = 0;
        while let Some(Err(e)) = tokio::time::timeout(Duration::from_millis(100), tasks.join_next())
            .await
            .ok()
            .flatten()
        {
            assert!(e.is_cancelled());
            cancelled += 1;
        }
        assert_eq!((cancelled, tasks.len()), (2, 1));
        tasks.shutdown().await;
    }

    #[test]
    fn host_header_rules() {
        let request = |version, hosts: &[&'static str]| {
            let mut r = hyper::Request::builder().version(version);
            for h in hosts {
                r = r.header(header::HOST, *h);
            }
            r.body(()).unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(host_ok(&request(Version::HTTP_11, &["a"])));
        assert!(!host_ok(&request(Version::HTTP_11, &[])));
        assert!(!host_ok(&request(Version::HTTP_11, &["a", "a"])));
        assert!(host_ok(&request(Version::HTTP_10, &[])));
    }

    #[test]
    fn tokens() {
        let secret = Secret::new("0123456789abcdef".into());
        assert!(token_ok(None, None));
        assert!(token_ok(Some(&secret), Some("0123456789abcdef")));
        assert!(!token_ok(Some(&secret), Some("0123456789abcdeF")));
        assert!(!token_ok(Some(&secret), Some("0123456789abcde")));
        assert!(!token_ok(Some(&secret), None));
    }
}
