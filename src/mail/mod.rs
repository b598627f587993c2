//! The mailer: builds messages with lettre and sends them by SMTP, or into the outbox folder.
//!
//! Transports (`mail.smtp` in the config):
//! - `smtp://host:port` — plain SMTP (tests, a local relay); `smtp://host:587?tls=required` —
//!   STARTTLS; `smtps://host:465` — TLS from the start. A user name goes in the URL
//!   (`smtps://nhacviec%40truong.edu.vn@smtp.gmail.com`), the password in the environment:
//!   `NGAYLE_SMTP_PASSWORD`, or a file named by `NGAYLE_SMTP_PASSWORD_FILE`. One connection is
//!   kept open and reused (see `SmtpSender` for why it is ours and not lettre's pool).
//! - none: each message is written as one `.eml` file in `mail.outbox`, so a fresh install works
//!   offline and the admin can open what would have been sent. The file is named for when it
//!   was written (Vietnam time) and whom it is for: `2024-04-29T0700-an.eml` (`-2`, `-3`… when
//!   the same person gets two in a minute; `send-test` for a test email).
//!
//! Headers are built by lettre (RFC 2047 for Vietnamese, no raw CR/LF can reach a header);
//! ngayle sets its own Message-ID (to record it), Date and Reply-To. Passwords are never
//! logged: [`Mailer::describe`] shows the transport without them.

//!
//! The rule that a reminder's content leaves only after the previous outcome is committed is a
//! type: a transport gets a reminder's bytes only with the store's `Permit` (`letter.rs`).

use std::future::Future;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncFileTransport, AsyncTransport, Tokio1Executor};

use crate::schedule::Settings;
use crate::store::{Claim, Permit, Spent};

mod letter;
mod smtp;

pub use letter::{
    Content, ForReminder, ForTest, Key, Letter, NO_BREAK, Sealed, Unrecorded, WRAP_WIDTH, wrap,
};
use smtp::{SmtpSender, smtp_transport};

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

    /// A reminder's email (text + HTML) with our headers, under the Message-ID of its
    /// `claim`: its content can only go with the store's permit for that claim.
    pub fn reminder(
        &self,
        to: Mailbox,
        subject: &str,
        text: String,
        html: String,
        claim: &Claim<'_>,
    ) -> Letter<ForReminder> {
        let person = claim.keys().first().map_or("", |k| &*k.person_id);
        self.letter(to, subject, text, html, claim.message_id(), person)
    }

    /// An email that is not a reminder (`send-test`): nothing is recorded of it.
    pub fn message(
        &self,
        to: Mailbox,
        subject: &str,
        text: String,
        html: String,
        message_id: &str,
    ) -> Letter<ForTest> {
        self.letter(to, subject, text, html, message_id, "send-test")
    }

    fn letter<L>(
        &self,
        to: Mailbox,
        subject: &str,
        text: String,
        html: String,
        message_id: &str,
        file_stem: &str,
    ) -> Letter<L> {
        // A file name part: ids are checked at load, but a name must not reach another folder
        // whatever they hold.
        let file_stem: String = file_stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        Letter {
            from: self.from.clone(),
            reply_to: self.reply_to.clone(),
            to,
            // Subjects are single-line already; this keeps it so whatever the templates do.
            subject: subject.replace(['\r', '\n'], " "),
            text,
            html,
            message_id: message_id.to_string(),
            file_stem: if file_stem.is_empty() {
                "thu".to_string()
            } else {
                file_stem
            },
            lock: PhantomData,
        }
    }

    /// Sends an email that is not a reminder.
    pub async fn send(&self, letter: &Letter<ForTest>) -> Result<(), SendError> {
        let key = std::future::ready(Ok::<_, std::convert::Infallible>(Unrecorded));
        match self.deliver(letter, key).await {
            Ok((result, ())) => result,
            Err(never) => match never {},
        }
    }

    /// Sends a reminder's email with the permit that `permit` makes (`Store::clear`), working
    /// on the connection meanwhile: the content leaves only once the permit is there. `Err` is
    /// the refusal of a permit (nothing was delivered); `Ok` holds the send's outcome and the
    /// spent permit the outcome is made with.
    pub async fn send_reminder<'c, E>(
        &self,
        letter: &Letter<ForReminder>,
        permit: impl Future<Output = Result<Permit<'c>, E>>,
    ) -> Result<(Result<(), SendError>, Spent), E> {
        self.deliver(letter, permit).await
    }

    /// Every transport, for either kind of letter: the content only with the key.
    async fn deliver<K: Key, E>(
        &self,
        letter: &Letter<K::Lock>,
        key: impl Future<Output = Result<K, E>>,
    ) -> Result<(Result<(), SendError>, K::Done), E> {
        match &self.transport {
            Transport::Smtp(t) => t.send(letter, key).await,
            Transport::Outbox(t) => {
                let key = key.await?;
                Ok(self.write_outbox(t, letter, key).await)
            }
        }
    }

    async fn write_outbox<K: Key>(
        &self,
        t: &AsyncFileTransport<Tokio1Executor>,
        letter: &Letter<K::Lock>,
        key: K,
    ) -> (Result<(), SendError>, K::Done) {
        // Private: each email carries the feed link with its token. The folder is made 0700
        // (when ngayle creates it) and each file 0600, whatever the umask.
        if let Err(e) = crate::store::create_private_dir(&self.outbox) {
            let e = SendError::Unavailable(format!("{}: {e}", self.outbox.display()));
            return (Err(e), key.spend());
        }
        let sealed = match letter.seal(true) {
            Ok(s) => s,
            Err(e) => return (Err(SendError::Permanent(e.to_string())), key.spend()),
        };
        let envelope = sealed.envelope().clone();
        let (content, done) = key.open(sealed);
        let written = async {
            let content = content?;
            let id = t
                .send_raw(&envelope, content.bytes())
                .await
                .map_err(|e| SendError::Unavailable(e.to_string()))?;
            let written = self.outbox.join(format!("{id}.eml"));
            let unavailable = |e: std::io::Error| {
                SendError::Unavailable(format!("{}: {e}", self.outbox.display()))
            };
            private(&written).map_err(unavailable)?;
            let stamp = chrono::Utc::now()
                .with_timezone(&crate::vietnam::ZONE)
                .format("%Y-%m-%dT%H%M");
            rename_new(
                &written,
                &self.outbox,
                &format!("{stamp}-{}", letter.file_stem),
            )
            .map_err(unavailable)
        };
        (written.await, done)
    }
}

/// Gives the file `from` (in `dir`) the name `STEM.eml`, or `STEM-2.eml`, `STEM-3.eml`… when
/// that is taken: by a hard link, which never replaces a file, then the old name removed.
fn rename_new(from: &std::path::Path, dir: &std::path::Path, stem: &str) -> std::io::Result<()> {
    for n in 1..1000u32 {
        let name = if n == 1 {
            format!("{stem}.eml")
        } else {
            format!("{stem}-{n}.eml")
        };
        match std::fs::hard_link(from, dir.join(name)) {
            Ok(()) => return std::fs::remove_file(from),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{stem}.eml: quá nhiều thư cùng tên"),
    ))
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
