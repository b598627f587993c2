//! Each person's own feed (issue 15, items 2 and 3): `/calendar/me/TOKEN.ics` from the real
//! service, checked against the schedule; the tokens across restarts and revocations; the
//! `ngayle feeds` listing; the emails' link; the `http.public_url` warnings.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use ngayle::schedule::{Schedule, load};

use crate::support::serve::Serve;
use crate::support::smtp::SmtpServer;
use crate::support::{Project, minimal, ngayle_env};

const WAIT: Duration = Duration::from_secs(60);

/// A teacher of khoi-4-5-tuoi and the csvc staff member of the shipped staff.
const TEACHER: &str = "gv-le-thi-thu-ha";
const CSVC: &str = "nhan-vien-csvc";

fn today() -> NaiveDate {
    ngayle::vietnam::today(Utc::now())
}

fn schedule(p: &Project) -> Schedule {
    let report = load(&p.config(), today());
    report
        .schedule
        .unwrap_or_else(|| panic!("{:#?}", report.diagnostics))
}

/// `ngayle feeds --format tsv`: (kind, id, name, email, url) rows.
fn feeds(p: &Project) -> Vec<[String; 5]> {
    let r = p.run(&["feeds", "--format", "tsv"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    r.stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{l}");
            [f[0], f[1], f[2], f[3], f[4]].map(str::to_string)
        })
        .collect()
}

/// The path of `person`'s feed (the URL without `http.public_url`).
fn path_of(p: &Project, person: &str) -> String {
    let rows = feeds(p);
    let Some(row) = rows.iter().find(|r| r[0] == "person" && r[1] == person) else {
        panic!("{person} is not listed: {rows:?}");
    };
    let Some(path) = row[4].strip_prefix("http://127.0.0.1:8080") else {
        panic!("not under the shipped public_url: {}", row[4]);
    };
    path.to_string()
}

/// The feed's events: UID → (VALARM count, DESCRIPTION unescaped).
fn events(text: &str) -> BTreeMap<String, (usize, String)> {
    let unfolded = text.replace("\r\n ", "");
    let mut out = BTreeMap::new();
    for block in unfolded.split("BEGIN:VEVENT\r\n").skip(1) {
        let field = |name: &str| {
            block
                .split("\r\n")
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_default()
                .to_string()
        };
        let description = field("DESCRIPTION:")
            .replace("\\n", "\n")
            .replace("\\,", ",")
            .replace("\\;", ";");
        let alarms = block.matches("BEGIN:VALARM\r\n").count();
        out.insert(field("UID:"), (alarms, description));
    }
    out
}

/// What `person`'s feed must hold, from the schedule: UID → (one alarm per planned reminder,
/// the titles of their tasks in that occurrence).
fn expected(s: &Schedule, person: &str) -> BTreeMap<String, (usize, Vec<String>)> {
    let year = today().year();
    let (from, to) = (year - 1, year + 2);
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_else(|| panic!("{y}-{m}-{d}"));
    let slug = ngayle::schedule::suggest_id(&s.unit.name);
    let mut out = BTreeMap::new();
    for o in ngayle::occurrence::occurrences(s, day(from, 1, 1), day(to, 12, 31)) {
        let mine: Vec<String> = o
            .tasks
            .iter()
            .filter(|t| s.assignees(t).iter().any(|p| p.id == person))
            .map(|t| t.title.clone())
            .collect();
        if !mine.is_empty() {
            out.insert(
                format!("{}-{}@{slug}.ngayle", o.event.id, o.year),
                (0, mine),
            );
        }
    }
    let start =
        Utc.from_utc_datetime(&day(from - 1, 1, 1).and_hms_opt(0, 0, 0).unwrap_or_default());
    let end = Utc.from_utc_datetime(&day(to + 1, 12, 31).and_hms_opt(0, 0, 0).unwrap_or_default());
    for r in ngayle::plan::plan(s, start, end) {
        if r.person.id != person || !(from..=to).contains(&r.key.date.year()) {
            continue;
        }
        let uid = format!("{}-{}@{slug}.ngayle", r.key.event_id, r.occurrence.year);
        match out.get_mut(&uid) {
            Some((alarms, _)) => *alarms += 1,
            None => panic!("a reminder of {uid} for {person} but no task in the occurrences"),
        }
    }
    out
}

#[test]
fn a_persons_feed_holds_exactly_the_events_of_their_tasks_with_one_alarm_per_reminder_shipped_calendars()
 {
    let p = Project::shipped();
    let s = schedule(&p);
    let serve = Serve::start(&p, &["--no-watch"]);
    let mut seen = Vec::new();
    for person in [TEACHER, CSVC] {
        let (code, body) = serve.get(&path_of(&p, person));
        assert_eq!(code, 200, "{person}: {body}\n{}", serve.log());
        let name = s.person(person).map(|p| p.name.clone()).unwrap_or_default();
        assert!(body.contains("X-WR-CALNAME:"), "{body}");
        assert!(
            body.replace("\r\n ", "").contains(&name),
            "{person}'s name in the feed"
        );
        let got = events(&body);
        let want = expected(&s, person);
        assert!(
            want.len() > 5,
            "{person}: {} events (the shipped files changed?)",
            want.len()
        );
        assert_eq!(
            got.keys().collect::<BTreeSet<_>>(),
            want.keys().collect::<BTreeSet<_>>(),
            "{person}: the events of their tasks, and only those"
        );
        for (uid, (alarms, description)) in &got {
            let (want_alarms, titles) = &want[uid];
            assert_eq!(
                alarms, want_alarms,
                "{person} {uid}: one VALARM per reminder"
            );
            assert_eq!(
                description.matches("\n• ").count(),
                titles.len(),
                "{person} {uid}: only their tasks\n{description}"
            );
            for t in titles {
                assert!(
                    description.contains(&format!("\n• {t} — hạn ")),
                    "{uid}: {t}"
                );
            }
        }
        seen.push(got);
    }
    assert_ne!(
        seen[0].keys().collect::<Vec<_>>(),
        seen[1].keys().collect::<Vec<_>>(),
        "a teacher and the csvc staff member have different days"
    );
}

#[test]
fn a_wrong_personal_token_is_404_like_any_missing_page() {
    let p = Project::shipped();
    let serve = Serve::start(&p, &["--no-watch"]);
    let good = path_of(&p, CSVC);
    let token = good
        .strip_prefix("/calendar/me/")
        .and_then(|t| t.strip_suffix(".ics"))
        .unwrap_or_else(|| panic!("{good}"));
    // One letter changed, the right length; a prefix; the token without `.ics`; another path.
    let last = if token.ends_with('a') { "b" } else { "a" };
    let changed = format!("/calendar/me/{}{last}.ics", &token[..token.len() - 1]);
    for path in [
        changed,
        format!("/calendar/me/{}.ics", &token[..20]),
        format!("/calendar/me/{token}"),
        format!("/calendar/me/{token}.ics/x"),
        "/calendar/me/.ics".to_string(),
    ] {
        let (code, body) = serve.get(&path);
        assert_eq!((code, body.as_str()), (404, "Không tìm thấy.\n"), "{path}");
    }
    assert_eq!(serve.get(&good).0, 200);
    assert!(
        !serve.log().contains(token),
        "the token is never logged:\n{}",
        serve.log()
    );
}

#[test]
fn a_personal_link_survives_a_restart_and_revoking_it_closes_it_while_serve_runs() {
    let p = Project::shipped();
    let old = path_of(&p, TEACHER);
    let other = path_of(&p, CSVC);
    let serve = Serve::start(&p, &["--no-watch"]);
    let (code, first) = serve.get(&old);
    assert_eq!(code, 200);
    serve.terminate();

    // The same database: the same link, the same bytes.
    let serve = Serve::start(&p, &["--no-watch"]);
    assert_eq!(path_of(&p, TEACHER), old, "the listing is stable");
    assert_eq!(serve.get(&old), (200, first.clone()));

    let r = p.run(&["feeds", "--revoke", TEACHER]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let new = path_of(&p, TEACHER);
    assert_ne!(new, old);
    assert!(
        r.stdout.contains(&new),
        "the new link is printed: {}",
        r.stdout
    );
    assert_eq!(serve.get(&old).0, 404, "the old link is closed at once");
    assert_eq!(
        serve.get(&new),
        (200, first),
        "the new one opens the same feed"
    );
    assert_eq!(serve.get(&other).0, 200, "the others keep theirs");
    assert_eq!(path_of(&p, CSVC), other);

    let unknown = p.run(&["feeds", "--revoke", "gv-le-thi-thu-haa"]);
    assert_eq!(unknown.code, Some(2));
    assert!(
        unknown.stderr.contains(TEACHER),
        "a suggestion: {}",
        unknown.stderr
    );
}

#[test]
fn feeds_lists_the_full_feed_the_days_off_every_group_and_every_person() {
    let p = Project::shipped();
    let s = schedule(&p);
    let rows = feeds(&p);
    assert_eq!(rows.len(), 2 + s.groups.len() + s.people.len());
    assert_eq!(rows[0][4], "http://127.0.0.1:8080/calendar.ics");
    assert_eq!(
        rows[1],
        [
            "days-off",
            "ngay-nghi",
            "Ngày nghỉ lễ, Tết (chỉ các đợt nghỉ và ngày làm bù)",
            "",
            "http://127.0.0.1:8080/calendar/ngay-nghi.ics"
        ]
    );
    for g in &s.groups {
        assert!(
            rows.iter().any(|r| r[0] == "group"
                && r[1] == g.id
                && r[4] == format!("http://127.0.0.1:8080/calendar/{}.ics", g.id)),
            "{}",
            g.id
        );
    }
    let mut tokens = BTreeSet::new();
    for person in &s.people {
        let Some(row) = rows.iter().find(|r| r[0] == "person" && r[1] == person.id) else {
            panic!("{} is not listed", person.id);
        };
        assert_eq!((&row[2], &row[3]), (&person.name, &person.email));
        let token = row[4]
            .strip_prefix("http://127.0.0.1:8080/calendar/me/")
            .and_then(|t| t.strip_suffix(".ics"))
            .unwrap_or_else(|| panic!("{}", row[4]));
        assert!(token.len() >= 26, "{token}");
        tokens.insert(token.to_string());
    }
    assert_eq!(tokens.len(), s.people.len(), "a token of their own each");
    // The table for people names everyone too, in Vietnamese.
    let table = p.run(&["feeds"]);
    assert_eq!(table.code, Some(0));
    assert!(
        table.stdout.contains("Lịch riêng của từng người"),
        "{}",
        table.stdout
    );
    for person in &s.people {
        assert!(table.stdout.contains(&person.email), "{}", person.email);
    }
}

#[test]
fn the_secret_from_the_environment_makes_the_same_links_for_every_database() {
    let a = Project::shipped();
    let b = Project::shipped();
    let secret = [("NGAYLE_FEED_SECRET", "0123456789abcdef0123456789abcdef")];
    let run = |p: &Project| ngayle_env(p.path(), &["feeds", "--format", "tsv"], &secret).stdout;
    assert_eq!(run(&a), run(&b));
    // From a file (systemd credentials): its last line break is not part of it.
    a.write("secret", "0123456789abcdef0123456789abcdef\n");
    let file = a.path().join("secret");
    let from_file = ngayle_env(
        a.path(),
        &["feeds", "--format", "tsv"],
        &[("NGAYLE_FEED_SECRET_FILE", &file.display().to_string())],
    );
    assert_eq!(from_file.stdout, run(&b), "{}", from_file.stderr);
    assert_ne!(
        feeds(&a),
        feeds(&b),
        "without it, each database has its own secret"
    );
    let short = ngayle_env(a.path(), &["feeds"], &[("NGAYLE_FEED_SECRET", "ngan")]);
    assert_eq!(short.code, Some(1));
    assert!(
        short.stderr.contains("$NGAYLE_FEED_SECRET"),
        "{}",
        short.stderr
    );
    assert!(!short.stderr.contains("ngan"), "a secret is never shown");
}

/// Two people in different groups, each reminded today (00:00) of a task due tomorrow: the
/// project of the email test.
fn two_groups(smtp: &str, public_url: &str) -> Project {
    let day = (today() + chrono::Duration::days(1)).format("%-d/%-m");
    let config = format!(
        "{}http:\n  public_url: {public_url}\nmail:\n  from: \"Trường <nhacviec@example.org>\"\n  smtp: {smtp}\nreminders:\n  workdays: [mon, tue, wed, thu, fri, sat, sun]\n",
        crate::support::CONFIG
    );
    let staff = "groups:\n  - id: csvc\n    name: Cơ sở vật chất\n  - id: gv\n    name: Giáo viên\npeople:\n  - id: an\n    name: Nguyễn Văn An\n    email: an@example.org\n    groups: [csvc]\n  - id: binh\n    name: Trần Thị Bình\n    email: binh@example.org\n    groups: [gv]\n";
    let tasks = "tasks:\n  - id: treo-co\n    title: Treo cờ\n    do: Treo cờ Tổ quốc.\n    before: 1d\n    at: \"00:00\"\n    who: [csvc]\n  - id: bao-cao\n    title: Báo cáo\n    do: Gửi báo cáo.\n    before: 1d\n    at: \"00:00\"\n    who: [gv, an]\n";
    let layer = format!(
        "events:\n  - id: ngay-thu\n    name: Ngày thử\n    date: {day}\n    tasks: [treo-co, bao-cao]\n"
    );
    minimal(&[
        ("config/ngayle.yaml", &config),
        ("config/staff.yaml", staff),
        ("calendars/tasks.yaml", tasks),
        ("calendars/national.yaml", &layer),
    ])
}

#[test]
fn every_reminder_email_links_to_its_readers_own_feed() {
    let server = SmtpServer::start();
    let p = two_groups(&server.url(), "https://lich.truong.edu.vn");
    let rows = feeds(&p);
    let url_of = |id: &str| {
        rows.iter()
            .find(|r| r[0] == "person" && r[1] == id)
            .map(|r| r[4].clone())
            .unwrap_or_else(|| panic!("{id}: {rows:?}"))
    };
    // The store was there when the reminders (today 00:00) fell due.
    p.start_store(&(Utc::now() - chrono::Duration::days(1)).to_rfc3339());
    let now = Utc::now().to_rfc3339();
    let run = p.run(&["send-due", "--now", &now]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let got = server.settled(WAIT);
    assert_eq!(got.len(), 2, "{}", run.stdout);
    let serve = Serve::start(&p, &["--no-watch"]);
    for m in &got {
        let mail = m.parsed();
        let id = if m.to[0] == "an@example.org" {
            "an"
        } else {
            "binh"
        };
        let url = url_of(id);
        assert!(
            url.starts_with("https://lich.truong.edu.vn/calendar/me/"),
            "{url}"
        );
        assert!(
            mail.text.contains(&url),
            "{id}'s own feed in the text:\n{}",
            mail.text
        );
        assert!(
            // The HTML template escapes `/` as `&#x2f;`.
            mail.html
                .contains(&format!("href=\"{}\"", url.replace('/', "&#x2f;"))),
            "{id}: {}",
            mail.html
        );
        assert!(
            !mail.text.contains("/calendar/csvc.ics") && !mail.text.contains("/calendar/gv.ics")
        );
        // The link opens that person's feed on the service.
        let path = url.trim_start_matches("https://lich.truong.edu.vn");
        let (code, body) = serve.get(path);
        assert_eq!(code, 200, "{}", serve.log());
        let events = events(&body);
        let titles: Vec<usize> = events
            .values()
            .map(|(_, d)| d.matches("\n• ").count())
            .collect();
        // An has both tasks (csvc, and Báo cáo by name), Bình only Báo cáo.
        let want = if id == "an" { 2 } else { 1 };
        assert!(titles.contains(&want), "{id}: {titles:?}\n{body}");
        assert!(titles.iter().all(|&n| n <= want), "{id}: {titles:?}");
    }
}

/// The warning lines of `ngayle check` about `http.public_url`.
fn public_url_warnings(p: &Project) -> Vec<String> {
    let r = p.run(&["check"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    format!("{}{}", r.stdout, r.stderr)
        .lines()
        .filter(|l| l.contains("liên kết lịch trong thư"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_loopback_public_url_with_smtp_warns_in_check_and_once_at_serve_start() {
    let p = two_groups("smtp://127.0.0.1:2525", "http://127.0.0.1:8080");
    let warned = public_url_warnings(&p);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].starts_with("config/ngayle.yaml:6:15: cảnh báo: "),
        "located at the key: {}",
        warned[0]
    );
    let r = p.run(&["check"]);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("1 cảnh báo"), "{all}");
    assert!(
        all.contains("http.public_url") && all.contains("NGAYLE_PUBLIC_URL"),
        "the key to set: {all}"
    );
    // The port listened on, on the same address, but another port.
    let p = two_groups("smtp://127.0.0.1:2525", "http://192.168.1.10:9000");
    p.edit(
        "config/ngayle.yaml",
        "http:\n",
        "http:\n  listen: 192.168.1.10:8080\n",
    );
    assert_eq!(public_url_warnings(&p).len(), 1);

    let p = two_groups("smtp://127.0.0.1:2525", "http://localhost:8080");
    let serve = Serve::start(&p, &["--no-watch"]);
    let log = serve.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("liên kết lịch trong thư"))
        .count();
    assert_eq!(lines, 1, "once at start:\n{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("cảnh báo") && l.contains("liên kết lịch trong thư")),
        "at the warning level: {log}"
    );
}

#[test]
fn a_reverse_proxy_or_outbox_mode_does_not_warn_about_the_public_url() {
    // nginx on the public name in front of the service on a loopback port: normal.
    let proxy = two_groups("smtp://127.0.0.1:2525", "https://lich.truong.edu.vn");
    assert_eq!(public_url_warnings(&proxy), Vec::<String>::new());
    let port = two_groups("smtp://127.0.0.1:2525", "http://lich.truong.edu.vn:8000");
    assert_eq!(public_url_warnings(&port), Vec::<String>::new());
    // Mail written to the outbox is a trial: the links do not reach anyone.
    let outbox = two_groups("~", "http://127.0.0.1:8080");
    assert_eq!(public_url_warnings(&outbox), Vec::<String>::new());
    // The environment's public URL over a loopback one in the file.
    let env = two_groups("smtp://127.0.0.1:2525", "http://127.0.0.1:8080");
    let r = ngayle_env(
        env.path(),
        &["check"],
        &[("NGAYLE_PUBLIC_URL", "https://lich.truong.edu.vn")],
    );
    assert!(!format!("{}{}", r.stdout, r.stderr).contains("liên kết lịch trong thư"));
}
