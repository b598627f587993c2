//! Resolve: raw files → a checked [`Schedule`], or every diagnostic at once.
//!
//! Pure: it takes the texts of the files (read by [`super::load`]) and today's date, and does no
//! I/O. Each check that fails adds a located [`Diagnostic`] and the resolution goes on, so that
//! `ngayle check` shows all the mistakes of all the files in one run.
//!
//! This file holds the inputs ([`Sources`]), the entry point [`resolve`] and the [`Resolver`]'s
//! shared checks (parsing a file, unknown keys, text values, ids and their uniqueness, where a
//! node is). Each file of the schedule has its own module: [`config`] (`config/ngayle.yaml` and
//! the environment over it), [`staff`], [`tasks`], [`events`] (the calendar layers), and
//! [`syntax`] holds the pure parsers of single values (dates, durations, ids, addresses). None
//! of them reads a file, the environment or the clock.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;

use super::{EnvValue, Schedule, raw};
use crate::diag::{Diagnostic, Pos, Severity, allowed_help, did_you_mean};
use crate::template::Templates;
use crate::yaml::{self, List, Scalar, Seg, Unknown};

mod config;
mod days_off;
mod events;
mod staff;
mod syntax;
mod tasks;

pub(super) use config::{ParsedConfig, TASKS_STEM, TEMPLATES_DIR};
pub use days_off::DAYS_OFF_STEM;
use syntax::is_valid_id;
pub use syntax::suggest_id;

/// The text of every input file. Paths are as they will be printed in diagnostics.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub config: SourceFile,
    pub staff: Option<SourceFile>,
    pub tasks: Option<SourceFile>,
    /// Layer files, sorted by path.
    pub layers: Vec<SourceFile>,
    /// `calendars/ngay-nghi.yaml`, the days-off decisions, when there is one.
    pub days_off: Option<SourceFile>,
    /// Email templates found in `templates/` next to the config (the others are built in).
    pub templates: Vec<SourceFile>,
    /// The `NGAYLE_*` environment variables that are set: overrides of config keys and the
    /// SMTP password (see `schedule::env`).
    pub env: Vec<EnvValue>,
}

/// The largest `http.max_connections`: a descriptor each, under the unit's `LimitNOFILE=65536`
/// with room for the rest.
const MAX_CONNECTIONS_LIMIT: usize = 60_000;

#[derive(Debug, Clone, Default)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// The id reserved for "everyone" in a task's `who`.
pub const ALL: &str = "all";

/// Resolves the files into a schedule. Returns the schedule (if there was no error) and every
/// diagnostic, errors and warnings, in file order.
pub fn resolve(src: &Sources, today: NaiveDate) -> (Option<Schedule>, Vec<Diagnostic>) {
    resolve_parsed(src, ParsedConfig::parse(&src.config), today)
}

/// [`resolve`] with the config already parsed (by the loader, to find the other files).
pub(super) fn resolve_parsed(
    src: &Sources,
    config: ParsedConfig,
    today: NaiveDate,
) -> (Option<Schedule>, Vec<Diagnostic>) {
    let mut r = Resolver {
        diags: Vec::new(),
        today,
        positions: yaml::Positions::default(),
    };
    let config = r.config(&src.config, config, &src.env);
    // A file that is missing or does not parse has its own error; what others name in it is
    // then not checked (`None` ids), so that one mistake is one error.
    let (groups, people, staff_ids) = match &src.staff {
        Some(f) => r.staff(f),
        None => (Vec::new(), Vec::new(), None),
    };
    let (tasks, task_ids) = match &src.tasks {
        Some(f) => {
            let send_at = config.as_ref().map(|(_, s)| s.send_at);
            r.tasks(f, staff_ids.as_ref(), send_at)
        }
        None => (Vec::new(), None),
    };
    let decisions = match &src.days_off {
        Some(f) => {
            let workdays = config.as_ref().map(|(_, s)| s.workdays.as_slice());
            r.days_off(f, workdays)
        }
        None => Vec::new(),
    };
    let mut layers = Vec::new();
    let mut events = Vec::new();
    let mut event_ids: BTreeMap<String, Defined> = BTreeMap::new();
    for f in &src.layers {
        r.layer(
            f,
            task_ids.as_deref(),
            &mut layers,
            &mut events,
            &mut event_ids,
        );
    }
    if src.layers.is_empty() && src.tasks.is_some() {
        let f = &src.config;
        let at = r.at(f, &[Seg::Key("calendars")]);
        r.push(
            Diagnostic::error(
                &f.path,
                at,
                "thư mục lịch không có tệp sự kiện nào (*.yaml ngoài tasks.yaml)",
            )
            .with_help("thêm ít nhất một tệp, ví dụ calendars/national.yaml với `events:`"),
        );
    }

    let files: Vec<(PathBuf, String)> = src
        .templates
        .iter()
        .map(|f| (f.path.clone(), f.text.clone()))
        .collect();
    let templates = match Templates::compile(&files) {
        Ok(t) => Some(t),
        Err(d) => {
            r.diags.extend(d);
            None
        }
    };

    let mut diags = r.diags;
    diags.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    diags.dedup();
    // Without the staff or the tasks file, references to them were not checked: no schedule
    // (the loader reports a missing file as an error).
    if diags.iter().any(Diagnostic::is_error) || src.staff.is_none() || src.tasks.is_none() {
        return (None, diags);
    }
    let (Some((unit, settings)), Some(templates)) = (config, templates) else {
        return (None, diags);
    };
    let schedule = Schedule::new(
        version(src),
        unit,
        settings,
        layers,
        events,
        tasks,
        groups,
        people,
        templates,
    )
    .with_decisions(decisions);
    (Some(schedule), diags)
}

/// The ids the staff file defines: every group and person with a valid, unique id, also one
/// with another field wrong. Such an item is known by its id, so a reference to it is not an
/// error (its own field is); no schedule is built anyway, as there is an error.
#[derive(Debug, Default)]
struct StaffIds {
    groups: Vec<String>,
    people: Vec<String>,
}

/// A value and where it is written: its file and its path in the document.
type Field<'a> = (&'a SourceFile, &'a [Seg<'a>], &'a Option<Scalar>);

/// Where a config key's value comes from: the environment variable's pseudo-file (the whole
/// "file" is the value) when it is set, else the config file at `path`.
fn pick<'a>(
    env: &'a Option<(SourceFile, Option<Scalar>)>,
    f: &'a SourceFile,
    path: &'a [Seg<'a>],
    v: &'a Option<Scalar>,
) -> Field<'a> {
    match env {
        Some((ef, ev)) => (ef, &[], ev),
        None => (f, path, v),
    }
}

impl Sources {
    /// A hash of every input file: what a schedule's `version` is made of.
    pub fn version(&self) -> String {
        version(self)
    }

    /// Every file, in a fixed order: the config, the staff, the tasks, the days off, the
    /// layers, the templates.
    pub fn files(&self) -> impl Iterator<Item = &SourceFile> {
        std::iter::once(&self.config)
            .chain(&self.staff)
            .chain(&self.tasks)
            .chain(&self.days_off)
            .chain(&self.layers)
            .chain(&self.templates)
    }
}

/// A hash of every input file, in a fixed order.
fn version(src: &Sources) -> String {
    let mut bytes = Vec::new();
    for f in src.files() {
        bytes.extend_from_slice(f.path.to_string_lossy().as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(f.text.as_bytes());
        bytes.push(0);
    }
    format!("{:016x}", crate::fnv1a(&bytes))
}

/// Where an id was first defined, for "defined twice" messages. Located only when needed:
/// locating indexes the file (a second parse), and a valid schedule should be parsed once.
#[derive(Debug, Clone)]
struct Defined<'a> {
    file: &'a SourceFile,
    path: Vec<Seg<'static>>,
}

impl Defined<'_> {
    fn describe(&self, r: &Resolver) -> String {
        let pos = r.at(self.file, &self.path);
        format!("{}:{}:{}", self.file.path.display(), pos.line, pos.column)
    }
}

struct Resolver {
    diags: Vec<Diagnostic>,
    today: NaiveDate,
    /// Where the nodes of each file are, indexed when its first diagnostic is located.
    positions: yaml::Positions,
}

/// Shorthand for building paths into a document.
fn k(key: &str) -> Seg<'_> {
    Seg::Key(key)
}

/// The `index`-th item of the top-level list `list` (`events[3]`).
#[derive(Debug, Clone, Copy)]
struct Item {
    list: &'static str,
    index: usize,
}

impl Item {
    fn path(self) -> [Seg<'static>; 2] {
        [k(self.list), Seg::Index(self.index)]
    }

    fn at(self, key: &'static str) -> [Seg<'static>; 3] {
        [k(self.list), Seg::Index(self.index), k(key)]
    }

    /// Each entry of the list at `key` of this item (`who: [csvc, all]`), with its place.
    fn entries<'l>(
        self,
        key: &'static str,
        list: Option<&'l List>,
    ) -> impl Iterator<Item = ([Seg<'static>; 4], &'l str)> {
        entries(list).map(move |(j, text)| {
            let path = [k(self.list), Seg::Index(self.index), k(key), Seg::Index(j)];
            (path, text)
        })
    }
}

/// Each entry of a list of words (ids, day names) with its index: its text trimmed, empty when
/// it is not text (a nested list), so that it is reported as an unknown word.
fn entries(list: Option<&List>) -> impl Iterator<Item = (usize, &str)> {
    list.into_iter()
        .flat_map(|l| l.0.iter())
        .map(|v| v.text().map(str::trim).unwrap_or_default())
        .enumerate()
}

/// A raw list item that has an `id`: a group, a person, a task or an event.
trait Listed {
    /// The keys it may have (for "unknown key" help).
    const KEYS: &'static [&'static str];
    fn id(&self) -> &Option<Scalar>;
    fn unknown(&self) -> &Unknown;
}

macro_rules! listed {
    ($($t:ty),*) => {$(
        impl Listed for $t {
            const KEYS: &'static [&'static str] = <$t>::KEYS;
            fn id(&self) -> &Option<Scalar> {
                &self.id
            }
            fn unknown(&self) -> &Unknown {
                &self.unknown
            }
        }
    )*};
}

listed!(raw::Group, raw::Person, raw::Task, raw::Event);

impl Resolver {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn at(&self, f: &SourceFile, path: &[Seg]) -> Pos {
        self.positions.locate(&f.path, &f.text, path)
    }

    fn error(
        &mut self,
        f: &SourceFile,
        path: &[Seg],
        msg: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.report(Severity::Error, f, path, msg.into(), help.into());
    }

    fn warning(
        &mut self,
        f: &SourceFile,
        path: &[Seg],
        msg: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.report(Severity::Warning, f, path, msg.into(), help.into());
    }

    fn report(
        &mut self,
        severity: Severity,
        f: &SourceFile,
        path: &[Seg],
        msg: String,
        help: String,
    ) {
        let mut d = Diagnostic::error(&f.path, self.at(f, path), msg);
        d.severity = severity;
        if !help.is_empty() {
            d = d.with_help(help);
        }
        self.push(d);
    }

    /// Parses a file; a parse failure is reported and yields `None`.
    fn parse<T: serde::de::DeserializeOwned + Default>(&mut self, f: &SourceFile) -> Option<T> {
        self.parsed(f, yaml::parse::<T>(&f.text))
    }

    /// The result of parsing `f`; a failure is reported and yields `None`.
    fn parsed<T>(&mut self, f: &SourceFile, parsed: Result<T, yaml::ParseError>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(e) => {
                if e.too_deep {
                    self.push(
                        Diagnostic::error(
                            &f.path,
                            e.pos,
                            format!("tệp lồng nhau quá sâu: quá {} cấp ở đây", yaml::MAX_DEPTH),
                        )
                        .with_help(
                            "tệp lịch và cấu hình chỉ cần vài cấp; kiểm tra các dấu `[`, `{` chưa đóng và các dòng `- - …` (có thể tệp bị hỏng khi lưu)",
                        ),
                    );
                    return None;
                }
                if e.message.contains("recursion limit") {
                    self.push(Diagnostic::error(
                        &f.path,
                        e.pos,
                        "tệp lồng nhau quá sâu (recursion limit exceeded)",
                    ));
                    return None;
                }
                let x = yaml::explain(&f.text, &e);
                self.push(Diagnostic::error(&f.path, x.pos, x.message).with_help(x.help));
                None
            }
        }
    }

    fn unknown_keys(&mut self, f: &SourceFile, base: &[Seg], unknown: &Unknown, allowed: &[&str]) {
        for key in unknown.keys() {
            let mut path = base.to_vec();
            path.push(Seg::KeyName(key));
            self.error(
                f,
                &path,
                format!("khóa `{key}` không dùng được ở đây"),
                allowed_help(key, allowed),
            );
        }
    }

    /// A required, non-empty text value on one line.
    fn text(&mut self, (f, path, v): Field, what: &str) -> Option<String> {
        self.required((f, path, v), what, false)
    }

    /// A required, non-empty text value that may hold line breaks (a task's `do`).
    fn text_lines(&mut self, (f, path, v): Field, what: &str) -> Option<String> {
        self.required((f, path, v), what, true)
    }

    fn required(&mut self, (f, path, v): Field, what: &str, lines: bool) -> Option<String> {
        match v {
            None => {
                let key = match path.last() {
                    Some(Seg::Key(key)) => *key,
                    _ => what,
                };
                self.error(
                    f,
                    path,
                    format!("thiếu `{key}` ({what})"),
                    format!("thêm `{key}: …`"),
                );
                None
            }
            Some(s) => self.scalar_text((f, path, v), what, lines).or_else(|| {
                if s.text().is_some_and(|t| t.trim().is_empty()) {
                    self.error(f, path, format!("{what} đang để trống"), "");
                }
                None
            }),
        }
    }

    /// An optional setting: `default` when it is absent or empty, else its text through
    /// `parse` (see [`Resolver::checked`]).
    fn setting<T>(
        &mut self,
        (f, path, v): Field,
        what: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, (String, String)>,
    ) -> Option<T> {
        match self.optional_text((f, path, v), what) {
            None => Some(default),
            Some(t) => self.checked(f, path, &t, parse),
        }
    }

    /// The text `t` written at `path` through `parse`; a text it refuses
    /// (`Err((message, help))`) is reported there and yields `None`.
    fn checked<T>(
        &mut self,
        f: &SourceFile,
        path: &[Seg],
        t: &str,
        parse: impl FnOnce(&str) -> Result<T, (String, String)>,
    ) -> Option<T> {
        match parse(t) {
            Ok(value) => Some(value),
            Err((message, help)) => {
                self.error(f, path, message, help);
                None
            }
        }
    }

    /// An optional text value on one line: `None` when absent or empty; an error when it is a
    /// list/mapping or holds a control character.
    fn optional_text(&mut self, (f, path, v): Field, what: &str) -> Option<String> {
        self.scalar_text((f, path, v), what, false)
    }

    /// Every text of the files reaches a feed, an email header or a page, where a control
    /// character is forbidden (RFC 5545 §3.3.11) or forges a line (a bare CR before `UID:`),
    /// so each is refused here. A tab is kept: it is whitespace in all three. A line break is
    /// kept where `lines` (a task's `do`, a note): the feed escapes it as `\n`.
    fn scalar_text(&mut self, (f, path, v): Field, what: &str, lines: bool) -> Option<String> {
        if let Some(Scalar::Text(t)) = v {
            let t = t.trim();
            let bad = t
                .chars()
                .enumerate()
                .find(|&(_, c)| c.is_control() && c != '\t' && !(lines && c == '\n'));
            if let Some((i, c)) = bad {
                let name = match c {
                    '\n' => " (xuống dòng)",
                    '\r' => " (CR, về đầu dòng)",
                    '\0' => " (NUL)",
                    '\u{1b}' => " (ESC)",
                    _ => "",
                };
                let help = if c == '\n' {
                    format!("{what} phải viết trên một dòng: thay chỗ xuống dòng bằng dấu cách")
                } else {
                    "xóa ký tự này (thường lẫn vào khi sao chép từ nơi khác): nó không hiện ra nhưng làm hỏng lịch, thư và trang web".to_string()
                };
                self.error(
                    f,
                    path,
                    format!(
                        "{what} có ký tự điều khiển U+{:04X}{name} ở ký tự thứ {}",
                        u32::from(c),
                        i + 1
                    ),
                    help,
                );
                return None;
            }
        }
        match v {
            None => None,
            Some(Scalar::Collection) => {
                self.error(
                    f,
                    path,
                    format!("{what} phải là một giá trị đơn, không phải danh sách hay bảng"),
                    "",
                );
                None
            }
            Some(Scalar::Text(t)) => {
                let t = t.trim();
                (!t.is_empty()).then(|| t.to_string())
            }
        }
    }

    fn id(&mut self, (f, path, v): Field, what: &str) -> Option<String> {
        let id = self.text((f, path, v), what)?;
        if is_valid_id(&id) {
            Some(id)
        } else {
            self.error(
                f,
                path,
                format!("mã `{id}` không hợp lệ"),
                format!(
                    "mã chỉ gồm chữ thường không dấu, chữ số và dấu `-`, ví dụ `{}`",
                    suggest_id(&id)
                ),
            );
            None
        }
    }

    /// The common start of the `index`-th item of the top-level list `list`: its place, and
    /// its `id` when valid and unique among `seen` (`what` names the kind: "nhóm", "việc" …);
    /// unknown keys are reported.
    fn item<'a, T: Listed>(
        &mut self,
        f: &'a SourceFile,
        (list, index): (&'static str, usize),
        raw: &T,
        seen: &mut BTreeMap<String, Defined<'a>>,
        what: &str,
    ) -> (Item, Option<String>) {
        let item = Item { list, index };
        self.unknown_keys(f, &item.path(), raw.unknown(), T::KEYS);
        let Some(id) = self.id((f, &item.at("id"), raw.id()), &format!("mã {what}")) else {
            return (item, None);
        };
        self.unique(f, &item.at("id"), &id, seen, what);
        (item, Some(id))
    }

    fn unique<'a>(
        &mut self,
        f: &'a SourceFile,
        path: &[Seg<'static>],
        id: &str,
        seen: &mut BTreeMap<String, Defined<'a>>,
        what: &str,
    ) {
        if id == ALL {
            self.error(
                f,
                path,
                format!("mã `{ALL}` dành riêng cho \"mọi người\""),
                "đặt mã khác",
            );
            return;
        }
        match seen.get(id) {
            Some(first) => {
                let help = format!(
                    "mã {what} phải khác nhau; `{id}` đã có ở {}",
                    first.describe(self)
                );
                self.error(f, path, format!("mã `{id}` bị trùng"), help);
            }
            None => {
                seen.insert(
                    id.to_string(),
                    Defined {
                        file: f,
                        path: path.to_vec(),
                    },
                );
            }
        }
    }
}

/// "did you mean" with a fallback naming where the valid ids are.
fn ids_help(word: &str, known: &[&str], where_: &str) -> String {
    match did_you_mean(word, known.iter().copied()) {
        Some(close) => format!("có phải là `{close}`? (xem {where_})"),
        None if known.len() <= 12 => {
            let list = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("các mã hợp lệ: {list}")
        }
        None => format!("xem {where_}"),
    }
}
