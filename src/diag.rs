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

    /// Renders the diagnostic with the offending source line and a caret under the column.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = self.to_string();
        if let Some(text) = source
            && self.line > 0
            && let Some(line) = text.lines().nth(self.line - 1)
        {
            let gutter = self.line.to_string();
            let pad = " ".repeat(gutter.len());
            let caret_pad: String = line
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "\n{pad} |\n{gutter} | {line}\n{pad} | {caret_pad}^"
            ));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("\n  = help: {help}"));
        }
        out
    }
}

/// The contract line: `PATH:LINE:COL: error: message`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {kind}: {}",
            self.path.display(),
            self.line.max(1),
            self.column.max(1),
            self.message
        )
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(r.contains("2 |   - date: 31/2\n  |           ^"), "{r}");
        assert!(r.ends_with("= help: February has 29 days at most"));
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
