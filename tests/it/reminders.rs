//! Reminder emails end to end: the real binary, a real SMTP server (`support::smtp`), and
//! what actually arrived, parsed.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, FixedOffset};

use crate::support::serve::Serve;
use crate::support::smtp::SmtpServer;
use crate::support::{Project, minimal, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// The minimal config with mail through `url`, and `extra` YAML after it.
fn smtp_config(p: &Project, url: &str, extra: &str) {
    p.write(
        "config/ngayle.yaml",
        &format!(
            "{}mail:\n  from: \"Trường <nhacviec@example.org>\"\n  smtp: {url}\n{extra}",
            crate::support::CONFIG
        ),
    );
}

fn with_smtp(p: &Project, server: &SmtpServer) {
    p.edit(
        "config/ngayle.yaml",
        "smtp: ~",
        &format!("smtp: {}", server.url()),
    );
}

/// (due, event, date, task, person, email) rows of `ngayle upcoming --format tsv`.
fn upcoming(p: &Project, from: &str, days: u32) -> Vec<[String; 6]> {
    let r = p.run(&[
        "upcoming",
        "--from",
        from,
        "--days",
        &days.to_string(),
        "--format",
        "tsv",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    r.stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 6, "{l}");
            [f[0], f[1], f[2], f[3], f[4], f[5]].map(str::to_string)
        })
        .collect()
}

fn instant(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The task titles of `tasks.yaml`, by id.
fn task_titles(p: &Project) -> BTreeMap<String, String> {
    let text = p.read("calendars/tasks.yaml");
    let mut out = BTreeMap::new();
    let mut id = None;
    for line in text.lines() {
        if let Some(v) = line.trim().strip_prefix("- id: ") {
            id = Some(v.trim().to_string());
        } else if let (Some(v), Some(i)) = (line.trim().strip_prefix("title: "), &id) {
            out.insert(i.clone(), v.trim().to_string());
        }
    }
    out
}

/// On the shipped files as they are (a real week of reminders: change the files and this test
/// follows, except the few lines it edits or asserts by name).
#[test]
fn send_due_sends_exactly_what_upcoming_lists_once_shipped_calendars() {
    let server = SmtpServer::start();
    let p = Project::shipped();
    with_smtp(&p, &server);
    p.start_store("2024-04-25T00:00:00+07:00");
    let now = "2024-04-29T07:30:00+07:00";
    let t = instant(now);
    let catch_up = chrono::Duration::days(3);
    let expected: Vec<[String; 6]> = upcoming(&p, "2024-04-20", 10)
        .into_iter()
        .filter(|r| {
            let due = instant(&r[0]);
            due <= t && due >= t - catch_up
        })
        .collect();
    assert!(
        expected.len() > 10,
        "a real burst: {} (the shipped calendars changed: update this test)",
        expected.len()
    );
    // One email per person and due instant.
    let mut by_message: BTreeMap<(String, String), Vec<&[String; 6]>> = BTreeMap::new();
    for r in &expected {
        by_message
            .entry((r[5].clone(), r[0].clone()))
            .or_default()
            .push(r);
    }

    let run = p.run(&["send-due", "--now", now]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let got = server.settled(WAIT);
    assert_eq!(got.len(), by_message.len(), "{}", run.stdout);
    let titles = task_titles(&p);
    let mut seen = BTreeSet::new();
    for m in &got {
        assert_eq!(m.to.len(), 1, "one recipient per email: {:?}", m.to);
        let mail = m.parsed();
        assert_eq!(
            mail.reply_to.as_deref(),
            Some("Văn thư Trường MN Hoa Phượng <vanthu@example.org>"),
            "the shipped config changed: update this test"
        );
        assert!(
            mail.from.ends_with("<nhacviec@example.org>"),
            "{}",
            mail.from
        );
        assert!(mail.message_id.is_some() && mail.date.is_some());
        // Which batch is it? The one of this address sent at the time the email says, whose
        // tasks all appear in the text.
        let text = mail.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let batch = by_message
            .iter()
            .filter(|((email, _), _)| *email == m.to[0])
            .filter(|((_, due), _)| {
                let at = ngayle::vietnam::time_day(instant(due));
                text.contains(&format!("Nhắc lúc: {at}"))
            })
            .find(|(_, rows)| rows.iter().all(|r| mail.text.contains(&titles[&r[3]])))
            .map(|(k, rows)| (k.clone(), rows.len()));
        let Some((key, n)) = batch else {
            panic!(
                "unexpected email to {}: {}\n{}",
                m.to[0], mail.subject, mail.text
            );
        };
        assert!(seen.insert(key.clone()), "two emails for {key:?}");
        assert!(mail.subject.starts_with("[Nhắc việc"), "{}", mail.subject);
        let due = instant(&key.1);
        let late = t - due > chrono::Duration::minutes(15);
        assert_eq!(
            mail.subject.contains("gửi muộn"),
            late,
            "{} due {}",
            mail.subject,
            key.1
        );
        assert_eq!(mail.text.matches("\n   Hạn: ").count(), n, "{}", mail.text);
        assert!(mail.html.contains("<strong>"), "an HTML part");
    }
    assert_eq!(seen.len(), by_message.len());
    assert!(
        run.stdout.contains(&format!(
            "Đã gửi {} thư ({} lời nhắc",
            by_message.len(),
            expected.len()
        )),
        "{}",
        run.stdout
    );

    // A second run sends nothing.
    let again = p.run(&["send-due", "--now", now]);
    assert_eq!(again.code, Some(0));
    assert!(again.stdout.contains("Đã gửi 0 thư"), "{}", again.stdout);
    // Both runs have exited: once their connections are closed, nothing can arrive late.
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert_eq!(server.received().len(), got.len());
}

#[test]
fn a_task_reaches_each_assignee_once_in_staff_order() {
    // Named by group, by id and both: each person once, in the order of staff.yaml.
    let staff = "groups:\n  - id: csvc\n    name: CSVC\n  - id: vp\n    name: Văn phòng\npeople:\n  - id: an\n    name: An\n    email: an@example.org\n    groups: [csvc]\n  - id: binh\n    name: Bình\n    email: binh@example.org\n    groups: [csvc, vp]\n  - id: chi\n    name: Chi\n    email: chi@example.org\n    groups: [vp]\n  - id: dung\n    name: Dũng\n    email: dung@example.org\n";
    let tasks = "tasks:\n  - id: treo-co\n    title: Treo cờ\n    do: Treo cờ.\n    before: 1d\n    who: [chi, csvc, binh]\n";
    let p = minimal(&[
        ("config/staff.yaml", staff),
        ("calendars/tasks.yaml", tasks),
    ]);
    let rows = upcoming(&p, "2024-04-28", 3);
    let emails: Vec<&str> = rows.iter().map(|r| r[5].as_str()).collect();
    assert_eq!(
        emails,
        ["an@example.org", "binh@example.org", "chi@example.org"],
        "{rows:?}"
    );
}

#[test]
fn the_subject_of_the_issue() {
    // 30/4/2024, task "Treo cờ Tổ quốc" due the day before at 07:00.
    let layer = "events:\n  - id: giai-phong\n    name: Ngày Giải phóng miền Nam\n    date: 30/4\n    since: 1975\n    tasks: [treo-co]\n";
    let tasks = "tasks:\n  - id: treo-co\n    title: Treo cờ Tổ quốc\n    do: Treo cờ ở cổng trường.\n    before: 1d\n    at: \"07:00\"\n    who: [csvc]\n";
    let p = minimal(&[
        ("calendars/national.yaml", layer),
        ("calendars/tasks.yaml", tasks),
    ]);
    let server = SmtpServer::start();
    smtp_config(&p, &server.url(), "");
    let r = p.run(&["send-due", "--now", "2024-04-29T07:00:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let got = server.settled(WAIT);
    let mail = got[0].parsed();
    // The task, its deadline, then what the day is about (issue 15, items 1 and 7).
    assert_eq!(
        mail.subject,
        "[Nhắc việc] Treo cờ Tổ quốc — hạn 07:30 30/4 — Giải phóng miền Nam"
    );
    assert_eq!(got[0].to, ["an@example.org"]);
    assert!(
        mail.text.contains("Kính gửi đồng chí Nguyễn Văn An"),
        "{}",
        mail.text
    );
    // The deadline is the event's day at the start of work (`send_at`), not the send time.
    assert!(
        mail.text.contains("Hạn: 07:30 Thứ Ba 30/04/2024")
            && mail.text.contains("Nhắc lúc: 07:00 Thứ Hai 29/04/2024"),
        "{}",
        mail.text
    );
    assert!(
        mail.text.contains("âm lịch 22/3 năm Giáp Thìn"),
        "{}",
        mail.text
    );
}

#[test]
fn smtp_down_then_back_an_hour_later() {
    let layer = "events:\n  - id: giai-phong\n    name: Ngày Giải phóng miền Nam\n    date: 30/4\n    since: 1975\n    tasks: [treo-co, pano]\n";
    let tasks = "tasks:\n  - id: treo-co\n    title: Treo cờ\n    do: Treo cờ.\n    before: 1d\n    at: \"07:00\"\n    who: [csvc]\n  - id: pano\n    title: Pano\n    do: Treo pano.\n    before: 1d\n    at: \"08:00\"\n    who: [an]\n";
    let p = minimal(&[
        ("calendars/national.yaml", layer),
        ("calendars/tasks.yaml", tasks),
    ]);
    let server = SmtpServer::start();
    smtp_config(&p, &server.url(), "");
    p.start_store("2024-04-28T08:00:00+07:00");
    let down = server.stop_keeping_port();

    // Both fall due while the server is down: nothing is lost, the run says so.
    let run = p.run(&["send-due", "--now", "2024-04-29T08:05:00+07:00"]);
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("Máy chủ thư chưa dùng được"),
        "{}",
        run.stdout
    );

    // Back an hour later: everything arrives, marked late, once.
    let server = down.start_again();
    let back = p.run(&["send-due", "--now", "2024-04-29T09:05:00+07:00"]);
    assert_eq!(back.code, Some(0), "{}{}", back.stdout, back.stderr);
    let got = server.settled(WAIT);
    assert_eq!(got.len(), 2, "one email per due instant");
    for m in &got {
        let mail = m.parsed();
        assert!(
            mail.subject.starts_with("[Nhắc việc — gửi muộn]"),
            "{}",
            mail.subject
        );
        assert!(mail.text.contains("gửi muộn hơn dự kiến"), "{}", mail.text);
    }
    let again = p.run(&["send-due", "--now", "2024-04-29T09:06:00+07:00"]);
    assert_eq!(again.code, Some(0));
    assert!(again.stdout.contains("Đã gửi 0 thư"), "{}", again.stdout);
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert_eq!(server.received().len(), 2, "none twice");
}

#[test]
fn later_than_catch_up_is_skipped_not_sent() {
    let p = minimal(&[]);
    let server = SmtpServer::start();
    smtp_config(
        &p,
        &server.url(),
        "reminders:
  catch_up: 12h
",
    );
    p.start_store("2024-04-28T08:00:00+07:00");
    // Due 2024-04-29 07:30; a day later is beyond 12 h.
    let r = p.run(&["send-due", "--now", "2024-04-30T08:00:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("bỏ qua 1 (quá hạn gửi bù"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("quá hạn gửi bù"), "logged: {}", r.stderr);
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert!(server.received().is_empty());
    // And it stays skipped: never sent later.
    let r = p.run(&["send-due", "--now", "2024-04-30T08:01:00+07:00"]);
    assert!(r.stdout.contains("Đã gửi 0 thư"), "{}", r.stdout);
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert!(server.received().is_empty());
}

#[test]
fn a_refused_address_fails_alone_and_is_not_retried() {
    let staff = format!(
        "{}  - id: binh\n    name: Lê Bình\n    email: binh@example.org\n    groups: [csvc]\n",
        crate::support::STAFF
    );
    let p = minimal(&[("config/staff.yaml", &staff)]);
    let server = SmtpServer::start();
    server.reject("an@example.org");
    smtp_config(&p, &server.url(), "");
    let r = p.run(&["send-due", "--now", "2024-04-29T07:30:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("từ chối 1"), "{}", r.stdout);
    let got = server.settled(WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, ["binh@example.org"]);
    let again = p.run(&["send-due", "--now", "2024-04-29T08:30:00+07:00"]);
    assert!(
        again.stdout.contains("Đã gửi 0 thư") && again.stdout.contains("từ chối 0"),
        "{}",
        again.stdout
    );
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert_eq!(server.received().len(), 1, "the refused one is not retried");
}

#[test]
fn no_header_injection_and_html_is_escaped() {
    // A line break in a name is refused at load (issue 13, item 2): it can no longer reach
    // the Subject from the files.
    let broken = "events:\n  - id: le\n    name: \"Lễ\\r\\nBcc: evil@example.org\"\n    date: 30/4\n    tasks: [treo-co]\n";
    let r = minimal(&[("calendars/national.yaml", broken)]).run(&["check"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("calendars/national.yaml:3:11: lỗi: tên sự kiện có ký tự điều khiển U+000D"),
        "{}",
        r.stderr
    );
    let layer = "events:\n  - id: le\n    name: \"Lễ <script>alert(1)</script> Bcc: evil@example.org X-Evil: 1\"\n    date: 30/4\n    tasks: [treo-co]\n";
    let p = minimal(&[("calendars/national.yaml", layer)]);
    let server = SmtpServer::start();
    smtp_config(&p, &server.url(), "");
    let r = p.run(&["send-due", "--now", "2024-04-29T07:30:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let got = server.settled(WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, ["an@example.org"], "no extra envelope recipient");
    let mail = got[0].parsed();
    for (name, value) in &mail.headers {
        let n = name.to_ascii_lowercase();
        assert!(
            n != "bcc" && n != "x-evil",
            "injected header {name}: {value}"
        );
        assert!(
            !value.contains("evil@example.org") || n == "subject",
            "{name}: {value}"
        );
    }
    // "(1)" is a remark in brackets, which titles leave out; the subject is cut at 90
    // characters.
    assert!(
        mail.subject
            .contains("Lễ <script>alert</script> Bcc: evil@example.org"),
        "{}",
        mail.subject
    );
    assert!(
        mail.html
            .contains("Lễ &lt;script&gt;alert&lt;&#x2f;script&gt;"),
        "{}",
        mail.html
    );
    assert!(!mail.html.contains("<script>"), "{}", mail.html);
}

#[test]
fn a_lone_dot_line_cannot_end_the_message_early() {
    // A line that is just "." ends an SMTP message: the client must dot-stuff it, or the rest
    // of the email would be read as commands (SMTP smuggling). A note may span lines.
    let layer = "events:\n  - id: le\n    name: Lễ\n    note: \"Lễ\\n.\\nMAIL FROM:<evil@example.org>\\n..hai chấm\\n.ba\"\n    date: 30/4\n    tasks: [treo-co]\n";
    let p = minimal(&[("calendars/national.yaml", layer)]);
    let server = SmtpServer::start();
    smtp_config(&p, &server.url(), "");
    let r = p.run(&["send-due", "--now", "2024-04-29T07:30:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let got = server.settled(WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "nhacviec@example.org");
    assert_eq!(got[0].to, ["an@example.org"]);
    let mail = got[0].parsed();
    let text = mail.text.replace("\r\n", "\n");
    assert!(
        text.contains("Ghi chú: Lễ\n.\nMAIL FROM:<evil@example.org>\n..hai chấm\n.ba\n"),
        "{text}"
    );
    // The whole email arrived: the text part's last line, and the HTML part after it.
    assert!(mail.text.contains("Thư tự động từ ngayle"), "{}", mail.text);
    assert!(
        mail.html.contains("MAIL FROM:&lt;evil@example.org&gt;"),
        "{}",
        mail.html
    );
}

#[test]
fn dry_run_records_and_sends_nothing() {
    let p = minimal(&[]);
    let server = SmtpServer::start();
    smtp_config(&p, &server.url(), "");
    let dry = p.run(&[
        "send-due",
        "--now",
        "2024-04-29T07:30:00+07:00",
        "--dry-run",
    ]);
    assert_eq!(dry.code, Some(0), "{}{}", dry.stdout, dry.stderr);
    assert!(
        dry.stdout.contains(
            "→ an@example.org: [Nhắc việc] Treo cờ — hạn 07:30 30/4 — Giải phóng miền Nam\n"
        ),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("Sẽ gửi 1 thư"), "{}", dry.stdout);
    // The dry run has exited: had it opened a connection, it would be closed (and whatever
    // it sent recorded) once the server is idle.
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert!(server.received().is_empty());
    assert_eq!(server.connections(), 0, "a dry run does not even connect");
    let real = p.run(&["send-due", "--now", "2024-04-29T07:30:00+07:00"]);
    assert!(real.stdout.contains("Đã gửi 1 thư"), "{}", real.stdout);
    assert_eq!(server.settled(WAIT).len(), 1);
}

#[test]
fn send_test_reaches_the_server() {
    let p = minimal(&[]);
    let server = SmtpServer::start();
    smtp_config(&p, &server.url(), "");
    let r = p.run(&["send-test", "hieutruong@example.org"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let got = server.settled(WAIT);
    assert_eq!(got[0].to, ["hieutruong@example.org"]);
    assert!(got[0].parsed().subject.starts_with("[ngayle] Thư thử"));
    assert_eq!(p.run(&["send-test", "không phải địa chỉ"]).code, Some(2));
}

#[test]
fn smtp_auth_password_from_the_environment() {
    let p = minimal(&[]);
    let server = SmtpServer::with_auth("nhacviec@example.org", "mật-khẩu-thử");
    let url = format!("smtp://nhacviec%40example.org@{}", server.addr());
    smtp_config(&p, &url, "");
    let run = |password: &str, now: &str| {
        Command::new(env!("CARGO_BIN_EXE_ngayle"))
            .current_dir(p.path())
            .args(["send-due", "--now", now])
            .env("NGAYLE_SMTP_PASSWORD", password)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let wrong = run("sai", "2024-04-29T07:30:00+07:00");
    assert_eq!(
        wrong.status.code(),
        Some(1),
        "a wrong password leaves the reminders for later"
    );
    assert!(
        !String::from_utf8_lossy(&wrong.stderr).contains("sai"),
        "the password is not logged"
    );
    // After the backoff (a minute for the first retry).
    let right = run("mật-khẩu-thử", "2024-04-29T07:32:00+07:00");
    assert_eq!(
        right.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert_eq!(server.settled(WAIT).len(), 1);
    let log = String::from_utf8_lossy(&right.stderr).into_owned()
        + &String::from_utf8_lossy(&right.stdout);
    assert!(!log.contains("mật-khẩu-thử"), "{log}");
}

/// A unit with `n` people in one group and one task due at 2026-06-01 08:00 for all of them.
pub(crate) fn burst(n: usize, smtp: &str) -> Project {
    let mut staff = String::from("groups:\n  - id: gv\n    name: Giáo viên\npeople:\n");
    for i in 0..n {
        staff.push_str(&format!("  - id: p{i:04}\n    name: Người {i}\n    email: p{i:04}@example.org\n    groups: [gv]\n"));
    }
    let tasks = "tasks:\n  - id: bao-cao\n    title: Báo cáo\n    do: Gửi báo cáo.\n    before: 0d\n    at: \"08:00\"\n    who: [gv]\n";
    let layer =
        "events:\n  - id: ngay-thu\n    name: Ngày thử\n    date: 1/6\n    tasks: [bao-cao]\n";
    let config = format!(
        "{}mail:\n  from: \"Trường <nhacviec@example.org>\"\n  smtp: {smtp}\n",
        crate::support::CONFIG
    );
    minimal(&[
        ("config/ngayle.yaml", &config),
        ("config/staff.yaml", &staff),
        ("calendars/tasks.yaml", tasks),
        ("calendars/national.yaml", layer),
    ])
}

#[test]
fn kill_9_in_the_middle_of_a_burst_loses_nothing() {
    const N: usize = 400;
    let server = SmtpServer::start();
    server.set_delay(Duration::from_millis(5));
    let p = burst(N, &server.url());
    // A short claim lease: the email in flight at a kill waits this long to be sent again.
    let config = p.read("config/ngayle.yaml");
    p.write(
        "config/ngayle.yaml",
        &format!("{config}reminders:\n  lease: 2s\n"),
    );
    let now = "2026-06-01T08:00:00+07:00";
    let mut kills = 0;
    for at in [60, 200] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ngayle"))
            .current_dir(p.path())
            .args(["send-due", "--now", now])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        wait_until(WAIT, || (server.received().len() >= at).then_some(()));
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "the burst ended before the kill: the test would prove nothing"
        );
        child.kill().unwrap_or_else(|e| panic!("{e}")); // SIGKILL
        let _ = child.wait();
        kills += 1;
    }
    // A run now sends what nobody holds; the emails the killed processes had claimed wait for
    // their lease to run out (by the store's wall clock, which `--now` does not move), and a
    // run after that sends them: run until everything has arrived.
    let per_person = || {
        let mut out: BTreeMap<String, usize> = BTreeMap::new();
        for m in server.received() {
            for to in &m.to {
                *out.entry(to.clone()).or_default() += 1;
            }
        }
        out
    };
    let all = wait_until(WAIT, || {
        let r = p.run(&["send-due", "--now", now]);
        assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
        (per_person().len() == N).then_some(())
    });
    assert!(all.is_some(), "every reminder arrives");
    // The runs have exited and the killed ones' connections are closed once the server is
    // idle: an email recorded late (a kill after its data) is counted too.
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    let per_person = per_person();
    assert_eq!(per_person.len(), N, "every reminder arrives");
    let duplicates: usize = per_person.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= kills,
        "{duplicates} duplicates for {kills} kills"
    );
    let again = p.run(&["send-due", "--now", now]);
    assert!(again.stdout.contains("Đã gửi 0 thư"), "{}", again.stdout);
}

#[test]
fn the_run_command_leaves_readable_eml_files_in_the_outbox_shipped_calendars() {
    // The shipped files as they are (no SMTP: the outbox), plus one event whose reminder is due
    // a minute ago, so that the start-up tick of `serve` has something to send.
    let p = Project::shipped();
    let now =
        chrono::Utc::now().with_timezone(&ngayle::vietnam::ZONE) - chrono::Duration::minutes(2);
    let tomorrow = now.date_naive() + chrono::Duration::days(1);
    p.write(
        "calendars/zz-thu.yaml",
        &format!(
            "events:\n  - id: ngay-thu\n    name: Ngày thử\n    date: {}/{}/{}\n    tasks: [nhac-thu]\n",
            chrono::Datelike::day(&tomorrow),
            chrono::Datelike::month(&tomorrow),
            chrono::Datelike::year(&tomorrow)
        ),
    );
    let tasks = p.read("calendars/tasks.yaml");
    p.write(
        "calendars/tasks.yaml",
        &format!(
            "{tasks}\n  - id: nhac-thu\n    title: Việc thử\n    do: Đọc thư này.\n    before: 1d\n    at: \"{}\"\n    who: [ban-giam-hieu]\n",
            now.format("%H:%M")
        ),
    );
    // Weekends and days off would move the reminder: make every day a workday here.
    p.edit(
        "config/ngayle.yaml",
        "workdays: [mon, tue, wed, thu, fri]",
        "workdays: [mon, tue, wed, thu, fri, sat, sun]",
    );
    // Only this reminder: a shipped one that fell due in the last three days (the shipped
    // catch-up) would be sent too, and this test would fail on the days after each of them.
    // A few minutes still cover this one (due two to three minutes ago).
    p.edit("config/ngayle.yaml", "catch_up: 3d", "catch_up: 6m");
    let serve = Serve::start(&p, &[]);
    let outbox = p.path().join("var/outbox");
    let emails = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&outbox)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    wait_until(WAIT, || (emails().len() >= 3).then_some(()));
    let log = serve.log.clone();
    let (code, _) = serve.terminate();
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert_eq!(code, Some(0), "{log}");
    // Counted once the service has exited: nothing can be added after this.
    let files = emails();
    assert_eq!(
        files.len(),
        3,
        "one email per member of ban-giam-hieu (the shipped staff changed? update this test): {log}"
    );
    let ids = [
        ("hieu-truong", "hieutruong@example.org"),
        ("pho-hieu-truong-phuong", "phuongntm@example.org"),
        ("pho-hieu-truong-ngoc-anh", "ngocanhnt@example.org"),
    ];
    let mut named = Vec::new();
    for f in files {
        assert_eq!(f.extension().and_then(|e| e.to_str()), Some("eml"));
        let raw = std::fs::read(&f).unwrap_or_else(|e| panic!("{e}"));
        let mail = crate::support::smtp::Received {
            from: String::new(),
            to: Vec::new(),
            raw,
        }
        .parsed();
        // Named `YYYY-MM-DDTHHMM-person-id.eml` (issue 15, item 7): when, then for whom.
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let (stamp, rest) = name.split_at_checked(15).unwrap_or_default();
        assert!(
            chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H%M").is_ok(),
            "{name}"
        );
        let person = rest
            .strip_prefix('-')
            .and_then(|r| r.strip_suffix(".eml"))
            .unwrap_or_default();
        let Some((_, email)) = ids.iter().find(|(id, _)| *id == person) else {
            panic!("{name}: not a member of ban-giam-hieu");
        };
        assert!(mail.to[0].contains(email), "{name}: {:?}", mail.to);
        named.push(person.to_string());
        assert!(
            mail.headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case("Auto-Submitted") && v == "auto-generated"),
            "{:?}",
            mail.headers
        );
        assert!(
            mail.subject.starts_with("[Nhắc việc] Việc thử — hạn ")
                && mail.subject.ends_with(" — Thử"),
            "{}",
            mail.subject
        );
        assert!(mail.text.contains("Đọc thư này."), "{}", mail.text);
        assert!(mail.to[0].ends_with("@example.org>"), "{:?}", mail.to);
    }
    named.sort();
    named.dedup();
    assert_eq!(named.len(), 3, "one file per person: {named:?}");
}

#[test]
fn smtp_password_from_a_file_and_an_empty_file_counts_as_none() {
    let p = minimal(&[]);
    let server = SmtpServer::with_auth("nhacviec@example.org", "mật-khẩu-thử");
    let url = format!("smtp://nhacviec%40example.org@{}", server.addr());
    smtp_config(&p, &url, "");
    let file = p.path().join("smtp-password");
    let send_test = |file_content: &str, env_password: &str| {
        std::fs::write(&file, file_content).unwrap_or_else(|e| panic!("{e}"));
        Command::new(env!("CARGO_BIN_EXE_ngayle"))
            .current_dir(p.path())
            .args(["send-test", "hieutruong@example.org"])
            .env("NGAYLE_SMTP_PASSWORD_FILE", &file)
            .env("NGAYLE_SMTP_PASSWORD", env_password)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
            .status
            .code()
    };
    // The file (as written by an editor, with its newline) wins over the variable.
    assert_eq!(send_test("mật-khẩu-thử\n", "sai"), Some(0));
    assert_eq!(send_test("sai\n", "mật-khẩu-thử"), Some(1));
    // systemd's fallback credential is an empty file: the variable is used then.
    assert_eq!(send_test("", "mật-khẩu-thử"), Some(0));
    assert_eq!(send_test("\n", "mật-khẩu-thử"), Some(0));
    assert_eq!(server.settled(WAIT).len(), 3);
}
