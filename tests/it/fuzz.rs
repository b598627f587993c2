//! Fuzz-style property test: mutated versions of the shipped files never make loading panic,
//! and a failed load always says where.

use chrono::NaiveDate;
use ngayle::schedule::{SourceFile, Sources, resolve};
use ngayle::yaml::{Seg, locate};
use proptest::prelude::*;

use crate::support::repo;

fn shipped() -> Sources {
    let read = |rel: &str| SourceFile {
        path: rel.into(),
        text: std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| {
            panic!("{rel}: {e} (the shipped calendars changed: update this test)")
        }),
    };
    Sources {
        config: read("config/ngayle.yaml"),
        staff: Some(read("config/staff.yaml")),
        tasks: Some(read("calendars/tasks.yaml")),
        days_off: Some(read("calendars/ngay-nghi.yaml")),
        layers: [
            "dong-trieu",
            "education",
            "international",
            "national",
            "quang-ninh",
        ]
        .iter()
        .map(|l| read(&format!("calendars/{l}.yaml")))
        .collect(),
        templates: [
            "subject.txt.j2",
            "reminder.txt.j2",
            "reminder.html.j2",
            "escalation_subject.txt.j2",
            "escalation.txt.j2",
            "escalation.html.j2",
            "xong.html.j2",
        ]
        .iter()
        .map(|t| read(&format!("config/templates/{t}")))
        .collect(),
        env: Vec::new(),
    }
}

/// Pieces of YAML and of our formats that are likely to break things when dropped anywhere.
const SNIPPETS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "&a ",
    "*a",
    "*b",
    "!!binary ",
    "!x ",
    "\t",
    "\n",
    "\n  ",
    "    ",
    "\"",
    "'",
    "#",
    "? ",
    "|\n",
    ">\n",
    "---\n",
    "...\n",
    "~",
    "null",
    "99999999999999999999999",
    "-1",
    "1e999",
    "31/2",
    "0/0",
    "30/13",
    "1/1/99999",
    "2x",
    "-5d",
    "25:99",
    "tết",
    "ỹ",
    "\u{0}",
    "\u{feff}",
    "\r",
    "%YAML 1.1\n",
    "<<: *a\n",
    "id: ",
    "date: ",
    "lunar: ",
    "since: ",
    "tasks: ",
    "who: ",
];

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, &'static str),
    DeleteLine(usize),
    DuplicateLine(usize),
    ReplaceChar(usize, char),
    Truncate(usize),
    SwapLines(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), proptest::sample::select(SNIPPETS)).prop_map(|(i, s)| Edit::Insert(i, s)),
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<char>()).prop_map(|(i, c)| Edit::ReplaceChar(i, c)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut t = text.to_string();
    for e in edits {
        let chars: Vec<char> = t.chars().collect();
        let mut lines: Vec<&str> = t.split_inclusive('\n').collect();
        let n = chars.len().max(1);
        t = match *e {
            Edit::Insert(i, s) => {
                let i = i % n;
                let mut c = chars.clone();
                c.splice(i..i, s.chars());
                c.into_iter().collect()
            }
            Edit::ReplaceChar(i, ch) if !chars.is_empty() => {
                let mut c = chars.clone();
                c[i % chars.len()] = ch;
                c.into_iter().collect()
            }
            Edit::Truncate(i) => chars[..i % n.max(1)].iter().collect(),
            Edit::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % lines.len());
                lines.concat()
            }
            Edit::DuplicateLine(i) if !lines.is_empty() => {
                let l = lines[i % lines.len()];
                lines.insert(i % lines.len(), l);
                lines.concat()
            }
            Edit::SwapLines(a, b) if !lines.is_empty() => {
                let len = lines.len();
                lines.swap(a % len, b % len);
                lines.concat()
            }
            _ => t,
        };
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic(which in 0usize..12, edits in proptest::collection::vec(edit(), 1..6)) {
        let mut src = shipped();
        let file: &mut SourceFile = match which {
            0 => &mut src.config,
            1 => src.staff.as_mut().unwrap_or_else(|| unreachable!()),
            2 => src.tasks.as_mut().unwrap_or_else(|| unreachable!()),
            3 => src.days_off.as_mut().unwrap_or_else(|| unreachable!()),
            i @ 4..=8 => &mut src.layers[i - 4],
            i => &mut src.templates[(i - 9) % 3],
        };
        file.text = apply(&file.text, &edits);
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default();
        let (schedule, diags) = resolve(&src, today);
        if schedule.is_none() {
            prop_assert!(diags.iter().any(|d| d.is_error()), "failed without an error");
        }
        for d in &diags {
            prop_assert!(d.line >= 1 && d.column >= 1, "{d}");
            let known = src.files();
            prop_assert!(known.map(|f| &f.path).any(|p| p == &d.path), "a diagnostic for an unknown file: {}", d);
            prop_assert!(!d.message.is_empty());
        }
        // Locating arbitrary paths in the broken text never panics either.
        let text = &src.layers[0].text;
        let _ = locate(text, &[Seg::Key("events"), Seg::Index(3), Seg::Key("date")]);
        let _ = locate(text, &[Seg::Key("events"), Seg::Index(99), Seg::KeyName("x")]);
    }
}

/// Found by the `load` fuzz target: at the end of a file without a final newline the YAML
/// parser reports the line after the last one (`national.yaml:2:1` for a one-line file), a
/// place that `check` cannot show and an editor cannot go to.
#[test]
fn a_position_at_the_end_of_a_file_without_a_final_newline_is_inside_the_file() {
    // An empty layer (warned about at the end of the document) and an unclosed mapping.
    for (text, end) in [(" #", 3), ("events: {uh", 12), ("# lịch\nevents: [", 10)] {
        let mut src = shipped();
        src.layers[3].text = text.into();
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default();
        let (_, diags) = resolve(&src, today);
        let here: Vec<_> = diags
            .iter()
            .filter(|d| d.path == src.layers[3].path)
            .collect();
        assert!(!here.is_empty(), "{text:?}: no diagnostic");
        let last = text.lines().count();
        for d in here {
            assert!(
                d.line <= last && (d.line < last || d.column <= end),
                "{text:?}: {d}"
            );
        }
    }
}

/// Found by the `load` fuzz target: the YAML parser counts a lone carriage return as a line
/// break, `check` (and every `grep -n`) only newlines, so every position after a stray `\r`
/// was one line too far down and its source line was the wrong one.
#[test]
fn a_stray_carriage_return_does_not_move_the_positions_after_it() {
    let mut src = shipped();
    src.layers[3].text = "# lịch\r# cũ\nevents:\n  - id: x\n    bogus: 1\n".into();
    let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default();
    let (_, diags) = resolve(&src, today);
    let bogus: Vec<_> = diags
        .iter()
        .filter(|d| d.path == src.layers[3].path && d.message.contains("bogus"))
        .collect();
    assert!(!bogus.is_empty(), "{diags:?}");
    for d in bogus {
        assert_eq!((d.line, d.column), (4, 5), "{d}");
    }
}
