//! The feed over HTTP, checked on the wire: a real server on 127.0.0.1:0, a raw HTTP/1.1
//! client, and the `icalendar` crate's parser reading what arrived.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::SocketAddr;

use chrono::Datelike;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::Project;
use crate::support::serve::Serve;

/// A running `serve`, stopped by dropping `stop` (as a signal would).
struct App {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ngayle::daemon::DaemonError>>,
}

impl App {
    async fn start(project: &Project) -> App {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (stop, stopped) = oneshot::channel::<()>();
        let opts = ngayle::daemon::ServeOptions {
            config: project.config(),
            listener,
            watch: false,
            sighup: false,
        };
        let task = tokio::spawn(ngayle::daemon::serve(opts, async {
            let _ = stopped.await;
        }));
        // The listener is bound before serve starts, so the first request waits for it.
        App {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn get(&self, target: &str, headers: &[&str]) -> Reply {
        self.request("GET", target, headers).await
    }

    /// One request on a fresh connection; a server that does not answer within 30 s fails
    /// the test instead of hanging it.
    async fn request(&self, method: &str, target: &str, headers: &[&str]) -> Reply {
        self.send(method, target, headers, b"").await
    }

    /// [`App::request`] with a body after the headers.
    async fn send(&self, method: &str, target: &str, headers: &[&str], body: &[u8]) -> Reply {
        let exchange = self.exchange(method, target, headers, body);
        tokio::time::timeout(std::time::Duration::from_secs(30), exchange)
            .await
            .unwrap_or_else(|_| panic!("no answer to {method} {target} within 30 s"))
    }

    async fn exchange(&self, method: &str, target: &str, headers: &[&str], body: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(self.addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        stream
            .write_all(&bytes)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Reply::parse(&raw)
    }

    async fn stop(mut self) {
        drop(self.stop.take());
        let result = tokio::time::timeout(std::time::Duration::from_secs(15), self.task)
            .await
            .unwrap_or_else(|_| panic!("serve did not stop"));
        assert!(matches!(result, Ok(Ok(()))), "{result:?}");
    }
}

/// A response as it came over the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap_or_else(|e| panic!("not UTF-8: {e}"))
    }
}

fn this_year() -> i32 {
    ngayle::daemon::now().0.year()
}

/// The (start, summary) pairs of the occurrences `ngayle events` lists for the feed's years.
fn events_for_feed_years(project: &Project) -> BTreeSet<(String, String)> {
    let y = this_year();
    let r = project.run(&[
        "events",
        "--from",
        &format!("{}-01-01", y - 1),
        "--to",
        &format!("{}-12-31", y + 2),
        "--format",
        "tsv",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    r.stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            // The sixth column is the calendar title, what SUMMARY says.
            Some((f.first()?.replace('-', ""), f.get(5)?.to_string()))
        })
        .collect()
}

/// (DTSTART, SUMMARY) of every VEVENT, as the icalendar crate's parser reads them.
/// The (DTSTART, SUMMARY) of each commemoration of a feed, their number, and the number of
/// distinct UIDs; the official breaks and make-up working days (`tests/it/days_off.rs`) are
/// left out.
fn parsed_events(text: &str) -> (BTreeSet<(String, String)>, usize, usize) {
    use icalendar::{Calendar, Component};
    let cal: Calendar = text
        .parse()
        .unwrap_or_else(|e| panic!("icalendar parser: {e}"));
    let mut pairs = BTreeSet::new();
    let mut uids = BTreeSet::new();
    let mut n = 0;
    for ev in cal.events() {
        if crate::days_off::is_day_off(ev) {
            continue;
        }
        n += 1;
        let start = ev.property_value("DTSTART").unwrap_or_default().to_string();
        let summary = ev.property_value("SUMMARY").unwrap_or_default().to_string();
        pairs.insert((start, summary));
        uids.insert(ev.property_value("UID").unwrap_or_default().to_string());
    }
    (pairs, n, uids.len())
}

// Multi-threaded: the server keeps running (and holding its locks only briefly) while this
// thread waits for the `ngayle ics` process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_feed_on_the_wire_shipped_calendars() {
    let p = Project::shipped();
    let app = App::start(&p).await;
    let r = app.get("/calendar.ics", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/calendar; charset=utf-8")
    );
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(r.header("cache-control"), Some("public, max-age=3600"));
    let etag = r.header("etag").unwrap_or_default().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "{etag}"
    );
    let text = r.text();
    assert!(text.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
    }
    assert!(!text.replace("\r\n", "").contains('\n'), "bare LF");
    for needle in [
        "\r\nCALSCALE:GREGORIAN\r\n",
        "\r\nMETHOD:PUBLISH\r\n",
        "\r\nX-WR-TIMEZONE:Asia/Ho_Chi_Minh\r\n",
        "\r\nREFRESH-INTERVAL;VALUE=DURATION:PT6H\r\n",
        "\r\nX-PUBLISHED-TTL:PT6H\r\n",
        "\r\nX-WR-CALNAME:Trường Mầm non Hoa Phượng — Ngày lễ\\, kỷ niệm\r\n",
    ] {
        assert!(text.contains(needle), "{needle:?}");
    }
    let (pairs, n, uids) = parsed_events(&text);
    let expected = events_for_feed_years(&p);
    assert_eq!(n, expected.len());
    assert_eq!(uids, n, "UIDs are unique");
    assert_eq!(pairs, expected);
    // 7/5 is a DATE value with an exclusive end.
    let y = this_year();
    assert!(text.contains(&format!("DTSTART;VALUE=DATE:{y}0507\r\n")));
    assert!(text.contains(&format!("DTEND;VALUE=DATE:{y}0508\r\n")));

    // The same bytes from `ngayle ics` (same state), and again from the server.
    let cli = p.run(&["ics"]);
    assert_eq!(cli.code, Some(0), "{}", cli.stderr);
    assert_eq!(cli.stdout, text);
    let again = app.get("/calendar.ics", &[]).await;
    assert_eq!(again.body, r.body);
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn conditional_gzip_and_head() {
    let p = Project::shipped();
    let app = App::start(&p).await;
    let plain = app.get("/calendar.ics", &[]).await;
    let etag = plain.header("etag").unwrap_or_default().to_string();

    let cached = app
        .get("/calendar.ics", &[&format!("If-None-Match: {etag}")])
        .await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    let weak = app
        .get(
            "/calendar.ics",
            &[&format!("If-None-Match: \"x\", W/{etag}")],
        )
        .await;
    assert_eq!(weak.status, 304);
    let other = app.get("/calendar.ics", &["If-None-Match: \"0000\""]).await;
    assert_eq!(other.status, 200);

    let gz = app
        .get("/calendar.ics", &["Accept-Encoding: gzip, deflate"])
        .await;
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
    let gz_etag = gz.header("etag").unwrap_or_default().to_string();
    assert_ne!(gz_etag, etag, "another representation, another strong ETag");
    assert!(
        gz.body.len() * 3 < plain.body.len(),
        "{} vs {}",
        gz.body.len(),
        plain.body.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(gz.body.as_slice())
        .read_to_end(&mut unzipped)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unzipped, plain.body);
    let gz304 = app
        .get(
            "/calendar.ics",
            &[
                "Accept-Encoding: gzip",
                &format!("If-None-Match: {gz_etag}"),
            ],
        )
        .await;
    assert_eq!(gz304.status, 304);

    let head = app.request("HEAD", "/calendar.ics", &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD sends no body");
    assert_eq!(
        head.header("content-length"),
        Some(plain.body.len().to_string().as_str())
    );
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert_eq!(
        head.header("content-type"),
        Some("text/calendar; charset=utf-8")
    );
    app.stop().await;
}

/// `/calendar.ics` is answered on two paths (`http::App`): directly, and through the router
/// when the request has a body or a query that does not parse. Both answer alike, and the
/// router's body limit still holds.
#[tokio::test]
async fn the_full_feed_answers_alike_on_both_paths() {
    let p = Project::shipped();
    let app = App::start(&p).await;
    let direct = app.get("/calendar.ics", &[]).await;
    let routed = app
        .send("GET", "/calendar.ics", &["Content-Length: 5"], b"hello")
        .await;
    assert_eq!((direct.status, routed.status), (200, 200));
    assert!(direct.text().starts_with("BEGIN:VCALENDAR\r\n"));
    assert_eq!(routed.body, direct.body);
    let names = [
        "etag",
        "cache-control",
        "vary",
        "content-type",
        "content-length",
        "content-encoding",
    ];
    for name in names {
        assert_eq!(routed.header(name), direct.header(name), "{name}");
    }
    let etag = direct.header("etag").unwrap_or_default().to_string();
    let conditional = format!("If-None-Match: {etag}");
    let headers = ["Accept-Encoding: gzip", "Content-Length: 2"];
    let (direct_gz, routed_gz) = (
        app.get("/calendar.ics", &headers[..1]).await,
        app.send("GET", "/calendar.ics", &headers, b"{}").await,
    );
    assert_eq!(routed_gz.body, direct_gz.body);
    for name in names {
        assert_eq!(routed_gz.header(name), direct_gz.header(name), "{name}");
    }
    assert_eq!(direct_gz.header("content-encoding"), Some("gzip"));
    let routed_304 = app
        .send(
            "GET",
            "/calendar.ics",
            &[&conditional, "Content-Length: 1"],
            b"x",
        )
        .await;
    assert_eq!(routed_304.status, 304);
    assert_eq!(app.get("/calendar.ics", &[&conditional]).await.status, 304);
    let too_big = app
        .send(
            "GET",
            "/calendar.ics",
            &["Content-Length: 2048"],
            &[b'x'; 2048],
        )
        .await;
    assert_eq!(too_big.status, 413, "the router's body limit");
    let twice = app.get("/calendar.ics?token=a&token=b", &[]).await;
    assert_eq!(twice.status, 400, "a query that does not parse");
    app.stop().await;
}

/// A group feed's first request may ask for gzip: the feed is rendered and then gzipped (both
/// off the async workers) before the answer, which unzips to the plain feed; the gzip `304`
/// and the plain answer follow from memory.
#[tokio::test]
async fn a_group_feeds_first_request_can_ask_for_gzip() {
    let p = Project::shipped();
    let app = App::start(&p).await;
    let gz = app
        .get("/calendar/csvc.ics", &["Accept-Encoding: gzip"])
        .await;
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(gz.body.as_slice())
        .read_to_end(&mut unzipped)
        .unwrap_or_else(|e| panic!("{e}"));
    let plain = app.get("/calendar/csvc.ics", &[]).await;
    assert_eq!(plain.status, 200);
    assert_eq!(unzipped, plain.body);
    let gz_etag = gz.header("etag").unwrap_or_default().to_string();
    assert!(gz_etag.ends_with("-gz\""), "{gz_etag}");
    let again = app
        .get(
            "/calendar/csvc.ics",
            &[
                "Accept-Encoding: gzip",
                &format!("If-None-Match: {gz_etag}"),
            ],
        )
        .await;
    assert_eq!(again.status, 304);
    app.stop().await;
}

#[tokio::test]
async fn group_feeds_and_not_found_shipped_calendars() {
    let p = Project::shipped();
    let app = App::start(&p).await;
    let full = app.get("/calendar.ics", &[]).await.text();
    let csvc = app.get("/calendar/csvc.ics", &[]).await;
    assert_eq!(csvc.status, 200);
    let text = csvc.text();
    let unfolded = text.replace("\r\n ", "");
    assert!(
        unfolded.contains("X-WR-CALNAME:Trường Mầm non Hoa Phượng — Bộ phận cơ sở vật chất\r\n")
    );
    let (pairs, n, _) = parsed_events(&text);
    let (all, _, _) = parsed_events(&full);
    assert!(n > 0 && pairs.is_subset(&all));
    assert!(text.matches("BEGIN:VALARM\r\nACTION:DISPLAY\r\n").count() >= n);
    assert!(
        !unfolded.contains("Đăng tin bài trên trang Web trường —"),
        "not a CSVC task"
    );
    for target in [
        "/calendar/khong-co.ics",
        "/calendar/csvc",
        "/calendar/csvc.ics.bak",
        "/khac",
        "/calendar.ics/x",
    ] {
        let r = app.get(target, &[]).await;
        assert_eq!(r.status, 404, "{target}");
    }
    let post = app
        .request("POST", "/calendar.ics", &["Content-Length: 0"])
        .await;
    assert_eq!(post.status, 405);
    let health = app.get("/healthz", &[]).await;
    assert_eq!(health.status, 200);
    let json: serde_json::Value =
        serde_json::from_slice(&health.body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["status"], "ok", "{json}");
    assert_eq!(json["store_reachable"], true);
    assert_eq!(json["scheduler_running"], true);
    assert_eq!(json["last_reload_error"], serde_json::Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn the_feed_token_shipped_calendars() {
    let p = Project::shipped();
    p.edit(
        "config/ngayle.yaml",
        "  public_url:",
        "  feed_token: 3f9c2a7e51d04b8c9e6f\n  public_url:",
    );
    let app = App::start(&p).await;
    for target in [
        "/calendar.ics",
        "/calendar.ics?token=",
        "/calendar.ics?token=3f9c2a7e51d04b8c9e6g",
        "/calendar.ics?token=3f9c2a7e51d04b8c9e6",
        "/calendar/csvc.ics",
        "/calendar/csvc.ics?token=wrong",
    ] {
        let r = app.get(target, &[]).await;
        assert_eq!(r.status, 404, "{target}");
        assert_eq!(r.text(), "Không tìm thấy.\n");
    }
    let ok = app
        .get("/calendar.ics?token=3f9c2a7e51d04b8c9e6f", &[])
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("cache-control"), Some("private, max-age=3600"));
    assert_eq!(
        app.get("/calendar/csvc.ics?token=3f9c2a7e51d04b8c9e6f", &[])
            .await
            .status,
        200
    );
    assert_eq!(app.get("/healthz", &[]).await.status, 200);
    app.stop().await;
}

/// `raw` as it is, on a fresh connection, and what came back (within 30 s).
async fn exchange_raw(addr: SocketAddr, raw: &str) -> Reply {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        stream
            .write_all(raw.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut back = Vec::new();
        stream
            .read_to_end(&mut back)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Reply::parse(&back)
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer to {raw:?} within 30 s"))
}

#[tokio::test]
async fn http11_without_a_host_or_with_two_is_refused_with_400() {
    let p = Project::shipped();
    let app = App::start(&p).await;
    // The feed (answered before the router), a route and a path that is not there.
    for target in ["/calendar.ics", "/healthz", "/nowhere"] {
        for (headers, want) in [
            ("", 400),
            ("Host: a\r\nHost: b\r\n", 400),
            ("Host: a\r\nHost: a\r\n", 400),
        ] {
            let raw = format!("GET {target} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n");
            let reply = exchange_raw(app.addr, &raw).await;
            assert_eq!(reply.status, want, "{raw:?}: {}", reply.text());
        }
        let one = format!("GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        assert_ne!(exchange_raw(app.addr, &one).await.status, 400, "{one:?}");
    }
    // HTTP/1.0 has no Host requirement.
    let reply = exchange_raw(app.addr, "GET /calendar.ics HTTP/1.0\r\n\r\n").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = exchange_raw(
        app.addr,
        "HEAD /calendar.ics HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 400);
    app.stop().await;
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let p = Project::shipped();
    let app = App::start(&p).await;
    let big = format!("X-Junk: {}", "a".repeat(64 * 1024));
    let mut stream = TcpStream::connect(app.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let req = format!("GET /calendar.ics HTTP/1.1\r\nHost: x\r\n{big}\r\n\r\n");
    let _ = stream.write_all(req.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let reply = String::from_utf8_lossy(&raw);
    assert!(
        reply.starts_with("HTTP/1.1 431") || raw.is_empty(),
        "{reply}"
    );
    // The server is still there.
    assert_eq!(app.get("/healthz", &[]).await.status, 200);
    app.stop().await;
}

/// The real binary as a child process (`support::serve::Serve`, on a port it binds itself).
#[test]
fn the_binary_logs_no_token_and_stops_on_sigterm() {
    let p = Project::shipped();
    let token = "7d1e5b0c9a8f4e2d6c3b";
    p.edit(
        "config/ngayle.yaml",
        "  public_url:",
        &format!("  feed_token: {token}\n  public_url:"),
    );
    // At debug level; every NGAYLE_* variable of the caller (NGAYLE_LOG_FORMAT too) removed.
    let serve = Serve::start_env(&p, &[], &[("RUST_LOG", "debug")]);
    assert_eq!(serve.get(&format!("/calendar.ics?token={token}")).0, 200);
    assert_eq!(serve.get("/calendar.ics?token=wrong-token-xyz").0, 404);
    let log_path = serve.log.clone();
    let (code, _) = serve.terminate();
    let log = std::fs::read_to_string(&log_path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, Some(0), "{log}");
    // Both answers are logged, by path and status (the start-up line names the path too).
    for status in ["status=200", "status=404"] {
        assert!(
            log.lines()
                .any(|l| l.contains("path=\"/calendar.ics\"") && l.contains(status)),
            "requests are logged ({status}): {log}"
        );
    }
    assert!(
        !log.contains(token) && !log.contains("wrong-token-xyz"),
        "a token in the log: {log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal"
    );
    assert!(log.contains("SIGTERM"), "{log}");
}
