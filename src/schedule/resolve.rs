//! Resolve: raw files → a checked [`Schedule`], or every diagnostic at once.
//!
//! Pure: it takes the texts of the files (read by [`super::load`]) and today's date, and does no
//! I/O. Each check that fails adds a located [`Diagnostic`] and the resolution goes on, so that
//! `ngayle check` shows all the mistakes of all the files in one run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, NaiveTime, Weekday};

use super::raw;
use super::{
    Assignee, Category, DateRule, Event, Group, Layer, Person, Schedule, Secret, Settings,
    TIMEZONE, Task, Unit,
};
use crate::diag::{Diagnostic, Pos, Severity, allowed_help, did_you_mean};
use crate::template::Templates;
use crate::yaml::{self, List, Scalar, Seg, Unknown};

/// The text of every input file. Paths are as they will be printed in diagnostics.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub config: SourceFile,
    pub staff: Option<SourceFile>,
    pub tasks: Option<SourceFile>,
    /// Layer files, sorted by path.
    pub layers: Vec<SourceFile>,
    /// Email templates found in `templates/` next to the config (the others are built in).
    pub templates: Vec<SourceFile>,
    /// `NGAYLE_*` environment variables that override keys of the config (see [`ENV_KEYS`]).
    pub env: Vec<EnvValue>,
}

/// An environment variable's value, read by `load`.
#[derive(Debug, Clone)]
pub struct EnvValue {
    pub name: &'static str,
    pub value: String,
}

/// The environment variables that override the config file: (variable, key it overrides,
/// secret). A secret's value is never shown in a diagnostic. `NGAYLE_SMTP_URL` and
/// `NGAYLE_FEED_TOKEN` may also come from a file named by the same variable with `_FILE`.
pub const ENV_KEYS: &[(&str, &str, bool)] = &[
    ("NGAYLE_LISTEN", "http.listen", false),
    ("NGAYLE_PUBLIC_URL", "http.public_url", false),
    ("NGAYLE_FEED_TOKEN", "http.feed_token", true),
    ("NGAYLE_MAX_CONNECTIONS", "http.max_connections", false),
    ("NGAYLE_SMTP_URL", "mail.smtp", true),
    ("NGAYLE_OUTBOX", "mail.outbox", false),
    ("NGAYLE_STATE", "state", false),
    ("NGAYLE_SHUTDOWN_GRACE", "shutdown_grace", false),
];

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
    let mut r = Resolver {
        diags: Vec::new(),
        today,
        positions: yaml::Positions::default(),
    };
    let config = r.config(&src.config, &src.env);
    let (groups, people) = match &src.staff {
        Some(f) => r.staff(f),
        None => (Vec::new(), Vec::new()),
    };
    let tasks = match &src.tasks {
        Some(f) => r.tasks(f, &groups, &people),
        None => Vec::new(),
    };
    let mut layers = Vec::new();
    let mut events = Vec::new();
    let mut event_ids: BTreeMap<String, Defined> = BTreeMap::new();
    for f in &src.layers {
        r.layer(f, &tasks, &mut layers, &mut events, &mut event_ids);
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
    if diags.iter().any(Diagnostic::is_error) {
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
    );
    (Some(schedule), diags)
}

/// Where a config key's value comes from: the environment variable's pseudo-file (the whole
/// "file" is the value) when it is set, else the config file at `path`.
fn pick<'a, 'k>(
    env: &'a Option<(SourceFile, Option<Scalar>)>,
    f: &'a SourceFile,
    path: &'a [Seg<'k>],
    v: &'a Option<Scalar>,
) -> (&'a SourceFile, &'a [Seg<'k>], &'a Option<Scalar>) {
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
}

/// A hash of every input file, in a fixed order.
fn version(src: &Sources) -> String {
    let mut bytes = Vec::new();
    let files = std::iter::once(&src.config)
        .chain(&src.staff)
        .chain(&src.tasks)
        .chain(&src.layers)
        .chain(&src.templates);
    for f in files {
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
}

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
        match yaml::parse::<T>(&f.text) {
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
                let msg = if e.message.contains("recursion limit") {
                    "tệp lồng nhau quá sâu (recursion limit exceeded)".to_string()
                } else {
                    format!("YAML không hợp lệ: {}", e.message)
                };
                self.push(Diagnostic::error(&f.path, e.pos, msg).with_help(
                    "kiểm tra thụt lề (dùng dấu cách, không dùng tab), dấu `:` sau mỗi khóa và dấu ngoặc của danh sách `[a, b]`",
                ));
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
    fn text(
        &mut self,
        f: &SourceFile,
        path: &[Seg],
        v: &Option<Scalar>,
        what: &str,
    ) -> Option<String> {
        self.required(f, path, v, what, false)
    }

    /// A required, non-empty text value that may hold line breaks (a task's `do`).
    fn text_lines(
        &mut self,
        f: &SourceFile,
        path: &[Seg],
        v: &Option<Scalar>,
        what: &str,
    ) -> Option<String> {
        self.required(f, path, v, what, true)
    }

    fn required(
        &mut self,
        f: &SourceFile,
        path: &[Seg],
        v: &Option<Scalar>,
        what: &str,
        lines: bool,
    ) -> Option<String> {
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
            Some(s) => self.scalar_text(f, path, v, what, lines).or_else(|| {
                if s.text().is_some_and(|t| t.trim().is_empty()) {
                    self.error(f, path, format!("{what} đang để trống"), "");
                }
                None
            }),
        }
    }

    /// An optional text value on one line: `None` when absent or empty; an error when it is a
    /// list/mapping or holds a control character.
    fn optional_text(
        &mut self,
        f: &SourceFile,
        path: &[Seg],
        v: &Option<Scalar>,
        what: &str,
    ) -> Option<String> {
        self.scalar_text(f, path, v, what, false)
    }

    /// Every text of the files reaches a feed, an email header or a page, where a control
    /// character is forbidden (RFC 5545 §3.3.11) or forges a line (a bare CR before `UID:`),
    /// so each is refused here. A tab is kept: it is whitespace in all three. A line break is
    /// kept where `lines` (a task's `do`, a note): the feed escapes it as `\n`.
    fn scalar_text(
        &mut self,
        f: &SourceFile,
        path: &[Seg],
        v: &Option<Scalar>,
        what: &str,
        lines: bool,
    ) -> Option<String> {
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

    fn id(
        &mut self,
        f: &SourceFile,
        path: &[Seg],
        v: &Option<Scalar>,
        what: &str,
    ) -> Option<String> {
        let id = self.text(f, path, v, what)?;
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

    // ---- config/ngayle.yaml ----

    fn config(&mut self, f: &SourceFile, env: &[EnvValue]) -> Option<(Unit, Settings)> {
        // A variable set in the environment replaces the key; its mistakes are reported against
        // `$NAME` (a secret's value shown as `[ẩn]`).
        let over = |name: &str| -> Option<(SourceFile, Option<Scalar>)> {
            let v = env.iter().find(|e| e.name == name)?;
            let secret = ENV_KEYS.iter().any(|(n, _, s)| *n == name && *s);
            Some((
                SourceFile {
                    path: PathBuf::from(format!("${name}")),
                    text: if secret {
                        "[ẩn]".to_string()
                    } else {
                        v.value.clone()
                    },
                },
                Some(Scalar::Text(v.value.clone())),
            ))
        };
        let env_listen = over("NGAYLE_LISTEN");
        let env_url = over("NGAYLE_PUBLIC_URL");
        let env_token = over("NGAYLE_FEED_TOKEN");
        let env_max_conns = over("NGAYLE_MAX_CONNECTIONS");
        let env_smtp = over("NGAYLE_SMTP_URL");
        let env_outbox = over("NGAYLE_OUTBOX");
        let env_state = over("NGAYLE_STATE");
        let env_grace = over("NGAYLE_SHUTDOWN_GRACE");
        let c = self.parse::<raw::Config>(f)?;
        if yaml::is_blank(&f.text) {
            self.error(
                f,
                &[],
                "tệp cấu hình trống",
                "cần ít nhất `unit: {name: …}`; xem config/ngayle.yaml mẫu",
            );
            return None;
        }
        self.unknown_keys(f, &[], &c.unknown, raw::Config::KEYS);
        let unit = match &c.unit {
            None => {
                self.error(
                    f,
                    &[],
                    "thiếu `unit:` (tên đơn vị)",
                    "thêm `unit: {name: Trường …, place: …}`",
                );
                None
            }
            Some(u) => {
                self.unknown_keys(f, &[k("unit")], &u.unknown, raw::Unit::KEYS);
                let name = self.text(f, &[k("unit"), k("name")], &u.name, "tên đơn vị");
                let place = self
                    .optional_text(f, &[k("unit"), k("place")], &u.place, "địa phương")
                    .unwrap_or_default();
                name.map(|name| Unit { name, place })
            }
        };
        if let Some(tz) = self.optional_text(f, &[k("timezone")], &c.timezone, "múi giờ")
            && tz != TIMEZONE
        {
            self.error(
                f,
                &[k("timezone")],
                format!("múi giờ `{tz}` không được hỗ trợ"),
                format!("ngayle tính lịch Việt Nam theo giờ `{TIMEZONE}` (UTC+7); bỏ dòng này hoặc ghi `timezone: {TIMEZONE}`"),
            );
        }
        let dir = f.path.parent().unwrap_or(Path::new("")).to_path_buf();
        let rel = |s: Option<String>, default: &str| {
            super::normalize(&dir.join(s.unwrap_or_else(|| default.to_string())))
        };
        let calendars_dir = rel(
            self.optional_text(f, &[k("calendars")], &c.calendars, "thư mục lịch"),
            "../calendars",
        );
        let staff_path = rel(
            self.optional_text(f, &[k("staff")], &c.staff, "tệp nhân sự"),
            "staff.yaml",
        );
        let state = match &env_state {
            // From the environment: relative to the working directory, like any path there.
            Some((ef, v)) => super::normalize(Path::new(
                &self
                    .optional_text(ef, &[], v, "tệp dữ liệu")
                    .unwrap_or_default(),
            )),
            None => rel(
                self.optional_text(f, &[k("state")], &c.state, "tệp dữ liệu"),
                "../var/ngayle.sqlite",
            ),
        };
        let grace_path = [k("shutdown_grace")];
        let (gf, gp, gv) = pick(&env_grace, f, &grace_path, &c.shutdown_grace);
        let shutdown_grace = match self.optional_text(gf, gp, gv, "thời gian chờ khi dừng") {
            None => Some(std::time::Duration::from_secs(10)),
            Some(t) => match parse_duration(&t, &['s', 'm']) {
                Ok(d) if d > chrono::Duration::zero() && d <= chrono::Duration::minutes(10) => {
                    d.to_std().ok()
                }
                Ok(_) | Err(_) => {
                    self.error(
                        gf,
                        gp,
                        format!("thời gian chờ `{t}` không hợp lệ"),
                        "viết số giây hoặc phút, từ `1s` đến `10m`; mặc định `10s`",
                    );
                    None
                }
            },
        };

        let default_http = raw::Http::default();
        let http = c.http.as_ref().unwrap_or(&default_http);
        self.unknown_keys(f, &[k("http")], &http.unknown, raw::Http::KEYS);
        let listen_path = [k("http"), k("listen")];
        let (lf, lp, lv) = pick(&env_listen, f, &listen_path, &http.listen);
        let listen = match self.optional_text(lf, lp, lv, "địa chỉ nghe") {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            Some(s) => match s.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.error(
                        lf,
                        lp,
                        format!("`{s}` không phải địa chỉ IP:cổng"),
                        "ví dụ `127.0.0.1:8080`, hoặc `0.0.0.0:8080` để nghe trên mọi giao diện mạng",
                    );
                    None
                }
            },
        };
        let url_path = [k("http"), k("public_url")];
        let (uf, up, uv) = pick(&env_url, f, &url_path, &http.public_url);
        let public_url = match self.optional_text(uf, up, uv, "địa chỉ công khai") {
            None => listen.map(|a| format!("http://{a}")),
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                Some(u.trim_end_matches('/').to_string())
            }
            Some(u) => {
                self.error(
                    uf,
                    up,
                    format!("`{u}` không phải địa chỉ web"),
                    "ghi đầy đủ, ví dụ `https://lich.truong.edu.vn`",
                );
                None
            }
        };
        let token_path = [k("http"), k("feed_token")];
        let (tf, tp, tv) = pick(&env_token, f, &token_path, &http.feed_token);
        let feed_token = self
            .optional_text(tf, tp, tv, "mã bảo vệ lịch")
            .and_then(|t| {
                if t.chars().count() < 16 {
                    self.error(
                        tf,
                        tp,
                        "mã bảo vệ lịch quá ngắn (cần ít nhất 16 ký tự)",
                        "dùng một chuỗi ngẫu nhiên dài, ví dụ kết quả của `openssl rand -hex 16`",
                    );
                    None
                } else {
                    Some(Secret::new(t))
                }
            });
        let conns_path = [k("http"), k("max_connections")];
        let (cf, cp, cv) = pick(&env_max_conns, f, &conns_path, &http.max_connections);
        let max_connections = match self.optional_text(cf, cp, cv, "số kết nối tối đa") {
            None => Some(super::DEFAULT_MAX_CONNECTIONS),
            Some(t) => match t.parse::<usize>() {
                Ok(n) if (1..=MAX_CONNECTIONS_LIMIT).contains(&n) => Some(n),
                Ok(_) | Err(_) => {
                    self.error(
                        cf,
                        cp,
                        format!("số kết nối tối đa `{t}` không hợp lệ"),
                        format!(
                            "viết một số nguyên từ 1 đến {MAX_CONNECTIONS_LIMIT}; mặc định {}",
                            super::DEFAULT_MAX_CONNECTIONS
                        ),
                    );
                    None
                }
            },
        };

        let default_mail = raw::Mail::default();
        let mail = c.mail.as_ref().unwrap_or(&default_mail);
        self.unknown_keys(f, &[k("mail")], &mail.unknown, raw::Mail::KEYS);
        let mail_from =
            match self.optional_text(f, &[k("mail"), k("from")], &mail.from, "địa chỉ gửi") {
                None => {
                    if c.mail.is_some() {
                        self.error(
                            f,
                            &[k("mail"), k("from")],
                            "thiếu `from` (địa chỉ gửi thư nhắc việc)",
                            "ví dụ `from: \"Trường MN Hoa Phượng <nhacviec@truong.edu.vn>\"`",
                        );
                        None
                    } else {
                        Some("ngayle <ngayle@localhost>".to_string())
                    }
                }
                Some(m) => self.mailbox(f, &[k("mail"), k("from")], m),
            };
        let reply_to = self
            .optional_text(
                f,
                &[k("mail"), k("reply_to")],
                &mail.reply_to,
                "địa chỉ trả lời",
            )
            .and_then(|m| self.mailbox(f, &[k("mail"), k("reply_to")], m));
        let smtp_path = [k("mail"), k("smtp")];
        let (sf, sp, sv) = pick(&env_smtp, f, &smtp_path, &mail.smtp);
        let smtp = self
            .optional_text(sf, sp, sv, "máy chủ SMTP")
            .and_then(|u| {
                if ["smtp://", "smtps://"].iter().any(|p| u.starts_with(p)) {
                    Some(Secret::new(u))
                } else {
                    self.error(
                        sf,
                        sp,
                        "địa chỉ SMTP phải bắt đầu bằng `smtp://` (STARTTLS) hoặc `smtps://` (TLS)",
                        "ví dụ `smtps://nhacviec@truong.edu.vn@smtp.gmail.com`; để trống (`~`) để ghi thư vào thư mục outbox",
                    );
                    None
                }
            });
        let outbox = match &env_outbox {
            Some((ef, v)) => super::normalize(Path::new(
                &self
                    .optional_text(ef, &[], v, "thư mục outbox")
                    .unwrap_or_default(),
            )),
            None => rel(
                self.optional_text(f, &[k("mail"), k("outbox")], &mail.outbox, "thư mục outbox"),
                "../var/outbox",
            ),
        };

        let default_rem = raw::Reminders::default();
        let rem = c.reminders.as_ref().unwrap_or(&default_rem);
        self.unknown_keys(f, &[k("reminders")], &rem.unknown, raw::Reminders::KEYS);
        let send_at =
            match self.optional_text(f, &[k("reminders"), k("send_at")], &rem.send_at, "giờ gửi")
            {
                None => NaiveTime::from_hms_opt(7, 30, 0),
                Some(t) => self.time_of_day(f, &[k("reminders"), k("send_at")], &t),
            };
        let workdays = self.workdays(f, rem.workdays.as_ref());
        let catch_up_path = [k("reminders"), k("catch_up")];
        let catch_up = match self.optional_text(f, &catch_up_path, &rem.catch_up, "thời hạn gửi bù")
        {
            None => Some(chrono::Duration::days(3)),
            Some(t) => match parse_duration(&t, &['m', 'h', 'd', 'w']) {
                Ok(d) => Some(d),
                Err(why) => {
                    self.error(
                        f,
                        &catch_up_path,
                        format!("thời hạn `{t}` không hợp lệ: {why}"),
                        "viết một số nguyên và đơn vị: `30m` (phút), `12h` (giờ), `3d` (ngày), `1w` (tuần)",
                    );
                    None
                }
            },
        };

        let lease_path = [k("reminders"), k("lease")];
        let lease = match self.optional_text(f, &lease_path, &rem.lease, "thời hạn giữ lời nhắc")
        {
            None => Some(std::time::Duration::from_secs(120)),
            Some(t) => match parse_duration(&t, &['s', 'm']) {
                Ok(d) if d >= chrono::Duration::seconds(1) && d <= chrono::Duration::hours(1) => {
                    d.to_std().ok()
                }
                Ok(_) | Err(_) => {
                    self.error(
                        f,
                        &lease_path,
                        format!("thời hạn giữ `{t}` không hợp lệ"),
                        "viết số giây hoặc phút, từ `1s` đến `60m`; mặc định `2m`",
                    );
                    None
                }
            },
        };
        let reload_warn_shrink = self.reload(f, c.reload.as_ref());

        Some((
            unit?,
            Settings {
                config_path: f.path.clone(),
                calendars_dir,
                staff_path,
                listen: listen?,
                public_url: public_url?,
                feed_token,
                max_connections: max_connections?,
                mail_from: mail_from?,
                reply_to,
                smtp,
                outbox,
                state,
                send_at: send_at?,
                workdays: workdays?,
                catch_up: catch_up?,
                lease: lease?,
                shutdown_grace: shutdown_grace?,
                reload_warn_shrink: reload_warn_shrink?,
            },
        ))
    }

    /// `reload.warn_shrink`: a share like `20%` (default), from `0%` (warn at any loss) to
    /// `100%` (never).
    fn reload(&mut self, f: &SourceFile, r: Option<&raw::Reload>) -> Option<u8> {
        let Some(r) = r else {
            return Some(20);
        };
        self.unknown_keys(f, &[k("reload")], &r.unknown, raw::Reload::KEYS);
        let path = [k("reload"), k("warn_shrink")];
        let Some(t) = self.optional_text(f, &path, &r.warn_shrink, "ngưỡng cảnh báo") else {
            return Some(20);
        };
        match t.strip_suffix('%').map(|n| n.trim().parse::<u8>()) {
            Some(Ok(n @ 0..=100)) => Some(n),
            _ => {
                self.error(
                    f,
                    &path,
                    format!("`{t}` không phải tỉ lệ phần trăm"),
                    "viết một số nguyên từ 0 đến 100 và dấu `%`, ví dụ `warn_shrink: 20%` (mặc định); `100%` để không bao giờ cảnh báo",
                );
                None
            }
        }
    }

    /// A sender's mailbox (`Tên <a@b>` or `a@b`), checked with the parser the mailer uses.
    fn mailbox(&mut self, f: &SourceFile, path: &[Seg], m: String) -> Option<String> {
        let addr = match (m.rfind('<'), m.ends_with('>')) {
            (Some(i), true) => &m[i + 1..m.len() - 1],
            _ => m.as_str(),
        };
        // The address first: its mistake is the one worth naming.
        let problem = match (deliverable(addr), m.parse::<lettre::message::Mailbox>()) {
            (Err(why), _) => Some(why),
            (Ok(()), Err(e)) => Some(address_problem(e)),
            (Ok(()), Ok(_)) => None,
        };
        match problem {
            None => Some(m),
            Some(why) => {
                self.error(
                    f,
                    path,
                    format!("`{m}` không phải địa chỉ email"),
                    format!("{why}; ví dụ `nhacviec@truong.edu.vn` hoặc `\"Tên <nhacviec@truong.edu.vn>\"`"),
                );
                None
            }
        }
    }

    fn time_of_day(&mut self, f: &SourceFile, path: &[Seg], t: &str) -> Option<NaiveTime> {
        match NaiveTime::parse_from_str(t, "%H:%M") {
            Ok(time) => Some(time),
            Err(_) => {
                self.error(
                    f,
                    path,
                    format!("giờ `{t}` không hợp lệ"),
                    "viết giờ:phút theo 24 giờ trong ngoặc kép, ví dụ `\"07:30\"` hoặc `\"14:00\"`",
                );
                None
            }
        }
    }

    fn workdays(&mut self, f: &SourceFile, list: Option<&List>) -> Option<Vec<Weekday>> {
        const DAYS: &[(&str, Weekday)] = &[
            ("mon", Weekday::Mon),
            ("tue", Weekday::Tue),
            ("wed", Weekday::Wed),
            ("thu", Weekday::Thu),
            ("fri", Weekday::Fri),
            ("sat", Weekday::Sat),
            ("sun", Weekday::Sun),
        ];
        let names: Vec<&str> = DAYS.iter().map(|d| d.0).collect();
        let Some(list) = list else {
            return Some(DAYS[..5].iter().map(|d| d.1).collect());
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in list.0.iter().enumerate() {
            let path = [k("reminders"), k("workdays"), Seg::Index(i)];
            let text = item
                .text()
                .map(|t| t.trim().to_lowercase())
                .unwrap_or_default();
            match DAYS.iter().find(|d| d.0 == text) {
                Some(&(_, d)) if !out.contains(&d) => out.push(d),
                Some(_) => self.warning(f, &path, format!("ngày `{text}` lặp lại"), ""),
                None => {
                    ok = false;
                    self.error(
                        f,
                        &path,
                        format!("`{text}` không phải tên ngày trong tuần"),
                        allowed_help(&text, &names),
                    );
                }
            }
        }
        if ok && out.is_empty() {
            self.error(
                f,
                &[k("reminders"), k("workdays")],
                "danh sách ngày làm việc trống: thư nhắc sẽ không bao giờ được gửi",
                "ví dụ `workdays: [mon, tue, wed, thu, fri]`",
            );
            return None;
        }
        ok.then_some(out)
    }

    // ---- config/staff.yaml ----

    fn staff<'a>(&mut self, f: &'a SourceFile) -> (Vec<Group>, Vec<Person>) {
        let Some(s) = self.parse::<raw::Staff>(f) else {
            return (Vec::new(), Vec::new());
        };
        self.unknown_keys(f, &[], &s.unknown, raw::Staff::KEYS);
        let mut ids: BTreeMap<String, Defined<'a>> = BTreeMap::new();
        let mut groups = Vec::new();
        for (i, g) in s.groups.iter().flatten().enumerate() {
            let item = Item {
                list: "groups",
                index: i,
            };
            let id = self.item_header(
                f,
                item,
                &g.unknown,
                raw::Group::KEYS,
                &g.id,
                &mut ids,
                "nhóm",
            );
            let name = self.text(f, &item.at("name"), &g.name, "tên nhóm");
            if let (Some(id), Some(name)) = (id, name) {
                groups.push(Group { id, name });
            }
        }
        let group_ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
        let group_set: std::collections::HashSet<&str> =
            group_ids.iter().map(String::as_str).collect();
        let mut people = Vec::new();
        let mut emails: BTreeMap<String, Defined<'a>> = BTreeMap::new();
        for (i, p) in s.people.iter().flatten().enumerate() {
            let item = Item {
                list: "people",
                index: i,
            };
            let at = |key| item.at(key);
            let id = self.item_header(
                f,
                item,
                &p.unknown,
                raw::Person::KEYS,
                &p.id,
                &mut ids,
                "người",
            );
            let name = self.text(f, &at("name"), &p.name, "họ tên");
            let title = self.optional_text(f, &at("title"), &p.title, "chức vụ");
            let email = match self.text(f, &at("email"), &p.email, "địa chỉ email") {
                Some(e) if deliverable(&e).is_ok() => {
                    let key = e.to_lowercase();
                    if let Some(first) = emails.get(&key) {
                        self.warning(
                            f,
                            &at("email"),
                            format!("địa chỉ `{e}` đã dùng cho người khác"),
                            format!("đã có ở {}", first.describe(self)),
                        );
                    } else {
                        emails.insert(
                            key,
                            Defined {
                                file: f,
                                path: at("email").to_vec(),
                            },
                        );
                    }
                    Some(e)
                }
                Some(e) => {
                    let why = deliverable(&e).err().unwrap_or_default();
                    self.error(
                        f,
                        &at("email"),
                        format!("`{e}` không phải địa chỉ email"),
                        format!("{why}; ví dụ `hieutruong@truong.edu.vn`"),
                    );
                    None
                }
                None => None,
            };
            let mut groups_of = Vec::new();
            for (j, g) in p.groups.iter().flat_map(|l| l.0.iter()).enumerate() {
                let path = [k("people"), Seg::Index(i), k("groups"), Seg::Index(j)];
                let g = g.text().map(str::trim).unwrap_or_default();
                if group_set.contains(g) {
                    groups_of.push(g.to_string());
                } else {
                    let known: Vec<&str> = group_ids.iter().map(String::as_str).collect();
                    self.error(
                        f,
                        &path,
                        format!("không có nhóm `{g}`"),
                        ids_help(g, &known, "các nhóm trong `groups:`"),
                    );
                }
            }
            if let (Some(id), Some(name), Some(email)) = (id, name, email) {
                people.push(Person {
                    id,
                    name,
                    title,
                    email,
                    groups: groups_of,
                });
            }
        }
        let named_in_people: std::collections::HashSet<&str> = s
            .people
            .iter()
            .flatten()
            .flat_map(|p| p.groups.iter().flat_map(|l| l.0.iter()))
            .filter_map(|g| g.text().map(str::trim))
            .collect();
        for (i, g) in groups.iter().enumerate() {
            if !named_in_people.contains(g.id.as_str()) {
                self.warning(
                    f,
                    &[k("groups"), Seg::Index(i), k("id")],
                    format!("nhóm `{}` chưa có ai", g.id),
                    "thêm mã nhóm vào `groups:` của người thuộc nhóm",
                );
            }
        }
        if people.is_empty() && s.people.as_ref().is_none_or(Vec::is_empty) {
            self.warning(
                f,
                &[],
                "chưa có ai trong `people:`: không ai nhận thư nhắc",
                "",
            );
        }
        (groups, people)
    }

    /// The common start of every list item: unknown keys, a valid `id`, unique among `seen`.
    #[allow(clippy::too_many_arguments)]
    fn item_header<'a>(
        &mut self,
        f: &'a SourceFile,
        item: Item,
        unknown: &Unknown,
        keys: &[&str],
        id: &Option<Scalar>,
        seen: &mut BTreeMap<String, Defined<'a>>,
        what: &str,
    ) -> Option<String> {
        self.unknown_keys(f, &item.path(), unknown, keys);
        let id = self.id(f, &item.at("id"), id, &format!("mã {what}"))?;
        self.unique(f, &item.at("id"), &id, seen, what);
        Some(id)
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

    // ---- calendars/tasks.yaml ----

    fn tasks<'a>(&mut self, f: &'a SourceFile, groups: &[Group], people: &[Person]) -> Vec<Task> {
        let Some(t) = self.parse::<raw::Tasks>(f) else {
            return Vec::new();
        };
        self.unknown_keys(f, &[], &t.unknown, raw::Tasks::KEYS);
        if t.tasks.as_ref().is_none_or(Vec::is_empty) {
            self.warning(f, &[], "chưa có loại việc nào trong `tasks:`", "");
        }
        let mut ids: BTreeMap<String, Defined<'a>> = BTreeMap::new();
        let mut who_ids: Vec<&str> = vec![ALL];
        who_ids.extend(groups.iter().map(|g| g.id.as_str()));
        who_ids.extend(people.iter().map(|p| p.id.as_str()));
        let group_set: std::collections::HashSet<&str> =
            groups.iter().map(|g| g.id.as_str()).collect();
        let person_set: std::collections::HashSet<&str> =
            people.iter().map(|p| p.id.as_str()).collect();
        let mut out = Vec::new();
        for (i, raw) in t.tasks.iter().flatten().enumerate() {
            let item = Item {
                list: "tasks",
                index: i,
            };
            let at = |key| item.at(key);
            let id = self.item_header(
                f,
                item,
                &raw.unknown,
                raw::Task::KEYS,
                &raw.id,
                &mut ids,
                "việc",
            );
            let title = self.text(f, &at("title"), &raw.title, "tên việc");
            let what = self.text_lines(f, &at("do"), &raw.what, "nội dung việc cần làm");
            let before = self.text(f, &at("before"), &raw.before, "thời gian làm trước").and_then(|b| {
                match parse_duration(&b, &['d', 'w']) {
                    Ok(d) => u32::try_from(d.num_days()).ok(),
                    Err(why) => {
                        self.error(
                            f,
                            &at("before"),
                            format!("thời gian `{b}` không hợp lệ: {why}"),
                            "viết số ngày hoặc tuần trước sự kiện: `0d` (ngay hôm đó), `1d`, `7d`, `2w`",
                        );
                        None
                    }
                }
            });
            let at_time = match self.optional_text(f, &at("at"), &raw.at, "giờ nhắc") {
                None => Some(None),
                Some(s) => self.time_of_day(f, &at("at"), &s).map(Some),
            };
            let mut who = Vec::new();
            match &raw.who {
                None => self.error(
                    f,
                    &at("who"),
                    "thiếu `who` (ai làm việc này)",
                    "ví dụ `who: [csvc]`; dùng mã nhóm hoặc mã người trong config/staff.yaml, hoặc `all`",
                ),
                Some(list) if list.0.is_empty() => self.error(
                    f,
                    &at("who"),
                    "danh sách `who` trống: không ai được giao việc này",
                    "ví dụ `who: [csvc]`",
                ),
                Some(list) => {
                    for (j, w) in list.0.iter().enumerate() {
                        let path = [k("tasks"), Seg::Index(i), k("who"), Seg::Index(j)];
                        let w = w.text().map(str::trim).unwrap_or_default();
                        if w == ALL {
                            who.push(Assignee::All);
                        } else if group_set.contains(w) {
                            who.push(Assignee::Group(w.to_string()));
                        } else if person_set.contains(w) {
                            who.push(Assignee::Person(w.to_string()));
                        } else {
                            self.error(
                                f,
                                &path,
                                format!("không có nhóm hay người nào mã `{w}`"),
                                ids_help(w, &who_ids, "mã nhóm/người trong config/staff.yaml"),
                            );
                        }
                    }
                }
            }
            if let (Some(id), Some(title), Some(what), Some(before_days), Some(at)) =
                (id, title, what, before, at_time)
            {
                out.push(Task {
                    id,
                    title,
                    what,
                    before_days,
                    at,
                    who,
                });
            }
        }
        out
    }

    // ---- calendars/<layer>.yaml ----

    fn layer<'a>(
        &mut self,
        f: &'a SourceFile,
        tasks: &[Task],
        layers: &mut Vec<Layer>,
        events: &mut Vec<Event>,
        event_ids: &mut BTreeMap<String, Defined<'a>>,
    ) {
        let Some(l) = self.parse::<raw::Layer>(f) else {
            return;
        };
        self.unknown_keys(f, &[], &l.unknown, raw::Layer::KEYS);
        let stem = f
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if !is_valid_id(&stem) {
            self.warning(
                f,
                &[],
                format!("tên tệp `{stem}` nên chỉ gồm chữ thường không dấu, chữ số và `-`"),
                format!("đổi tên thành `{}.yaml`", suggest_id(&stem)),
            );
        }
        let name = self
            .optional_text(f, &[k("name")], &l.name, "tên lớp lịch")
            .unwrap_or_else(|| stem.clone());
        let layer = layers.len();
        layers.push(Layer {
            id: stem,
            name,
            path: f.path.clone(),
        });
        if l.events.as_ref().is_none_or(Vec::is_empty) {
            self.warning(f, &[], "tệp lịch chưa có sự kiện nào trong `events:`", "");
        }
        let task_ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        for (i, e) in l.events.iter().flatten().enumerate() {
            if let Some(ev) = self.event(f, i, e, layer, &task_ids, event_ids) {
                events.push(ev);
            }
        }
    }

    fn event<'a>(
        &mut self,
        f: &'a SourceFile,
        i: usize,
        e: &raw::Event,
        layer: usize,
        task_ids: &[&str],
        event_ids: &mut BTreeMap<String, Defined<'a>>,
    ) -> Option<Event> {
        let item = Item {
            list: "events",
            index: i,
        };
        let at = |key| item.at(key);
        let id = self.item_header(
            f,
            item,
            &e.unknown,
            raw::Event::KEYS,
            &e.id,
            event_ids,
            "sự kiện",
        );
        let name = self.text(f, &at("name"), &e.name, "tên sự kiện");
        let rule = match (&e.date, &e.lunar) {
            (Some(_), Some(_)) => {
                self.error(
                    f,
                    &[k("events"), Seg::Index(i), Seg::KeyName("lunar")],
                    "một sự kiện chỉ có một trong hai: `date` (dương lịch) hoặc `lunar` (âm lịch)",
                    "xóa một trong hai dòng",
                );
                None
            }
            (None, None) => {
                self.error(
                    f,
                    &[k("events"), Seg::Index(i)],
                    "thiếu ngày: cần `date: NGÀY/THÁNG` (dương lịch) hoặc `lunar: NGÀY/THÁNG` (âm lịch)",
                    "ví dụ `date: 30/4`, `date: 1/11/2024` (một lần) hoặc `lunar: 10/3`",
                );
                None
            }
            (Some(_), None) => self
                .optional_text(f, &at("date"), &e.date, "ngày")
                .and_then(|d| match parse_solar(&d) {
                    Ok(rule) => Some(rule),
                    Err(why) => {
                        self.error(
                            f,
                            &at("date"),
                            why,
                            "viết `date: NGÀY/THÁNG` cho ngày hằng năm (`30/4`) hoặc `NGÀY/THÁNG/NĂM` cho một lần (`1/11/2024`)",
                        );
                        None
                    }
                }),
            (None, Some(_)) => self
                .optional_text(f, &at("lunar"), &e.lunar, "ngày âm lịch")
                .and_then(|l| match parse_lunar(&l) {
                    Ok(rule) => Some(rule),
                    Err(why) => {
                        self.error(
                            f,
                            &at("lunar"),
                            why,
                            "viết `lunar: NGÀY/THÁNG` âm lịch: ngày 1–30, tháng 1–12, ví dụ `lunar: 10/3`",
                        );
                        None
                    }
                }),
        };
        let (mut ok, mut since) = (true, None);
        if let Some(s) = self.optional_text(f, &at("since"), &e.since, "năm gốc") {
            match s.parse::<i32>() {
                Ok(y) if y > self.today.year() => {
                    ok = false;
                    self.error(
                        f,
                        &at("since"),
                        format!("năm gốc {y} ở tương lai (năm nay là {})", self.today.year()),
                        "`since` là năm xảy ra sự kiện gốc, ví dụ `since: 1975` cho 30/4/1975",
                    );
                }
                Ok(y) if y < 1 => {
                    ok = false;
                    self.error(
                        f,
                        &at("since"),
                        format!("năm gốc {y} không hợp lệ"),
                        "ghi năm dương lịch, ví dụ `since: 1954`",
                    );
                }
                Ok(y) => {
                    if let Some(DateRule::Once(d)) = rule
                        && y > d.year()
                    {
                        ok = false;
                        self.error(
                            f,
                            &at("since"),
                            format!("năm gốc {y} sau năm của ngày diễn ra ({})", d.year()),
                            "năm gốc phải trước hoặc bằng năm của `date`",
                        );
                    }
                    since = Some(y);
                }
                Err(_) => {
                    ok = false;
                    self.error(
                        f,
                        &at("since"),
                        format!("`{s}` không phải một năm"),
                        "ghi năm dương lịch, ví dụ `since: 1954`",
                    );
                }
            }
        }
        let only_round = match self.optional_text(f, &at("only"), &e.only, "điều kiện") {
            None => false,
            Some(o) if o == "round" => {
                if since.is_none() && e.since.is_none() {
                    ok = false;
                    self.error(
                        f,
                        &at("only"),
                        "`only: round` cần `since` để biết năm nào là năm tròn, năm lẻ 5",
                        "thêm `since: NĂM` hoặc bỏ `only`",
                    );
                }
                true
            }
            Some(o) => {
                ok = false;
                self.error(
                    f,
                    &at("only"),
                    format!("`only: {o}` không hợp lệ"),
                    allowed_help(&o, &["round"]),
                );
                false
            }
        };
        let days = match self.optional_text(f, &at("days"), &e.days, "số ngày") {
            None => 1,
            Some(d) => match d.parse::<u32>() {
                Ok(n @ 1..=366) => n,
                _ => {
                    ok = false;
                    self.error(
                        f,
                        &at("days"),
                        format!("số ngày `{d}` không hợp lệ"),
                        "một số nguyên từ 1 đến 366",
                    );
                    1
                }
            },
        };
        let categories: Vec<&str> = Category::ALL.iter().map(|c| c.0).collect();
        let category = match self.optional_text(f, &at("category"), &e.category, "loại") {
            None => Category::Other,
            Some(c) => match Category::ALL.iter().find(|(id, _)| *id == c) {
                Some(&(_, cat)) => cat,
                None => {
                    ok = false;
                    self.error(
                        f,
                        &at("category"),
                        format!("loại `{c}` không có"),
                        allowed_help(&c, &categories),
                    );
                    Category::Other
                }
            },
        };
        let day_off = match self.optional_text(f, &at("day_off"), &e.day_off, "ngày nghỉ") {
            None => None,
            Some(b) => match parse_day_off(&b, days) {
                Ok(off) => off,
                Err(why) => {
                    ok = false;
                    self.error(
                        f,
                        &at("day_off"),
                        format!("`day_off: {b}` không hợp lệ: {why}"),
                        "ghi `true` (những ngày của sự kiện), `false`, hoặc khoảng ngày so với ngày lễ như `-1..3` (Tết: từ 30 tháng Chạp đến mùng 4)",
                    );
                    None
                }
            },
        };
        let tasks = self.task_refs(f, i, "tasks", e.tasks.as_ref(), task_ids);
        let round_tasks = self.task_refs(f, i, "round_tasks", e.round_tasks.as_ref(), task_ids);
        if e.round_tasks.as_ref().is_some_and(|l| !l.0.is_empty()) && e.since.is_none() {
            self.warning(
                f,
                &at("round_tasks"),
                "`round_tasks` không bao giờ dùng đến vì sự kiện không có `since`",
                "thêm `since: NĂM` hoặc bỏ `round_tasks`",
            );
        }
        let note = self.scalar_text(f, &at("note"), &e.note, "ghi chú", true);
        if !ok {
            return None;
        }
        Some(Event {
            id: id?,
            name: name?,
            layer,
            rule: rule?,
            since,
            only_round,
            days,
            category,
            day_off,
            tasks: tasks?,
            round_tasks: round_tasks?,
            note,
        })
    }

    fn task_refs(
        &mut self,
        f: &SourceFile,
        i: usize,
        key: &str,
        list: Option<&List>,
        task_ids: &[&str],
    ) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (j, t) in list.iter().flat_map(|l| l.0.iter()).enumerate() {
            let path = [k("events"), Seg::Index(i), k(key), Seg::Index(j)];
            let t = t.text().map(str::trim).unwrap_or_default();
            if task_ids.contains(&t) {
                if !out.iter().any(|o| o == t) {
                    out.push(t.to_string());
                }
            } else {
                ok = false;
                self.error(
                    f,
                    &path,
                    format!("không có việc `{t}` trong tasks.yaml"),
                    ids_help(t, task_ids, "các mã việc trong calendars/tasks.yaml"),
                );
            }
        }
        ok.then_some(out)
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

/// Ids are lower-case ASCII words joined by single dashes: `giai-phong-mien-nam`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// An id that would be valid, made from free text (strips Vietnamese diacritics).
pub fn suggest_id(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        let c = fold_vietnamese(c);
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "ten-su-kien".to_string()
    } else {
        out
    }
}

fn fold_vietnamese(c: char) -> char {
    const GROUPS: &[(&str, char)] = &[
        ("àáạảãâầấậẩẫăằắặẳẵ", 'a'),
        ("èéẹẻẽêềếệểễ", 'e'),
        ("ìíịỉĩ", 'i'),
        ("òóọỏõôồốộổỗơờớợởỡ", 'o'),
        ("ùúụủũưừứựửữ", 'u'),
        ("ỳýỵỷỹ", 'y'),
        ("đ", 'd'),
    ];
    GROUPS
        .iter()
        .find(|(set, _)| set.contains(c))
        .map_or(c, |&(_, base)| base)
}

/// Whether the mailer (lettre) takes `addr` as a recipient, and it looks like an Internet
/// address (a dot in the domain); else why not, for the help text.
fn deliverable(addr: &str) -> Result<(), &'static str> {
    match addr.parse::<lettre::Address>() {
        Err(e) => Err(address_problem(e)),
        Ok(_) if !is_plausible_email(addr) => Err("tên miền sau `@` cần có dấu chấm"),
        Ok(_) => Ok(()),
    }
}

/// What is wrong, in Vietnamese, from the mailer's parse error.
fn address_problem(e: lettre::address::AddressError) -> &'static str {
    use lettre::address::AddressError as E;
    match e {
        E::MissingParts => "thiếu `@` hoặc phần trước, phần sau `@`",
        E::InvalidUser => {
            "phần trước `@` không hợp lệ (chỉ một `@`, không có hai dấu chấm liền nhau, dấu cách hay ký tự lạ)"
        }
        E::InvalidDomain => {
            "tên miền sau `@` không hợp lệ (chữ, số, `-` và dấu chấm; không bắt đầu hay kết thúc bằng `-`)"
        }
        E::Unbalanced => "thiếu dấu `<` hoặc `>` quanh địa chỉ",
        _ => "trình gửi thư không nhận địa chỉ này",
    }
}

fn is_plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',')
}

fn days_in_month(month: u8, year: Option<i32>) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 => match year {
            Some(y) if !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) => 28,
            _ => 29,
        },
        _ => 31,
    }
}

/// `D/M` (every year), `D/M/YYYY` or `YYYY-MM-DD` (once).
pub fn parse_solar(s: &str) -> Result<DateRule, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(DateRule::Once(d));
    }
    let parts: Vec<&str> = s.split('/').map(str::trim).collect();
    let num = |p: &str| p.parse::<u32>().ok().filter(|_| p.len() <= 4);
    match parts.as_slice() {
        [d, m] | [d, m, _] => {
            let (Some(day), Some(month)) = (num(d), num(m)) else {
                return Err(format!("`{s}` không phải ngày dạng NGÀY/THÁNG"));
            };
            let year = match parts.get(2) {
                None => None,
                Some(y) => match y.parse::<i32>() {
                    Ok(y @ 1..=9999) => Some(y),
                    _ => return Err(format!("`{}` không phải một năm", y)),
                },
            };
            if !(1..=12).contains(&month) {
                return Err(format!("tháng {month} không tồn tại (tháng từ 1 đến 12)"));
            }
            let month = month as u8;
            let max = days_in_month(month, year);
            if !(1..=u32::from(max)).contains(&day) {
                let when = year.map(|y| format!("/{y}")).unwrap_or_default();
                return Err(format!(
                    "ngày {day}/{month}{when} không tồn tại: tháng {month} có {max} ngày"
                ));
            }
            let day = day as u8;
            Ok(match year {
                None => DateRule::Solar { day, month },
                Some(y) => NaiveDate::from_ymd_opt(y, month.into(), day.into())
                    .map(DateRule::Once)
                    .ok_or_else(|| format!("ngày {s} không tồn tại"))?,
            })
        }
        _ => Err(format!("`{s}` không phải ngày dạng NGÀY/THÁNG")),
    }
}

/// `true` (the event's own days), `false`, or `A..B`: from A to B days after the event's first
/// day, both included (`-1..3`: the day before to the third day after).
pub fn parse_day_off(s: &str, days: u32) -> Result<Option<(i32, i32)>, String> {
    match s.trim() {
        "true" => return Ok(Some((0, i32::try_from(days).unwrap_or(1) - 1))),
        "false" => return Ok(None),
        _ => {}
    }
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| "không phải `true`, `false` hay `A..B`".to_string())?;
    let num = |x: &str| {
        x.trim()
            .trim_start_matches('+')
            .parse::<i32>()
            .ok()
            .filter(|n| (-30..=30).contains(n))
            .ok_or_else(|| format!("`{}` không phải số ngày từ -30 đến 30", x.trim()))
    };
    let (a, b) = (num(a)?, num(b)?);
    if a > b {
        return Err(format!("{a} ở sau {b}"));
    }
    Ok(Some((a, b)))
}

/// `D/M` of the lunar calendar.
pub fn parse_lunar(s: &str) -> Result<DateRule, String> {
    let parts: Vec<&str> = s.split('/').map(str::trim).collect();
    let num = |p: &str| p.parse::<u32>().ok().filter(|_| p.len() <= 4);
    match parts.as_slice() {
        [d, m] => {
            let (Some(day), Some(month)) = (num(d), num(m)) else {
                return Err(format!("`{s}` không phải ngày âm lịch dạng NGÀY/THÁNG"));
            };
            if !(1..=12).contains(&month) {
                return Err(format!(
                    "tháng âm lịch {month} không tồn tại (tháng từ 1 đến 12)"
                ));
            }
            if !(1..=30).contains(&day) {
                return Err(format!(
                    "ngày âm lịch {day} không tồn tại (tháng âm lịch có 29 hoặc 30 ngày)"
                ));
            }
            Ok(DateRule::Lunar {
                day: day as u8,
                month: month as u8,
            })
        }
        [_, _, _] => Err(format!(
            "ngày âm lịch `{s}` có năm: `lunar` là ngày âm lịch lặp lại hằng năm"
        )),
        _ => Err(format!("`{s}` không phải ngày âm lịch dạng NGÀY/THÁNG")),
    }
}

/// `30m`, `12h`, `3d`, `2w` with the units allowed.
pub fn parse_duration(s: &str, units: &[char]) -> Result<chrono::Duration, String> {
    let s = s.trim();
    let unit = s.chars().last().ok_or("trống")?;
    let number = &s[..s.len() - unit.len_utf8()];
    let allowed: String = units
        .iter()
        .map(|u| format!("`{u}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if !units.contains(&unit) {
        return Err(format!("đơn vị `{unit}` không dùng được (dùng {allowed})"));
    }
    let n: i64 = number
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("`{number}` không phải số nguyên không âm"))?
        .into();
    let d = match unit {
        's' => chrono::Duration::seconds(n),
        'm' => chrono::Duration::minutes(n),
        'h' => chrono::Duration::hours(n),
        'd' => chrono::Duration::days(n),
        _ => chrono::Duration::weeks(n),
    };
    if d > chrono::Duration::days(366) {
        return Err("dài quá một năm".to_string());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solar_dates() {
        assert_eq!(
            parse_solar("30/4"),
            Ok(DateRule::Solar { day: 30, month: 4 })
        );
        assert_eq!(
            parse_solar("29/2"),
            Ok(DateRule::Solar { day: 29, month: 2 })
        );
        assert_eq!(
            parse_solar("1/11/2024"),
            Ok(DateRule::Once(
                NaiveDate::from_ymd_opt(2024, 11, 1).unwrap_or_default()
            ))
        );
        assert_eq!(
            parse_solar("2024-11-01"),
            Ok(DateRule::Once(
                NaiveDate::from_ymd_opt(2024, 11, 1).unwrap_or_default()
            ))
        );
        for bad in [
            "31/2",
            "0/5",
            "12/13",
            "32/1",
            "29/2/2023",
            "31/4",
            "x/5",
            "5",
            "1/2/3/4",
            "99999999999/1",
        ] {
            assert!(parse_solar(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lunar_dates() {
        assert_eq!(
            parse_lunar("10/3"),
            Ok(DateRule::Lunar { day: 10, month: 3 })
        );
        assert_eq!(
            parse_lunar("30/12"),
            Ok(DateRule::Lunar { day: 30, month: 12 })
        );
        for bad in ["10/13", "31/1", "0/1", "1/0", "15/8/2024", "rằm"] {
            assert!(parse_lunar(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("0d", &['d', 'w']),
            Ok(chrono::Duration::days(0))
        );
        assert_eq!(
            parse_duration("2w", &['d', 'w']),
            Ok(chrono::Duration::days(14))
        );
        assert_eq!(
            parse_duration("90m", &['m', 'h']),
            Ok(chrono::Duration::minutes(90))
        );
        for bad in [
            "2x",
            "",
            "d",
            "-1d",
            "1.5d",
            "3h",
            "400d",
            "99999999999d",
            "ngày",
        ] {
            assert!(parse_duration(bad, &['d', 'w']).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_off() {
        assert_eq!(parse_day_off("true", 1), Ok(Some((0, 0))));
        assert_eq!(parse_day_off("true", 3), Ok(Some((0, 2))));
        assert_eq!(parse_day_off("false", 1), Ok(None));
        assert_eq!(parse_day_off("-1..3", 1), Ok(Some((-1, 3))));
        assert_eq!(parse_day_off("0..+1", 1), Ok(Some((0, 1))));
        for bad in ["yes", "3..1", "-99..0", "1..", "a..b"] {
            assert!(parse_day_off(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids() {
        assert!(is_valid_id("giai-phong-mien-nam"));
        assert!(is_valid_id("tet-2024"));
        for bad in ["", "Tet", "tet--x", "-tet", "tet-", "tết", "a b", "a_b"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
        assert_eq!(suggest_id("Giỗ Tổ Hùng Vương"), "gio-to-hung-vuong");
    }
}
