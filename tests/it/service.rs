//! `ngayle serve` as a service: hot reload (file watch and SIGHUP), a broken edit that keeps the
//! last good schedule, SIGTERM during a burst of emails, and `/metrics` read by a Prometheus
//! text-format parser. The binary runs as a child process (`support::serve::Serve`, on a port it
//! binds itself), signalled with `kill`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::serve::Serve;
use crate::support::smtp::SmtpServer;
use crate::support::{CONFIG, Project, minimal, wait_until};

/// Generous bound for things that should take well under a second.
const WAIT: Duration = Duration::from_secs(20);

/// Saves a file the way editors do: a temporary file renamed over the old one.
fn save(p: &Project, rel: &str, text: &str) {
    let path = p.path().join(rel);
    let tmp = path.with_extension("yaml.tmp~");
    std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(&tmp, &path).unwrap_or_else(|e| panic!("{e}"));
}

const LAYER: &str = "name: Thử\nevents:\n  - id: giai-phong\n    name: Ngày Giải phóng miền Nam\n    date: 30/4\n    tasks: [treo-co]\n";
/// The same file with a mistake on line 5, column 11 (`31/2`).
const BROKEN: &str = "name: Thử\nevents:\n  - id: giai-phong\n    name: Ngày Thống nhất\n    date: 31/2\n    tasks: [treo-co]\n";

/// What the reload tests check, whatever wakes the reload (`reload`).
fn reload_scenario(p: &Project, serve: &Serve, reload: &dyn Fn(), watch: bool) {
    let (code, before) = serve.get("/calendar.ics");
    assert_eq!(code, 200);
    assert!(before.contains("Ngày Giải phóng miền Nam"), "{before}");
    let version = serve.health()["schedule_version"].clone();

    // 1. An edit: the feed changes (within 2 s of the save when watching).
    save(
        p,
        "calendars/national.yaml",
        &LAYER.replace("Ngày Giải phóng miền Nam", "Ngày Thống nhất đất nước"),
    );
    let saved = Instant::now();
    if !watch {
        let (_, body) = serve.get("/calendar.ics");
        assert!(
            body.contains("Ngày Giải phóng miền Nam"),
            "reloaded without SIGHUP"
        );
    }
    reload();
    let changed = serve.until(WAIT, || {
        let (_, body) = serve.get("/calendar.ics");
        body.contains("Ngày Thống nhất đất nước").then_some(body)
    });
    let elapsed = saved.elapsed();
    let good = changed.unwrap_or_else(|| panic!("the feed did not change:\n{}", serve.log()));
    if watch {
        assert!(
            elapsed <= Duration::from_secs(2),
            "the feed changed {elapsed:?} after the save"
        );
    } else {
        // Not watching, the save woke nothing: had it woken a reload, that reload would have
        // come before the one SIGHUP asked for (the signal waits for it), and the feed that
        // changed above would be its doing, logged with the reason "tệp thay đổi".
        let log = serve.log();
        assert!(
            reload_lines(&log).iter().all(|l| l.contains(BY_SIGHUP)),
            "reloaded without SIGHUP:\n{log}"
        );
    }
    let health = serve.health();
    assert_eq!(health["status"], "ok", "{health}");
    assert_ne!(health["schedule_version"], version);
    let version = health["schedule_version"].clone();

    // 2. A broken edit: the last good schedule stays, /healthz says where the mistake is.
    save(p, "calendars/national.yaml", BROKEN);
    reload();
    let health = serve
        .until(WAIT, || {
            let h = serve.health();
            (!h["last_reload_error"].is_null()).then_some(h)
        })
        .unwrap_or_else(|| panic!("no reload error reported:\n{}", serve.log()));
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        health["schedule_version"], version,
        "the old schedule stays"
    );
    let diagnostics = health["last_reload_error"]["diagnostics"].to_string();
    assert!(
        diagnostics.contains("calendars/national.yaml:5:11: error"),
        "{diagnostics}"
    );
    let (_, body) = serve.get("/calendar.ics");
    assert_eq!(body, good, "the feed is the last good one");
    assert!(
        serve.log().contains("national.yaml:5:11"),
        "{}",
        serve.log()
    );
    let (_, metrics) = serve.get("/metrics");
    assert_eq!(
        sample(&metrics, "ngayle_reload_errors_total", &[]),
        Some(1.0)
    );
    assert_eq!(sample(&metrics, "ngayle_reloads_total", &[]), Some(1.0));

    // 3. Fixed: healthy again, the fixed schedule served.
    save(
        p,
        "calendars/national.yaml",
        &BROKEN.replace("31/2", "30/4"),
    );
    reload();
    let health = serve
        .until(WAIT, || {
            let h = serve.health();
            (h["status"] == "ok").then_some(h)
        })
        .unwrap_or_else(|| panic!("not healthy after the fix:\n{}", serve.log()));
    assert!(health["last_reload_error"].is_null(), "{health}");
    let (_, body) = serve.get("/calendar.ics");
    assert!(body.contains("Ngày Thống nhất"), "{body}");
    let (_, metrics) = serve.get("/metrics");
    assert_eq!(sample(&metrics, "ngayle_reloads_total", &[]), Some(2.0));
}

/// What a reload woken by SIGHUP logs (a file change logs `reason="tệp thay đổi"`).
const BY_SIGHUP: &str = "reason=\"SIGHUP\"";

/// The lines of a log that end a reload: the schedule swapped, unchanged, or refused.
fn reload_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            ["đã nạp lại lịch", "lịch không đổi", "không nạp lại"]
                .iter()
                .any(|m| l.contains(m))
        })
        .collect()
}

/// Sends SIGHUP and waits for the reload it asks for to be logged. The reloader handles one
/// wake at a time, and a file event reaches it as soon as the watcher sees it (the reload then
/// waits for the folders to settle, and the signal waits for that reload): whatever a file
/// event woke before the signal is in the log when this returns. A barrier, not a timing.
fn hangup_and_wait(serve: &Serve) {
    let by_sighup = || {
        reload_lines(&serve.log())
            .iter()
            .filter(|l| l.contains(BY_SIGHUP))
            .count()
    };
    let before = by_sighup();
    serve.signal("HUP");
    serve
        .until(WAIT, || (by_sighup() > before).then_some(()))
        .unwrap_or_else(|| panic!("no reload logged for SIGHUP:\n{}", serve.log()));
}

#[test]
fn an_edit_reloads_the_feed_and_a_broken_one_keeps_the_last_good() {
    let p = minimal(&[("calendars/national.yaml", LAYER)]);
    let serve = Serve::start(&p, &[]);
    // Reading is not changing: someone (a backup, `cat`) reads a calendar — nothing reloads.
    // (notify reports opens; counting them once made each reload, which opens every file,
    // start the next: a reload every 300 ms for ever.) A first SIGHUP answered means the
    // reloader, and so its watcher, is running; a second one after the read comes after any
    // reload the read woke.
    hangup_and_wait(&serve);
    let text = std::fs::read_to_string(p.path().join("calendars/national.yaml"));
    assert!(text.is_ok_and(|t| t == LAYER));
    hangup_and_wait(&serve);
    let log = serve.log();
    assert!(
        reload_lines(&log).iter().all(|l| l.contains(BY_SIGHUP)),
        "an idle service reloaded:\n{log}"
    );
    reload_scenario(&p, &serve, &|| {}, true);
    // Each of the three edits changed the schedule, and each reload opened every file: a
    // reload woken by anything else says "unchanged". The SIGHUP comes after all of them.
    hangup_and_wait(&serve);
    let log = serve.log();
    assert!(
        !reload_lines(&log)
            .iter()
            .any(|l| l.contains("lịch không đổi") && !l.contains(BY_SIGHUP)),
        "a reload that no edit asked for:\n{log}"
    );
    let (code, took) = serve.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn sighup_reloads_when_files_are_not_watched() {
    let p = minimal(&[("calendars/national.yaml", LAYER)]);
    let serve = Serve::start(&p, &["--no-watch"]);
    reload_scenario(&p, &serve, &|| serve.signal("HUP"), false);
    // A SIGHUP with nothing changed says so (the admin sees the signal arrived).
    let unchanged = || serve.log().matches("lịch không đổi").count();
    let before = unchanged();
    serve.signal("HUP");
    serve
        .until(WAIT, || (unchanged() > before).then_some(()))
        .unwrap_or_else(|| panic!("no log line for an unchanged reload:\n{}", serve.log()));
    // That last SIGHUP came after every save of the scenario: none of them woke a reload.
    let log = serve.log();
    assert!(
        reload_lines(&log).iter().all(|l| l.contains(BY_SIGHUP)),
        "reloaded without SIGHUP:\n{log}"
    );
    let (code, _) = serve.terminate();
    assert_eq!(code, Some(0));
}

/// One sample's value from a scrape (`labels` must all match).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap_or_else(|e| panic!("{e}: {text}"));
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == *v))
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn metrics_parse_and_count_feed_requests_and_304s() {
    let p = minimal(&[("calendars/national.yaml", LAYER)]);
    let serve = Serve::start(&p, &["--no-watch"]);
    assert_eq!(serve.get("/metrics").0, 200);
    // The first tick runs beside the server: wait for it to be counted.
    let text = serve
        .until(WAIT, || {
            let (_, text) = serve.get("/metrics");
            sample(&text, "ngayle_ticks_total", &[])
                .is_some_and(|n| n >= 1.0)
                .then_some(text)
        })
        .unwrap_or_else(|| panic!("no tick counted:\n{}", serve.log()));
    let version = serve.health()["schedule_version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        sample(&text, "ngayle_schedule_info", &[("version", &version)]),
        Some(1.0),
        "{text}"
    );
    for status in ["pending", "sending", "sent", "failed", "skipped"] {
        assert!(
            sample(&text, "ngayle_reminders", &[("status", status)]).is_some(),
            "{status}: {text}"
        );
    }
    assert!(
        sample(&text, "ngayle_ticks_total", &[]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(sample(&text, "ngayle_last_tick_timestamp_seconds", &[]).is_some_and(|t| t > 1.7e9));
    let requests = |text: &str| sample(text, "ngayle_feed_requests_total", &[("feed", "all")]);
    let not_modified =
        |text: &str| sample(text, "ngayle_feed_not_modified_total", &[("feed", "all")]);
    // The series are there from the start, at 0 (so that `rate()` sees the first requests).
    assert_eq!(requests(&text), Some(0.0), "no request yet: {text}");
    assert_eq!(not_modified(&text), Some(0.0), "{text}");

    // Two full answers, then a 304 for the ETag.
    let mut etag = String::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap_or_else(|e| panic!("{e}"));
        write!(
            s,
            "GET /calendar.ics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap_or_else(|e| panic!("{e}"));
        etag = raw
            .lines()
            .find_map(|l| {
                l.strip_prefix("etag: ")
                    .or_else(|| l.strip_prefix("ETag: "))
            })
            .unwrap_or_default()
            .to_string();
    }
    assert!(!etag.is_empty());
    let mut s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap_or_else(|e| panic!("{e}"));
    write!(
        s,
        "GET /calendar.ics HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap_or_else(|e| panic!("{e}"));
    assert!(raw.starts_with("HTTP/1.1 304"), "{raw}");
    let (_, group) = serve.get("/calendar/csvc.ics");
    assert!(group.contains("BEGIN:VCALENDAR"));

    let (_, text) = serve.get("/metrics");
    assert_eq!(requests(&text), Some(3.0), "{text}");
    assert_eq!(not_modified(&text), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "ngayle_feed_requests_total", &[("feed", "group")]),
        Some(1.0)
    );
}

/// A project whose `n` reminders are all due today at 00:00 (Vietnam), every day a workday, so
/// that `serve`'s first tick (at the real clock) sends them at once.
pub(crate) fn due_now(n: usize, smtp: &str) -> Project {
    let today = ngayle::vietnam::today(chrono::Utc::now());
    let mut staff = String::from("groups:\n  - id: gv\n    name: Giáo viên\npeople:\n");
    for i in 0..n {
        staff.push_str(&format!(
            "  - id: p{i:04}\n    name: Người {i}\n    email: p{i:04}@example.org\n    groups: [gv]\n"
        ));
    }
    // Due today at 00:00, its deadline tomorrow: not past when the tests run.
    let tasks = "tasks:\n  - id: bao-cao\n    title: Báo cáo\n    do: Gửi báo cáo.\n    due: +1d\n    remind: [1d]\n    at: \"00:00\"\n    who: [gv]\n";
    let layer = format!(
        "events:\n  - id: ngay-thu\n    name: Ngày thử\n    date: {}\n    tasks: [bao-cao]\n",
        today.format("%-d/%-m")
    );
    let config = format!(
        "{CONFIG}mail:\n  from: \"Trường <nhacviec@example.org>\"\n  smtp: {smtp}\nreminders:\n  workdays: [mon, tue, wed, thu, fri, sat, sun]\nshutdown_grace: 5s\n"
    );
    let p = minimal(&[
        ("config/ngayle.yaml", &config),
        ("config/staff.yaml", &staff),
        ("calendars/tasks.yaml", tasks),
        ("calendars/national.yaml", &layer),
    ]);
    // The store began before today's 00:00 reminders fell due (else they would be "before
    // the store began", not sent).
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    p.start_store(&yesterday.to_rfc3339());
    p
}

#[test]
fn sigterm_during_a_burst_exits_0_in_the_grace_period_and_loses_nothing() {
    const N: usize = 300;
    let server = SmtpServer::start();
    server.set_delay(Duration::from_millis(10));
    let p = due_now(N, &server.url());
    let serve = Serve::start(&p, &["--no-watch"]);
    let started = wait_until(WAIT, || (server.received().len() >= 40).then_some(()));
    assert!(
        started.is_some(),
        "the burst did not start:\n{}",
        serve.log()
    );
    let log = serve.log.clone();
    let (code, took) = serve.terminate();
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        took < Duration::from_secs(5),
        "stopped after {took:?} (grace 5 s)"
    );
    let sent_before = server.received().len();
    assert!(
        sent_before < N,
        "the burst ended before SIGTERM: the test would prove nothing"
    );

    // Restart: the rest goes out, nothing twice (beyond the one in flight).
    let serve = Serve::start(&p, &["--no-watch"]);
    let mut per_person: BTreeMap<String, usize> = BTreeMap::new();
    let all = serve.until(WAIT * 2, || {
        per_person.clear();
        for m in server.received() {
            for to in &m.to {
                *per_person.entry(to.clone()).or_default() += 1;
            }
        }
        (per_person.len() == N).then_some(())
    });
    assert!(
        all.is_some(),
        "{} of {N} arrived:\n{}",
        per_person.len(),
        serve.log()
    );
    let duplicates: usize = per_person.values().map(|n| n - 1).sum();
    assert!(duplicates <= 1, "{duplicates} duplicates");
    let (code, _) = serve.terminate();
    assert_eq!(code, Some(0));
    // Both services have exited: once their connections are closed nothing more can arrive,
    // so a duplicate sent late is counted too.
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    let mut late: BTreeMap<String, usize> = BTreeMap::new();
    for m in server.received() {
        for to in &m.to {
            *late.entry(to.clone()).or_default() += 1;
        }
    }
    let duplicates: usize = late.values().map(|n| n - 1).sum();
    assert_eq!(late.len(), N);
    assert!(
        duplicates <= 1,
        "{duplicates} duplicates once both had stopped"
    );
}

#[test]
fn environment_variables_override_the_config_and_name_themselves_in_errors() {
    let p = minimal(&[]);
    let r = crate::support::ngayle_env(
        p.path(),
        &["check"],
        &[
            ("NGAYLE_LISTEN", "nowhere"),
            ("NGAYLE_FEED_TOKEN", "ngan"),
            ("NGAYLE_MAX_CONNECTIONS", "0"),
        ],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("$NGAYLE_LISTEN:1:1: lỗi"), "{}", r.stderr);
    assert!(
        r.stderr.contains("$NGAYLE_FEED_TOKEN:1:1: lỗi"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("$NGAYLE_MAX_CONNECTIONS:1:1: lỗi"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("ngan\n"),
        "a secret is not shown: {}",
        r.stderr
    );

    // A token from a file makes the feeds private.
    let token_file = p.path().join("token");
    let token = "0123456789abcdef0123";
    std::fs::write(&token_file, format!("{token}\n")).unwrap_or_else(|e| panic!("{e}"));
    let path = token_file.to_str().unwrap_or_default();
    let serve = Serve::start_env(&p, &["--no-watch"], &[("NGAYLE_FEED_TOKEN_FILE", path)]);
    assert_eq!(serve.get("/calendar.ics").0, 404);
    assert_eq!(serve.get(&format!("/calendar.ics?token={token}")).0, 200);
    assert!(!serve.log().contains(token), "{}", serve.log());
    let (code, _) = serve.terminate();
    assert_eq!(code, Some(0));
}

/// A bad save that cut a layer to a third was accepted silently (issue 13, item 7): the new
/// schedule is served, and `/healthz` and the log say which file lost how many events.
#[test]
fn a_layer_cut_to_a_third_is_served_with_a_warning() {
    let event =
        |i: usize| format!("  - id: ngay-{i}\n    name: Ngày thử số {i}\n    date: {i}/5\n");
    let full: String = std::iter::once("name: Thử\nevents:\n".to_string())
        .chain((1..=9).map(event))
        .collect();
    let p = minimal(&[("calendars/national.yaml", &full)]);
    let serve = Serve::start(&p, &[]);
    let health = serve.health();
    assert!(health["last_reload_warning"].is_null(), "{health}");

    // Cut after the third event, at a comment, as a save interrupted half-way would.
    let cut: String = std::iter::once("name: Thử\nevents:\n".to_string())
        .chain((1..=3).map(event))
        .chain(std::iter::once("  # ngày 4".to_string()))
        .collect();
    save(&p, "calendars/national.yaml", &cut);
    let body = serve
        .until(WAIT, || {
            let (_, body) = serve.get("/calendar.ics");
            (!body.contains("Ngày thử số 4")).then_some(body)
        })
        .unwrap_or_else(|| panic!("the cut file was not served:\n{}", serve.log()));
    assert!(body.contains("Ngày thử số 3"), "{body}");
    let health = serve.health();
    let warning = &health["last_reload_warning"];
    assert_eq!(
        warning["files"],
        serde_json::json!([{"path": "calendars/national.yaml", "before": 9, "after": 3}]),
        "{health}"
    );
    assert_eq!(
        health["status"], "ok",
        "a warning is not a failure: {health}"
    );
    let log = serve.log();
    assert!(
        log.lines().any(|l| l.contains("cảnh báo:")
            && l.contains("calendars/national.yaml")
            && l.contains("9 → 3")),
        "{log}"
    );

    // Growing back clears it.
    save(&p, "calendars/national.yaml", &full);
    serve
        .until(WAIT, || {
            serve.health()["last_reload_warning"]
                .is_null()
                .then_some(())
        })
        .unwrap_or_else(|| panic!("the warning stayed:\n{}", serve.log()));
    let (code, _) = serve.terminate();
    assert_eq!(code, Some(0));
}

/// Idle connections the test holds open: more than systemd's default 1,024 descriptors.
const IDLE: usize = 2_000;
/// Normal clients that must be served meanwhile.
const CLIENTS: usize = 20;

/// RLIMIT_NOFILE of this test process, raised to its hard limit if that is needed to hold the
/// idle connections; returns the hard limit (what a child may get at most).
fn enough_descriptors_here(need: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the struct passed to them.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    assert!(ok, "getrlimit: {}", std::io::Error::last_os_error());
    if lim.rlim_cur < need {
        lim.rlim_cur = lim.rlim_max;
        let ok = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0;
        assert!(
            ok && lim.rlim_cur >= need,
            "this test needs {need} descriptors, the hard limit is {}",
            lim.rlim_max
        );
    }
    lim.rlim_max
}

/// One complete `GET /calendar.ics` on a fresh connection: the status and whether the body
/// has the length announced. `None` when nothing (or no complete head) came back within
/// `limit`.
fn full_get(port: u16, limit: Duration) -> Option<(u16, bool)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, limit).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    s.set_write_timeout(Some(limit)).ok()?;
    s.write_all(b"GET /calendar.ics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    Some((status, raw.len() - split - 4 == length && length > 0))
}

/// How many sockets process `pid` has open (Linux: its descriptors that are sockets).
fn server_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(usize::MAX)
}

#[test]
fn idle_connections_beyond_the_descriptor_limit_do_not_starve_normal_clients() {
    let hard = enough_descriptors_here(IDLE as u64 + 200);
    let cap = 512;
    let p = minimal(&[("calendars/national.yaml", LAYER)]);
    // The unit's limit (or this machine's hard limit if that is lower: only a privileged
    // process may raise it, and either is well above the idle connections), and systemd's
    // default, where a drop-in or another supervisor leaves it.
    let unit = crate::deploy::limit_nofile();
    if unit > hard {
        eprintln!("LimitNOFILE={unit} of the unit is over this machine's hard limit: {hard}");
    }
    for nofile in BTreeSet::from([unit.min(hard), 1024]) {
        let serve = Serve::start_limited(&p, &["--no-watch"], &[], Some(nofile));
        // Connects that do not wait for the handshake: a server that does not accept leaves
        // them in its backlog or unanswered, as a client elsewhere would be, and the test goes
        // on at once.
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], serve.port));
        let idle: Vec<TcpStream> = (0..IDLE)
            .map(|i| {
                let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .and_then(|s| s.set_nonblocking(true).map(|()| s))
                    .unwrap_or_else(|e| panic!("idle connection {i}: {e}"));
                match s.connect(&addr.into()) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                    Err(e) => panic!("idle connection {i}: {e}"),
                }
                TcpStream::from(s)
            })
            .collect();
        // Half send nothing; the other half (those connected by now) a request line and a
        // header, but never the blank line that ends a request.
        for mut s in idle.iter().skip(1).step_by(2) {
            let _ = s.write(b"GET /calendar.ics HTTP/1.1\r\nHost: localhost\r\n");
        }
        // Below the server's 10 s header timeout, after which the idle connections would go by
        // themselves: a client must not have to wait for that.
        let limit = Duration::from_secs(5);
        let answers: Vec<Option<(u16, bool)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..CLIENTS)
                .map(|_| scope.spawn(|| full_get(serve.port, limit)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().ok().flatten())
                .collect()
        });
        assert_eq!(
            answers,
            vec![Some((200, true)); CLIENTS],
            "RLIMIT_NOFILE {nofile}: every normal client gets the whole feed\n{}",
            serve.log()
        );
        // The service sheds idle connections to stay under its cap: it never holds more than
        // `cap` of them (counted as the process's socket descriptors: the listener and the
        // connections). Counting the test's own sockets that look open would also count the
        // ones the kernel has not handed to the service yet — with a full accept queue it drops
        // the handshake's last ACK and retries its SYN-ACK for up to a minute, while the
        // client side already says "connected" — which made this check flaky.
        let sockets = || server_sockets(serve.child.id());
        let most = serve.until(WAIT, || (sockets() <= cap + 1).then_some(()));
        assert!(
            most.is_some(),
            "RLIMIT_NOFILE {nofile}: the service holds {} sockets, more than the cap {cap} + its listener",
            sockets()
        );

        drop(idle);
        assert_eq!(serve.get("/healthz").0, 200);
        let (code, _) = serve.terminate();
        assert_eq!(code, Some(0), "RLIMIT_NOFILE {nofile}");
    }
}

/// tokio-cron-scheduler logs in English at INFO ("Job creator created" when it starts): those
/// lines are filtered out of the admin's log, while the service's own INFO lines — from start
/// to "đã dừng" after the scheduler was shut down — are there.
#[test]
fn the_schedulers_info_lines_stay_out_of_the_log() {
    let p = minimal(&[("calendars/national.yaml", LAYER)]);
    let serve = Serve::start(&p, &["--no-watch"]);
    serve
        .until(WAIT, || {
            serve.health()["last_tick"].is_string().then_some(())
        })
        .unwrap_or_else(|| panic!("no tick:\n{}", serve.log()));
    let path = serve.log.clone();
    let (code, _) = serve.terminate();
    let log = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("ngayle đang chạy") && log.contains("đã dừng"),
        "the service's INFO lines are missing:\n{log}"
    );
    assert!(
        !log.contains("tokio_cron_scheduler") && !log.contains("Job creator"),
        "the scheduler's INFO lines reached the log:\n{log}"
    );
}

/// A first start on an empty database, on the shipped calendars: no line per reminder that fell
/// due before the service existed, and every line the admin sees is in Vietnamese (time in
/// +07:00, a Vietnamese level, no third-party English, no request lines at `info`).
#[test]
fn a_first_start_on_an_empty_database_is_quiet_and_vietnamese_shipped_calendars() {
    let p = Project::shipped();
    let serve = Serve::start(&p, &["--no-watch"]);
    let _ = serve.get("/calendar.ics");
    let summary = serve.until(WAIT, || {
        serve
            .log()
            .lines()
            .find(|l| l.contains("trước khi ngayle bắt đầu chạy"))
            .map(str::to_string)
    });
    let log = serve.log();
    let (code, _) = serve.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(summary.is_some(), "one summary line: {log}");
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() <= 8, "a short first screen: {log}");
    for line in &lines {
        let (time, rest) = line.split_once(' ').unwrap_or_default();
        assert!(time.ends_with("+07:00"), "{line}");
        assert!(
            ["tin: ", "cảnh báo: ", "lỗi: "]
                .iter()
                .any(|l| rest.starts_with(l)),
            "{line}"
        );
        for english in [
            "Uninited",
            "Job creator",
            "request",
            "INFO",
            "WARN",
            "ngayle::",
        ] {
            assert!(!line.contains(english), "{line}");
        }
        assert!(!line.contains("reminder="), "no line per reminder: {line}");
    }
}
