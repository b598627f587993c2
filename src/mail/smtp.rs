//! SMTP: one kept-open connection of ours (`SmtpSender`), every step under a deadline, and the
//! sorting of the server's answers into [`SendError`]s. The message's content is written only
//! with its [`Key`] (see `letter`).

use std::future::Future;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::{ClientId, Extension};

use super::letter::{Key, Letter};
use super::{DATA_REPLY_TIMEOUT, MailError, SMTP_TIMEOUT, SendError};

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

/// One SMTP connection of ours, kept open and reused (one message at a time, so one
/// connection is the whole pool); lettre speaks the protocol on it (`AsyncSmtpConnection`).
///
/// Ours only for the socket: released lettre (0.11.23) never sets `TCP_NODELAY`, so each message
/// waits 40 ms for the server's delayed ACK (21 msg/s, BENCHMARKS.md) — fixed upstream in
/// lettre/lettre#1159, not yet released; once it is, lettre's `connect_tokio1` replaces the
/// socket code of `connect`. (MAIL/RCPT/DATA stay ours, `envelope_steps`: the store's permit
/// is made while they go, which lettre's one-call `send` and its pool cannot overlap.)
pub(super) struct SmtpSender {
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
                        .map_err(|e| unreachable(crate::diag::with_os_hint(&e)))?;
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

    /// Sends one message on the kept connection (opened first if need be) while its key is
    /// being made: the connection, MAIL, RCPT and DATA go on meanwhile, and the message's
    /// content — what makes the server take it — goes only with the key (for a reminder, the
    /// store's permit). If the key is refused, the connection is dropped in the middle of
    /// DATA, so the server discards the transaction, and the refusal is returned.
    pub(super) async fn send<K: Key, E>(
        &self,
        letter: &Letter<K::Lock>,
        key: impl Future<Output = Result<K, E>>,
    ) -> Result<(Result<(), SendError>, K::Done), E> {
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
            let sealed = letter
                .seal(eight_bit)
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            let steps = envelope_steps(&mut conn, sealed.envelope(), sealed.is_eight_bit());
            match tokio::time::timeout(SMTP_TIMEOUT * 2, steps).await {
                Ok(Ok(())) => Ok((conn, sealed)),
                Ok(Err(e)) => {
                    // Refused before the content: end the transaction politely, reconnect next
                    // time (as lettre does).
                    let _ = tokio::time::timeout(SMTP_TIMEOUT, conn.abort()).await;
                    Err(classify(e))
                }
                Err(_) => Err(SendError::Unavailable("máy chủ không trả lời".to_string())),
            }
        };
        let (key, envelope) = tokio::join!(key, envelope);
        // A refused key drops the connection in the middle of DATA: nothing is delivered.
        let key = key?;
        let (mut conn, sealed) = match envelope {
            Ok(c) => c,
            Err(e) => return Ok((Err(e), key.spend())),
        };
        let (content, done) = key.open(sealed);
        let content = match content {
            Ok(c) => c,
            Err(e) => return Ok((Err(e), done)),
        };
        let write = async {
            match std::str::from_utf8(content.bytes()) {
                Ok(text) => conn.command(OneWrite(text)).await,
                Err(_) => conn.message(content.bytes()).await,
            }
        };
        let result = match tokio::time::timeout(DATA_REPLY_TIMEOUT, write).await {
            Ok(r) => r.map(drop).map_err(classify),
            // The server stopped answering mid-message: this connection is done.
            Err(_) => {
                return Ok((
                    Err(SendError::Unavailable("máy chủ không trả lời".to_string())),
                    done,
                ));
            }
        };
        if !conn.has_broken() {
            *slot = Some((conn, std::time::Instant::now()));
        }
        Ok((result, done))
    }
}

/// A message's content as it goes after DATA: dot-stuffed (RFC 5321 §4.5.2) and ended by
/// `<CRLF>.<CRLF>`, as lettre's `AsyncSmtpConnection::message` sends it — but stuffed by
/// splitting the text where lettre's codec goes byte by byte, and in one write where lettre
/// makes two: 32,000 fewer instructions an email (4 % of sending one: callgrind, BENCHMARKS.md).
struct OneWrite<'a>(&'a str);

impl std::fmt::Display for OneWrite<'_> {
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
    eight_bit: bool,
) -> Result<(), lettre::transport::smtp::Error> {
    use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
    use lettre::transport::smtp::extension::{MailBodyParameter, MailParameter};
    let mut options = Vec::new();
    let addresses = envelope.from().into_iter().chain(envelope.to());
    if addresses.map(AsRef::<str>::as_ref).any(|a| !a.is_ascii()) {
        options.push(MailParameter::SmtpUtfEight);
    }
    if eight_bit {
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

/// Sorts an SMTP error: per message or for the whole server, for now or for good.
fn classify(e: lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(|c| c.to_string());
    let text = crate::diag::with_os_hint(&e);
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
pub(super) fn smtp_transport(
    url: &str,
    password: Option<&str>,
) -> Result<(SmtpSender, String), MailError> {
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
    use super::OneWrite;

    #[test]
    fn content_is_dot_stuffed_and_ended_in_one_piece() {
        let wire = |s: &str| OneWrite(s).to_string();
        assert_eq!(wire("a\r\nb"), "a\r\nb\r\n.\r\n");
        assert_eq!(
            wire(".a\r\n.\r\n..b\r\nc."),
            "..a\r\n..\r\n...b\r\nc.\r\n.\r\n"
        );
        assert_eq!(wire(""), "\r\n.\r\n");
    }
}
