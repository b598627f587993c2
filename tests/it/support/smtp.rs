//! A real SMTP server inside the test process, for tests that send mail and read what arrived.
//! Its own tests are in `tests/it/smtp.rs`; this module holds only the server.
//!
//! `SmtpServer::start()` listens on `127.0.0.1:0` and records every message it accepts (envelope
//! and bytes). It speaks plain SMTP on `std::net`: EHLO/HELO, MAIL, RCPT, DATA (dot-unstuffed),
//! RSET, NOOP, VRFY, QUIT, and AUTH PLAIN/LOGIN when started `with_auth`; no TLS. Each connection
//! has its own thread, so a client that keeps one connection for thousands of messages, several
//! clients at once, or a client killed mid-session (its half-sent message is dropped) never wedge
//! it. `stop()` closes the listener and every open connection, so the port refuses connections
//! until `start_on(port)` brings a server back on it; `stop_keeping_port()` also keeps any other
//! server from being given the port meanwhile (`ClosedPort`).
//!
//! "Nothing else arrived" is checked with `wait_idle` (or `wait_closed`), never with a sleep: a
//! message is recorded by its connection's thread before that thread ends, so once every
//! connection a finished client opened has closed, nothing it sent can still arrive.
//!
//! Why not `mailin-embedded`: its `Server::serve` owns the listener in an endless accept loop
//! with no way to stop it or free the port, and it allows AUTH only after STARTTLS.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, PartType};

/// A connection that sends nothing for this long is closed (a stuck client cannot hold a test).
const IDLE: Duration = Duration::from_secs(60);
/// Longest command line accepted (RFC 5321 says 512; be generous).
const MAX_COMMAND: usize = 4096;
/// Longest line inside DATA (RFC 5321 says 1000; be generous to see what a client really sends).
const MAX_DATA_LINE: usize = 1 << 20;
/// Largest message accepted; larger ones get 552 and are not recorded.
const MAX_MESSAGE: usize = 32 << 20;

/// An SMTP server on 127.0.0.1 that records what it accepts. Dropping it stops it.
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// One message as the server accepted it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`), without angle brackets; empty for `<>`.
    pub from: String,
    /// The accepted envelope recipients (`RCPT TO`), without angle brackets, in order.
    pub to: Vec<String>,
    /// The message bytes as received after `DATA`, dot-unstuffed, without the final `.` line.
    pub raw: Vec<u8>,
}

/// The parts of a received message a test looks at, decoded with `mail-parser`.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// The Subject, decoded (RFC 2047 encoded words), unfolded.
    pub subject: String,
    /// The first From address as `Name <addr>` (name decoded), or `addr` when it has no name.
    pub from: String,
    /// The To addresses, each as `Name <addr>` or `addr`.
    pub to: Vec<String>,
    /// The first Reply-To address as `Name <addr>` or `addr`.
    pub reply_to: Option<String>,
    /// The Message-ID without its angle brackets.
    pub message_id: Option<String>,
    /// The Date header, parsed and written as RFC 3339 (`None` when missing or unreadable; the
    /// header as sent is in `headers`).
    pub date: Option<String>,
    /// The first text/plain body part, transfer- and charset-decoded ("" when there is none).
    pub text: String,
    /// The first text/html body part, transfer- and charset-decoded ("" when there is none).
    pub html: String,
    /// The top-level header fields in order: the name as sent and the value as sent (encoded
    /// words left encoded), unfolded (line breaks before continuation whitespace removed) and
    /// trimmed. A header line without a colon appears as `(line, "")`.
    pub headers: Vec<(String, String)>,
}

struct Shared {
    state: Mutex<State>,
    /// Notified when a message is recorded and when a connection ends.
    changed: Condvar,
    stopping: AtomicBool,
    auth: Option<(String, String)>,
    /// How long to wait after a message's data before answering (a slow server).
    delay_ms: std::sync::atomic::AtomicU64,
    /// Accept AUTH, then never answer it (a server that stalls after AUTH).
    stall_auth: AtomicBool,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    rejected: HashSet<String>,
    /// Open connections (a handle to shut the socket down, the thread serving it).
    conns: HashMap<u64, (TcpStream, JoinHandle<()>)>,
    /// Connections accepted so far (not counting the wake-up connection of `stop`).
    accepted: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SmtpServer {
    /// Starts a server on `127.0.0.1:0` (a free port); it accepts connections when this returns.
    pub fn start() -> SmtpServer {
        SmtpServer::spawn(0, None)
    }

    /// Starts a server on `127.0.0.1:port`, e.g. the port of a server that was stopped, to bring
    /// it back. Retries the bind for a few seconds if the port is still busy.
    pub fn start_on(port: u16) -> SmtpServer {
        SmtpServer::spawn(port, None)
    }

    /// Starts a server on a free port that requires AUTH PLAIN or LOGIN with this user and
    /// password before MAIL (530 before it, 535 for other credentials). Plain text, no TLS.
    pub fn with_auth(user: &str, pass: &str) -> SmtpServer {
        SmtpServer::spawn(0, Some((user.to_owned(), pass.to_owned())))
    }

    fn spawn(port: u16, auth: Option<(String, String)>) -> SmtpServer {
        let listener = bind(port);
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("smtp local_addr: {e}"));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            auth,
            delay_ms: std::sync::atomic::AtomicU64::new(0),
            stall_auth: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("smtp-accept-{}", addr.port()))
                .spawn(move || accept_loop(listener, shared))
                .unwrap_or_else(|e| panic!("smtp thread: {e}"))
        };
        SmtpServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Makes the server answer each message `delay` after its data arrived (as a slow or busy
    /// server would), so a test can act while messages are in flight.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// From now on, a correct AUTH gets no answer at all: the connection stays open and silent
    /// until the client gives up (or the server's idle limit), as a stalled server does.
    pub fn stall_after_auth(&self) {
        self.shared.stall_auth.store(true, Ordering::Relaxed);
    }

    /// The address the server listens on (127.0.0.1 and its port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:PORT`, for `mail.smtp` in a test config.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// From now on, `RCPT TO` this address (compared without case) gets a permanent
    /// `550 5.1.1` reply.
    pub fn reject(&self, rcpt: &str) {
        self.shared
            .lock()
            .rejected
            .insert(rcpt.trim().to_ascii_lowercase());
    }

    /// Every message accepted so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    /// Waits until at least `n` messages have arrived or `timeout` has passed, and returns all
    /// that arrived (check the count: it is fewer than `n` after a timeout).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(timeout, |state| state.received.len() >= n);
        self.received()
    }

    /// Waits until every connection accepted so far has ended (the client quit or hung up), at
    /// most `timeout`; false if some are still open then. After a client process has exited,
    /// this is the point after which nothing it sent can still be recorded: a message is
    /// recorded by its connection's thread, which ends only after that. (A connection still in
    /// the listen backlog has not been greeted, so it carries no message yet.)
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |state| state.conns.is_empty())
    }

    /// Every message that arrived, once every connection has ended ([`SmtpServer::wait_idle`]):
    /// after clients that have finished (a command that has exited), all they sent, and nothing
    /// of theirs can arrive later. Panics if a connection is still open after `timeout`.
    pub fn settled(&self, timeout: Duration) -> Vec<Received> {
        assert!(
            self.wait_idle(timeout),
            "{} connection(s) still open after {timeout:?}",
            self.open_connections()
        );
        self.received()
    }

    /// Waits until the `nth` connection accepted (1 for the first) has ended, at most
    /// `timeout`; false if it has not been accepted or is still open then.
    pub fn wait_closed(&self, nth: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |state| {
            state.accepted >= nth && !state.conns.contains_key(&nth)
        })
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> usize {
        self.shared.lock().conns.len()
    }

    /// Waits until `done` holds for the state or `timeout` has passed; whether it held.
    fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while !done(&state) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// How many connections clients have opened so far.
    pub fn connections(&self) -> u64 {
        self.shared.lock().accepted
    }

    /// Stops the server: closes the listener (connections to the port are refused afterwards,
    /// and the port can be bound again with `start_on`) and every open connection (a message in
    /// the middle of DATA is dropped), and waits for its threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// [`SmtpServer::stop`], keeping the port: connections are refused and no other server
    /// can be given the port until [`ClosedPort::start_again`] brings this one back.
    pub fn stop_keeping_port(mut self) -> ClosedPort {
        self.shutdown();
        ClosedPort::hold(self.addr.port())
    }

    fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // The accept loop is blocked in accept(): one connection wakes it, it sees `stopping`
        // and drops the listener. If even that fails, the thread is left behind (never joined).
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).is_ok() {
            let _ = acceptor.join();
        }
        let conns: Vec<_> = self.shared.lock().conns.drain().collect();
        for (_, (stream, thread)) in conns {
            let _ = stream.shutdown(Shutdown::Both);
            let _ = thread.join();
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A port on 127.0.0.1 where the mail server is down: a socket is bound to it but does not
/// listen, so connections are refused, and as long as this is held no test binding port 0 (a
/// server, a `serve` child) can be given the port — a port merely released could be handed to
/// whoever binds next, and a client configured for it would reach that other server.
pub struct ClosedPort {
    socket: socket2::Socket,
    addr: SocketAddr,
}

impl ClosedPort {
    /// A port of its own (bound to 127.0.0.1:0).
    pub fn new() -> ClosedPort {
        ClosedPort::hold(0)
    }

    /// Binds 127.0.0.1:port without listening; for a given port, retries for up to 5 s while
    /// it is in use. `SO_REUSEADDR`, so that the connections a stopped server closed
    /// (`TIME_WAIT`) do not block it: Linux still never hands a port bound so to a port-0 bind.
    fn hold(port: u16) -> ClosedPort {
        use socket2::{Domain, Socket, Type};
        let deadline = Instant::now() + Duration::from_secs(5);
        let want = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            let bound = Socket::new(Domain::IPV4, Type::STREAM, None).and_then(|s| {
                s.set_reuse_address(true)?;
                s.bind(&want.into())?;
                Ok(s)
            });
            match bound {
                Ok(socket) => {
                    let addr = socket
                        .local_addr()
                        .ok()
                        .and_then(|a| a.as_socket())
                        .unwrap_or_else(|| panic!("the address of a bound socket"));
                    return ClosedPort { socket, addr };
                }
                Err(_) if port != 0 && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("hold 127.0.0.1:{port}: {e}"),
            }
        }
    }

    /// The address (127.0.0.1 and the port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:PORT`, for `mail.smtp` in a test config.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// A server on this port again (the port is released and bound again at once).
    pub fn start_again(self) -> SmtpServer {
        let port = self.addr.port();
        drop(self.socket);
        SmtpServer::start_on(port)
    }
}

/// Binds 127.0.0.1:port; for a given port, retries for up to 5 s while it is in use.
fn bind(port: u16) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => return l,
            Err(_) if port != 0 && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("smtp bind 127.0.0.1:{port}: {e}"),
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    loop {
        let conn = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return; // drops the listener: the port is closed
        }
        let stream = match conn {
            Ok((stream, _)) => stream,
            Err(_) => {
                // e.g. EMFILE: do not spin
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        next_id += 1;
        let id = next_id;
        // Registered under the lock before the thread can finish and unregister itself.
        let mut state = shared.lock();
        state.accepted += 1;
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("smtp-conn-{id}"))
                .spawn(move || {
                    let _ = serve_connection(stream, &shared);
                    shared.lock().conns.remove(&id);
                    shared.changed.notify_all();
                })
        };
        match thread {
            Ok(thread) => {
                state.conns.insert(id, (handle, thread));
            }
            Err(_) => {
                let _ = handle.shutdown(Shutdown::Both);
            }
        }
    }
}

/// What one line read from the client turned out to be.
enum Line {
    Ok,
    TooLong,
    Eof,
}

/// Reads one line (through `\n`) into `buf`, at most `max` bytes.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    let n = reader.by_ref().take(max as u64).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\n') {
        return Ok(Line::Ok);
    }
    if n < max {
        return Ok(Line::Eof); // the connection ended in the middle of a line
    }
    // Too long: skip to the end of the line.
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(Line::Eof);
        }
        if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok(Line::TooLong);
        }
        let len = chunk.len();
        reader.consume(len);
    }
}

/// The SMTP transaction in progress on one connection.
#[derive(Default)]
struct Session {
    greeted: bool,
    authenticated: bool,
    from: Option<String>,
    to: Vec<String>,
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(IDLE))?;
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut s = Session::default();
    let mut line = Vec::with_capacity(128);
    reply(&mut out, "220 ngayle-test ESMTP ready")?;
    loop {
        match read_line(&mut reader, &mut line, MAX_COMMAND)? {
            Line::Eof => return Ok(()),
            Line::TooLong => {
                reply(&mut out, "500 5.5.2 line too long")?;
                continue;
            }
            Line::Ok => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (text.to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" | "HELO" if arg.is_empty() => reply(&mut out, "501 5.5.4 domain required")?,
            "EHLO" => {
                s.greeted = true;
                s.from = None;
                s.to.clear();
                let mut r = String::from("250-ngayle-test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n");
                if shared.auth.is_some() {
                    r.push_str("250-AUTH PLAIN LOGIN\r\n");
                }
                r.push_str("250 ENHANCEDSTATUSCODES");
                reply(&mut out, &r)?;
            }
            "HELO" => {
                s.greeted = true;
                s.from = None;
                s.to.clear();
                reply(&mut out, "250 ngayle-test")?;
            }
            "AUTH" => auth(&mut reader, &mut out, shared, &mut s, arg)?,
            "MAIL" => {
                let r = if !s.greeted {
                    "503 5.5.1 EHLO first"
                } else if shared.auth.is_some() && !s.authenticated {
                    "530 5.7.0 authentication required"
                } else if s.from.is_some() {
                    "503 5.5.1 nested MAIL command"
                } else if let Some(path) = path_after(arg, "FROM:") {
                    s.from = Some(path);
                    "250 2.1.0 sender ok"
                } else {
                    "501 5.5.4 syntax: MAIL FROM:<address>"
                };
                reply(&mut out, r)?;
            }
            "RCPT" => {
                if s.from.is_none() {
                    reply(&mut out, "503 5.5.1 MAIL first")?;
                } else if let Some(path) = path_after(arg, "TO:").filter(|p| !p.is_empty()) {
                    let rejected = shared.lock().rejected.contains(&path.to_ascii_lowercase());
                    if rejected {
                        reply(
                            &mut out,
                            &format!("550 5.1.1 <{path}>: mailbox unavailable"),
                        )?;
                    } else {
                        s.to.push(path);
                        reply(&mut out, "250 2.1.5 recipient ok")?;
                    }
                } else {
                    reply(&mut out, "501 5.5.4 syntax: RCPT TO:<address>")?;
                }
            }
            "DATA" => {
                if s.from.is_none() {
                    reply(&mut out, "503 5.5.1 MAIL first")?;
                    continue;
                }
                if s.to.is_empty() {
                    reply(&mut out, "554 5.5.1 no valid recipients")?;
                    continue;
                }
                reply(&mut out, "354 end data with <CR><LF>.<CR><LF>")?;
                let Some(raw) = read_data(&mut reader, &mut line)? else {
                    return Ok(()); // the client went away in the middle: nothing recorded
                };
                let from = s.from.take().unwrap_or_default();
                let to = std::mem::take(&mut s.to);
                match raw {
                    Ok(raw) => {
                        let delay = shared.delay_ms.load(Ordering::Relaxed);
                        if delay > 0 {
                            std::thread::sleep(Duration::from_millis(delay));
                        }
                        let n = {
                            let mut state = shared.lock();
                            state.received.push(Received { from, to, raw });
                            state.received.len()
                        };
                        shared.changed.notify_all();
                        reply(&mut out, &format!("250 2.0.0 ok: queued as {n}"))?;
                    }
                    Err(r) => reply(&mut out, r)?,
                }
            }
            "RSET" => {
                s.from = None;
                s.to.clear();
                reply(&mut out, "250 2.0.0 ok")?;
            }
            "NOOP" => reply(&mut out, "250 2.0.0 ok")?,
            "VRFY" => reply(&mut out, "252 2.5.0 cannot verify")?,
            "QUIT" => {
                reply(&mut out, "221 2.0.0 bye")?;
                return Ok(());
            }
            "STARTTLS" => reply(&mut out, "454 4.7.0 TLS not available")?,
            _ => reply(&mut out, "500 5.5.2 command not recognised")?,
        }
    }
}

/// Reads DATA up to the `.` line. `None`: the connection ended first. `Some(Err(reply))`: the
/// message was read but refused.
fn read_data(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
) -> io::Result<Option<Result<Vec<u8>, &'static str>>> {
    let mut raw = Vec::with_capacity(4096);
    let mut refused = None;
    loop {
        match read_line(reader, line, MAX_DATA_LINE)? {
            Line::Eof => return Ok(None),
            Line::TooLong => refused = Some("500 5.5.6 line too long"),
            Line::Ok => {
                if line == b".\r\n" || line == b".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix(b".").unwrap_or(line);
                if raw.len() + unstuffed.len() > MAX_MESSAGE {
                    refused = Some("552 5.3.4 message too big");
                } else {
                    raw.extend_from_slice(unstuffed);
                }
            }
        }
    }
    Ok(Some(match refused {
        Some(r) => Err(r),
        None => Ok(raw),
    }))
}

/// `AUTH PLAIN [initial]` or `AUTH LOGIN [initial]`.
fn auth(
    reader: &mut impl BufRead,
    out: &mut TcpStream,
    shared: &Shared,
    s: &mut Session,
    arg: &str,
) -> io::Result<()> {
    let Some((user, pass)) = &shared.auth else {
        return reply(out, "502 5.5.1 AUTH not supported");
    };
    if !s.greeted {
        return reply(out, "503 5.5.1 EHLO first");
    }
    if s.authenticated {
        return reply(out, "503 5.5.1 already authenticated");
    }
    let (mech, initial) = match arg.split_once(' ') {
        Some((m, i)) => (m.to_ascii_uppercase(), Some(i.trim().to_owned())),
        None => (arg.to_ascii_uppercase(), None),
    };
    // Reads the client's answer to a 334 challenge; `None` if it cancelled or went away.
    let mut challenge = |out: &mut TcpStream, prompt: &str| -> io::Result<Option<String>> {
        reply(out, &format!("334 {prompt}"))?;
        let mut line = Vec::new();
        match read_line(reader, &mut line, MAX_COMMAND)? {
            Line::Ok => {
                let t = String::from_utf8_lossy(&line).trim().to_owned();
                Ok((t != "*").then_some(t))
            }
            _ => Ok(None),
        }
    };
    let given = match mech.as_str() {
        "PLAIN" => {
            let resp = match initial {
                Some(i) => Some(i),
                None => challenge(out, "")?,
            };
            let Some(resp) = resp else {
                return reply(out, "501 5.7.0 authentication cancelled");
            };
            base64_decode(&resp).and_then(|b| {
                let mut parts = b.split(|&c| c == 0);
                let (_authz, authc, pw) = (parts.next()?, parts.next()?, parts.next()?);
                Some((
                    String::from_utf8_lossy(authc).into_owned(),
                    String::from_utf8_lossy(pw).into_owned(),
                ))
            })
        }
        "LOGIN" => {
            let u = match initial {
                Some(i) => Some(i),
                None => challenge(out, "VXNlcm5hbWU6")?, // "Username:"
            };
            let Some(u) = u else {
                return reply(out, "501 5.7.0 authentication cancelled");
            };
            let Some(p) = challenge(out, "UGFzc3dvcmQ6")? else {
                return reply(out, "501 5.7.0 authentication cancelled");
            };
            match (base64_decode(&u), base64_decode(&p)) {
                (Some(u), Some(p)) => Some((
                    String::from_utf8_lossy(&u).into_owned(),
                    String::from_utf8_lossy(&p).into_owned(),
                )),
                _ => None,
            }
        }
        _ => return reply(out, "504 5.5.4 mechanism not supported"),
    };
    if given.as_ref() == Some(&(user.clone(), pass.clone())) {
        if shared.stall_auth.load(Ordering::Relaxed) {
            // Say nothing until the client hangs up (a read returns 0) or the idle limit.
            let mut sink = [0u8; 64];
            while !shared.stopping.load(Ordering::Relaxed) {
                match reader.read(&mut sink) {
                    Ok(0) => break,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                    Ok(_) => {}
                }
            }
            return Err(io::Error::other("stalled after AUTH"));
        }
        s.authenticated = true;
        reply(out, "235 2.7.0 authentication successful")
    } else {
        reply(out, "535 5.7.8 authentication credentials invalid")
    }
}

/// The path of `FROM:<a@b> PARAMS` / `TO:<a@b>`: `a@b` (empty for `<>`); `None` if malformed.
fn path_after(arg: &str, keyword: &str) -> Option<String> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        Some(inner[..end].to_owned())
    } else {
        let path = rest.split(' ').next().unwrap_or("");
        (!path.is_empty()).then(|| path.to_owned())
    }
}

fn reply(out: &mut TcpStream, text: &str) -> io::Result<()> {
    let mut buf = Vec::with_capacity(text.len() + 2);
    buf.extend_from_slice(text.as_bytes());
    buf.extend_from_slice(b"\r\n");
    out.write_all(&buf)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

impl Received {
    /// The message parsed with `mail-parser`. Panics if the bytes are not a message at all.
    pub fn parsed(&self) -> Mail {
        let msg = MessageParser::default()
            .parse(&self.raw)
            .unwrap_or_else(|| panic!("not a message: {:?}", String::from_utf8_lossy(&self.raw)));
        let show = |a: &mail_parser::Addr<'_>| {
            let addr = a.address().unwrap_or_default();
            match a.name() {
                Some(name) if !name.is_empty() => format!("{name} <{addr}>"),
                _ => addr.to_owned(),
            }
        };
        let body = |ids: &[u32], html: bool| {
            ids.iter()
                .filter_map(|&id| msg.part(id))
                .find_map(|p| match (&p.body, html) {
                    (PartType::Text(t), false) | (PartType::Html(t), true) => Some(t.to_string()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        Mail {
            subject: msg.subject().unwrap_or_default().to_owned(),
            from: msg
                .from()
                .and_then(|a| a.first())
                .map(show)
                .unwrap_or_default(),
            to: msg
                .to()
                .map(|a| a.iter().map(show).collect())
                .unwrap_or_default(),
            reply_to: msg.reply_to().and_then(|a| a.first()).map(show),
            message_id: msg.message_id().map(str::to_owned),
            date: msg.date().map(|d| d.to_rfc3339()),
            text: body(&msg.text_body, false),
            html: body(&msg.html_body, true),
            headers: raw_headers(&self.raw),
        }
    }
}

/// The top-level header fields as sent, unfolded.
fn raw_headers(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    let mut fields: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break; // end of the header section
        }
        match fields.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => fields.push(line.to_owned()),
        }
    }
    fields
        .into_iter()
        .map(|f| match f.split_once(':') {
            Some((name, value)) => (name.to_owned(), value.trim().to_owned()),
            None => (f, String::new()),
        })
        .collect()
}
