//! Email templates: the admin-editable minijinja templates of the reminder emails.
//!
//! Three templates, in `config/templates/` (next to the config file): `subject.txt.j2`,
//! `reminder.txt.j2` and `reminder.html.j2`. A missing file falls back to the default compiled
//! into the binary (the same text as shipped). Undefined variables are errors (strict mode), and
//! the HTML template is auto-escaped. Templates are compiled and test-rendered when the schedule
//! is loaded, so `ngayle check` reports their mistakes with file, line and column like any
//! other; rendering itself is pure.
//!
//! Two filters of ours: `shorten(n)` (at most n characters, cut at a word with `…`) and
//! `nowrap` (a name's spaces made no-break, so the plain text is never wrapped inside it). The
//! subject is at most [`SUBJECT_MAX`] characters whatever the template makes: a longer one is
//! cut at a word with `…`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::diag::{Diagnostic, Pos};

/// The template names, with their built-in defaults.
pub const DEFAULTS: [(&str, &str); 7] = [
    (
        "subject.txt.j2",
        include_str!("../config/templates/subject.txt.j2"),
    ),
    (
        "reminder.txt.j2",
        include_str!("../config/templates/reminder.txt.j2"),
    ),
    (
        "reminder.html.j2",
        include_str!("../config/templates/reminder.html.j2"),
    ),
    (ACK_PAGE, include_str!("../config/templates/xong.html.j2")),
    (
        "escalation_subject.txt.j2",
        include_str!("../config/templates/escalation_subject.txt.j2"),
    ),
    (
        "escalation.txt.j2",
        include_str!("../config/templates/escalation.txt.j2"),
    ),
    (
        "escalation.html.j2",
        include_str!("../config/templates/escalation.html.j2"),
    ),
];

/// What the escalation templates can use (documented at the top of `escalation.txt.j2`).
#[derive(Debug, Clone, Serialize)]
pub struct EscalationContext {
    pub unit: UnitCtx,
    pub person: PersonCtx,
    pub late: bool,
    pub late_reason: String,
    pub items: Vec<EscalationItem>,
    pub reply_to: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EscalationItem {
    pub event_title: String,
    pub event_subject: String,
    pub event_date: String,
    pub weekday: String,
    pub task_title: String,
    pub task_do: String,
    pub due: String,
    pub due_short: String,
    pub done_when: &'static str,
    pub not_done: Vec<String>,
    pub cannot: Vec<AnswerCtx>,
    pub done: Vec<AnswerCtx>,
}

/// The page of a "Đã xong" link.
pub const ACK_PAGE: &str = "xong.html.j2";

/// What the "Đã xong" page can use (documented at the top of `xong.html.j2`).
#[derive(Debug, Clone, Serialize)]
pub struct AckPage {
    pub unit: UnitCtx,
    /// `form`, `saved`, `invalid`, `expired` or `gone`.
    pub state: &'static str,
    pub status: u16,
    pub person: Option<PersonCtx>,
    pub task: Option<AckTaskCtx>,
    pub choice: &'static str,
    pub note: String,
    pub link: String,
    pub message: String,
    /// `new`, `changed` or `same` after a POST.
    pub saved: &'static str,
    pub answers: Vec<AnswerCtx>,
    pub done_when: &'static str,
    pub expired_on: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AckTaskCtx {
    pub title: String,
    #[serde(rename = "do")]
    pub what: String,
    pub due: String,
    pub event_title: String,
    pub event_date: String,
    pub weekday: String,
    pub lunar: String,
    pub class: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnswerCtx {
    pub name: String,
    pub done: bool,
    pub note: String,
    pub link: String,
    pub at: String,
}

/// The longest subject, in characters: about what a phone's mail list shows in two lines.
pub const SUBJECT_MAX: usize = 90;

/// The compiled templates. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

/// What the templates can use (documented at the top of `reminder.txt.j2`).
#[derive(Debug, Clone, Serialize)]
pub struct MailContext {
    pub unit: UnitCtx,
    pub person: PersonCtx,
    pub late: bool,
    /// Why it is late, as a clause ("dịch vụ nhắc việc ngừng chạy khi đến giờ nhắc"); empty
    /// when it is not.
    pub late_reason: String,
    /// How many different events the items are about.
    pub events: usize,
    pub items: Vec<ItemCtx>,
    pub feed_url: String,
    pub reply_to: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitCtx {
    pub name: String,
    pub place: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonCtx {
    pub name: String,
    pub title: Option<String>,
    pub email: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemCtx {
    /// The official title: `Kỷ niệm 49 năm Ngày Giải phóng miền Nam (30/4/1975 - 30/4/2024)`.
    pub event_title: String,
    /// The title without its dates: `Kỷ niệm 49 năm Ngày Giải phóng miền Nam`.
    pub event_short: String,
    /// What the day is about: `Giải phóng miền Nam`.
    pub event_subject: String,
    /// The calendar's title (the feeds' SUMMARY): `Giải phóng miền Nam — 49 năm`.
    pub event_summary: String,
    pub event_name: String,
    pub event_date: String,
    pub event_date_short: String,
    pub weekday: String,
    pub lunar: String,
    pub anniversary: Option<u32>,
    pub class: Option<String>,
    pub task_title: String,
    pub task_do: String,
    /// The reminder's lead in whole days (0 for one in hours or minutes).
    pub before_days: u32,
    /// When this reminder was due to go out (`07:30 Thứ Ba 15/12/2026`).
    pub remind_at: String,
    /// When the work must be done, the task's deadline (`17:00 Thứ Hai 21/12/2026`).
    pub due: String,
    /// The deadline, short (`17:00 21/12`).
    pub due_short: String,
    pub others: Vec<String>,
    pub note: Option<String>,
    /// The page where the reader says the task is done (a signed link, [`crate::ack`]).
    pub done_url: String,
    /// The same page, with "Chưa làm được" chosen.
    pub not_done_url: String,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    /// Compiles the templates found in `files` (path, text), the defaults for the others, and
    /// test-renders them. Every problem is a located diagnostic.
    pub fn compile(files: &[(PathBuf, String)]) -> Result<Templates, Vec<Diagnostic>> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("shorten", |s: String, n: usize| shorten(&s, n));
        env.add_filter("nowrap", |s: String| {
            s.split(' ')
                .collect::<Vec<_>>()
                .join(&crate::mail::NO_BREAK.to_string())
        });
        env.set_auto_escape_callback(|name| {
            if name.contains(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let mut diags = Vec::new();
        let mut origin: Vec<(&str, Option<&Path>, &str)> = Vec::new();
        for (name, default) in DEFAULTS {
            let found = files
                .iter()
                .find(|(p, _)| p.file_name().is_some_and(|n| n == name));
            let (path, text) = match found {
                Some((p, t)) => (Some(p.as_path()), t.as_str()),
                None => (None, default),
            };
            origin.push((name, path, text));
            if let Err(e) = env.add_template_owned(name.to_string(), text.to_string()) {
                diags.push(diagnostic(path, name, text, &e));
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        let templates = Templates { env: Arc::new(env) };
        let sample = MailContext::sample();
        for (name, path, text) in origin {
            let rendered = if name == ACK_PAGE {
                AckPage::samples()
                    .iter()
                    .try_for_each(|page| templates.render_page(page).map(drop))
            } else if name.starts_with("escalation") {
                templates
                    .env
                    .get_template(name)
                    .and_then(|t| t.render(minijinja::value::Serde(EscalationContext::sample())))
                    .map(drop)
            } else {
                templates.render_one(name, &sample).map(drop)
            };
            if let Err(e) = rendered {
                diags.push(diagnostic(path, name, text, &e));
            }
        }
        if diags.is_empty() {
            Ok(templates)
        } else {
            Err(diags)
        }
    }

    /// The built-in templates.
    pub fn defaults() -> Templates {
        match Templates::compile(&[]) {
            Ok(t) => t,
            // The defaults are tested; this cannot happen in a released binary.
            Err(d) => panic!("built-in templates do not compile: {d:?}"),
        }
    }

    /// Renders the three parts. The subject is folded to one line (no header can be injected
    /// through it, whatever the event names hold) of at most [`SUBJECT_MAX`] characters.
    pub fn render(&self, ctx: &MailContext) -> Result<Rendered, minijinja::Error> {
        let subject = self.render_one("subject.txt.j2", ctx)?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(Rendered {
            subject: shorten(&subject, SUBJECT_MAX),
            text: self.render_one("reminder.txt.j2", ctx)?,
            html: self.render_one("reminder.html.j2", ctx)?,
        })
    }

    /// The three parts of an escalation email (see [`Templates::render`]).
    pub fn render_escalation(&self, ctx: &EscalationContext) -> Result<Rendered, minijinja::Error> {
        let part = |name: &str| {
            self.env
                .get_template(name)?
                .render(minijinja::value::Serde(ctx))
        };
        let subject = part("escalation_subject.txt.j2")?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(Rendered {
            subject: shorten(&subject, SUBJECT_MAX),
            text: part("escalation.txt.j2")?,
            html: part("escalation.html.j2")?,
        })
    }

    /// The "Đã xong" page.
    pub fn render_page(&self, page: &AckPage) -> Result<String, minijinja::Error> {
        self.env
            .get_template(ACK_PAGE)?
            .render(minijinja::value::Serde(page))
    }

    fn render_one(&self, name: &str, ctx: &MailContext) -> Result<String, minijinja::Error> {
        self.env
            .get_template(name)?
            .render(minijinja::value::Serde(ctx))
    }
}

/// `s` in at most `max` characters: whole if it fits, else cut after the last word that fits,
/// with `…` (a single word longer than that is cut inside, there being no better place).
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let Some(room) = max.checked_sub(1) else {
        return String::new();
    };
    let head: String = s.chars().take(room).collect();
    // Cut at a space only when the next character starts a new word too.
    let next_is_space = s.chars().nth(room).is_some_and(char::is_whitespace);
    let cut = if next_is_space {
        head.as_str()
    } else {
        head.rfind(char::is_whitespace)
            .map_or(head.as_str(), |i| &head[..i])
    };
    let cut = cut.trim_end_matches(|c: char| c.is_whitespace() || ",;:—–-".contains(c));
    format!("{cut}…")
}

fn diagnostic(path: Option<&Path>, name: &str, text: &str, e: &minijinja::Error) -> Diagnostic {
    let pos = match (e.range(), e.line()) {
        (Some(range), _) => {
            let before = text.get(..range.start).unwrap_or_default();
            Pos {
                line: before.matches('\n').count() + 1,
                column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            }
        }
        (None, Some(line)) => Pos { line, column: 1 },
        _ => Pos::START,
    };
    let shown = path.map_or_else(
        || PathBuf::from(format!("(mẫu có sẵn) {name}")),
        Path::to_path_buf,
    );
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    Diagnostic::error(&shown, pos, format!("mẫu thư lỗi — {}{detail}", e.kind())).with_help(
        "xem danh sách biến ở đầu config/templates/reminder.txt.j2; cú pháp minijinja (Jinja2)",
    )
}

impl EscalationContext {
    /// A context with every field set, to test-render the templates at load time.
    pub fn sample() -> EscalationContext {
        let mail = MailContext::sample();
        let answer = AnswerCtx {
            name: "Lê Văn Bình".into(),
            done: true,
            note: "Đã treo".into(),
            link: "https://example.org/anh".into(),
            at: "08:15 Thứ Hai 29/04/2024".into(),
        };
        EscalationContext {
            unit: mail.unit,
            person: mail.person,
            late: true,
            late_reason: mail.late_reason,
            items: vec![EscalationItem {
                event_title: "Kỷ niệm 49 năm Ngày Giải phóng miền Nam (30/4/1975 - 30/4/2024)"
                    .into(),
                event_subject: "Giải phóng miền Nam".into(),
                event_date: "30/04/2024".into(),
                weekday: "Thứ Ba".into(),
                task_title: "Treo cờ Tổ quốc".into(),
                task_do: "Treo cờ ở cổng trường.".into(),
                due: "07:30 Thứ Ba 30/04/2024".into(),
                due_short: "07:30 30/4".into(),
                done_when: "all",
                not_done: vec!["Nguyễn Văn An".into()],
                cannot: vec![AnswerCtx {
                    done: false,
                    note: "Mưa to".into(),
                    ..answer.clone()
                }],
                done: vec![answer],
            }],
            reply_to: mail.reply_to,
        }
    }
}

impl AckPage {
    /// A page in `state` with nothing else set.
    pub fn new(unit: UnitCtx, state: &'static str, status: u16) -> AckPage {
        AckPage {
            unit,
            state,
            status,
            person: None,
            task: None,
            choice: "xong",
            note: String::new(),
            link: String::new(),
            message: String::new(),
            saved: "",
            answers: Vec::new(),
            done_when: "any",
            expired_on: String::new(),
        }
    }

    /// One page of each state, every field set, to test-render the template at load time.
    pub fn samples() -> Vec<AckPage> {
        let unit = MailContext::sample().unit;
        let full = |state, saved| AckPage {
            person: Some(PersonCtx {
                name: "Nguyễn Văn An".into(),
                title: Some("Nhân viên".into()),
                email: "an@example.org".into(),
            }),
            task: Some(AckTaskCtx {
                title: "Treo cờ Tổ quốc".into(),
                what: "Treo cờ ở cổng trường.".into(),
                due: "07:30 Thứ Ba 30/04/2024".into(),
                event_title: "Kỷ niệm 49 năm Ngày Giải phóng miền Nam (30/4/1975 - 30/4/2024)"
                    .into(),
                event_date: "30/04/2024".into(),
                weekday: "Thứ Ba".into(),
                lunar: "22/3 năm Giáp Thìn".into(),
                class: Some("năm khác".into()),
            }),
            choice: "chua",
            note: "Mưa to".into(),
            link: "https://example.org/bai".into(),
            message: "Hãy ghi lý do chưa làm được.".into(),
            saved,
            answers: vec![AnswerCtx {
                name: "Lê Văn Bình".into(),
                done: true,
                note: "Đã treo".into(),
                link: "https://example.org/anh".into(),
                at: "08:15 Thứ Hai 29/04/2024".into(),
            }],
            expired_on: "30/05/2024".into(),
            ..AckPage::new(unit.clone(), state, 200)
        };
        vec![
            full("form", ""),
            full("saved", "new"),
            full("saved", "same"),
            AckPage::new(unit.clone(), "invalid", 404),
            AckPage {
                expired_on: "30/05/2024".into(),
                ..AckPage::new(unit.clone(), "expired", 410)
            },
            AckPage::new(unit, "gone", 404),
        ]
    }
}

impl MailContext {
    /// A context with every field set, to test-render templates at load time.
    pub fn sample() -> MailContext {
        MailContext {
            unit: UnitCtx {
                name: "Trường Mầm non Hoa Phượng".into(),
                place: "Đông Triều, Quảng Ninh".into(),
            },
            person: PersonCtx {
                name: "Nguyễn Văn An".into(),
                title: Some("Nhân viên".into()),
                email: "an@example.org".into(),
            },
            late: true,
            late_reason: "dịch vụ nhắc việc ngừng chạy khi đến giờ nhắc".into(),
            events: 2,
            items: vec![ItemCtx {
                event_title: "Kỷ niệm 49 năm Ngày Giải phóng miền Nam (30/4/1975 - 30/4/2024)"
                    .into(),
                event_short: "Kỷ niệm 49 năm Ngày Giải phóng miền Nam".into(),
                event_subject: "Giải phóng miền Nam".into(),
                event_summary: "Giải phóng miền Nam — 49 năm".into(),
                event_name: "Ngày Giải phóng miền Nam".into(),
                event_date: "30/04/2024".into(),
                event_date_short: "30/4/2024".into(),
                weekday: "Thứ Ba".into(),
                lunar: "22/3 năm Giáp Thìn".into(),
                anniversary: Some(49),
                class: Some("năm khác".into()),
                task_title: "Treo cờ Tổ quốc".into(),
                task_do: "Treo cờ ở cổng trường.".into(),
                before_days: 1,
                remind_at: "07:00 Thứ Hai 29/04/2024".into(),
                due: "07:30 Thứ Ba 30/04/2024".into(),
                due_short: "07:30 30/4".into(),
                others: vec!["Lê Văn Bình".into()],
                note: Some("Ghi chú".into()),
                done_url: "http://127.0.0.1:8080/xong/giai-phong-mien-nam.20240430.treo-co.an.20240530.abc".into(),
                not_done_url: "http://127.0.0.1:8080/xong/giai-phong-mien-nam.20240430.treo-co.an.20240530.abc?ket_qua=chua".into(),
            }],
            feed_url: "http://127.0.0.1:8080/calendar.ics".into(),
            reply_to: Some("vanthu@example.org".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_and_escape() {
        let t = Templates::defaults();
        let mut ctx = MailContext::sample();
        ctx.late = false;
        ctx.events = 1;
        ctx.items[0].event_title =
            "Lễ <script>alert(1)</script> & \"x\"\r\nBcc: evil@example.org".into();
        ctx.items[0].event_short = ctx.items[0].event_title.clone();
        ctx.items[0].event_subject = ctx.items[0].event_title.clone();
        let r = t.render(&ctx).unwrap_or_else(|e| panic!("{e}"));
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'));
        assert!(
            r.subject
                .starts_with("[Nhắc việc] Treo cờ Tổ quốc — hạn 07:30 30/4 — Lễ <script>"),
            "{}",
            r.subject
        );
        assert!(
            r.html
                .contains("Lễ &lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;x&quot;"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("<script>"));
        assert!(
            r.text.contains("Lễ <script>alert(1)</script>"),
            "plain text is not escaped"
        );
    }

    #[test]
    fn shorten_cuts_at_a_word() {
        assert_eq!(shorten("Treo cờ Tổ quốc", 40), "Treo cờ Tổ quốc");
        assert_eq!(shorten("Treo cờ Tổ quốc", 15), "Treo cờ Tổ quốc");
        assert_eq!(shorten("Treo cờ Tổ quốc", 14), "Treo cờ Tổ…");
        assert_eq!(shorten("Treo cờ Tổ quốc", 11), "Treo cờ Tổ…");
        assert_eq!(shorten("Treo cờ, Tổ quốc", 10), "Treo cờ…");
        assert_eq!(shorten("Điệnbiênphủ", 5), "Điện…");
        assert_eq!(shorten("abc", 0), "");
    }

    #[test]
    fn the_subject_is_at_most_90_characters_and_says_the_first_task_and_how_many_more() {
        let t = Templates::defaults();
        let mut ctx = MailContext::sample();
        ctx.late = false;
        let mut item = ctx.items[0].clone();
        item.task_title = "Tổ chức hội thi kể chuyện về Bác Hồ kính yêu cho các cháu".into();
        item.event_subject = "Ngày thành lập Chiến khu Trần Hưng Đạo – khởi nghĩa giành chính \
                              quyền ở Đông Triều"
            .into();
        ctx.items = vec![item.clone(); 7];
        ctx.events = 1;
        let r = t.render(&ctx).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.subject.chars().count() <= 90, "{}", r.subject);
        assert!(
            r.subject
                .starts_with("[Nhắc việc] Tổ chức hội thi kể chuyện về…"),
            "{}",
            r.subject
        );
        assert!(
            r.subject
                .contains("… và 6 việc khác — hạn 07:30 30/4 — Ngày"),
            "{}",
            r.subject
        );
        assert!(r.subject.ends_with('…'), "{}", r.subject);
    }

    #[test]
    fn template_mistakes_are_located() {
        let bad = [(
            PathBuf::from("config/templates/reminder.txt.j2"),
            "Kính gửi {{ person.name }},\n{{ persn.name }}\n".to_string(),
        )];
        let diags = Templates::compile(&bad).err().unwrap_or_default();
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].line, 2, "{}", diags[0]);
        assert!(
            diags[0]
                .to_string()
                .starts_with("config/templates/reminder.txt.j2:2:"),
            "{}",
            diags[0]
        );
        let syntax = [(
            PathBuf::from("config/templates/subject.txt.j2"),
            "[Nhắc việc] {% if late %}\n".to_string(),
        )];
        let diags = Templates::compile(&syntax).err().unwrap_or_default();
        assert_eq!(diags.len(), 1);
        assert!(
            diags[0]
                .to_string()
                .starts_with("config/templates/subject.txt.j2:"),
            "{}",
            diags[0]
        );
    }
}
