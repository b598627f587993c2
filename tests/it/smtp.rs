//! A real SMTP server inside the test process, for tests that send mail and read what arrived.
//!
//! `SmtpServer::start()` listens on `127.0.0.1:0` and records every message it accepts (envelope
//! and bytes). It speaks plain SMTP on `std::net`: EHLO/HELO, MAIL, RCPT, DATA (dot-unstuffed),
//! RSET, NOOP, VRFY, QUIT, and AUTH PLAIN/LOGIN when started `with_auth`; no TLS. Each connection
//! has its own thread, so a client that keeps one connection for thousands of messages, several
//! clients at once, or a client killed mid-session (its half-sent message is dropped) never wedge
//! it. `stop()` closes the listener and every open connection, so the port refuses connections
//! until `start_on(port)` brings a server back on it.
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
    arrived: Condvar,
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
            arrived: Condvar::new(),
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
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.received.len() < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .shared
                .arrived
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.received.clone()
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
                        shared.arrived.notify_all();
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

// ---------------------------------------------------------------------------------------------
// The server itself, driven by lettre (the client ngayle uses) and by raw sockets.

#[cfg(test)]
mod tests {
    use super::*;

    use lettre::message::{Mailbox, MultiPart, header::ContentType};
    use lettre::transport::smtp::PoolConfig;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{
        AsyncSmtpTransport, AsyncTransport, Message, SmtpTransport, Tokio1Executor, Transport,
    };

    const SUBJECT: &str =
        "[Nhắc việc] Treo cờ Tổ quốc — Kỷ niệm 49 năm Ngày Giải phóng miền Nam (30/4/2024)";
    const WAIT: Duration = Duration::from_secs(10);

    fn client(server: &SmtpServer) -> SmtpTransport {
        SmtpTransport::builder_dangerous("127.0.0.1")
            .port(server.addr().port())
            .timeout(Some(Duration::from_secs(10)))
            .pool_config(PoolConfig::new().max_size(1))
            .build()
    }

    fn mailbox(s: &str) -> Mailbox {
        s.parse().unwrap_or_else(|e| panic!("mailbox {s}: {e}"))
    }

    fn simple(to: &str, subject: &str) -> Message {
        Message::builder()
            .from(mailbox("Trường MN Hoa Phượng <nhacviec@example.org>"))
            .to(mailbox(to))
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(String::from(
                "Kính gửi cô Tâm,\nNhớ treo cờ.\n.dòng bắt đầu bằng dấu chấm\n",
            ))
            .unwrap_or_else(|e| panic!("message: {e}"))
    }

    fn refused(addr: SocketAddr) -> bool {
        matches!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
        )
    }

    /// A raw client: sends `lines`, returns the server's replies read so far.
    fn talk(stream: &mut TcpStream, line: &str) -> String {
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("write: {e}"));
        read_reply(stream)
    }

    fn read_reply(stream: &mut TcpStream) -> String {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut all = String::new();
        let mut buf = [0u8; 1];
        // Read until a line whose 4th byte is a space (the last line of a reply).
        let mut line = Vec::new();
        loop {
            match stream.read(&mut buf) {
                Ok(1) => {
                    line.push(buf[0]);
                    if buf[0] == b'\n' {
                        let l = String::from_utf8_lossy(&line).into_owned();
                        all.push_str(&l);
                        if l.as_bytes().get(3) != Some(&b'-') {
                            return all;
                        }
                        line.clear();
                    }
                }
                _ => return all,
            }
        }
    }

    fn raw_connect(server: &SmtpServer) -> TcpStream {
        let mut s = TcpStream::connect(server.addr()).unwrap_or_else(|e| panic!("connect: {e}"));
        let greeting = read_reply(&mut s);
        assert!(greeting.starts_with("220 "), "{greeting}");
        s
    }

    #[test]
    fn one_message_arrives_with_its_envelope_and_decoded_vietnamese_subject() {
        let server = SmtpServer::start();
        assert_eq!(
            server.url(),
            format!("smtp://127.0.0.1:{}", server.addr().port())
        );
        let msg = simple("Dương Thị Tâm <hieutruong@example.org>", SUBJECT);
        client(&server)
            .send(&msg)
            .unwrap_or_else(|e| panic!("send: {e}"));
        let got = server.wait_for(1, WAIT);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].from, "nhacviec@example.org");
        assert_eq!(got[0].to, vec!["hieutruong@example.org".to_owned()]);
        let mail = got[0].parsed();
        assert_eq!(mail.subject, SUBJECT);
        assert_eq!(mail.from, "Trường MN Hoa Phượng <nhacviec@example.org>");
        assert_eq!(
            mail.to,
            vec!["Dương Thị Tâm <hieutruong@example.org>".to_owned()]
        );
        assert!(mail.text.contains("Nhớ treo cờ."), "{:?}", mail.text);
        // Dot-stuffed by the client, unstuffed by the server.
        assert!(mail.text.contains("\n.dòng bắt đầu"), "{:?}", mail.text);
        assert_eq!(mail.html, "");
        assert!(mail.date.is_some());
        // The raw Subject is encoded (RFC 2047), not 8-bit.
        let raw_subject = mail
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("subject"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert!(raw_subject.starts_with("=?utf-8?"), "{raw_subject}");
        assert!(raw_subject.is_ascii());
    }

    #[tokio::test]
    async fn multipart_alternative_yields_both_parts_async_client() {
        let server = SmtpServer::start();
        let msg = Message::builder()
            .from(mailbox("Trường MN Hoa Phượng <nhacviec@example.org>"))
            .reply_to(mailbox("Văn thư Trường MN Hoa Phượng <vanthu@example.org>"))
            .to(mailbox("phuongntm@example.org"))
            .to(mailbox("Nguyễn Thị Ngọc Anh <ngocanhnt@example.org>"))
            .message_id(Some("<k1.abc@ngayle.example.org>".to_owned()))
            .subject(SUBJECT)
            .multipart(MultiPart::alternative_plain_html(
                String::from("Treo cờ trước 07:00 ngày 29/4/2024."),
                String::from("<p>Treo cờ trước <b>07:00</b> ngày 29/4/2024 &lt;script&gt;</p>"),
            ))
            .unwrap_or_else(|e| panic!("message: {e}"));
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(server.addr().port())
            .build();
        transport
            .send(msg)
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
        let got = server.wait_for(1, WAIT);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].to,
            vec![
                "phuongntm@example.org".to_owned(),
                "ngocanhnt@example.org".to_owned()
            ]
        );
        let mail = got[0].parsed();
        assert_eq!(mail.subject, SUBJECT);
        assert_eq!(mail.text, "Treo cờ trước 07:00 ngày 29/4/2024.");
        assert_eq!(
            mail.html,
            "<p>Treo cờ trước <b>07:00</b> ngày 29/4/2024 &lt;script&gt;</p>"
        );
        assert_eq!(
            mail.reply_to.as_deref(),
            Some("Văn thư Trường MN Hoa Phượng <vanthu@example.org>")
        );
        assert_eq!(
            mail.to,
            vec![
                "phuongntm@example.org".to_owned(),
                "Nguyễn Thị Ngọc Anh <ngocanhnt@example.org>".to_owned()
            ]
        );
        assert_eq!(
            mail.message_id.as_deref(),
            Some("k1.abc@ngayle.example.org")
        );
        let names: Vec<&str> = mail.headers.iter().map(|(n, _)| n.as_str()).collect();
        for h in [
            "From",
            "Reply-To",
            "To",
            "Subject",
            "Message-ID",
            "Date",
            "MIME-Version",
        ] {
            assert!(names.contains(&h), "{h} missing from {names:?}");
        }
    }

    #[test]
    fn a_rejected_recipient_is_a_permanent_error_for_the_client() {
        let server = SmtpServer::start();
        server.reject("Bad@Example.org");
        let transport = client(&server);
        let err = transport
            .send(&simple("bad@example.org", "x"))
            .err()
            .unwrap_or_else(|| panic!("a rejected recipient was accepted"));
        assert!(err.is_permanent(), "{err}");
        assert_eq!(err.status().map(|c| c.to_string()).as_deref(), Some("550"));
        // The transport keeps working, the others still arrive.
        transport
            .send(&simple("good@example.org", "y"))
            .unwrap_or_else(|e| panic!("send: {e}"));
        let got = server.wait_for(1, WAIT);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].to, vec!["good@example.org".to_owned()]);
    }

    #[test]
    fn stop_refuses_connections_and_start_on_the_same_port_serves_again() {
        let server = SmtpServer::start();
        let addr = server.addr();
        let transport = client(&server);
        transport
            .send(&simple("a@example.org", "before"))
            .unwrap_or_else(|e| panic!("send: {e}"));
        assert_eq!(server.wait_for(1, WAIT).len(), 1);
        // Also a client stuck in the middle of a session must not hold up stop().
        let mut stuck = raw_connect(&server);
        talk(&mut stuck, "EHLO stuck");
        let t = Instant::now();
        server.stop();
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "stop took {:?}",
            t.elapsed()
        );
        assert!(
            refused(addr),
            "connections to a stopped server must be refused"
        );
        // The pooled connection is gone too: the client sees an error, not a hang.
        let err = transport
            .send(&simple("a@example.org", "while down"))
            .err()
            .unwrap_or_else(|| panic!("sent to a stopped server"));
        assert!(!err.is_permanent(), "down must not look permanent: {err}");

        let again = SmtpServer::start_on(addr.port());
        assert_eq!(again.addr(), addr);
        transport
            .send(&simple("a@example.org", "after"))
            .unwrap_or_else(|e| panic!("send after restart: {e}"));
        let got = again.wait_for(1, WAIT);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].parsed().subject, "after");
        again.stop();
        assert!(refused(addr));
    }

    #[tokio::test]
    async fn five_hundred_messages_over_one_connection_all_arrive() {
        // lettre's own connection type on one TCP connection with TCP_NODELAY (lettre 0.11.23
        // never sets it: see `the_pooled_transport_reuses_one_connection`).
        use lettre::transport::smtp::client::AsyncSmtpConnection;
        use lettre::transport::smtp::extension::ClientId;
        let server = SmtpServer::start();
        let tcp = tokio::net::TcpStream::connect(server.addr())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        tcp.set_nodelay(true).unwrap_or_else(|e| panic!("{e}"));
        let mut conn =
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &ClientId::default())
                .await
                .unwrap_or_else(|e| panic!("ehlo: {e}"));
        let t = Instant::now();
        for i in 0..500 {
            let msg = simple(&format!("p{i:04}@example.org"), &format!("{SUBJECT} #{i}"));
            conn.send(msg.envelope(), &msg.formatted())
                .await
                .unwrap_or_else(|e| panic!("send {i}: {e}"));
        }
        let elapsed = t.elapsed();
        let _ = conn.quit().await;
        let got = server.wait_for(500, WAIT);
        assert_eq!(got.len(), 500);
        assert_eq!(server.connections(), 1);
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.to, vec![format!("p{i:04}@example.org")]);
        }
        assert_eq!(got[499].parsed().subject, format!("{SUBJECT} #499"));
        // No 40 ms stall per message (that would be 20 s).
        assert!(
            elapsed < Duration::from_secs(10),
            "500 messages took {elapsed:?}"
        );
    }

    #[test]
    fn the_pooled_transport_reuses_one_connection() {
        // lettre 0.11.23 leaves Nagle on and writes the body and the final "\r\n.\r\n" in
        // two writes: every message then waits for the server's delayed ACK (~40 ms on
        // Linux). Fifty messages are enough to show the reuse without a long test.
        let server = SmtpServer::start();
        let transport = client(&server);
        for i in 0..50 {
            transport
                .send(&simple(&format!("p{i:04}@example.org"), &format!("#{i}")))
                .unwrap_or_else(|e| panic!("send {i}: {e}"));
        }
        let got = server.wait_for(50, WAIT);
        assert_eq!(got.len(), 50);
        assert_eq!(
            server.connections(),
            1,
            "the pooled client should reuse one connection"
        );
        assert_eq!(got[49].parsed().subject, "#49");
    }

    #[test]
    fn several_servers_run_side_by_side() {
        let servers: Vec<SmtpServer> = (0..4).map(|_| SmtpServer::start()).collect();
        let ports: HashSet<u16> = servers.iter().map(|s| s.addr().port()).collect();
        assert_eq!(ports.len(), 4);
        std::thread::scope(|scope| {
            for (i, server) in servers.iter().enumerate() {
                scope.spawn(move || {
                    let transport = client(server);
                    for j in 0..20 {
                        transport
                            .send(&simple(&format!("s{i}m{j}@example.org"), "x"))
                            .unwrap_or_else(|e| panic!("send: {e}"));
                    }
                });
            }
        });
        for (i, server) in servers.iter().enumerate() {
            let got = server.received();
            assert_eq!(got.len(), 20);
            assert!(got.iter().all(|r| r.to[0].starts_with(&format!("s{i}m"))));
        }
    }

    #[test]
    fn a_client_gone_in_the_middle_of_data_leaves_nothing_and_wedges_nothing() {
        let server = SmtpServer::start();
        // Like a kill -9 of the sender: the socket closes in the middle of DATA.
        let mut s = raw_connect(&server);
        assert!(talk(&mut s, "EHLO killed").starts_with("250"));
        assert!(talk(&mut s, "MAIL FROM:<nhacviec@example.org>").starts_with("250"));
        assert!(talk(&mut s, "RCPT TO:<a@example.org>").starts_with("250"));
        assert!(talk(&mut s, "DATA").starts_with("354"));
        s.write_all(b"Subject: half\r\n\r\nhalf a mes")
            .unwrap_or_else(|e| panic!("{e}"));
        drop(s);
        // A client that connects and then says nothing does not hold anyone up either.
        let _silent = raw_connect(&server);
        client(&server)
            .send(&simple("b@example.org", "whole"))
            .unwrap_or_else(|e| panic!("send: {e}"));
        let got = server.wait_for(1, WAIT);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(server.received().len(), 1);
        assert_eq!(got[0].parsed().subject, "whole");
        assert!(server.shared.lock().conns.len() <= 2);
    }

    #[test]
    fn raw_protocol_replies() {
        let server = SmtpServer::start();
        let mut s = raw_connect(&server);
        assert!(talk(&mut s, "MAIL FROM:<a@example.org>").starts_with("503"));
        let ehlo = talk(&mut s, "EHLO me");
        assert!(
            ehlo.contains("250-8BITMIME") && !ehlo.contains("AUTH"),
            "{ehlo}"
        );
        assert!(talk(&mut s, "DATA").starts_with("503"));
        assert!(talk(&mut s, "RCPT TO:<x@example.org>").starts_with("503"));
        assert!(talk(&mut s, "MAIL FROM:<>").starts_with("250"));
        assert!(talk(&mut s, "DATA").starts_with("554"));
        assert!(talk(&mut s, "RSET").starts_with("250"));
        assert!(talk(&mut s, "NOOP").starts_with("250"));
        assert!(talk(&mut s, "AUTH PLAIN AGEAYg==").starts_with("502"));
        assert!(talk(&mut s, "BOGUS").starts_with("500"));
        assert!(talk(&mut s, "mail from: <A@Example.org> BODY=8BITMIME").starts_with("250"));
        assert!(talk(&mut s, "RCPT TO:<b@example.org>").starts_with("250"));
        assert!(talk(&mut s, "DATA").starts_with("354"));
        s.write_all(b"Subject: dots\r\n\r\n..leading\r\n.\r\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(read_reply(&mut s).starts_with("250"));
        assert!(talk(&mut s, "QUIT").starts_with("221"));
        let got = server.received();
        assert_eq!(got[0].from, "A@Example.org");
        assert_eq!(got[0].raw, b"Subject: dots\r\n\r\n.leading\r\n");
    }

    #[test]
    fn auth_plain_and_login_accept_the_configured_user_and_refuse_others() {
        let server = SmtpServer::with_auth("nhacviec", "mật khẩu");
        let with = |user: &str, pass: &str, mechanism| {
            SmtpTransport::builder_dangerous("127.0.0.1")
                .port(server.addr().port())
                .credentials(Credentials::new(user.to_owned(), pass.to_owned()))
                .authentication(vec![mechanism])
                .pool_config(PoolConfig::new().max_size(1))
                .build()
        };
        use lettre::transport::smtp::authentication::Mechanism;
        for mechanism in [Mechanism::Plain, Mechanism::Login] {
            with("nhacviec", "mật khẩu", mechanism)
                .send(&simple("a@example.org", "authed"))
                .unwrap_or_else(|e| panic!("{mechanism:?}: {e}"));
            let err = with("nhacviec", "sai", mechanism)
                .send(&simple("a@example.org", "wrong password"))
                .err()
                .unwrap_or_else(|| panic!("{mechanism:?}: a wrong password was accepted"));
            assert_eq!(err.status().map(|c| c.to_string()).as_deref(), Some("535"));
            assert!(err.is_permanent());
        }
        // Without credentials: MAIL is refused.
        let err = client(&server)
            .send(&simple("a@example.org", "anonymous"))
            .err()
            .unwrap_or_else(|| panic!("accepted mail without AUTH"));
        assert_eq!(err.status().map(|c| c.to_string()).as_deref(), Some("530"));
        assert_eq!(server.received().len(), 2);
    }
}
