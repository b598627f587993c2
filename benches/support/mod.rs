//! Shared set-up of the benchmarks: the shipped schedule, and synthetic units generated from it.
//!
//! Not a benchmark itself (Cargo only discovers `benches/*.rs` and `benches/*/main.rs`); the
//! benchmarks include it with `mod support;` and each uses a part of it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ngayle::occurrence::occurrences;
use ngayle::schedule::{self, DateRule, Event, Schedule, SourceFile, Sources};

/// The repository root (the shipped `config/` and `calendars/`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped `config/ngayle.yaml`.
pub fn shipped_config() -> PathBuf {
    repo().join("config/ngayle.yaml")
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid benchmark date")
}

/// The "today" every benchmark loads with (only `since`-in-the-future warnings depend on it).
pub fn today() -> NaiveDate {
    date(2025, 1, 1)
}

/// Loads the shipped files with the real loader; panics with every diagnostic on an error.
pub fn load_checked(config: &Path) -> Schedule {
    let report = schedule::load(config, today());
    match report.schedule {
        Some(s) => s,
        None => panic!(
            "{} does not load:\n{}",
            config.display(),
            report
                .diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// The shipped schedule.
pub fn shipped() -> Schedule {
    load_checked(&shipped_config())
}

/// A synthetic unit: the shipped tasks, `staff` people with the shipped staff's group
/// memberships repeated, and the shipped events repeated as "copies" (copy 0 is the shipped
/// events with their ids and layers, copy c ≥ 1 is each event again with the id `ID-c` in the
/// layer file `LAYER-c.yaml`), in order, until `event_defs` events are defined.
#[derive(Debug, Clone, Copy)]
pub struct Synth {
    /// Makes the unit's name, mail domain and addresses distinct.
    pub unit: usize,
    pub staff: usize,
    pub event_defs: usize,
}

/// How many shipped event definitions (copied in order, as [`Synth`] does) it takes to reach
/// `target` occurrences in `from..=to`.
pub fn defs_for(shipped: &Schedule, from: NaiveDate, to: NaiveDate, target: usize) -> usize {
    let mut per_event: BTreeMap<&str, usize> = BTreeMap::new();
    for o in occurrences(shipped, from, to) {
        *per_event.entry(o.event.id.as_str()).or_default() += 1;
    }
    let counts: Vec<usize> = shipped
        .events
        .iter()
        .map(|e| per_event.get(e.id.as_str()).copied().unwrap_or(0))
        .collect();
    assert!(
        counts.iter().any(|&n| n > 0),
        "no shipped event occurs in {from}..={to}"
    );
    let (mut defs, mut total) = (0, 0);
    while total < target {
        total += counts[defs % counts.len()];
        defs += 1;
    }
    defs
}

/// The files of a synthetic unit, as (path relative to the project root, text).
pub fn files(shipped: &Schedule, spec: Synth) -> Vec<(String, String)> {
    let mut out = vec![
        ("config/ngayle.yaml".to_string(), config_text(spec.unit)),
        ("config/staff.yaml".to_string(), staff_text(shipped, spec)),
        ("calendars/tasks.yaml".to_string(), shipped_tasks_text()),
    ];
    // Layer file name → (layer name, events text), in the order files are sorted by path.
    let mut layers: BTreeMap<String, (String, String)> = BTreeMap::new();
    let n = shipped.events.len();
    assert!(n > 0, "the shipped calendars have no events");
    for k in 0..spec.event_defs {
        let (copy, e) = (k / n, &shipped.events[k % n]);
        let layer = shipped
            .layers
            .get(e.layer)
            .expect("an event's layer index is valid");
        let (file, name, id) = if copy == 0 {
            (layer.id.clone(), layer.name.clone(), e.id.clone())
        } else {
            (
                format!("{}-{copy}", layer.id),
                format!("{} ({copy})", layer.name),
                format!("{}-{copy}", e.id),
            )
        };
        let entry = layers
            .entry(file)
            .or_insert_with(|| (name, String::from("events:\n")));
        event_text(&mut entry.1, &id, e);
    }
    for (file, (name, events)) in layers {
        out.push((
            format!("calendars/{file}.yaml"),
            format!("name: {}\n{events}", quote(&name)),
        ));
    }
    out
}

/// Writes a synthetic unit's files under `root` and returns its config path.
pub fn write(root: &Path, files: &[(String, String)]) -> PathBuf {
    for (rel, text) in files {
        let path = root.join(rel);
        let dir = path.parent().expect("a file path has a parent");
        std::fs::create_dir_all(dir).expect("create the synthetic project's folders");
        std::fs::write(&path, text).expect("write a synthetic project file");
    }
    root.join("config/ngayle.yaml")
}

/// A synthetic unit resolved from its texts in memory (the loader's pure half, without
/// reading files or the environment), as if it lived under `root`.
pub fn resolve(root: &Path, files: &[(String, String)]) -> Schedule {
    let file = |rel: &str| {
        files
            .iter()
            .find(|(r, _)| r == rel)
            .map(|(r, text)| SourceFile {
                path: root.join(r),
                text: text.clone(),
            })
    };
    let mut layers: Vec<SourceFile> = files
        .iter()
        .filter(|(r, _)| {
            r.starts_with("calendars/")
                && r != "calendars/tasks.yaml"
                && r != "calendars/ngay-nghi.yaml"
        })
        .map(|(r, text)| SourceFile {
            path: root.join(r),
            text: text.clone(),
        })
        .collect();
    layers.sort_by(|a, b| a.path.cmp(&b.path));
    let sources = Sources {
        config: file("config/ngayle.yaml").expect("a synthetic config"),
        staff: file("config/staff.yaml"),
        tasks: file("calendars/tasks.yaml"),
        days_off: file("calendars/ngay-nghi.yaml"),
        layers,
        templates: Vec::new(),
        env: Vec::new(),
    };
    let (schedule, diagnostics) = schedule::resolve(&sources, today());
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert!(
        errors.is_empty(),
        "synthetic unit {} does not resolve:\n{}",
        root.display(),
        errors.join("\n")
    );
    schedule.expect("a schedule when there is no error")
}

fn config_text(unit: usize) -> String {
    format!(
        r#"unit:
  name: Trường Mầm non Số {unit}
  place: Quảng Ninh
timezone: Asia/Ho_Chi_Minh
calendars: ../calendars
staff: staff.yaml
http:
  listen: 127.0.0.1:8080
  public_url: http://127.0.0.1:8080
mail:
  from: "Trường MN Số {unit} <nhacviec@truong{unit}.example.org>"
  reply_to: "Văn thư <vanthu@truong{unit}.example.org>"
  smtp: ~
  outbox: ../var/outbox
state: ../var/ngayle.sqlite
reminders:
  send_at: "07:30"
  workdays: [mon, tue, wed, thu, fri]
  catch_up: 3d
"#
    )
}

/// The shipped groups; person i has the groups of shipped person i mod n, with the shipped id
/// for i < n (so tasks that name a person still resolve) and `ID-k` after.
fn staff_text(shipped: &Schedule, spec: Synth) -> String {
    let mut s = String::from("groups:\n");
    for g in &shipped.groups {
        let _ = writeln!(s, "  - id: {}\n    name: {}", g.id, quote(&g.name));
    }
    s.push_str("people:\n");
    let n = shipped.people.len();
    assert!(n > 0, "the shipped staff list is empty");
    for i in 0..spec.staff {
        let p = &shipped.people[i % n];
        let id = match i / n {
            0 => p.id.clone(),
            k => format!("{}-{k}", p.id),
        };
        let _ = writeln!(
            s,
            "  - id: {id}\n    name: {}\n    email: {id}@truong{}.example.org\n    groups: [{}]",
            quote(&format!("{} {i}", p.name)),
            spec.unit,
            p.groups.join(", ")
        );
        if let Some(title) = &p.title {
            let _ = writeln!(s, "    title: {}", quote(title));
        }
    }
    s
}

fn shipped_tasks_text() -> String {
    std::fs::read_to_string(repo().join("calendars/tasks.yaml"))
        .expect("read the shipped calendars/tasks.yaml")
}

fn event_text(s: &mut String, id: &str, e: &Event) {
    let _ = writeln!(s, "  - id: {id}\n    name: {}", quote(&e.name));
    let _ = match e.rule {
        DateRule::Solar { day, month } => writeln!(s, "    date: {day}/{month}"),
        DateRule::Lunar { day, month } => writeln!(s, "    lunar: {day}/{month}"),
        DateRule::Once(d) => writeln!(s, "    date: {}", d.format("%-d/%-m/%Y")),
    };
    if let Some(since) = e.since {
        let _ = writeln!(s, "    since: {since}");
    }
    if e.only_round {
        s.push_str("    only: round\n");
    }
    if e.days != 1 {
        let _ = writeln!(s, "    days: {}", e.days);
    }
    let _ = writeln!(s, "    category: {}", e.category.id());
    if let Some((a, b)) = e.day_off {
        let _ = writeln!(s, "    day_off: \"{a}..{b}\"");
    }
    if !e.tasks.is_empty() {
        let _ = writeln!(s, "    tasks: [{}]", e.tasks.join(", "));
    }
    if !e.round_tasks.is_empty() {
        let _ = writeln!(s, "    round_tasks: [{}]", e.round_tasks.join(", "));
    }
    if let Some(note) = &e.note {
        let _ = writeln!(s, "    note: {}", quote(note));
    }
}

/// A YAML double-quoted scalar.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
