//! Fuzz target `load`: one of the shipped files (chosen by the first byte) replaced by the
//! input, through `schedule::resolve`; no panic, and a failed load says where.
#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use ngayle::schedule::resolve;
use ngayle_fuzz::{SHIPPED, sources};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let which = usize::from(which) % SHIPPED.len();
    // `load` refuses a file that is not UTF-8 before `resolve` sees it; the lossy text keeps
    // such inputs useful instead of dropping them.
    let text = String::from_utf8_lossy(rest).into_owned();
    let src = sources(Some((which, text)), Vec::new());
    let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default();
    let (schedule, diags) = resolve(&src, today);
    if schedule.is_none() {
        assert!(
            diags.iter().any(|d| d.is_error()),
            "no schedule and no error"
        );
    }
    // Every file of the sources (the days-off decisions too), in the loader's order.
    let files: Vec<_> = src.files().collect();
    for d in &diags {
        assert!(!d.message.is_empty(), "a diagnostic without a message");
        let Some(file) = files.iter().find(|f| f.path == d.path) else {
            panic!("a diagnostic for an unknown file: {d}");
        };
        // Every position lies within the text: on one of its lines, at most one past its last
        // character (where "expected more" is reported). Lines as an editor counts them.
        let lines: Vec<&str> = file.text.split('\n').collect();
        assert!(
            (1..=lines.len()).contains(&d.line),
            "line {} of a {}-line file: {d}",
            d.line,
            lines.len()
        );
        let len = lines[d.line - 1].chars().count();
        assert!(
            (1..=len + 1).contains(&d.column),
            "column {} of a {len}-character line: {d}",
            d.column
        );
        // Rendering with the source (what `ngayle check` prints) never panics either.
        let _ = d.render(Some(&file.text));
    }
});
