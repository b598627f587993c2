//! The mailer: builds messages with lettre and sends them by SMTP, or into the outbox folder.
//!
//! Transports (`mail.smtp` in the config):
//! - `smtp://host:port` — plain SMTP (tests, a local relay); `smtp://host:587?tls=required` —
//!   STARTTLS; `smtps://host:465` — TLS from the start. A user name goes in the URL
//!   (`smtps://nhacviec%40truong.edu.vn@smtp.gmail.com`), the password in the environment:
//!   `NGAYLE_SMTP_PASSWORD`, or a file named by `NGAYLE_SMTP_PASSWORD_FILE`. Connections are
//!   pooled and reused.
//! - none: each message is written as one `.eml` file in `mail.outbox`, so a fresh install works
//!   offline and the admin can open what would have been sent.
//!
//! Headers are built by lettre (RFC 2047 for Vietnamese, no raw CR/LF can reach a header);
//! ngayle sets its own Message-ID (to record it), Date and Reply-To. Passwords are never
//! logged: [`Mailer::describe`] shows the transport without them.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::schedule::Settings;

/// How long one SMTP conversation step may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the mailer could not be set up (a configuration mistake).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("địa chỉ gửi `{0}` không hợp lệ: {1}")]
    Address(String, String),
    #[error("địa chỉ máy chủ SMTP không hợp lệ: {0}")]
    Url(String),
    #[error("không đọc được mật khẩu SMTP từ {path}: {source}")]
    PasswordFile {
        path: String,
        source: std::io::Error,
    },
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
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
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
    /// The mailer of `settings`; the SMTP password comes from the environment.
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
                let (transport, describe) = smtp_transport(url.expose())?;
                (Transport::Smtp(transport), describe)
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

    /// A multipart (text + HTML) message with our headers.
    pub fn message(
        &self,
        to: Mailbox,
        subject: &str,
        text: String,
        html: String,
        message_id: &str,
    ) -> Result<Message, MailError> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            // Subjects are single-line already; this keeps it so whatever the templates do.
            .subject(subject.replace(['\r', '\n'], " "))
            .message_id(Some(message_id.to_string()))
            .date_now()
            .user_agent(concat!("ngayle/", env!("CARGO_PKG_VERSION")).to_string());
        if let Some(r) = &self.reply_to {
            b = b.reply_to(r.clone());
        }
        b.multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| MailError::Build(e.to_string()))
    }

    /// Sends one message.
    pub async fn send(&self, message: &Message) -> Result<(), SendError> {
        match &self.transport {
            Transport::Smtp(t) => t.send(message.clone()).await.map(drop).map_err(classify),
            Transport::Outbox(t) => {
                tokio::fs::create_dir_all(&self.outbox).await.map_err(|e| {
                    SendError::Unavailable(format!("{}: {e}", self.outbox.display()))
                })?;
                t.send(message.clone())
                    .await
                    .map(drop)
                    .map_err(|e| SendError::Unavailable(e.to_string()))
            }
        }
    }
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

/// The SMTP transport of `url`, with the password from the environment, and a description
/// without it.
fn smtp_transport(url: &str) -> Result<(AsyncSmtpTransport<Tokio1Executor>, String), MailError> {
    let parsed = url::Url::parse(url).map_err(|e| MailError::Url(e.to_string()))?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    if host.is_empty() {
        return Err(MailError::Url(format!(
            "`{}` không có tên máy chủ",
            redact(&parsed)
        )));
    }
    let user = percent_encoding::percent_decode_str(parsed.username())
        .decode_utf8_lossy()
        .into_owned();
    let password = match (
        std::env::var("NGAYLE_SMTP_PASSWORD_FILE"),
        std::env::var("NGAYLE_SMTP_PASSWORD"),
    ) {
        (Ok(path), _) if !path.is_empty() => Some(
            std::fs::read_to_string(&path)
                .map_err(|source| MailError::PasswordFile { path, source })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
        (_, Ok(p)) if !p.is_empty() => Some(p),
        _ => parsed.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        }),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| MailError::Url(format!("{}: {e}", redact(&parsed))))?
        .timeout(Some(SMTP_TIMEOUT))
        .pool_config(
            PoolConfig::new()
                .max_size(2)
                .idle_timeout(Duration::from_secs(60)),
        );
    if !user.is_empty() {
        builder = builder.credentials(Credentials::new(user, password.unwrap_or_default()));
    }
    Ok((builder.build(), redact(&parsed)))
}

/// The URL without its password.
fn redact(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}
