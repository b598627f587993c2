//! `ngayle serve` as a child process, for the tests that need the real service: signals, file
//! watching, several processes on one state file, descriptor limits.
//!
//! The child binds `127.0.0.1:0` itself and the test reads the address it got from its start-up
//! line (`ngayle đang chạy: http://ADDR/calendar.ics`, which names the bound address): no port
//! is picked by the test, released and handed over, so no other process can take it in between.
//! The log goes to a file (a pipe nobody reads could fill up and block the service).
//!
//! This module holds no test and no project data; the projects are built by the tests
//! (`support::minimal`, `service::due_now`, ...).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Project, wait_until};

/// Generous bound for things that should take well under a second.
const WAIT: Duration = Duration::from_secs(20);
/// Generous bound for a start (a debug build loading the shipped calendars on a busy machine).
const START: Duration = Duration::from_secs(60);

/// The start-up line's text just before the address.
const RUNNING: &str = "đang chạy: http://";

/// A running `ngayle serve` on a port of its own choosing, its log in `log`.
pub struct Serve {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Serve {
    /// `ngayle serve --listen 127.0.0.1:0 EXTRA` in the project, at `RUST_LOG=info`.
    pub fn start(p: &Project, extra: &[&str]) -> Serve {
        Serve::start_env(p, extra, &[])
    }

    /// [`Serve::start`] with these environment variables (after `RUST_LOG=info`, so they may
    /// change it; every other `NGAYLE_*` variable of the caller is removed).
    pub fn start_env(p: &Project, extra: &[&str], env: &[(&str, &str)]) -> Serve {
        Serve::start_limited(p, extra, env, None)
    }

    /// [`Serve::start_env`] with RLIMIT_NOFILE (soft and hard, as systemd's `LimitNOFILE=`
    /// sets them) at `nofile`: `prlimit` execs the service, so the PID is the service's.
    pub fn start_limited(
        p: &Project,
        extra: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Serve {
        let log = p.path().join("serve.log");
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = match nofile {
            None => Command::new(env!("CARGO_BIN_EXE_ngayle")),
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_ngayle"));
                c
            }
        };
        cmd.current_dir(p.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file);
        for (k, _) in std::env::vars() {
            if k.starts_with("NGAYLE_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
        let addr = listening_addr(&mut child, &log);
        let s = Serve {
            child,
            port: addr.port(),
            log,
        };
        // The listener is bound before the line is written and the HTTP server starts right
        // after it: a request waits in the backlog meanwhile, so this normally answers at once.
        let up = wait_until(START, || s.try_get("/healthz"));
        assert!(up.is_some(), "serve did not answer /healthz:\n{}", s.log());
        s
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn try_get(&self, path: &str) -> Option<(u16, String)> {
        self.exchange(&format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        ))
    }

    /// Sends `request` on a new connection; the status and the body of the answer (whole:
    /// these answers are not chunked).
    fn exchange(&self, request: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(WAIT)).ok()?;
        s.write_all(request.as_bytes()).ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    }

    /// A POST of an HTML form (`application/x-www-form-urlencoded`, `body` already encoded);
    /// the status and the body.
    pub fn post_form(&self, path: &str, body: &str) -> (u16, String) {
        self.exchange(&format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
        .unwrap_or_else(|| panic!("no answer to POST {path}:\n{}", self.log()))
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.try_get(path)
            .unwrap_or_else(|| panic!("no answer to {path}:\n{}", self.log()))
    }

    pub fn health(&self) -> serde_json::Value {
        let (_, body) = self.get("/healthz");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name}");
    }

    /// Polls `what` until it returns `Some` or `limit` passes ([`wait_until`]).
    pub fn until<T>(&self, limit: Duration, what: impl FnMut() -> Option<T>) -> Option<T> {
        wait_until(limit, what)
    }

    /// SIGTERM, then the exit code and how long it took.
    pub fn terminate(mut self) -> (Option<i32>, Duration) {
        self.signal("TERM");
        let started = Instant::now();
        let child = &mut self.child;
        let status = wait_until(WAIT * 2, || {
            child.try_wait().unwrap_or_else(|e| panic!("{e}"))
        });
        match status {
            Some(status) => (status.code(), started.elapsed()),
            None => {
                let _ = self.child.kill();
                panic!("serve did not stop after SIGTERM:\n{}", self.log());
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address a starting `ngayle serve` (`child`, logging to `log`) listens on, read from its
/// start-up line; panics with the log if it exits or says nothing within [`START`].
pub fn listening_addr(child: &mut Child, log: &Path) -> SocketAddr {
    let read = || std::fs::read_to_string(log).unwrap_or_default();
    let found = wait_until(START, || {
        let text = read();
        if let Some(addr) = text.lines().find_map(address_in) {
            return Some(Ok(addr));
        }
        match child.try_wait() {
            Ok(Some(status)) => Some(Err(format!("serve exited ({status}) before listening"))),
            Ok(None) => None,
            Err(e) => Some(Err(e.to_string())),
        }
    });
    match found {
        Some(Ok(addr)) => addr,
        Some(Err(why)) => panic!("{why}:\n{}", read()),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "serve did not say where it listens within {START:?}:\n{}",
                read()
            )
        }
    }
}

/// The address in a start-up line (`… đang chạy: http://127.0.0.1:PORT/calendar.ics …`).
fn address_in(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once(RUNNING)?;
    rest.split('/').next()?.parse().ok()
}
