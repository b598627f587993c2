//! Helpers: run the real binary, build throw-away projects on disk, wait for a condition.
//! The SMTP server the mail tests read from is in `smtp`, the `ngayle serve` child process in
//! `serve`; the tests themselves are in the modules beside this one.

pub mod serve;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Polls `what` every few milliseconds until it returns `Some` (its value) or `limit` has
/// passed (`None`). For what another process or thread does in its own time (a child starting,
/// a file watcher settling, a socket closing): the test goes on as soon as the condition holds,
/// and `limit` is only how long to wait before failing, never a timing the test relies on.
pub fn wait_until<T>(limit: Duration, mut what: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(t) = what() {
            return Some(t);
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The repository root (the shipped `config/` and `calendars/`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The result of one run of the binary.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `ngayle ARGS` in `dir`, with no NGAYLE_* variables from the caller's environment.
pub fn ngayle(dir: &Path, args: &[&str]) -> Run {
    ngayle_env(dir, args, &[])
}

/// Runs `ngayle ARGS` in `dir` with only the NGAYLE_* variables of `env`.
pub fn ngayle_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ngayle"));
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("NGAYLE_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    match cmd.output() {
        Ok(o) => o.into(),
        Err(e) => panic!("cannot run ngayle: {e}"),
    }
}

/// A project in a temporary folder, written by a test.
pub struct Project {
    pub dir: TempDir,
}

impl Project {
    /// A copy of the shipped `config/` and `calendars/`. A test that asserts what those files
    /// hold (an event, a count, a line it edits) says so in its name (`..._shipped_calendars`)
    /// or its message, so that whoever edits the shipped files knows which tests to update.
    pub fn shipped() -> Project {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        for sub in ["config", "calendars"] {
            copy_dir(&repo().join(sub), &dir.path().join(sub));
        }
        Project { dir }
    }

    /// A small project whose files are given in full, for tests that point at lines.
    pub fn with(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let p = Project { dir };
        for (path, text) in files {
            p.write(path, text);
        }
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Replaces the first occurrence of `from` in a file (which must contain it).
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(
            text.contains(from),
            "{rel} does not contain {from:?} (if this is a copy of the shipped files, they \
             changed: update this test)"
        );
        self.write(rel, &text.replacen(from, to, 1));
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("config/ngayle.yaml")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        ngayle(self.path(), args)
    }

    /// Has the store begin keeping reminders at `instant` (a first `send-due` then, with
    /// nothing due): reminders due before a store's start are not pending work, so a test of
    /// what happens to late ones needs a store that was there when they fell due.
    pub fn start_store(&self, instant: &str) {
        let r = self.run(&["send-due", "--now", instant]);
        assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("Đã gửi 0 thư"), "{}", r.stdout);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("read_dir {}: {e}", from.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name()))
                .unwrap_or_else(|e| panic!("copy: {e}"));
        }
    }
}

/// The minimal valid project the diagnostics tests start from. Line numbers matter: tests
/// point at them.
pub const CONFIG: &str = "\
unit:
  name: Trường Mầm non Thử
calendars: ../calendars
staff: staff.yaml
";

pub const STAFF: &str = "\
groups:
  - id: csvc
    name: Cơ sở vật chất
people:
  - id: an
    name: Nguyễn Văn An
    email: an@example.org
    groups: [csvc]
";

pub const TASKS: &str = "\
tasks:
  - id: treo-co
    title: Treo cờ
    do: Treo cờ Tổ quốc.
    before: 1d
    who: [csvc]
";

pub const LAYER: &str = "\
name: Thử
events:
  - id: giai-phong
    name: Ngày Giải phóng miền Nam
    date: 30/4
    since: 1975
    tasks: [treo-co]
  - id: gio-to
    name: Giỗ Tổ Hùng Vương
    lunar: 10/3
";

/// The minimal project, with some files replaced.
pub fn minimal(replace: &[(&str, &str)]) -> Project {
    let mut files = vec![
        ("config/ngayle.yaml", CONFIG),
        ("config/staff.yaml", STAFF),
        ("calendars/tasks.yaml", TASKS),
        ("calendars/national.yaml", LAYER),
    ];
    for (path, text) in replace {
        match files.iter_mut().find(|(p, _)| p == path) {
            Some(f) => f.1 = text,
            None => files.push((path, text)),
        }
    }
    Project::with(&files)
}
