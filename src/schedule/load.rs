//! Load: read the admin's files from disk and hand them to the pure [`resolve`].
//!
//! This is the only place in the schedule module that touches the file system, with
//! [`super::env`] (the environment and the files its `_FILE` variables name). A file that
//! cannot be read (missing, a folder, too large, not UTF-8) becomes a located diagnostic like
//! any other mistake, pointing at the line of `config/ngayle.yaml` that names it.

use std::path::{Component, Path, PathBuf};

use chrono::NaiveDate;

use super::Schedule;
use super::resolve::{
    DAYS_OFF_STEM, ParsedConfig, SourceFile, Sources, TASKS_STEM, TEMPLATES_DIR, resolve_parsed,
};
use crate::diag::{Diagnostic, Pos};
use crate::yaml::{self, MAX_FILE_BYTES, Seg};

/// What loading found: the schedule when there is no error, every diagnostic, and the texts
/// (to show the offending lines).
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub schedule: Option<Schedule>,
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Sources,
}

impl LoadReport {
    /// The text of a file that was read, to render a diagnostic with its source line.
    pub fn source_of(&self, path: &Path) -> Option<&str> {
        self.sources
            .files()
            .find(|f| f.path == path)
            .map(|f| f.text.as_str())
    }

    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

/// Reads and resolves everything reachable from `config_path`. `today` is the local date
/// (for "a `since` in the future").
pub fn load(config_path: &Path, today: NaiveDate) -> LoadReport {
    let config_path = normalize(config_path);
    let mut diags = Vec::new();
    let config_text = match read_source(&config_path) {
        Ok(t) => t,
        Err(d) => {
            return LoadReport {
                schedule: None,
                diagnostics: vec![d.with_help(
                    "chỉ đường dẫn tệp cấu hình bằng `--config ĐƯỜNG_DẪN` hoặc biến môi trường NGAYLE_CONFIG",
                )],
                sources: Sources {
                    config: SourceFile {
                        path: config_path,
                        text: String::new(),
                    },
                    ..Sources::default()
                },
            };
        }
    };
    let dir = config_path.parent().unwrap_or(Path::new("")).to_path_buf();
    let config = SourceFile {
        path: config_path.clone(),
        text: config_text,
    };
    // Where the other files are. If the config does not parse, resolve reports why; the
    // default places are still read so that their mistakes are reported in the same run.
    let parsed = ParsedConfig::parse(&config);
    let (staff_path, calendars_dir) = parsed.places(&config_path);
    let positions = yaml::Positions::default();
    let key_pos = |key: &str| positions.locate(&config.path, &config.text, &[Seg::Key(key)]);

    let staff = match read_source(&staff_path) {
        Ok(text) => Some(SourceFile {
            path: staff_path.clone(),
            text,
        }),
        Err(d) => {
            diags.push(
                Diagnostic::error(&config_path, key_pos("staff"), d.message)
                    .with_help("`staff:` chỉ tới tệp danh sách người và nhóm, tính từ thư mục của tệp cấu hình"),
            );
            None
        }
    };

    let mut tasks = None;
    let mut days_off = None;
    let mut layers = Vec::new();
    match std::fs::read_dir(&calendars_dir) {
        Err(e) => diags.push(
            Diagnostic::error(
                &config_path,
                key_pos("calendars"),
                format!("không mở được thư mục lịch {}: {}", calendars_dir.display(), io_reason(&e)),
            )
            .with_help("`calendars:` chỉ tới thư mục chứa tasks.yaml và các tệp sự kiện, tính từ thư mục của tệp cấu hình"),
        ),
        Ok(entries) => {
            let mut paths: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                        && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            paths.sort();
            for path in paths {
                let path = normalize(&path);
                let is_tasks = path.file_stem().is_some_and(|s| s == TASKS_STEM);
                let is_days_off = path.file_stem().is_some_and(|s| s == DAYS_OFF_STEM);
                match read_source(&path) {
                    Ok(text) => {
                        let file = SourceFile { path, text };
                        if is_tasks {
                            tasks = Some(file);
                        } else if is_days_off {
                            days_off = Some(file);
                        } else {
                            layers.push(file);
                        }
                    }
                    Err(d) => diags.push(d),
                }
            }
            if tasks.is_none() && !diags.iter().any(|d| d.path.file_stem().is_some_and(|s| s == TASKS_STEM)) {
                diags.push(
                    Diagnostic::error(
                        &config_path,
                        key_pos("calendars"),
                        format!("thư mục lịch {} không có tasks.yaml", calendars_dir.display()),
                    )
                    .with_help("tạo calendars/tasks.yaml với danh sách `tasks:` (xem calendars/README.md)"),
                );
            }
        }
    }

    let templates = read_templates(&dir.join(TEMPLATES_DIR), &mut diags);
    let sources = Sources {
        config,
        staff,
        tasks,
        days_off,
        layers,
        templates,
        env: super::env::read(&mut diags),
    };
    let (schedule, more) = resolve_parsed(&sources, parsed, today);
    diags.extend(more);
    let schedule = if diags.iter().any(Diagnostic::is_error) {
        None
    } else {
        schedule
    };
    LoadReport {
        schedule,
        diagnostics: diags,
        sources,
    }
}

/// The email templates in `dir` (`*.j2`); none when the folder does not exist (the built-in
/// ones are used).
fn read_templates(dir: &Path, diags: &mut Vec<Diagnostic>) -> Vec<SourceFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| normalize(&e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "j2"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        match read_source(&path) {
            Ok(text) => out.push(SourceFile { path, text }),
            Err(d) => diags.push(d),
        }
    }
    out
}

/// Reads a text file, refusing folders, huge files and text that is not UTF-8 (with the
/// position of the first bad byte). A UTF-8 byte-order mark is dropped.
pub fn read_source(path: &Path) -> Result<String, Diagnostic> {
    let fail = |pos: Pos, msg: String| Err(Diagnostic::error(path, pos, msg));
    let unreadable = |e: std::io::Error| {
        fail(
            Pos::START,
            format!("không đọc được {}: {}", path.display(), io_reason(&e)),
        )
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return unreadable(e),
    };
    if meta.is_dir() {
        return fail(
            Pos::START,
            format!("{} là thư mục, không phải tệp", path.display()),
        );
    }
    if meta.len() > MAX_FILE_BYTES as u64 {
        return fail(
            Pos::START,
            format!(
                "tệp quá lớn ({} byte; tối đa {} byte)",
                meta.len(),
                MAX_FILE_BYTES
            ),
        );
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return unreadable(e),
    };
    match String::from_utf8(bytes) {
        Ok(mut text) => {
            if text.starts_with('\u{feff}') {
                text.drain(..3);
            }
            Ok(text)
        }
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let good = String::from_utf8_lossy(good);
            let line = good.matches('\n').count() + 1;
            let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            fail(
                Pos { line, column },
                "tệp không phải văn bản UTF-8".to_string(),
            )
            .map_err(|d| {
                d.with_help(
                    "lưu lại tệp với bảng mã UTF-8 (trong Notepad: Save As → Encoding: UTF-8)",
                )
            })
        }
    }
}

/// Why a file of the schedule could not be read: "không tồn tại" (the diagnostic's help says
/// where the path comes from), else what to check and the system's words
/// ([`crate::diag::with_os_hint`]).
pub(super) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "không tồn tại".to_string(),
        _ => crate::diag::with_os_hint(e),
    }
}

/// Removes `.` and `name/..` from a path without touching the file system, so that messages
/// say `calendars/national.yaml` rather than `config/../calendars/national.yaml`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;
    use std::path::Path;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(
            normalize(Path::new("config/../calendars/a.yaml")),
            Path::new("calendars/a.yaml")
        );
        assert_eq!(
            normalize(Path::new("./config/ngayle.yaml")),
            Path::new("config/ngayle.yaml")
        );
        assert_eq!(normalize(Path::new("../x/../y")), Path::new("../y"));
        assert_eq!(
            normalize(Path::new("/etc/ngayle/../ngayle.yaml")),
            Path::new("/etc/ngayle.yaml")
        );
    }
}
