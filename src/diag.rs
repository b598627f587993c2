//! Diagnostics: what is wrong in the admin's files, where, and what to do about it.
//!
//! A [`Diagnostic`] names a file, a 1-based line and column, a message and an optional hint.
//! Loading collects *all* of them (see [`crate::schedule`]) so that `ngayle check` reports every
//! mistake at once. This module only holds and renders them; it does no I/O.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is. Errors make loading fail; warnings are printed and loading goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One located problem in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub path: PathBuf,
    /// 1-based line; 0 when the problem concerns the file as a whole.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    pub message: String,
    /// What to do, or what is allowed there ("did you mean …", "expected one of …").
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(path: &Path, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            path: path.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
            help: None,
        }
    }

    pub fn warning(path: &Path, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(path, pos, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic with the offending source line and a caret under the column,
    /// labelled in Vietnamese (`lỗi:`, `gợi ý:`). A secret on that line (a token, a password,
    /// the password of a URL) is masked, and the caret then points at its key; a control
    /// character is shown as `�`.
    pub fn render(&self, source: Option<&str>) -> String {
        self.render_in(source.map(Source::new).as_ref())
    }

    /// [`Diagnostic::render`] with the file's lines found already: rendering each of many
    /// diagnostics of one file does not scan the file again.
    pub fn render_in(&self, source: Option<&Source>) -> String {
        self.render_with(source, Labels::Vietnamese)
    }

    /// [`Diagnostic::render_in`] with the labels of `labels`.
    pub fn render_with(&self, source: Option<&Source>, labels: Labels) -> String {
        let mut out = self.line(labels);
        let mut hidden = Vec::new();
        if let Some(text) = source
            && self.line > 0
            && let Some(line) = text.line(self.line - 1)
        {
            let masked = mask_secrets(text, self.line - 1);
            let mut column = self.column;
            let line = match &masked {
                Some(m) => {
                    if m.key_column.is_some_and(|k| column > k) {
                        column = m.key_column.unwrap_or(column);
                    }
                    hidden.extend(m.hidden.iter().cloned());
                    m.line.as_str()
                }
                None => line,
            };
            let mut line: String = line
                .chars()
                .map(|c| {
                    if c.is_control() && c != '\t' {
                        '\u{fffd}'
                    } else {
                        c
                    }
                })
                .collect();
            // A very long line (a minified or broken file) is shown around the column only.
            let count = line.chars().count();
            if count > 2 * WINDOW {
                let from = column.saturating_sub(WINDOW / 2 + 1).min(count - WINDOW);
                let shown: String = line.chars().skip(from).take(WINDOW).collect();
                let head = if from > 0 { "…" } else { "" };
                let tail = if from + WINDOW < count { "…" } else { "" };
                line = format!("{head}{shown}{tail}");
                column = column - from + head.chars().count();
            }
            let gutter = self.line.to_string();
            let pad = " ".repeat(gutter.len());
            let caret_pad: String = line
                .chars()
                .take(column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "\n{pad} |\n{gutter} | {line}\n{pad} | {caret_pad}^"
            ));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("\n  = {}: {help}", labels.help()));
        }
        // A message quoting the value (a parser's, say) must not show it either.
        for secret in hidden.iter().filter(|h| h.chars().count() >= 4) {
            out = out.replace(secret.as_str(), MASK);
        }
        out
    }
}

/// A file's text with where each of its lines starts (lines as [`str::lines`] gives them).
#[derive(Debug)]
pub struct Source<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Self {
        let breaks = text.match_indices('\n').map(|(i, _)| i + 1);
        let starts = std::iter::once(0)
            .chain(breaks)
            .filter(|&i| i < text.len())
            .collect();
        Source { text, starts }
    }

    /// Line `index` (0-based) without its line break, as `text.lines().nth(index)`.
    pub fn line(&self, index: usize) -> Option<&'a str> {
        let start = *self.starts.get(index)?;
        let rest = &self.text[start..];
        Some(match rest.find('\n') {
            Some(end) => rest[..end].strip_suffix('\r').unwrap_or(&rest[..end]),
            None => rest,
        })
    }
}

/// How many characters of a long source line are shown.
const WINDOW: usize = 100;

/// What a masked secret is shown as.
const MASK: &str = "******";

/// A source line with its secrets masked.
#[derive(Debug, PartialEq, Eq)]
struct Masked {
    line: String,
    /// The 1-based column of the key whose value was masked (where the caret goes).
    key_column: Option<usize>,
    /// The texts that were masked.
    hidden: Vec<String>,
}

/// Whether a key names a secret: `feed_token`, `password`, `smtp_pass`, `api_key`, …
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["token", "password", "passwd", "secret", "api_key", "apikey"]
        .iter()
        .any(|s| key.contains(s))
        || matches!(key.as_str(), "pass" | "pwd")
}

/// Line `index` of `text` with every secret value masked, or `None` when it holds none: the
/// value of a secret-like key (on this line, or this line being the value of such a key
/// written on the line above), and the password of a URL (`smtp://user:PASSWORD@host`).
fn mask_secrets(text: &Source, index: usize) -> Option<Masked> {
    let line = text.line(index)?;
    let chars: Vec<char> = line.chars().collect();
    let mut spans: Vec<(usize, usize, usize)> = Vec::new(); // (start, end, key column), chars
    let indent = chars.iter().take_while(|&&c| c == ' ').count();
    // The value of a key on an earlier line (`feed_token:` then the value, more indented).
    if indent < chars.len() && !line.trim_start().starts_with('#') {
        let parent = (0..index).rev().filter_map(|i| text.line(i)).find(|l| {
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with('#') && l.len() - t.len() < indent
        });
        if let Some(p) = parent {
            let t = p.trim();
            let t = t.strip_prefix("- ").unwrap_or(t);
            let key = t.trim_end_matches(['|', '>', '-', '+', ' ']);
            if let Some(k) = key.strip_suffix(':')
                && is_secret_key(k.trim())
                && !k.contains([' ', '{', '['])
            {
                spans.push((indent, chars.len(), indent + 1));
            }
        }
    }
    if spans.is_empty() {
        // `key: value` pairs, in block or flow style.
        let mut flow = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '{' || c == '[' {
                flow = true;
            }
            if c == '#' && (i == 0 || chars[i - 1] == ' ') {
                break;
            }
            let starts_word = (c.is_ascii_alphanumeric() || c == '_')
                && (i == 0 || matches!(chars[i - 1], ' ' | '{' | ',' | '"' | '\''));
            if !starts_word {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_ascii_alphanumeric() || matches!(chars[j], '_' | '-'))
            {
                j += 1;
            }
            let key: String = chars[i..j].iter().collect();
            let mut colon = j;
            if matches!(chars.get(colon), Some('"' | '\'')) {
                colon += 1;
            }
            let is_pair =
                chars.get(colon) == Some(&':') && chars.get(colon + 1).is_none_or(|&c| c == ' ');
            if is_pair && is_secret_key(&key) {
                let mut start = colon + 1;
                while chars.get(start) == Some(&' ') {
                    start += 1;
                }
                let mut end = start;
                while end < chars.len() {
                    let c = chars[end];
                    if (flow && matches!(c, ',' | '}' | ']')) || (c == '#' && chars[end - 1] == ' ')
                    {
                        break;
                    }
                    end += 1;
                }
                while end > start && chars[end - 1] == ' ' {
                    end -= 1;
                }
                if end > start {
                    spans.push((start, end, i + 1));
                }
                i = end;
                continue;
            }
            i = j.max(i + 1);
        }
        // The password of a URL, whatever its key (`smtp:`): `scheme://user:PASSWORD@host`.
        let mut from = 0;
        while let Some(found) = find(&chars, from, "://") {
            let auth_start = found + 3;
            let mut auth_end = auth_start;
            while auth_end < chars.len()
                && !matches!(
                    chars[auth_end],
                    '/' | '?' | '#' | ' ' | ',' | '}' | ']' | '"' | '\''
                )
            {
                auth_end += 1;
            }
            let at = (auth_start..auth_end).rev().find(|&k| chars[k] == '@');
            if let Some(at) = at
                && let Some(colon) = (auth_start..at).find(|&k| chars[k] == ':')
                && colon + 1 < at
                && !spans.iter().any(|&(s, e, _)| s <= colon && colon < e)
            {
                spans.push((colon + 1, at, colon + 2));
            }
            from = auth_end.max(auth_start);
        }
    }
    if spans.is_empty() {
        return None;
    }
    spans.sort_unstable();
    let mut out = String::new();
    let mut hidden = Vec::new();
    let mut at = 0;
    for &(start, end, _) in &spans {
        if start < at {
            continue;
        }
        out.extend(&chars[at..start]);
        out.push_str(MASK);
        hidden.push(chars[start..end].iter().collect());
        at = end;
    }
    out.extend(&chars[at..]);
    Some(Masked {
        line: out,
        key_column: spans.first().map(|s| s.2),
        hidden,
    })
}

/// The first index at or after `from` where `chars` holds `needle`.
fn find(chars: &[char], from: usize, needle: &str) -> Option<usize> {
    let n: Vec<char> = needle.chars().collect();
    (from..chars.len().saturating_sub(n.len() - 1)).find(|&i| chars[i..].starts_with(&n))
}

impl Diagnostic {
    /// The first line: `PATH:LINE:COL: LABEL: message`, the label of `labels`.
    pub fn line(&self, labels: Labels) -> String {
        format!(
            "{}:{}:{}: {}: {}",
            self.path.display(),
            self.line.max(1),
            self.column.max(1),
            labels.severity(self.severity),
            self.message
        )
    }
}

/// The words a diagnostic is labelled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Labels {
    /// For people (what `ngayle check` prints): `lỗi`, `cảnh báo`, `gợi ý`.
    #[default]
    Vietnamese,
    /// The contract line's for scripts (`--message-format en`, logs, `/healthz`): `error`,
    /// `warning`, `help`.
    English,
}

impl Labels {
    fn severity(self, s: Severity) -> &'static str {
        match (self, s) {
            (Labels::Vietnamese, Severity::Error) => "lỗi",
            (Labels::Vietnamese, Severity::Warning) => "cảnh báo",
            (Labels::English, Severity::Error) => "error",
            (Labels::English, Severity::Warning) => "warning",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Labels::Vietnamese => "gợi ý",
            Labels::English => "help",
        }
    }
}

/// The contract line with the English labels (`PATH:LINE:COL: error: message`), stable for
/// what machines read: the log's `diagnostic` field, `/healthz`, scripts.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line(Labels::English))
    }
}

/// A 1-based position in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// The start of a file, for problems that concern it as a whole.
    pub const START: Pos = Pos { line: 1, column: 1 };
}

/// The closest of `candidates` to `word`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|&(d, c)| d <= (c.chars().count().max(word.chars().count()) / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// A help text naming the allowed values, with a "did you mean" first when one is close.
pub fn allowed_help(word: &str, allowed: &[&str]) -> String {
    let list = allowed
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match did_you_mean(word, allowed.iter().copied()) {
        Some(close) => format!("có phải là `{close}`? dùng được ở đây: {list}"),
        None => format!("dùng được ở đây: {list}"),
    }
}

/// What to check, in Vietnamese, for the operating-system errors people meet (a file that is
/// not there or not readable, a server that refuses or does not answer, a port taken), then
/// the error's own words in parentheses; for an error that wraps an I/O error (a database's,
/// a mailer's) the innermost I/O error decides. Other errors are their own words alone.
pub fn with_os_hint(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = Some(e);
    let mut io = None;
    while let Some(c) = cause {
        if let Some(found) = c.downcast_ref::<std::io::Error>() {
            io = Some(found);
        }
        cause = c.source();
    }
    match io.and_then(|io| os_hint(io.kind())) {
        Some(hint) => format!("{hint} ({e})"),
        None => e.to_string(),
    }
}

/// The sentence of [`with_os_hint`] for an I/O error of `kind`, if it is a common one.
fn os_hint(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::NotFound => {
            "không tìm thấy tệp hay thư mục: kiểm tra đường dẫn (tính từ thư mục của tệp cấu hình, hoặc từ thư mục đang chạy với biến NGAYLE_*)"
        }
        K::PermissionDenied => {
            "không có quyền: kiểm tra quyền đọc, ghi tệp và thư mục của người dùng chạy ngayle (`ls -l`); mở cổng dưới 1024 cần quyền quản trị"
        }
        K::ConnectionRefused => {
            "máy chủ từ chối kết nối: kiểm tra tên máy, cổng và máy chủ có đang chạy không"
        }
        K::AddrInUse => {
            "địa chỉ đã có chương trình khác dùng: dừng chương trình đó (có thể là một ngayle khác) hoặc đổi cổng trong `http.listen`"
        }
        K::AddrNotAvailable => {
            "địa chỉ IP này không thuộc máy: kiểm tra `http.listen` (`0.0.0.0` để nghe trên mọi giao diện mạng)"
        }
        K::TimedOut => "hết thời gian chờ: kiểm tra mạng, tường lửa, tên máy và cổng của máy chủ",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_say_what_to_check_and_keep_the_os_words() {
        use std::io::{Error, ErrorKind};
        let refused = Error::new(
            ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        assert_eq!(
            with_os_hint(&refused),
            "máy chủ từ chối kết nối: kiểm tra tên máy, cổng và máy chủ có đang chạy không (Connection refused (os error 111))"
        );
        // Wrapped (a database's, a mailer's error): the I/O error inside decides.
        #[derive(Debug)]
        struct Wrapper(Error);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "không mở được tệp dữ liệu: {}", self.0)
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let denied = Wrapper(Error::new(
            ErrorKind::PermissionDenied,
            "Permission denied (os error 13)",
        ));
        let text = with_os_hint(&denied);
        assert!(text.starts_with("không có quyền: "), "{text}");
        assert!(
            text.ends_with("(không mở được tệp dữ liệu: Permission denied (os error 13))"),
            "{text}"
        );
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::AddrInUse,
            ErrorKind::TimedOut,
        ] {
            let text = with_os_hint(&Error::new(kind, "os words"));
            assert!(text.ends_with(" (os words)") && text.len() > 40, "{text}");
        }
        // Others: their own words.
        assert_eq!(with_os_hint(&Error::other("lạ")), "lạ");
    }

    #[test]
    fn contract_line_and_snippet() {
        let d = Diagnostic::error(
            Path::new("calendars/national.yaml"),
            Pos {
                line: 2,
                column: 11,
            },
            "31/2 is not a date",
        )
        .with_help("February has 29 days at most");
        assert_eq!(
            d.to_string(),
            "calendars/national.yaml:2:11: error: 31/2 is not a date"
        );
        let r = d.render(Some("events:\n  - date: 31/2\n"));
        assert!(
            r.starts_with("calendars/national.yaml:2:11: lỗi: 31/2 is not a date\n"),
            "{r}"
        );
        assert!(r.contains("2 |   - date: 31/2\n  |           ^"), "{r}");
        assert!(r.ends_with("= gợi ý: February has 29 days at most"));
        let r = d.render_with(
            Some(&Source::new("events:\n  - date: 31/2\n")),
            Labels::English,
        );
        assert!(
            r.starts_with("calendars/national.yaml:2:11: error: 31/2 is not a date\n"),
            "{r}"
        );
        assert!(r.ends_with("= help: February has 29 days at most"));
        let w = Diagnostic::warning(Path::new("a.yaml"), Pos::START, "x");
        assert_eq!(w.line(Labels::Vietnamese), "a.yaml:1:1: cảnh báo: x");
        assert_eq!(w.to_string(), "a.yaml:1:1: warning: x");
    }

    #[test]
    fn a_long_line_is_shown_around_the_column() {
        let text = format!("{}x{}\n", "a".repeat(5000), "b".repeat(5000));
        let d = Diagnostic::error(
            Path::new("f.yaml"),
            Pos {
                line: 1,
                column: 5001,
            },
            "m",
        );
        let r = d.render(Some(&text));
        let shown = r.lines().nth(2).unwrap_or_default();
        let caret = r.lines().nth(3).unwrap_or_default();
        assert!(shown.chars().count() < 120, "{r}");
        assert_eq!(
            shown.chars().position(|c| c == 'x'),
            caret.chars().position(|c| c == '^')
        );
    }

    #[test]
    fn secrets_are_masked() {
        let line =
            |text: &str, i| mask_secrets(&Source::new(text), i).map(|m| (m.line, m.key_column));
        assert_eq!(
            line("http:\n  feed_token: abc123\n", 1),
            Some(("  feed_token: ******".into(), Some(3)))
        );
        assert_eq!(
            line("http:\n  feed_token:\n    abc123\n", 2),
            Some(("    ******".into(), Some(5)))
        );
        assert_eq!(
            line("http: {feed_token: abc123, lisen: x}\n", 0),
            Some(("http: {feed_token: ******, lisen: x}".into(), Some(8)))
        );
        assert_eq!(
            line("  smtp: smtps://a@b.vn:pw9@smtp.b.vn:465 # x\n", 0),
            Some((
                "  smtp: smtps://a@b.vn:******@smtp.b.vn:465 # x".into(),
                Some(24)
            ))
        );
        assert_eq!(
            line("  password: \"x y\"  # the old one\n", 0),
            Some(("  password: ******  # the old one".into(), Some(3)))
        );
        // Nothing secret: no mask (an SMTP URL without a password, an ordinary key).
        assert_eq!(line("  smtp: smtps://a@b.vn@smtp.b.vn\n", 0), None);
        assert_eq!(line("  name: Trường\n  feed_token: x\n", 0), None);
        let d = Diagnostic::error(
            Path::new("config/ngayle.yaml"),
            Pos {
                line: 2,
                column: 15,
            },
            "mã quá ngắn: abc123",
        );
        let r = d.render(Some("http:\n  feed_token: abc123\n"));
        assert!(!r.contains("abc123"), "{r}");
        assert!(r.ends_with("2 |   feed_token: ******\n  |   ^"), "{r}");
    }

    #[test]
    fn source_lines_are_those_of_str_lines() {
        for text in [
            "",
            "a",
            "a\n",
            "a\nb",
            "a\r\nb\r\n",
            "a\rb\r",
            "\n\n",
            "x\r",
            "é\n\r\n",
        ] {
            let source = Source::new(text);
            let ours: Vec<&str> = (0..).map_while(|i| source.line(i)).collect();
            assert_eq!(ours, text.lines().collect::<Vec<_>>(), "{text:?}");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("dat", ["date", "lunar", "since"]),
            Some("date")
        );
        assert_eq!(
            did_you_mean("treo-coo", ["treo-co", "pano"]),
            Some("treo-co")
        );
        assert_eq!(did_you_mean("zzzzzz", ["date", "lunar"]), None);
    }
}
