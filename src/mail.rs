//! The mailer: builds messages with lettre and sends them by SMTP, or into the outbox folder.
//!
//! Transports (`mail.smtp` in the config):
//! - `smtp://host:port` — plain SMTP (tests, a local relay); `smtp://host:587?tls=required` —
//!   STARTTLS; `smtps://host:465` — TLS from the start. A user name goes in the URL
//!   (`smtps://nhacviec%40truong.edu.vn@smtp.gmail.com`), the password in the environment:
//!   `NGAYLE_SMTP_PASSWORD`, or a file named by `NGAYLE_SMTP_PASSWORD_FILE`. One connection is
//!   kept open and reused (see `SmtpSender` for why it is ours and not lettre's pool).
//! - none: each message is written as one `.eml` file in `mail.outbox`, so a fresh install works
//!   offline and the admin can open what would have been sent.
//!
//! Headers are built by lettre (RFC 2047 for Vietnamese, no raw CR/LF can reach a header);
//! ngayle sets its own Message-ID (to record it), Date and Reply-To. Passwords are never
//! logged: [`Mailer::describe`] shows the transport without them.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentTransferEncoding;
use lettre::message::{Body, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::{ClientId, Extension};
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};

use crate::schedule::Settings;

/// How long one SMTP conversation step may take (connect, greeting, EHLO, STARTTLS, AUTH,
/// NOOP, MAIL, RCPT, DATA).
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the server may take to answer a message's content: RFC 5321 §4.5.3.2.6 gives it
/// ten minutes. A client that gives up sooner, on a slow server, sends the email again.
pub const DATA_REPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// Why the mailer could not be set up (a configuration mistake).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("địa chỉ gửi `{0}` không hợp lệ: {1}")]
    Address(String, String),
    #[error("địa chỉ máy chủ SMTP không hợp lệ: {0}")]
    Url(String),
    #[error("không tạo được thư: {0}")]
    Build(String),
}

/// Why one message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The server cannot be reached or refuses us (down, wrong password, TLS): nothing else
    /// will go through now either.
    #[error("máy chủ thư không dùng được: {0}")]
    Unavailable(String),
    /// This message failed for now (4xx): try it again later.
    #[error("lỗi tạm thời: {0}")]
    Transient(String),
    /// This message is refused for good (5xx for the recipient).
    #[error("bị từ chối: {0}")]
    Permanent(String),
}

enum Transport {
    Smtp(Box<SmtpSender>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

/// How to reach the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// `smtp://`: plain (a local relay, tests).
    Plain,
    /// `smtp://…?tls=required` (STARTTLS, refuse without it) or `?tls=opportunistic`.
    StartTls { required: bool },
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

/// One SMTP connection, kept open and reused for message after message (ngayle sends one
/// message at a time, so one connection is the whole pool).
///
/// Why not lettre's pooled `AsyncSmtpTransport`: it writes a message's body and its final
/// `<CRLF>.<CRLF>` in two writes on a socket without `TCP_NODELAY`, so each message waits for
/// the server's delayed ACK (40 ms on Linux): 21 messages/s against 515 for a plain client in
/// `scripts/bench-mail.sh`. Here the socket is ours, with `TCP_NODELAY`; lettre still speaks
/// the protocol (`AsyncSmtpConnection`: EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA).
struct SmtpSender {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    conn: tokio::sync::Mutex<Option<(AsyncSmtpConnection, std::time::Instant)>>,
}

/// An idle connection older than this is tested (NOOP) before reuse.
const IDLE_CHECK: Duration = Duration::from_secs(30);

impl SmtpSender {
    /// A new connection, greeted, secured and authenticated; every step has a deadline.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let silent = |step: &str| {
            SendError::Unavailable(format!(
                "{}:{}: máy chủ không trả lời ({step}) sau {} giây",
                self.host,
                self.port,
                SMTP_TIMEOUT.as_secs()
            ))
        };
        let tls = || TlsParameters::new(self.host.clone()).map_err(classify);
        let mut conn = match self.security {
            Security::Implicit => tokio::time::timeout(
                SMTP_TIMEOUT * 2,
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(SMTP_TIMEOUT),
                    &self.hello,
                    Some(tls()?),
                    None,
                ),
            )
            .await
            .map_err(|_| silent("TLS, EHLO"))?
            .map_err(classify)?,
            Security::Plain | Security::StartTls { .. } => {
                let addr = (self.host.as_str(), self.port);
                let unreachable =
                    |e: String| SendError::Unavailable(format!("{}:{}: {e}", self.host, self.port));
                let stream =
                    tokio::time::timeout(SMTP_TIMEOUT, tokio::net::TcpStream::connect(addr))
                        .await
                        .map_err(|_| unreachable("quá thời gian kết nối".to_string()))?
                        .map_err(|e| unreachable(e.to_string()))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| unreachable(e.to_string()))?;
                let connecting =
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello);
                let mut conn = tokio::time::timeout(SMTP_TIMEOUT, connecting)
                    .await
                    .map_err(|_| unreachable("máy chủ không chào (EHLO)".to_string()))?
                    .map_err(classify)?;
                if let Security::StartTls { required } = self.security
                    && (required || conn.can_starttls())
                {
                    tokio::time::timeout(SMTP_TIMEOUT, conn.starttls(tls()?, &self.hello))
                        .await
                        .map_err(|_| silent("STARTTLS"))?
                        .map_err(classify)?;
                }
                conn
            }
        };
        if let Some(c) = &self.credentials {
            tokio::time::timeout(
                SMTP_TIMEOUT,
                conn.auth(&[Mechanism::Plain, Mechanism::Login], c),
            )
            .await
            .map_err(|_| silent("AUTH"))?
            .map_err(|e| SendError::Unavailable(e.to_string()))?;
        }
        Ok(conn)
    }

    /// Sends one message on the kept connection (opened first if need be), while `gate` runs
    /// beside it: the connection, MAIL, RCPT and DATA go on while `gate` works, and the
    /// message's content — what makes the server take it — goes only once `gate` is done. If
    /// `gate` fails, the message is abandoned mid-transaction (the connection is dropped before
    /// the content, so the server discards it) and the gate's error is returned.
    async fn send_after<E>(
        &self,
        letter: &Letter,
        gate: impl Future<Output = Result<(), E>>,
    ) -> Result<Result<(), SendError>, E> {
        let mut slot = self.conn.lock().await;
        let envelope = async {
            if let Some((conn, used)) = slot.as_mut()
                && (conn.has_broken()
                    || (used.elapsed() > IDLE_CHECK
                        && !tokio::time::timeout(SMTP_TIMEOUT, conn.test_connected())
                            .await
                            .unwrap_or(false)))
            {
                *slot = None;
            }
            let (mut conn, _) = match slot.take() {
                Some(c) => c,
                None => (self.connect().await?, std::time::Instant::now()),
            };
            let eight_bit = conn.server_info().supports_feature(Extension::EightBitMime);
            let message = letter
                .build(eight_bit)
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            let bytes = message.formatted();
            let steps = envelope_steps(&mut conn, message.envelope(), &bytes);
            match tokio::time::timeout(SMTP_TIMEOUT * 2, steps).await {
                Ok(Ok(())) => Ok((conn, bytes)),
                Ok(Err(e)) => {
                    // Refused before the content: end the transaction politely, reconnect next
                    // time (as lettre does).
                    let _ = tokio::time::timeout(SMTP_TIMEOUT, conn.abort()).await;
                    Err(classify(e))
                }
                Err(_) => Err(SendError::Unavailable("máy chủ không trả lời".to_string())),
            }
        };
        let (gate, envelope) = tokio::join!(gate, envelope);
        // A failed gate drops the connection in the middle of DATA: nothing is delivered.
        gate?;
        let (mut conn, bytes) = match envelope {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let content = async {
            match std::str::from_utf8(&bytes) {
                Ok(text) => conn.command(Content(text)).await,
                Err(_) => conn.message(&bytes).await,
            }
        };
        let result = match tokio::time::timeout(DATA_REPLY_TIMEOUT, content).await {
            Ok(r) => r.map(drop).map_err(classify),
            // The server stopped answering mid-message: this connection is done.
            Err(_) => {
                return Ok(Err(SendError::Unavailable(
                    "máy chủ không trả lời".to_string(),
                )));
            }
        };
        if !conn.has_broken() {
            *slot = Some((conn, std::time::Instant::now()));
        }
        Ok(result)
    }
}

/// A message's content as it goes after DATA: dot-stuffed (RFC 5321 §4.5.2) and ended by
/// `<CRLF>.<CRLF>`, as lettre's `AsyncSmtpConnection::message` sends it — but in one write,
/// where lettre makes two (the content, then the end): the server reads it at once instead of
/// waking twice. Sent with `command`, which writes it and reads the server's reply.
struct Content<'a>(&'a str);

impl std::fmt::Display for Content<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.starts_with('.') {
            f.write_str(".")?;
        }
        let mut parts = self.0.split("\r\n.");
        if let Some(first) = parts.next() {
            f.write_str(first)?;
        }
        for part in parts {
            f.write_str("\r\n..")?;
            f.write_str(part)?;
        }
        f.write_str("\r\n.\r\n")
    }
}

/// MAIL, RCPT and DATA for one message (what `AsyncSmtpConnection::send` does before the
/// content), with 8BITMIME / SMTPUTF8 when the message or the addresses need them.
async fn envelope_steps(
    conn: &mut AsyncSmtpConnection,
    envelope: &lettre::address::Envelope,
    bytes: &[u8],
) -> Result<(), lettre::transport::smtp::Error> {
    use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
    use lettre::transport::smtp::extension::{MailBodyParameter, MailParameter};
    let mut options = Vec::new();
    let addresses = envelope.from().into_iter().chain(envelope.to());
    if addresses.map(AsRef::<str>::as_ref).any(|a| !a.is_ascii()) {
        options.push(MailParameter::SmtpUtfEight);
    }
    if !bytes.is_ascii() {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), options))
        .await?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), Vec::new())).await?;
    }
    conn.command(Data).await?;
    Ok(())
}

/// Sends messages with the configured transport.
pub struct Mailer {
    transport: Transport,
    describe: String,
    outbox: PathBuf,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    domain: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.describe)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer of `settings` (the SMTP password, read from the environment by the loader,
    /// is `settings.smtp_password`).
    pub fn new(settings: &Settings) -> Result<Mailer, MailError> {
        let from: Mailbox =
            settings
                .mail_from
                .parse()
                .map_err(|e: lettre::address::AddressError| {
                    MailError::Address(settings.mail_from.clone(), e.to_string())
                })?;
        let reply_to = match &settings.reply_to {
            Some(r) => Some(r.parse().map_err(|e: lettre::address::AddressError| {
                MailError::Address(r.clone(), e.to_string())
            })?),
            None => None,
        };
        let domain = from.email.domain().to_string();
        let (transport, describe) = match &settings.smtp {
            None => (
                Transport::Outbox(AsyncFileTransport::new(&settings.outbox)),
                format!("thư mục outbox {}", settings.outbox.display()),
            ),
            Some(url) => {
                let password = settings.smtp_password.as_ref().map(|p| p.expose());
                let (transport, describe) = smtp_transport(url.expose(), password)?;
                (Transport::Smtp(Box::new(transport)), describe)
            }
        };
        Ok(Mailer {
            transport,
            describe,
            outbox: settings.outbox.clone(),
            from,
            reply_to,
            domain,
        })
    }

    /// The transport, for logs and messages: never the password.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The sender.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// A fresh Message-ID (`<…@domain of the sender>`), unique per call.
    pub fn new_message_id(&self, seed: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let hash = crate::fnv1a(format!("{seed}/{now}/{}", std::process::id()).as_bytes());
        format!("<{hash:016x}.{now:x}@{}>", self.domain)
    }

    /// A multipart (text + HTML) email with our headers, to be built for the transport when it
    /// is sent.
    pub fn message(
        &self,
        to: Mailbox,
        subject: &str,
        text: String,
        html: String,
        message_id: &str,
    ) -> Result<Letter, MailError> {
        let letter = Letter {
            from: self.from.clone(),
            reply_to: self.reply_to.clone(),
            to,
            // Subjects are single-line already; this keeps it so whatever the templates do.
            subject: subject.replace(['\r', '\n'], " "),
            text,
            html,
            message_id: message_id.to_string(),
        };
        Ok(letter)
    }

    /// Sends one email.
    pub async fn send(&self, letter: &Letter) -> Result<(), SendError> {
        let ready = std::future::ready(Ok::<(), std::convert::Infallible>(()));
        match self.send_after(letter, ready).await {
            Ok(result) => result,
            Err(never) => match never {},
        }
    }

    /// Sends one email once `gate` is done, working on the connection while it runs (see
    /// `delivery`: the outcome of the previous email is recorded meanwhile). `Err` is the
    /// gate's error, in which case the email was not delivered; `Ok` holds the send's outcome.
    pub async fn send_after<E>(
        &self,
        letter: &Letter,
        gate: impl Future<Output = Result<(), E>>,
    ) -> Result<Result<(), SendError>, E> {
        match &self.transport {
            Transport::Smtp(t) => t.send_after(letter, gate).await,
            Transport::Outbox(t) => {
                gate.await?;
                Ok(self.write_outbox(t, letter).await)
            }
        }
    }

    async fn write_outbox(
        &self,
        t: &AsyncFileTransport<Tokio1Executor>,
        letter: &Letter,
    ) -> Result<(), SendError> {
        // Private: each email carries the feed link with its token. The folder is made 0700
        // (when ngayle creates it) and each file 0600, whatever the umask.
        crate::store::create_private_dir(&self.outbox)
            .map_err(|e| SendError::Unavailable(format!("{}: {e}", self.outbox.display())))?;
        let message = letter
            .build(true)
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let id = t
            .send(message)
            .await
            .map_err(|e| SendError::Unavailable(e.to_string()))?;
        private(&self.outbox.join(format!("{id}.eml")))
            .map_err(|e| SendError::Unavailable(format!("{}: {e}", self.outbox.display())))
    }
}

/// Takes group and other permissions off a file ngayle wrote.
fn private(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// An email ready to be built: the parts and our headers.
#[derive(Debug, Clone)]
pub struct Letter {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    to: Mailbox,
    subject: String,
    text: String,
    html: String,
    message_id: String,
}

impl Letter {
    /// The lettre message. With `eight_bit` (the server takes 8BITMIME, or the outbox) the
    /// parts are UTF-8 text as written — readable in any editor, and a third smaller than
    /// base64 (half the size of quoted-printable for Vietnamese) — unless a line is too long
    /// for 8bit (998 octets), where lettre's choice stands.
    pub fn build(&self, eight_bit: bool) -> Result<Message, MailError> {
        // Plain text is wrapped for reading; HTML is not (its line breaks mean nothing, and one
        // inside an attribute would change it).
        let body = |s: &str, wrap_at: Option<usize>| {
            eight_bit
                .then(|| eight_bit_body(s, wrap_at))
                .flatten()
                .unwrap_or_else(|| Body::new(s.to_string()))
        };
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(self.to.clone())
            .subject(self.subject.clone())
            .message_id(Some(self.message_id.clone()))
            .date_now()
            .user_agent(concat!("ngayle/", env!("CARGO_PKG_VERSION")).to_string());
        if let Some(r) = &self.reply_to {
            b = b.reply_to(r.clone());
        }
        b.multipart(MultiPart::alternative_plain_html(
            body(&self.text, Some(76)),
            body(&self.html, None),
        ))
        .map_err(|e| MailError::Build(e.to_string()))
    }
}

/// `text` as an 8bit body (RFC 6152): with `wrap_at`, long lines broken at spaces under that many
/// octets where they can be (plain text then reads well anywhere); CRLF line ends; `None` when
/// a line is over SMTP's 998 octets or the text holds a NUL or a lone CR. (lettre itself takes
/// 8bit only when every line is under 76 octets, which an HTML line with a URL seldom is.)
fn eight_bit_body(text: &str, wrap_at: Option<usize>) -> Option<Body> {
    let wrapped = match wrap_at {
        Some(limit) => wrap(text, limit),
        None => text.replace("\r\n", "\n"),
    };
    let fits = !wrapped.contains(['\0', '\r']) && wrapped.split('\n').all(|l| l.len() <= 998);
    fits.then(|| {
        let crlf = wrapped.replace('\n', "\r\n");
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    })
}

/// Breaks lines longer than `limit` octets at spaces (continuation lines keep the line's
/// indentation), so that 8bit text reads well in any mail program. A line with no space to
/// break at is left as it is.
pub fn wrap(text: &str, limit: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        let indent: String = line.chars().take_while(|c| *c == ' ').collect();
        let mut rest = line;
        let mut first = true;
        loop {
            let room = if first {
                limit - 1
            } else {
                limit - 1 - indent.len()
            };
            if rest.len() <= room {
                if !first {
                    out.push_str(&indent);
                }
                out.push_str(rest);
                break;
            }
            let mut cut = room;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            let Some(space) = rest[..cut].rfind(' ').filter(|&i| i > indent.len()) else {
                if !first {
                    out.push_str(&indent);
                }
                out.push_str(rest);
                break;
            };
            if !first {
                out.push_str(&indent);
            }
            out.push_str(&rest[..space]);
            out.push('\n');
            rest = &rest[space + 1..];
            first = false;
        }
    }
    out
}

/// Sorts an SMTP error: per message or for the whole server, for now or for good.
fn classify(e: lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(|c| c.to_string());
    let text = e.to_string();
    match code.as_deref() {
        // Authentication and "we do not talk to you": the server is unusable until fixed.
        Some("421" | "530" | "534" | "535" | "538" | "454") => SendError::Unavailable(text),
        Some(_) if e.is_permanent() => SendError::Permanent(text),
        Some(_) if e.is_transient() => SendError::Transient(text),
        // Connection refused, timeout, TLS, a broken connection: the server side.
        _ => SendError::Unavailable(text),
    }
}

/// The SMTP sender of `url`, with `password` (else the URL's), and a description without it.
fn smtp_transport(url: &str, password: Option<&str>) -> Result<(SmtpSender, String), MailError> {
    let parsed = url::Url::parse(url).map_err(|e| MailError::Url(e.to_string()))?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    if host.is_empty() {
        return Err(MailError::Url(format!(
            "`{}` không có tên máy chủ",
            redact(&parsed)
        )));
    }
    let tls = parsed
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let security = match (parsed.scheme(), tls.as_deref()) {
        ("smtps", _) => Security::Implicit,
        ("smtp", None | Some("none")) => Security::Plain,
        ("smtp", Some("required")) => Security::StartTls { required: true },
        ("smtp", Some("opportunistic")) => Security::StartTls { required: false },
        ("smtp", Some(other)) => {
            return Err(MailError::Url(format!(
                "`tls={other}`: dùng `tls=required` (STARTTLS) hoặc `tls=opportunistic`"
            )));
        }
        (other, _) => return Err(MailError::Url(format!("giao thức `{other}` không hỗ trợ"))),
    };
    let port = parsed.port().unwrap_or(match security {
        Security::Implicit => 465,
        Security::StartTls { .. } => 587,
        Security::Plain => 25,
    });
    let user = percent_encoding::percent_decode_str(parsed.username())
        .decode_utf8_lossy()
        .into_owned();
    let password = match password {
        Some(p) => Some(p.to_string()),
        None => parsed.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        }),
    };
    let credentials =
        (!user.is_empty()).then(|| Credentials::new(user, password.unwrap_or_default()));
    let sender = SmtpSender {
        host,
        port,
        security,
        credentials,
        hello: ClientId::default(),
        conn: tokio::sync::Mutex::new(None),
    };
    Ok((sender, redact(&parsed)))
}

/// The URL without its password.
fn redact(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::{Content, Letter, wrap};

    #[test]
    fn a_line_break_in_a_name_or_subject_cannot_add_a_header() {
        // The files cannot carry one any more (control characters are refused at load); this
        // keeps lettre's own protection under test, on what ngayle hands it.
        let evil = "Lễ\r\nBcc: evil@example.org\r\nX-Evil: 1";
        // As `delivery::compose` makes them: "Name <addr>" parsed, the bare address if that
        // fails. (`Mailbox::new` with such a name would make lettre panic when it writes the
        // header — a `Display` error unwrapped — so names are never put in that way.)
        let mailbox = |name: &str, addr: &str| {
            format!("{name} <{addr}>")
                .parse::<lettre::message::Mailbox>()
                .or_else(|_| addr.parse())
                .expect("a valid address")
        };
        let letter = Letter {
            from: mailbox(evil, "nhacviec@example.org"),
            reply_to: Some(mailbox(evil, "vanthu@example.org")),
            to: mailbox(evil, "an@example.org"),
            subject: evil.to_string(),
            text: "Nội dung.".to_string(),
            html: "<p>Nội dung.</p>".to_string(),
            message_id: "<m@example.org>".to_string(),
        };
        for eight_bit in [false, true] {
            let message = letter.build(eight_bit).expect("build");
            assert_eq!(
                message.envelope().to(),
                ["an@example.org".parse::<lettre::Address>().expect("addr")],
                "no extra envelope recipient"
            );
            let wire = String::from_utf8_lossy(&message.formatted()).into_owned();
            let head = wire.split("\r\n\r\n").next().unwrap_or_default();
            for line in head.split("\r\n") {
                let name = line
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                assert!(
                    name != "bcc" && name != "x-evil",
                    "injected header line {line:?} in\n{head}"
                );
            }
        }
    }

    #[test]
    fn content_is_dot_stuffed_and_ended_in_one_piece() {
        let wire = |s: &str| Content(s).to_string();
        assert_eq!(wire("a\r\nb"), "a\r\nb\r\n.\r\n");
        assert_eq!(
            wire(".a\r\n.\r\n..b\r\nc."),
            "..a\r\n..\r\n...b\r\nc.\r\n.\r\n"
        );
        assert_eq!(wire(""), "\r\n.\r\n");
    }

    #[test]
    fn wrapping_keeps_words_and_indentation() {
        let line = format!(
            "   Việc cần làm: {}",
            "treo cờ Tổ quốc đúng quy cách ".repeat(8)
        );
        let w = wrap(&line, 76);
        for l in w.lines() {
            assert!(l.len() < 76, "{} octets: {l:?}", l.len());
            assert!(l.starts_with("   "), "{l:?}");
        }
        assert_eq!(
            w.split_whitespace().collect::<Vec<_>>(),
            line.split_whitespace().collect::<Vec<_>>()
        );
        assert_eq!(wrap("ngắn\ndòng", 76), "ngắn\ndòng");
        let url = format!("http://{}", "a".repeat(100));
        assert_eq!(wrap(&url, 76), url, "nothing to break at");
    }
}
