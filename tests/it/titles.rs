//! Titles that read well (issue 15, item 7, and the 29/2 of item 4): calendar titles that lead
//! with the subject, official titles kept for descriptions and emails, no remark in a title,
//! short email subjects with the nearest deadline, plain text wrapped between words and never
//! inside a name, the Auto-Submitted header, and an HTML part laid out for a phone.

use std::time::Duration;

use crate::support::smtp::SmtpServer;
use crate::support::{CONFIG, Project, minimal, repo};

const WAIT: Duration = Duration::from_secs(60);

/// The wrap width of the plain text, in characters.
const WIDTH: usize = ngayle::mail::WRAP_WIDTH;

fn with_smtp(p: &Project, server: &SmtpServer) {
    p.write(
        "config/ngayle.yaml",
        &format!(
            "{CONFIG}mail:\n  from: \"Trường <nhacviec@example.org>\"\n  smtp: {}\n",
            server.url()
        ),
    );
}

/// The (official title, calendar title) of each line of `ngayle events --format tsv`.
fn titles(dir: &std::path::Path, from: &str, to: &str) -> Vec<(String, String, String)> {
    let r = crate::support::ngayle(
        dir,
        &["events", "--from", from, "--to", to, "--format", "tsv"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    r.stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 6, "{l:?}");
            (f[1].to_string(), f[4].to_string(), f[5].to_string())
        })
        .collect()
}

#[test]
fn shipped_calendar_titles_lead_with_the_subject_in_2024() {
    let p = Project::shipped();
    let r = p.run(&["ics", "--from-year", "2024", "--to-year", "2024"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let unfolded = r.stdout.replace("\r\n ", "");
    let summaries: Vec<&str> = unfolded
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("SUMMARY:"))
        .collect();
    for want in [
        "Chiến thắng Điện Biên Phủ — 70 năm (năm tròn)",
        "Thành lập Quân đội nhân dân Việt Nam — 80 năm (năm tròn)",
        "Giải phóng miền Nam\\, thống nhất đất nước — 49 năm",
        "Ngày hội Quốc phòng toàn dân — 35 năm (năm lẻ 5)",
        "Tết Nguyên đán Giáp Thìn",
        "Lễ khai hội Xuân Ngọa Vân",
    ] {
        assert!(
            summaries.contains(&want),
            "no SUMMARY {want:?} in {summaries:#?}"
        );
    }
    assert!(
        summaries.iter().all(|s| !s.starts_with("Kỷ niệm")),
        "{summaries:#?}"
    );
    // The official title stays, in the description.
    assert!(
        unfolded.contains(
            "DESCRIPTION:Kỷ niệm 70 năm Ngày Chiến thắng Điện Biên Phủ (7/5/1954 - 7/5/2024).\\n"
        ),
        "{unfolded}"
    );
}

#[test]
fn no_title_of_the_shipped_calendars_carries_a_remark_in_brackets() {
    // Several names hold a remark: "(Đông Triều)", "(Nghị quyết 1199/NQ-UBTVQH15 có hiệu
    // lực)", "(Hải quân nhân dân Việt Nam; …)". Titles used to show it as a second pair of
    // brackets beside the dates.
    let rows = titles(&repo(), "2023-01-01", "2030-12-31");
    assert!(rows.len() > 300, "{}", rows.len());
    for (id, official, summary) in &rows {
        let pairs = official.matches('(').count();
        let dated = official.starts_with("Kỷ niệm ");
        assert!(
            pairs == usize::from(dated) && official.matches(')').count() == pairs,
            "{id}: {official:?}"
        );
        let rest = summary
            .replace(" (năm tròn)", "")
            .replace(" (năm lẻ 5)", "");
        assert!(!rest.contains(['(', ')']), "{id}: {summary:?}");
    }
    let official = |id: &str, year: &str| {
        rows.iter()
            .find(|(i, o, _)| i == id && o.contains(year))
            .map(|r| r.1.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        official("chien-thang-tran-dau-5-8", "2024"),
        "Kỷ niệm 60 năm Chiến thắng trận đầu của Hải quân nhân dân Việt Nam (5/8/1964 - 5/8/2024)"
    );
    assert_eq!(
        official("ngay-mat-ho-chi-minh-di-chuc", "2024"),
        "Kỷ niệm 55 năm thực hiện Di chúc của Chủ tịch Hồ Chí Minh (2/9/1969 - 2/9/2024)"
    );
    assert_eq!(
        official("sinh-nhat-hoang-van-thu", "2024"),
        "Kỷ niệm 115 năm Ngày sinh đồng chí Hoàng Văn Thụ (4/11/1909 - 4/11/2024)"
    );
    // The city of Đông Triều ended on 30/6/2025: its bracketed remark never had a 2025 title.
    assert_eq!(official("thanh-lap-thanh-pho-dong-trieu", "2025"), "");
}

#[test]
fn a_29_february_in_a_common_year_says_where_it_went() {
    let layer = "events:\n  - id: nhuan\n    name: Ngày Thử nhuận\n    date: 29/2\n    since: 1980\n  - id: nhuan-khong-so\n    name: Ngày hội nhuận\n    date: 29/2\n";
    let p = minimal(&[("calendars/national.yaml", layer)]);
    let r = p.run(&[
        "events",
        "--from",
        "2024-01-01",
        "--to",
        "2025-12-31",
        "--format",
        "tsv",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "2024-02-29\tnhuan\t44\tkhac\tKỷ niệm 44 năm Ngày Thử nhuận (29/2/1980 - 29/2/2024)\tThử nhuận — 44 năm",
            "2024-02-29\tnhuan-khong-so\t\t\tNgày hội nhuận\tNgày hội nhuận",
            "2025-02-28\tnhuan\t45\tle5\tKỷ niệm 45 năm Ngày Thử nhuận (29/2/1980 - 28/2/2025, 29/2 dời sang 28/2)\tThử nhuận — 45 năm (năm lẻ 5) — 29/2 dời sang 28/2",
            "2025-02-28\tnhuan-khong-so\t\t\tNgày hội nhuận (29/2 dời sang 28/2)\tNgày hội nhuận — 29/2 dời sang 28/2",
        ],
        "{}",
        r.stdout
    );
}

#[test]
fn upcoming_says_the_date_once() {
    let p = minimal(&[]);
    let r = p.run(&["upcoming", "--from", "2024-04-28", "--days", "3"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("Treo cờ"))
        .unwrap_or_default();
    assert!(
        row.trim_end()
            .ends_with("Giải phóng miền Nam — 49 năm (30/04/2024)"),
        "{}",
        r.stdout
    );
    assert_eq!(row.matches("30/4").count(), 0, "{row}");
}

/// One email of several tasks, a long event name and many people on the same task, sent to a
/// real SMTP server; returns it with its wire bytes.
fn crowded_email() -> (crate::support::smtp::Mail, String) {
    let layer = "events:\n  - id: chien-khu\n    name: Ngày thành lập Chiến khu Trần Hưng Đạo (Chiến khu Đông Triều) – khởi nghĩa giành chính quyền ở Đông Triều\n    date: 30/4\n    since: 1945\n    tasks: [tin-bai, pano, giao-ban, hoi-thi, treo-co]\n";
    // The nearest deadline is the last task's (the afternoon before): it is named first.
    let tasks = "tasks:\n  - id: tin-bai\n    title: Đăng tin bài trên trang Web trường\n    do: Viết và đăng một tin bài.\n    before: 1d\n    at: \"07:00\"\n    who: [csvc]\n  - id: pano\n    title: Treo pano, băng rôn ở cổng trường\n    do: Treo pano.\n    before: 1d\n    at: \"07:00\"\n    who: [csvc]\n  - id: giao-ban\n    title: Tuyên truyền lồng ghép trong giao ban\n    do: Nói trong buổi giao ban đầu tuần về lịch sử Chiến khu Trần Hưng Đạo và cuộc khởi nghĩa giành chính quyền ở Đông Triều năm 1945, với ảnh tư liệu.\n    before: 1d\n    at: \"07:00\"\n    who: [csvc]\n  - id: hoi-thi\n    title: Tổ chức hội thi kể chuyện về truyền thống quê hương cho các cháu\n    do: Hội thi.\n    before: 1d\n    at: \"07:00\"\n    who: [csvc]\n  - id: treo-co\n    title: Treo cờ Tổ quốc\n    do: Treo cờ.\n    due: -1d 17:00\n    before: 0d\n    at: \"07:00\"\n    who: [csvc]\n";
    let mut staff = String::from(
        "groups:\n  - id: csvc\n    name: Cơ sở vật chất\npeople:\n  - id: an\n    name: Nguyễn Văn An\n    email: an@example.org\n    groups: [csvc]\n",
    );
    let names = [
        "Nguyễn Thị Minh Khai",
        "Trần Hoàng Bảo Ngọc",
        "Lê Thị Thu Hương",
        "Phạm Nguyễn Hải Đăng",
        "Hoàng Thị Ngọc Ánh",
        "Vũ Đình Quang Huy",
        "Đặng Thị Hồng Nhung",
        "Bùi Xuân Trường Giang",
        "Đỗ Thị Phương Thảo",
        "Ngô Quốc Bảo Long",
    ];
    for (i, name) in names.iter().enumerate() {
        staff.push_str(&format!(
            "  - id: p{i}\n    name: {name}\n    email: p{i}@example.org\n    groups: [csvc]\n"
        ));
    }
    let p = minimal(&[
        ("calendars/national.yaml", layer),
        ("calendars/tasks.yaml", tasks),
        ("config/staff.yaml", &staff),
    ]);
    let server = SmtpServer::start();
    with_smtp(&p, &server);
    let r = p.run(&["send-due", "--now", "2024-04-29T07:00:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let got = server.settled(WAIT);
    let mine: Vec<_> = got.iter().filter(|m| m.to == ["an@example.org"]).collect();
    assert_eq!(mine.len(), 1, "one email for An: {}", r.stdout);
    let wire = String::from_utf8_lossy(&mine[0].raw).into_owned();
    (mine[0].parsed(), wire)
}

#[test]
fn the_subject_of_many_tasks_and_a_long_name_fits_in_90_characters() {
    let (mail, wire) = crowded_email();
    let s = &mail.subject;
    assert!(
        s.chars().count() <= 90,
        "{} characters: {s}",
        s.chars().count()
    );
    assert!(
        s.starts_with("[Nhắc việc] Treo cờ Tổ quốc và 4 việc khác — hạn 17:00 29/4 — "),
        "{s}"
    );
    // The event's subject, cut at a word.
    assert!(s.contains(" — hạn 17:00 29/4 — Thành lập Chiến khu"), "{s}");
    assert!(s.ends_with('…') && !s.ends_with(" …"), "{s}");
    // The email itself says the official title, without the remark.
    let words = mail.text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(
            "Dịp: Kỷ niệm 79 năm Ngày thành lập Chiến khu Trần Hưng Đạo – khởi nghĩa giành \
             chính quyền ở Đông Triều (30/4/1945 - 30/4/2024)"
        ),
        "{}",
        mail.text
    );
    // Auto-Submitted on the wire (RFC 3834), in the head.
    let head = wire.split("\r\n\r\n").next().unwrap_or_default();
    assert!(
        head.split("\r\n")
            .any(|l| l == "Auto-Submitted: auto-generated"),
        "{head}"
    );
}

#[test]
fn the_text_part_wraps_between_words_and_never_inside_a_name() {
    let (mail, _) = crowded_email();
    let text = &mail.text;
    let others = text
        .split("Cùng thực hiện: ")
        .nth(1)
        // Up to the next field: the "Đã xong" link.
        .map(|rest| rest.split("\n   Làm xong").next().unwrap_or(rest))
        .unwrap_or_default();
    assert!(
        others.contains('\n'),
        "the list is long enough to wrap:\n{text}"
    );
    // Every name whole on one line: the list split at ", " gives the names themselves.
    let listed: Vec<String> = others
        .split(',')
        .map(|n| n.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for name in [
        "Nguyễn Thị Minh Khai",
        "Trần Hoàng Bảo Ngọc",
        "Phạm Nguyễn Hải Đăng",
        "Bùi Xuân Trường Giang",
    ] {
        assert!(
            text.lines().any(|l| l.contains(name)),
            "{name} is split:\n{text}"
        );
        assert!(listed.iter().any(|n| n == name), "{name}: {listed:?}");
    }
    assert!(listed.iter().any(|n| n == "và 2 người khác"), "{listed:?}");
    for line in text.lines() {
        let n = line.chars().count();
        let url = line.trim().starts_with("http://");
        assert!(n <= WIDTH || url, "{n} characters: {line:?}\n{text}");
    }
    assert!(
        text.contains("\n   Việc cần làm: Nói trong buổi giao ban"),
        "{text}"
    );
    assert!(
        !text.contains('\u{a0}'),
        "no no-break space is left:\n{text}"
    );
}

#[test]
fn the_html_part_puts_each_label_above_its_value() {
    let (mail, _) = crowded_email();
    let html = &mail.html;
    assert!(html.contains("name=\"viewport\""), "{html}");
    assert!(!html.contains("<table") && !html.contains("<td"), "{html}");
    // Each field: the label in a block of its own, then the value in the next.
    let fields: Vec<&str> = html.split("<div class=\"field\"").skip(1).collect();
    assert_eq!(fields.len(), 6 * 5, "{html}"); // 6 fields (with Cùng thực hiện) × 5 tasks
    for f in &fields {
        let label = f.find("<div class=\"label\"");
        let value = f.find("<div class=\"value\"");
        let (Some(l), Some(v)) = (label, value) else {
            panic!("a field without label or value: {f}");
        };
        let between = &f[l..v];
        assert!(
            l < v && between.contains("</div>"),
            "label not above value: {f}"
        );
    }
    assert!(
        html.contains("<div class=\"label\" style=\"font-size: 13px; color: #555;\">Hạn</div>"),
        "{html}"
    );
}

/// An event's own official title (`title:`, issue 16 item 6) with its anniversary number and
/// the lunar year's name; an event that applies only `from` or `until` a day (item 5).
#[test]
fn own_titles_and_events_that_begin_or_end() {
    let layer = "events:\n  - id: tet\n    name: Tết Nguyên đán (Tết Âm lịch)\n    title: Tết Nguyên đán {can_chi}\n    lunar: 1/1\n  - id: di-chuc\n    name: Ngày thực hiện Di chúc\n    title: Kỷ niệm {n} năm thực hiện Di chúc của Chủ tịch Hồ Chí Minh\n    date: 2/9\n    since: 1969\n  - id: thanh-pho\n    name: Ngày thành lập thành phố\n    date: 1/11\n    since: 2024\n    until: 30/6/2025\n  - id: van-hoa\n    name: Ngày Văn hóa Việt Nam\n    date: 24/11\n    from: 2026\n";
    let p = minimal(&[("calendars/national.yaml", layer)]);
    let all = titles(p.path(), "2024-01-01", "2027-12-31");
    let of = |id: &str| -> Vec<(String, String)> {
        all.iter()
            .filter(|(e, _, _)| e == id)
            .map(|(_, t, s)| (t.clone(), s.clone()))
            .collect()
    };
    let tet = of("tet");
    assert_eq!(tet.len(), 4, "{all:?}");
    assert_eq!(
        tet[2],
        (
            "Tết Nguyên đán Bính Ngọ".to_string(),
            "Tết Nguyên đán Bính Ngọ".to_string()
        )
    );
    assert_eq!(tet[0].0, "Tết Nguyên đán Giáp Thìn");
    let di_chuc = of("di-chuc");
    assert_eq!(
        di_chuc[0].0,
        "Kỷ niệm 55 năm thực hiện Di chúc của Chủ tịch Hồ Chí Minh"
    );
    assert!(di_chuc[0].1.ends_with("— 55 năm (năm lẻ 5)"), "{di_chuc:?}");
    assert_eq!(
        of("thanh-pho").len(),
        1,
        "1/11/2024 (its founding) is in; 1/11/2025 falls after `until`"
    );
    let p2 = minimal(&[(
        "calendars/national.yaml",
        &layer.replace("until: 30/6/2025", "until: 2025"),
    )]);
    let later = titles(p2.path(), "2024-01-01", "2027-12-31");
    assert_eq!(
        later.iter().filter(|(e, _, _)| e == "thanh-pho").count(),
        2,
        "until a year: that year's 1/11 is in"
    );
    let van_hoa: Vec<String> = all
        .iter()
        .filter(|(e, _, _)| e == "van-hoa")
        .map(|(_, t, _)| t.clone())
        .collect();
    assert_eq!(
        van_hoa,
        ["Ngày Văn hóa Việt Nam", "Ngày Văn hóa Việt Nam"],
        "2026 and 2027"
    );

    // Mistakes: an unknown placeholder, `{n}` without `since`, a bad bound, from after until.
    let bad = "events:\n  - id: a\n    name: A\n    title: A {nam}\n    date: 1/1\n  - id: b\n    name: B\n    title: Lần {n}\n    date: 2/1\n  - id: c\n    name: C\n    date: 3/1\n    until: sau này\n  - id: d\n    name: D\n    date: 4/1\n    from: 2027\n    until: 2026\n";
    let p = minimal(&[("calendars/national.yaml", bad)]);
    let r = p.run(&["check"]);
    assert_eq!(r.code, Some(1));
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.contains(": lỗi: ")).collect();
    assert_eq!(errors.len(), 4, "{}", r.stderr);
    for (at, what) in [
        ("4:12", "`{nam}`"),
        ("8:12", "`{n}` trong `title` cần `since`"),
        ("13:12", "`until: sau này` không hợp lệ"),
        ("18:12", "trước `from`"),
    ] {
        assert!(
            errors.iter().any(
                |l| l.starts_with(&format!("calendars/national.yaml:{at}: lỗi: "))
                    && l.contains(what)
            ),
            "{at} {what}:\n{}",
            r.stderr
        );
    }
}
