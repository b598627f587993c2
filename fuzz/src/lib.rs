//! What the fuzz targets share: the shipped files, built in, as the `Sources` of `resolve`.

use ngayle::schedule::{EnvValue, SourceFile, Sources};

/// Every shipped file that `resolve` reads, by its path in the repository. Built in so that a
/// target runs from any folder and its inputs are the same everywhere.
pub const SHIPPED: [(&str, &str); 16] = [
    (
        "config/ngayle.yaml",
        include_str!("../../config/ngayle.yaml"),
    ),
    ("config/staff.yaml", include_str!("../../config/staff.yaml")),
    (
        "calendars/tasks.yaml",
        include_str!("../../calendars/tasks.yaml"),
    ),
    (
        "calendars/ngay-nghi.yaml",
        include_str!("../../calendars/ngay-nghi.yaml"),
    ),
    (
        "calendars/dong-trieu.yaml",
        include_str!("../../calendars/dong-trieu.yaml"),
    ),
    (
        "calendars/education.yaml",
        include_str!("../../calendars/education.yaml"),
    ),
    (
        "calendars/international.yaml",
        include_str!("../../calendars/international.yaml"),
    ),
    (
        "calendars/national.yaml",
        include_str!("../../calendars/national.yaml"),
    ),
    (
        "calendars/quang-ninh.yaml",
        include_str!("../../calendars/quang-ninh.yaml"),
    ),
    (
        "config/templates/subject.txt.j2",
        include_str!("../../config/templates/subject.txt.j2"),
    ),
    (
        "config/templates/reminder.txt.j2",
        include_str!("../../config/templates/reminder.txt.j2"),
    ),
    (
        "config/templates/reminder.html.j2",
        include_str!("../../config/templates/reminder.html.j2"),
    ),
    (
        "config/templates/escalation.html.j2",
        include_str!("../../config/templates/escalation.html.j2"),
    ),
    (
        "config/templates/escalation.txt.j2",
        include_str!("../../config/templates/escalation.txt.j2"),
    ),
    (
        "config/templates/escalation_subject.txt.j2",
        include_str!("../../config/templates/escalation_subject.txt.j2"),
    ),
    (
        "config/templates/xong.html.j2",
        include_str!("../../config/templates/xong.html.j2"),
    ),
];

/// The feed token the `http` target's service is given (through `NGAYLE_FEED_TOKEN`, as an
/// admin would), so that the token checks are on the path; its seeds use it.
pub const FEED_TOKEN: &str = "fuzz-token-0123456789abcdef";

/// The shipped files as `resolve` gets them from `load`, with file `replace` (an index into
/// [`SHIPPED`]) given the text `text` instead; `env` as if those variables were set.
pub fn sources(replace: Option<(usize, String)>, env: Vec<EnvValue>) -> Sources {
    let mut files: Vec<SourceFile> = SHIPPED
        .iter()
        .map(|(path, text)| SourceFile {
            path: (*path).into(),
            text: (*text).to_string(),
        })
        .collect();
    if let Some((i, text)) = replace
        && let Some(file) = files.get_mut(i)
    {
        file.text = text;
    }
    let mut files = files.into_iter();
    let mut next = || {
        files
            .next()
            .unwrap_or_else(|| unreachable!("SHIPPED has 16 files"))
    };
    Sources {
        config: next(),
        staff: Some(next()),
        tasks: Some(next()),
        days_off: Some(next()),
        layers: (0..5).map(|_| next()).collect(),
        templates: (0..7).map(|_| next()).collect(),
        env,
    }
}
