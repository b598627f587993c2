//! A message and its content under seal: the content of an email bytes can only be had by
//! opening its [`Sealed`] form with a [`Key`], and the key of a reminder is the store's
//! [`Permit`] — so no transport can write a reminder's content before the store has committed
//! the previous outcome and confirmed this email's claim (`store::sending`).
//!
//! A transport sees a [`Letter`], seals it for its server (8bit or not), may use the sealed
//! envelope (MAIL, RCPT) freely, and gets the bytes only from [`Key::open`]. What builds the
//! bytes (`Letter::build`) is private to this module.
//!
//! With a permit, a reminder's content can be written:
//!
//! ```
//! use ngayle::mail::{ForReminder, Key, Sealed};
//! use ngayle::store::Permit;
//! fn write(sealed: Sealed<ForReminder>, permit: Permit<'_>) {
//!     let (_content, _spent) = permit.open(sealed);
//! }
//! ```
//!
//! Without one, it does not compile — not with the key of unrecorded emails:
//!
//! ```compile_fail
//! use ngayle::mail::{ForReminder, Key, Sealed, Unrecorded};
//! fn leak(sealed: Sealed<ForReminder>) {
//!     let (_content, ()) = Unrecorded.open(sealed);
//! }
//! ```
//!
//! nor through the path of unrecorded emails:
//!
//! ```compile_fail
//! use ngayle::mail::{ForReminder, Letter, Mailer};
//! async fn leak(mailer: &Mailer, letter: &Letter<ForReminder>) {
//!     let _ = mailer.send(letter).await;
//! }
//! ```
//!
//! nor with a permit made by hand (only `Store::clear` makes one):
//!
//! ```compile_fail
//! use ngayle::store::{Permit, Turn};
//! fn forge(message_id: &str, turn: Turn) -> Permit<'_> {
//!     Permit { message_id, turn }
//! }
//! ```

use std::marker::PhantomData;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, Header, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart};

use super::{MailError, SendError};
use crate::store::{Permit, Spent};

/// The lock of a reminder's letter: opened by a [`Permit`] only.
#[derive(Debug, Clone, Copy)]
pub enum ForReminder {}

/// The lock of an email that is not a reminder (`send-test`): nothing to record, opened by
/// [`Unrecorded`].
#[derive(Debug, Clone, Copy)]
pub enum ForTest {}

/// The key of a [`ForTest`] letter.
#[derive(Debug)]
pub struct Unrecorded;

/// What opens a sealed letter of its lock.
pub trait Key {
    /// The letters it opens.
    type Lock;
    /// What is left of it once used (the permit's turn goes on to the email's outcome).
    type Done;
    /// The content, to be written now.
    fn open(self, sealed: Sealed<Self::Lock>) -> (Result<Content, SendError>, Self::Done);
    /// Not used: the email was given up before its content.
    fn spend(self) -> Self::Done;
}

impl Key for Permit<'_> {
    type Lock = ForReminder;
    type Done = Spent;

    fn open(self, sealed: Sealed<ForReminder>) -> (Result<Content, SendError>, Spent) {
        // A permit is for one claim's email (its Message-ID); another's content stays sealed.
        let content = if self.message_id() == sealed.message_id {
            Ok(Content(sealed.bytes))
        } else {
            Err(SendError::Transient(format!(
                "thư {} không phải thư được phép gửi {}: không gửi",
                sealed.message_id,
                self.message_id()
            )))
        };
        (content, self.spend())
    }

    fn spend(self) -> Spent {
        Permit::spend(self)
    }
}

impl Key for Unrecorded {
    type Lock = ForTest;
    type Done = ();

    fn open(self, sealed: Sealed<ForTest>) -> (Result<Content, SendError>, ()) {
        (Ok(Content(sealed.bytes)), ())
    }

    fn spend(self) {}
}

/// An email ready to be built: the parts and our headers.
#[derive(Debug)]
pub struct Letter<L> {
    pub(super) from: Mailbox,
    pub(super) reply_to: Option<Mailbox>,
    pub(super) to: Mailbox,
    pub(super) subject: String,
    pub(super) text: String,
    pub(super) html: String,
    pub(super) message_id: String,
    /// What names its file in the outbox, after the time: the person's id.
    pub(super) file_stem: String,
    pub(super) lock: PhantomData<L>,
}

/// A letter built for one server: its envelope in the open, its bytes sealed.
#[derive(Debug)]
pub struct Sealed<L> {
    envelope: lettre::address::Envelope,
    bytes: Vec<u8>,
    message_id: String,
    lock: PhantomData<L>,
}

impl<L> Sealed<L> {
    pub fn envelope(&self) -> &lettre::address::Envelope {
        &self.envelope
    }

    /// Whether the content needs 8BITMIME.
    pub fn is_eight_bit(&self) -> bool {
        !self.bytes.is_ascii()
    }
}

/// A message's bytes, let out by a [`Key`].
#[derive(Debug)]
pub struct Content(Vec<u8>);

impl Content {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl<L> Letter<L> {
    /// The letter sealed for a server that takes 8BITMIME (`eight_bit`) or not.
    pub fn seal(&self, eight_bit: bool) -> Result<Sealed<L>, MailError> {
        let message = self.build(eight_bit)?;
        Ok(Sealed {
            envelope: message.envelope().clone(),
            bytes: message.formatted(),
            message_id: self.message_id.clone(),
            lock: PhantomData,
        })
    }

    /// The lettre message. With `eight_bit` (the server takes 8BITMIME, or the outbox) the
    /// parts are UTF-8 text as written — readable in any editor, and a third smaller than
    /// base64 (half the size of quoted-printable for Vietnamese) — unless a line is too long
    /// for 8bit (998 octets), where lettre's choice stands.
    fn build(&self, eight_bit: bool) -> Result<Message, MailError> {
        // Plain text is wrapped for reading, whatever the encoding (so it reads the same from
        // any server); HTML is not (its line breaks mean nothing, and one inside an attribute
        // would change it).
        let text = unbreakable_to_spaces(&wrap(&self.text, WRAP_WIDTH));
        let body = |s: &str| {
            eight_bit
                .then(|| eight_bit_body(s))
                .flatten()
                .unwrap_or_else(|| Body::new(s.to_string()))
        };
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(self.to.clone())
            .subject(self.subject.clone())
            .message_id(Some(self.message_id.clone()))
            .date_now()
            .user_agent(concat!("ngayle/", env!("CARGO_PKG_VERSION")).to_string())
            .header(AutoSubmitted);
        if let Some(r) = &self.reply_to {
            b = b.reply_to(r.clone());
        }
        b.multipart(MultiPart::alternative_plain_html(
            body(&text),
            body(&self.html),
        ))
        .map_err(|e| MailError::Build(e.to_string()))
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): the email is made by a program, so vacation
/// responders and other auto-replies leave it alone.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        match s.trim() {
            "auto-generated" => Ok(AutoSubmitted),
            other => Err(format!("Auto-Submitted: {other}").into()),
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

/// The plain text's width, in characters (what a reader sees, not octets: a Vietnamese line of
/// 76 characters is some 100 octets in UTF-8, far under SMTP's 998).
pub const WRAP_WIDTH: usize = 76;

/// The no-break space, which the templates' `nowrap` filter puts between the words of a name:
/// [`wrap`] never breaks there, and the letter then turns it back into a plain space.
pub const NO_BREAK: char = '\u{a0}';

/// `text` as an 8bit body (RFC 6152), CRLF line ends; `None` when a line is over SMTP's 998
/// octets or the text holds a NUL or a lone CR. (lettre itself takes 8bit only when every line
/// is under 76 octets, which an HTML line with a URL seldom is.)
fn eight_bit_body(text: &str) -> Option<Body> {
    let text = text.replace("\r\n", "\n");
    let fits = !text.contains(['\0', '\r']) && text.split('\n').all(|l| l.len() <= 998);
    fits.then(|| {
        let crlf = text.replace('\n', "\r\n");
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    })
}

/// The no-break spaces of [`NO_BREAK`] as plain spaces, once the text is wrapped.
fn unbreakable_to_spaces(text: &str) -> String {
    text.replace(NO_BREAK, " ")
}

/// Breaks lines longer than `width` characters at plain spaces only (continuation lines keep
/// the line's indentation), so that the text reads well in any mail program. Never inside a
/// word — a URL stays whole, on a line of its own if it must — nor at a [`NO_BREAK`], which
/// holds a name together. A word longer than the width is left as it is.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        let body = line.trim_start_matches(' ');
        let indent = &line[..line.len() - body.len()];
        let indent_width = indent.len();
        out.push_str(indent);
        let mut used = indent_width;
        let mut first = true;
        for word in body.split(' ') {
            let w = word.chars().count();
            if first {
                first = false;
            } else if used + 1 + w > width && used > indent_width {
                out.push('\n');
                out.push_str(indent);
                used = indent_width;
            } else {
                out.push(' ');
                used += 1;
            }
            out.push_str(word);
            used += w;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Letter, wrap};
    use std::marker::PhantomData;

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
            file_stem: "an".to_string(),
            lock: PhantomData::<super::ForTest>,
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
    fn wrapping_keeps_words_and_indentation() {
        let line = format!(
            "   Việc cần làm: {}",
            "treo cờ Tổ quốc đúng quy cách ".repeat(8)
        );
        let w = wrap(&line, 76);
        assert!(w.lines().count() > 2, "{w}");
        for l in w.lines() {
            assert!(
                l.chars().count() <= 76,
                "{} characters: {l:?}",
                l.chars().count()
            );
            assert!(l.starts_with("   "), "{l:?}");
        }
        assert_eq!(
            w.split_whitespace().collect::<Vec<_>>(),
            line.split_whitespace().collect::<Vec<_>>()
        );
        assert_eq!(wrap("ngắn\ndòng", 76), "ngắn\ndòng");
        let url = format!("http://{}", "a".repeat(100));
        assert_eq!(wrap(&url, 76), url, "nothing to break at");
        assert_eq!(
            wrap(&format!("Lịch: {url} tiếp"), 76),
            format!("Lịch:\n{url}\ntiếp"),
            "a URL on a line of its own, whole"
        );
    }

    #[test]
    fn wrapping_counts_characters_not_octets() {
        // 70 characters, 90-odd octets: one line.
        let line = "Kỷ niệm 49 năm Ngày Giải phóng miền Nam, thống nhất đất nước (30/4)";
        assert!(line.len() > 76 && line.chars().count() <= 76);
        assert_eq!(wrap(line, 76), line);
    }

    #[test]
    fn a_name_held_by_no_break_spaces_is_never_split() {
        let name = |n: usize| format!("Nguyễn{nb}Thị{nb}Minh{nb}Khai{n}", nb = super::NO_BREAK);
        let names: Vec<String> = (0..12).map(name).collect();
        let line = format!("   Cùng thực hiện: {}", names.join(", "));
        let w = super::unbreakable_to_spaces(&wrap(&line, 76));
        for l in w.lines() {
            assert!(l.chars().count() <= 76, "{l:?}");
            assert!(
                !l.ends_with("Nguyễn") && !l.ends_with("Thị"),
                "split name: {l:?}"
            );
        }
        for n in 0..12 {
            assert!(w.contains(&format!("Nguyễn Thị Minh Khai{n}")), "{w}");
        }
        assert!(!w.contains(super::NO_BREAK));
    }
}
