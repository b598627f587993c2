//! The promises under faults (issue 13): several processes on one state file, a full disk, a
//! stalled or slow mail server, secrets at `trace`, file modes under umask 022, reminders left
//! pending for ever, a state file deleted or replaced while the service runs. Each test
//! reproduces a defect that was measured before its fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ngayle::store::{ReminderStatus, Store};

use crate::reminders::burst;
use crate::service::due_now;
use crate::support::serve::Serve;
use crate::support::smtp::{ClosedPort, SmtpServer};
use crate::support::{Project, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// How many messages each envelope recipient got.
fn per_recipient(server: &SmtpServer) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in server.received() {
        for to in &m.to {
            *out.entry(to.clone()).or_default() += 1;
        }
    }
    out
}

/// `ngayle ARGS` in the project, started (not waited for), its stderr in `log`.
fn spawn(p: &Project, args: &[&str], log: &Path, env: &[(&str, &str)]) -> Child {
    let file = std::fs::File::create(log).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ngayle"));
    cmd.current_dir(p.path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(file);
    for (k, _) in std::env::vars() {
        if k.starts_with("NGAYLE_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.spawn().unwrap_or_else(|e| panic!("{e}"))
}

/// Waits for a child, killing it after `limit`: its exit code, or `None` if it had to be killed.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<i32> {
    match wait_until(limit, || child.try_wait().unwrap_or_else(|e| panic!("{e}"))) {
        Some(status) => status.code(),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

fn state_counts(p: &Project) -> BTreeMap<ReminderStatus, i64> {
    let path = p.path().join("var/ngayle.sqlite");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .block_on(async {
            let store = Store::open(&path).await.unwrap_or_else(|e| panic!("{e}"));
            store.counts().await.unwrap_or_else(|e| panic!("{e}"))
        })
}

#[test]
fn two_and_three_send_due_processes_on_one_fresh_state_file_send_each_reminder_once() {
    const N: usize = 120;
    let now = "2026-06-01T08:00:00+07:00";
    for procs in [2, 3] {
        for round in 0..5 {
            let server = SmtpServer::start();
            server.set_delay(Duration::from_millis(1));
            // A fresh project each round: the processes also race to create the database.
            let p = burst(N, &server.url());
            let mut children: Vec<(Child, PathBuf)> = (0..procs)
                .map(|i| {
                    let log = p.path().join(format!("send-due-{i}.log"));
                    (spawn(&p, &["send-due", "--now", now], &log, &[]), log)
                })
                .collect();
            for (child, log) in &mut children {
                let code = wait_bounded(child, WAIT);
                let text = std::fs::read_to_string(&*log).unwrap_or_default();
                assert_eq!(code, Some(0), "{procs} processes, round {round}:\n{text}");
            }
            // All have exited: once their connections are closed, nothing more can arrive.
            assert!(server.wait_idle(WAIT), "a connection stayed open");
            let got = per_recipient(&server);
            assert_eq!(
                got.len(),
                N,
                "{procs} processes, round {round}: every reminder"
            );
            let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
            assert!(
                twice.is_empty(),
                "{procs} processes, round {round}: {} sent more than once, e.g. {:?}",
                twice.len(),
                twice.first()
            );
            let counts = state_counts(&p);
            assert_eq!(counts[&ReminderStatus::Sent], N as i64, "{counts:?}");
        }
    }
}

#[test]
fn two_serves_and_a_send_due_on_one_state_file_send_each_reminder_once() {
    const N: usize = 150;
    let server = SmtpServer::start();
    server.set_delay(Duration::from_millis(3));
    let p = due_now(N, &server.url());
    let a = Serve::start(&p, &["--no-watch"]);
    let b = Serve::start(&p, &["--no-watch"]);
    let now = chrono::Utc::now().to_rfc3339();
    let log = p.path().join("send-due.log");
    let mut hand = spawn(&p, &["send-due", "--now", &now], &log, &[]);
    let code = wait_bounded(&mut hand, WAIT);
    assert_eq!(
        code,
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let all = a.until(WAIT, || (per_recipient(&server).len() == N).then_some(()));
    assert!(all.is_some(), "{}\n{}", a.log(), b.log());
    // Both services have finished their start-up tick once every reminder is recorded sent.
    let settled = a.until(WAIT, || {
        let c = state_counts(&p);
        (c[&ReminderStatus::Sent] == N as i64).then_some(())
    });
    assert!(settled.is_some(), "{:?}", state_counts(&p));
    let twice = per_recipient(&server)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .count();
    assert_eq!(twice, 0, "sent twice:\n{}\n{}", a.log(), b.log());
    let (log_a, log_b) = (a.log.clone(), b.log.clone());
    assert_eq!(a.terminate().0, Some(0));
    assert_eq!(b.terminate().0, Some(0));
    // Both have exited: once their connections are closed, a duplicate sent late is seen too.
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    let got = per_recipient(&server);
    let twice = got.values().filter(|n| **n > 1).count();
    let read = |log: &Path| std::fs::read_to_string(log).unwrap_or_default();
    assert_eq!(
        (got.len(), twice),
        (N, 0),
        "once both had stopped:\n{}\n{}",
        read(&log_a),
        read(&log_b)
    );
}

/// A tmpfs of `size` mounted on a temporary folder, unmounted on drop; `None` where this
/// process may not mount (not root), unless CI requires it.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must be able to mount a tmpfs for the disk-full test"
            );
            eprintln!("skipped: cannot mount a tmpfs here (not root)");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn disk_full_during_serve_then_space_freed_recovers_within_one_tick() {
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let server = SmtpServer::start();
    let p = due_now(2, &server.url());
    let state = disk.path().join("ngayle.sqlite");
    // This store too began before the reminders fell due (as `due_now`'s own).
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let started = Command::new(env!("CARGO_BIN_EXE_ngayle"))
        .current_dir(p.path())
        .env("NGAYLE_STATE", &state)
        .args(["send-due", "--now", &yesterday])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(started.status.success(), "{started:?}");
    let serve = Serve::start_env(
        &p,
        &["--no-watch"],
        &[("NGAYLE_STATE", state.to_str().unwrap_or_default())],
    );
    assert_eq!(server.wait_for(2, WAIT).len(), 2, "{}", serve.log());

    let filler = disk.fill();
    // A new person: the next tick must record a new reminder, on a full disk.
    let staff = p.read("config/staff.yaml");
    p.write(
        "config/staff.yaml",
        &format!("{staff}  - id: p9999\n    name: Người mới\n    email: p9999@example.org\n    groups: [gv]\n"),
    );
    // The reload may fail on the full disk (the feeds' revisions) or succeed (then the tick
    // fails to record the new reminder): either way the store fails, and must recover.
    serve.signal("HUP");
    // The group feed's first request records its revisions: refused on a full disk.
    let (code, _) = serve.get("/calendar/gv.ics");
    assert_eq!(code, 503, "{}", serve.log());
    let failing = serve.until(Duration::from_secs(90), || {
        (serve.get("/healthz").0 == 503).then_some(())
    });
    assert!(
        failing.is_some(),
        "a failing store shows as 503:\n{}",
        serve.log()
    );

    std::fs::remove_file(&filler).unwrap_or_else(|e| panic!("{e}"));
    serve.signal("HUP");
    // Within one tick (a minute) of the space coming back: the new person's email, the group
    // feed, a healthy status — without a restart. The service is a child process, its cron
    // tick on the real clock (paused tokio time reaches only this process, `--now` only
    // `send-due`): this waits for the next whole minute, polling with a deadline.
    let got = server.wait_for(3, Duration::from_secs(90));
    assert_eq!(got.len(), 3, "{}", serve.log());
    assert_eq!(got[2].to, ["p9999@example.org"]);
    assert_eq!(serve.get("/calendar/gv.ics").0, 200, "{}", serve.log());
    let healthy = serve.until(WAIT, || (serve.get("/healthz").0 == 200).then_some(()));
    assert!(healthy.is_some(), "{}", serve.log());
    assert_eq!(serve.terminate().0, Some(0));
}

/// The minimal config sending through `url` with `extra` YAML after it.
fn mail_config(p: &Project, url: &str, extra: &str) {
    p.write(
        "config/ngayle.yaml",
        &format!(
            "{}mail:\n  from: \"Trường <nhacviec@example.org>\"\n  smtp: {url}\n{extra}",
            crate::support::CONFIG
        ),
    );
}

#[test]
fn a_server_that_stalls_after_auth_does_not_hang_the_tick() {
    let server = SmtpServer::with_auth("nhacviec", "mật-khẩu");
    server.stall_after_auth();
    let p = burst(3, "~");
    let url = format!("smtp://nhacviec@{}", server.addr());
    mail_config(&p, &url, "");
    let log = p.path().join("stall.log");
    let mut child = spawn(
        &p,
        &["send-due", "--now", "2026-06-01T08:00:00+07:00"],
        &log,
        &[("NGAYLE_SMTP_PASSWORD", "mật-khẩu")],
    );
    // The server's own idle limit is a minute: a client without a deadline waits longer.
    let code = wait_bounded(&mut child, Duration::from_secs(50));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(code.is_some(), "send-due hung on a stalled AUTH:\n{text}");
    // Nothing could be sent: that is a failure of the command, and nothing is lost.
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(state_counts(&p)[&ReminderStatus::Pending], 3);
}

#[test]
fn a_final_reply_after_40_seconds_is_waited_for_and_not_sent_twice() {
    let server = SmtpServer::start();
    server.set_delay(Duration::from_secs(40));
    let p = burst(1, &server.url());
    for now in ["2026-06-01T08:00:00+07:00", "2026-06-01T08:05:00+07:00"] {
        let r = p.run(&["send-due", "--now", now]);
        assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    }
    // The server records a message when it answers, even to a client that hung up: once every
    // connection has ended (the server has answered all it got), a second copy would be there.
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert_eq!(server.received().len(), 1);
    assert_eq!(state_counts(&p)[&ReminderStatus::Sent], 1);
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn at_trace_level_no_secret_reaches_the_log() {
    let password = "Mk-bí-mật-7731";
    let token = "tok3n-bi-mat-5fd2a9c1e8";
    let server = SmtpServer::with_auth("nhacviec", password);
    let p = due_now(3, "~");
    let config = p.read("config/ngayle.yaml").replace(
        "smtp: ~",
        &format!("smtp: smtp://nhacviec@{}", server.addr()),
    );
    p.write("config/ngayle.yaml", &config);
    let env = [
        ("NGAYLE_SMTP_PASSWORD", password),
        ("NGAYLE_FEED_TOKEN", token),
        ("RUST_LOG", "trace"),
    ];
    let serve = Serve::start_env(&p, &["--no-watch"], &env);
    assert_eq!(server.wait_for(3, WAIT).len(), 3, "{}", serve.log());
    for path in [
        format!("/calendar.ics?token={token}"),
        format!("/calendar/gv.ics?token={token}"),
        format!("/healthz?token={token}"),
        "/calendar.ics?token=wrong".to_string(),
    ] {
        serve.get(&path);
    }
    let log = serve.log.clone();
    assert_eq!(serve.terminate().0, Some(0));
    let mut text = std::fs::read_to_string(log).unwrap_or_default();
    // And the hand catch-up at trace.
    let r = crate::support::ngayle_env(
        p.path(),
        &["send-due", "--now", &chrono::Utc::now().to_rfc3339()],
        &env,
    );
    text.push_str(&r.stderr);
    text.push_str(&r.stdout);
    assert!(
        text.lines().count() > 50,
        "trace logging must be on for this test to mean anything:\n{text}"
    );
    let secrets = [
        password.to_string(),
        token.to_string(),
        base64(format!("\0nhacviec\0{password}").as_bytes()),
        base64(password.as_bytes()),
    ];
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "{s:?} is in the log");
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[test]
fn the_database_its_wal_and_the_outbox_are_private_under_umask_022() {
    // No SMTP: the emails go to the outbox.
    let p = burst(2, "~");
    let out = Command::new("sh")
        .current_dir(p.path())
        .args([
            "-c",
            "umask 022; exec \"$0\" send-due --now 2026-06-01T08:00:00+07:00",
        ])
        .arg(env!("CARGO_BIN_EXE_ngayle"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let var = p.path().join("var");
    assert_eq!(mode(&var), 0o700, "var/");
    assert_eq!(mode(&var.join("ngayle.sqlite")), 0o600, "the database");
    for side in ["ngayle.sqlite-wal", "ngayle.sqlite-shm"] {
        let path = var.join(side);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{side}");
        }
    }
    let outbox = var.join("outbox");
    assert_eq!(mode(&outbox), 0o700, "the outbox");
    let emls: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(emls.len(), 2);
    for eml in &emls {
        assert_eq!(mode(eml), 0o600, "{}", eml.display());
    }
}

#[test]
fn a_reminder_pending_longer_than_the_lookback_ends_skipped_with_its_reason() {
    // The mail server is down at the due time: the reminder waits for a retry...
    let closed = ClosedPort::new();
    let p = burst(2, &closed.url());
    let r = p.run(&["send-due", "--now", "2026-06-01T08:00:00+07:00"]);
    assert_eq!(
        r.code,
        Some(1),
        "nothing could be sent: {}{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stderr.contains("không gửi được"), "{}", r.stderr);
    assert_eq!(state_counts(&p)[&ReminderStatus::Pending], 2);
    // ...and the next tick comes 40 days later (catch_up 3 d + 31 d of look-back passed).
    let r = p.run(&["send-due", "--now", "2026-07-11T08:00:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let counts = state_counts(&p);
    assert_eq!(counts[&ReminderStatus::Pending], 0, "{counts:?}");
    assert_eq!(counts[&ReminderStatus::Skipped], 2, "{counts:?}");
    for person in ["p0000", "p0001"] {
        let line = r
            .stderr
            .lines()
            .find(|l| l.contains(person) && l.contains("bỏ qua"))
            .unwrap_or_else(|| panic!("no skip logged for {person}:\n{}", r.stderr));
        assert!(line.contains("máy chủ thư"), "the reason: {line}");
    }
}

#[test]
fn a_state_file_deleted_while_serving_is_noticed_and_a_replaced_one_is_reopened() {
    let server = SmtpServer::start();
    let p = due_now(2, &server.url());
    let serve = Serve::start(&p, &["--no-watch"]);
    assert_eq!(server.wait_for(2, WAIT).len(), 2, "{}", serve.log());
    assert_eq!(serve.get("/healthz").0, 200);
    let db = p.path().join("var/ngayle.sqlite");
    let backup = p.path().join("backup.sqlite");
    // A consistent copy: the database and its write-ahead log.
    let wal = p.path().join("var/ngayle.sqlite-wal");
    let backup_wal = p.path().join("backup.sqlite-wal");
    std::fs::copy(&db, &backup).unwrap_or_else(|e| panic!("{e}"));
    if wal.exists() {
        std::fs::copy(&wal, &backup_wal).unwrap_or_else(|e| panic!("{e}"));
    }
    for side in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{side}", db.display()));
    }
    let (code, body) = serve.get("/healthz");
    assert_eq!(code, 503, "{body}");
    // The group feed would write its revisions: not into a deleted file.
    assert_eq!(serve.get("/calendar/gv.ics").0, 503);
    assert!(!db.exists(), "the deleted state file was written to again");
    assert!(serve.log().contains("tệp dữ liệu"), "{}", serve.log());

    // Put back (a new file at the path): the service reopens it and goes on.
    if backup_wal.exists() {
        std::fs::copy(&backup_wal, &wal).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::copy(&backup, &db).unwrap_or_else(|e| panic!("{e}"));
    let healthy = serve.until(WAIT, || (serve.get("/healthz").0 == 200).then_some(()));
    assert!(healthy.is_some(), "{}", serve.log());
    assert_eq!(serve.get("/calendar/gv.ics").0, 200, "{}", serve.log());
    assert_eq!(serve.terminate().0, Some(0));
    // The service has exited: once its connection is closed, nothing more can arrive.
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert_eq!(server.received().len(), 2, "nothing sent twice");
}

#[test]
fn sigterm_while_the_server_takes_its_time_to_answer_stops_within_the_grace_period() {
    // The reply to a message may take minutes (RFC 5321 allows ten): a stop must not wait for
    // it beyond `shutdown_grace` (5 s in this project).
    let server = SmtpServer::start();
    server.set_delay(Duration::from_secs(30));
    let p = due_now(3, &server.url());
    let serve = Serve::start(&p, &["--no-watch"]);
    // The first message is in flight once its reminders are claimed.
    let in_flight = serve.until(WAIT, || {
        (state_counts(&p)[&ReminderStatus::Sending] > 0).then_some(())
    });
    assert!(in_flight.is_some(), "{}", serve.log());
    let log = serve.log.clone();
    let (code, took) = serve.terminate();
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        took < Duration::from_secs(8),
        "stopped after {took:?} with a grace of 5 s:\n{log}"
    );
}
