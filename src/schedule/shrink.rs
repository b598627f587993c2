//! Reload safety: the calendar files a new schedule holds markedly fewer events in than the one it replaces (a bad save that emptied or cut a file).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::Schedule;

/// A calendar file that lost events: its path as in diagnostics, the counts before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shrunk {
    pub path: String,
    pub before: usize,
    pub after: usize,
}

impl fmt::Display for Shrunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} → {} sự kiện", self.path, self.before, self.after)
    }
}

/// How many events each calendar file holds, by path (files without events included).
pub fn events_per_file(s: &Schedule) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = s
        .layers
        .iter()
        .map(|l| (l.path.display().to_string(), 0))
        .collect();
    for e in &s.events {
        if let Some(l) = s.layers.get(e.layer) {
            *out.entry(l.path.display().to_string()).or_default() += 1;
        }
    }
    out
}

/// The files of `old` that lost more than `percent` % of their events in `new` (a file gone
/// from `new` lost them all), in path order.
pub fn shrunk(old: &Schedule, new: &Schedule, percent: u8) -> Vec<Shrunk> {
    let after = events_per_file(new);
    events_per_file(old)
        .into_iter()
        .filter_map(|(path, before)| {
            let now = after.get(&path).copied().unwrap_or(0);
            let lost = before.saturating_sub(now);
            (lost * 100 > before * usize::from(percent)).then_some(Shrunk {
                path,
                before,
                after: now,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{SourceFile, Sources, resolve};
    use std::path::PathBuf;

    fn schedule(layers: &[(&str, usize)]) -> Schedule {
        let file = |path: &str, text: String| SourceFile {
            path: PathBuf::from(path),
            text,
        };
        let src = Sources {
            config: file("config/ngayle.yaml", "unit:\n  name: Thử\n".into()),
            staff: Some(file(
                "config/staff.yaml",
                "people:\n  - id: an\n    name: An\n    email: an@example.org\n".into(),
            )),
            tasks: Some(file(
                "calendars/tasks.yaml",
                "tasks:\n  - id: t\n    title: T\n    do: T\n    before: 1d\n    who: [all]\n"
                    .into(),
            )),
            layers: layers
                .iter()
                .map(|&(name, n)| {
                    let events: String = (1..=n)
                        .map(|i| format!("  - id: {name}-{i}\n    name: N\n    date: {i}/1\n"))
                        .collect();
                    file(
                        &format!("calendars/{name}.yaml"),
                        format!("events:\n{events}"),
                    )
                })
                .collect(),
            ..Sources::default()
        };
        let today = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
        let (s, diags) = resolve(&src, today);
        s.unwrap_or_else(|| panic!("{diags:?}"))
    }

    #[test]
    fn files_that_lost_more_than_the_share() {
        let old = schedule(&[("a", 10), ("b", 10), ("c", 5), ("d", 3)]);
        // a: −20 % (not more than 20 %), b: −30 %, c: gone, d: grew.
        let new = schedule(&[("a", 8), ("b", 7), ("d", 4), ("e", 1)]);
        let got = shrunk(&old, &new, 20);
        let want = [("calendars/b.yaml", 10, 7), ("calendars/c.yaml", 5, 0)].map(
            |(path, before, after)| Shrunk {
                path: path.into(),
                before,
                after,
            },
        );
        assert_eq!(got, want);
        assert_eq!(got[0].to_string(), "calendars/b.yaml: 10 → 7 sự kiện");
        assert_eq!(shrunk(&old, &new, 100), []);
        assert_eq!(shrunk(&old, &new, 0).len(), 3);
        assert_eq!(shrunk(&old, &old, 0), []);
        assert_eq!(events_per_file(&new).get("calendars/e.yaml"), Some(&1));
    }
}
