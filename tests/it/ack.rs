//! "Đã xong" (issue 17, item 1 and the first half of item 2): the link of every task in a
//! reminder email, its page on the real service, what a POST records, what it refuses, and
//! the reminders a recorded answer stops — in another process (`send-due`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use ngayle::ack::{AckKey, token};
use ngayle::store::FeedKeys;

use crate::support::serve::Serve;
use crate::support::smtp::SmtpServer;
use crate::support::{Project, minimal, ngayle_env};

const WAIT: Duration = Duration::from_secs(60);
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const ENV: [(&str, &str); 1] = [("NGAYLE_FEED_SECRET", SECRET)];

fn today() -> NaiveDate {
    ngayle::vietnam::today(Utc::now())
}

/// An and Cường (csvc) hang the flag (`done_when` any) and each sends a report (`all`), for
/// an event in two days; each task reminds two days and one day before, at 00:00.
fn project(smtp: &str) -> Project {
    let day = (today() + chrono::Duration::days(2)).format("%-d/%-m");
    let config = format!(
        "{}http:\n  public_url: https://lich.truong.edu.vn\nmail:\n  from: \"Trường <nhacviec@example.org>\"\n  smtp: {smtp}\nreminders:\n  workdays: [mon, tue, wed, thu, fri, sat, sun]\n",
        crate::support::CONFIG
    );
    let staff = "groups:\n  - id: csvc\n    name: Cơ sở vật chất\npeople:\n  - id: an\n    name: Nguyễn Văn An\n    email: an@example.org\n    groups: [csvc]\n  - id: cuong\n    name: Lê Văn Cường\n    email: cuong@example.org\n    groups: [csvc]\n";
    let tasks = "tasks:\n  - id: treo-co\n    title: Treo cờ\n    do: Treo cờ Tổ quốc ở cổng.\n    remind: [2d, 1d]\n    at: \"00:00\"\n    who: [csvc]\n  - id: bao-cao\n    title: Báo cáo\n    do: Gửi báo cáo kết quả.\n    remind: [2d, 1d]\n    at: \"00:00\"\n    who: [csvc]\n    done_when: all\n";
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

fn send_due(p: &Project, now: &str) -> String {
    let r = ngayle_env(p.path(), &["send-due", "--now", now], &ENV);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    r.stdout
}

/// The path of the "Đã xong" link of `task` in a plain-text email.
fn link_of(text: &str, task: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let url = lines
        .windows(2)
        .filter(|w| w[0].trim_end().ends_with("\"Đã xong\":"))
        .map(|w| w[1].trim())
        .find(|u| u.contains(&format!(".{task}.")))
        .unwrap_or_else(|| panic!("no link for {task}:\n{text}"));
    url.strip_prefix("https://lich.truong.edu.vn")
        .unwrap_or_else(|| panic!("{url}"))
        .to_string()
}

#[test]
fn done_in_one_click_stops_the_next_reminders_and_bad_links_change_nothing() {
    let server = SmtpServer::start();
    let p = project(&server.url());
    let day = today() + chrono::Duration::days(2);
    let tomorrow = ngayle::vietnam::ZONE
        .from_local_datetime(
            &(today() + chrono::Duration::days(1))
                .and_hms_opt(0, 5, 0)
                .unwrap_or_default(),
        )
        .single()
        .unwrap_or_else(|| panic!("no instant"))
        .with_timezone(&Utc);
    let r = ngayle_env(
        p.path(),
        &[
            "send-due",
            "--now",
            &(Utc::now() - chrono::Duration::days(1)).to_rfc3339(),
        ],
        &ENV,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    send_due(&p, &Utc::now().to_rfc3339());
    let first = server.settled(WAIT);
    assert_eq!(first.len(), 2, "one email each");
    let an = first
        .iter()
        .find(|m| m.to[0] == "an@example.org")
        .map(|m| m.parsed())
        .unwrap_or_else(|| panic!("no email to An"));
    let flag = link_of(&an.text, "treo-co");
    let report = link_of(&an.text, "bao-cao");
    assert!(
        flag.starts_with(&format!(
            "/xong/ngay-thu.{}.treo-co.an.",
            day.format("%Y%m%d")
        )),
        "{flag}"
    );
    assert!(
        an.text.lines().collect::<Vec<_>>().windows(2).any(|w| {
            w[0].trim() == "Chưa làm được:"
                && w[1].trim() == format!("https://lich.truong.edu.vn{flag}?ket_qua=chua")
        }),
        "{}",
        an.text
    );
    assert!(
        an.html.contains(&format!(
            "href=\"https:&#x2f;&#x2f;lich.truong.edu.vn{}\"",
            flag.replace('/', "&#x2f;")
        )),
        "{}",
        an.html
    );

    let serve = Serve::start_env(&p, &["--no-watch"], &ENV);
    // Opening the page (twice, as a mail scanner would) shows the task and records nothing.
    for _ in 0..2 {
        let (code, page) = serve.get(&flag);
        assert_eq!(code, 200, "{page}");
        assert!(page.contains("<h1>Treo cờ</h1>"), "{page}");
        assert!(page.contains("Nguyễn Văn An"));
        assert!(page.contains("<form method=\"post\">"));
        assert!(!page.contains("Đã báo"), "nothing recorded by a GET");
    }
    let (code, page) = serve.get(&format!("{flag}?ket_qua=chua"));
    assert_eq!(code, 200);
    assert!(page.contains("value=\"chua\" checked"), "{page}");

    // Refused, each with its Vietnamese page, nothing recorded: a changed tag, another
    // person's name put in, a link past its last day (signed with the right secret), a
    // reason missing from "Chưa làm được".
    let mut forged = flag.clone();
    let last = forged.pop().unwrap_or('a');
    forged.push(if last == 'a' { 'b' } else { 'a' });
    let other = flag.replacen(".an.", ".cuong.", 1);
    let keys = FeedKeys::new(SECRET.as_bytes(), BTreeMap::new());
    let key = AckKey {
        event_id: "ngay-thu".into(),
        date: day,
        task_id: "treo-co".into(),
        person_id: "an".into(),
    };
    let expired = format!(
        "/xong/{}",
        token(&keys, &key, today() - chrono::Duration::days(1))
    );
    let body = "ket_qua=xong&ghi_chu=&lien_ket=";
    for (path, code, says) in [
        (&forged, 404, "Liên kết không đúng"),
        (&other, 404, "Liên kết không đúng"),
        (&expired, 410, "Liên kết đã hết hạn"),
    ] {
        let (got, page) = serve.post_form(path, body);
        assert_eq!(got, code, "{path}: {page}");
        assert!(page.contains(says), "{page}");
        assert!(page.contains("Không có gì được ghi lại"));
    }
    let (code, page) = serve.post_form(&flag, "ket_qua=chua&ghi_chu=&lien_ket=");
    assert_eq!(code, 422, "{page}");
    assert!(page.contains("Hãy ghi lý do chưa làm được."), "{page}");
    let (code, page) = serve.post_form(&flag, "ket_qua=xong&ket_qua=chua");
    assert_eq!(code, 400, "a form no page sends: {page}");
    assert!(page.contains("Yêu cầu không đúng"), "{page}");
    let (code, page) = serve.post_form(
        &flag,
        "ket_qua=xong&ghi_chu=&lien_ket=javascript%3Aalert(1)",
    );
    assert_eq!(code, 422, "{page}");
    let (_, page) = serve.get(&flag);
    assert!(
        !page.contains("Đã báo"),
        "the refused answers left nothing:\n{page}"
    );

    // Done, with a note and the post's link; the same answer again changes nothing.
    let done = "ket_qua=xong&ghi_chu=%C4%90%C3%A3+treo+c%E1%BB%9D+%3Cb%3E&lien_ket=https%3A%2F%2Fexample.org%2Fbai";
    let (code, page) = serve.post_form(&flag, done);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Đã ghi: việc đã xong"), "{page}");
    assert!(page.contains("Các lời nhắc còn lại của việc này sẽ không gửi nữa"));
    assert!(
        page.contains("Đã treo cờ &lt;b&gt;"),
        "the note, escaped:\n{page}"
    );
    let (code, page) = serve.post_form(&flag, done);
    assert_eq!(code, 200);
    assert!(page.contains("đã được ghi từ trước"), "{page}");
    let (code, page) = serve.post_form(&report, "ket_qua=xong&ghi_chu=&lien_ket=");
    assert_eq!(code, 200, "{page}");
    let (_, page) = serve.get(&flag);
    assert!(page.contains("Nguyễn Văn An: đã xong"), "{page}");
    assert!(
        page.contains("href=\"https:&#x2f;&#x2f;example.org&#x2f;bai\""),
        "{page}"
    );
    assert!(
        !serve.log().contains(&flag[6..]),
        "the token is not logged:\n{}",
        serve.log()
    );
    drop(serve);

    // The principal's report of that day, from another process: each task for each person.
    let day_text = day.format("%Y-%m-%d").to_string();
    let r = ngayle_env(
        p.path(),
        &[
            "report", "--from", &day_text, "--to", &day_text, "--format", "csv",
        ],
        &ENV,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let csv_text = r.stdout.trim_start_matches('\u{feff}');
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(csv_text.as_bytes())
        .records()
        .map(|rec| {
            rec.unwrap_or_else(|e| panic!("{e}"))
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    let row = |task: &str, person: &str| {
        rows.iter()
            .find(|r| r[3] == task && r[5] == person)
            .unwrap_or_else(|| panic!("no {task}/{person} in {rows:?}"))
            .clone()
    };
    assert_eq!(rows.len(), 4, "{csv_text}");
    let flag_an = row("Treo cờ", "Nguyễn Văn An");
    assert_eq!(flag_an[6], "Đã xong");
    assert_eq!(flag_an[8], "Đã treo cờ <b>");
    assert_eq!(flag_an[9], "https://example.org/bai");
    assert_eq!(
        row("Treo cờ", "Lê Văn Cường")[6],
        "Đã xong (do Nguyễn Văn An báo)"
    );
    assert_eq!(row("Báo cáo", "Nguyễn Văn An")[6], "Đã xong");
    assert_eq!(row("Báo cáo", "Lê Văn Cường")[6], "Chưa đến hạn");
    assert!(
        csv_text.starts_with(
            "Ngày,Thứ,Ngày lễ,Việc,Hạn,Người thực hiện,Kết quả,Lúc báo,Ghi chú,Liên kết"
        ),
        "{csv_text}"
    );
    // The same as an Excel workbook, read back with calamine.
    let xlsx = p.path().join("bao-cao.xlsx");
    let r = ngayle_env(
        p.path(),
        &[
            "report",
            "--from",
            &day_text,
            "--to",
            &day_text,
            "--format",
            "xlsx",
            "-o",
            &xlsx.display().to_string(),
        ],
        &ENV,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    use calamine::Reader as _;
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook(&xlsx).unwrap_or_else(|e| panic!("{e}"));
    let sheet = book
        .worksheet_range("Báo cáo")
        .unwrap_or_else(|e| panic!("{e}"));
    let cells: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert!(
        cells[0][0].contains("Báo cáo kết quả thực hiện công tác tuyên truyền"),
        "{cells:?}"
    );
    assert_eq!(cells[2][..7], rows_header()[..7]);
    let data: Vec<&Vec<String>> = cells.iter().skip(3).collect();
    assert_eq!(data.len(), 4, "{cells:?}");
    assert!(
        data.iter().any(|r| r[3] == "Treo cờ"
            && r[5] == "Lê Văn Cường"
            && r[6] == "Đã xong (do Nguyễn Văn An báo)"),
        "{cells:?}"
    );
    let r = ngayle_env(
        p.path(),
        &[
            "report", "--from", &day_text, "--to", &day_text, "--format", "xlsx",
        ],
        &ENV,
    );
    assert_eq!(r.code, Some(2), "xlsx needs a file: {}", r.stderr);

    // The next day, in another process: the flag is done for both (any), the report only
    // for An (all): one email, to Cường, about the report only.
    let out = send_due(&p, &tomorrow.to_rfc3339());
    assert!(
        out.contains("3 lời nhắc không gửi vì việc đã được báo xong"),
        "{out}"
    );
    let all = server.settled(WAIT);
    assert_eq!(all.len(), 3, "{out}");
    let second = all[2].parsed();
    assert_eq!(all[2].to, ["cuong@example.org"]);
    assert!(second.text.contains("Báo cáo"), "{}", second.text);
    assert!(!second.text.contains("Treo cờ"), "{}", second.text);
}

/// Tasks of yesterday, not done by their deadline (07:30) plus `escalate_after` (2h): Ban giám
/// hiệu is told once, in one email, of each task and of who answered what — also after the
/// service sending it is killed with SIGKILL and started again.
#[test]
fn a_task_not_done_by_its_deadline_is_escalated_once_across_a_kill_9() {
    let server = SmtpServer::start();
    let day = today() - chrono::Duration::days(1);
    let config = |after: &str| {
        format!(
            "{}http:\n  public_url: https://lich.truong.edu.vn\nmail:\n  from: \"Trường <nhacviec@example.org>\"\n  smtp: {}\nreminders:\n  workdays: [mon, tue, wed, thu, fri, sat, sun]\n  escalate_after: {after}\n",
            crate::support::CONFIG,
            server.url()
        )
    };
    let staff = "groups:\n  - id: ban-giam-hieu\n    name: Ban giám hiệu\n  - id: csvc\n    name: Cơ sở vật chất\npeople:\n  - id: hieu-truong\n    name: Dương Thị Tâm\n    email: hieutruong@example.org\n    groups: [ban-giam-hieu]\n  - id: an\n    name: Nguyễn Văn An\n    email: an@example.org\n    groups: [csvc]\n  - id: cuong\n    name: Lê Văn Cường\n    email: cuong@example.org\n    groups: [csvc]\n";
    let tasks = "tasks:\n  - id: treo-co\n    title: Treo cờ\n    do: Treo cờ Tổ quốc ở cổng.\n    remind: 1d\n    who: [csvc]\n  - id: bao-cao\n    title: Báo cáo\n    do: Gửi báo cáo kết quả.\n    remind: 1d\n    who: [csvc]\n    done_when: all\n  - id: don-dep\n    title: Dọn dẹp\n    do: Dọn sân.\n    remind: 1d\n    who: [csvc]\n    escalate_to: []\n";
    let layer = format!(
        "events:\n  - id: ngay-thu\n    name: Ngày thử\n    date: {}\n    tasks: [treo-co, bao-cao, don-dep]\n",
        day.format("%-d/%-m/%Y")
    );
    let p = minimal(&[
        ("config/ngayle.yaml", &config("30d")),
        ("config/staff.yaml", staff),
        ("calendars/tasks.yaml", tasks),
        ("calendars/national.yaml", &layer),
    ]);
    send_due(&p, &(Utc::now() - chrono::Duration::days(3)).to_rfc3339());
    // While the escalations are not due yet (30 days after the deadline), Cường answers
    // "Đã xong" for his report and An "Chưa làm được" for his.
    let serve = Serve::start_env(&p, &["--no-watch"], &ENV);
    let keys = FeedKeys::new(SECRET.as_bytes(), BTreeMap::new());
    let link = |task: &str, person: &str| {
        let key = AckKey {
            event_id: "ngay-thu".into(),
            date: day,
            task_id: task.into(),
            person_id: person.into(),
        };
        format!(
            "/xong/{}",
            token(&keys, &key, today() + chrono::Duration::days(30))
        )
    };
    let (code, page) =
        serve.post_form(&link("bao-cao", "cuong"), "ket_qua=xong&ghi_chu=&lien_ket=");
    assert_eq!(code, 200, "{page}");
    let (code, page) = serve.post_form(
        &link("bao-cao", "an"),
        "ket_qua=chua&ghi_chu=Ch%C6%B0a+c%C3%B3+s%E1%BB%91+li%E1%BB%87u&lien_ket=",
    );
    assert_eq!(code, 200, "{page}");
    serve.terminate();
    assert!(server.received().is_empty());

    // Then they are (2 hours after).
    p.write("config/ngayle.yaml", &config("2h"));
    let serve = Serve::start_env(&p, &["--no-watch"], &ENV);
    let got = server.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{}", serve.log());
    serve.signal("KILL");
    drop(serve);
    let again = Serve::start_env(&p, &["--no-watch"], &ENV);
    again
        .until(WAIT, || {
            again.health()["last_tick"].is_string().then_some(())
        })
        .unwrap_or_else(|| panic!("no tick:\n{}", again.log()));
    drop(again);
    send_due(&p, &Utc::now().to_rfc3339());
    let all = server.settled(WAIT);
    // The reminders (due the day before yesterday, their deadline passed) are not sent late;
    // one escalation to Ban giám hiệu, once; none for the task that says `escalate_to: []`.
    assert_eq!(
        all.len(),
        1,
        "{:?}",
        all.iter().map(|m| &m.to).collect::<Vec<_>>()
    );
    assert_eq!(all[0].to, ["hieutruong@example.org"]);
    let mail = all[0].parsed();
    assert!(mail.subject.starts_with("[Chưa xong] "), "{}", mail.subject);
    let text = mail.text.replace("\r\n", "\n");
    assert!(text.contains("Kính gửi đồng chí Dương Thị Tâm"), "{text}");
    let flag = text.split("Treo cờ\n").nth(1).unwrap_or_default();
    assert!(
        flag.contains("Chưa báo: Nguyễn Văn An, Lê Văn Cường"),
        "{text}"
    );
    let report = text.split("Báo cáo\n").nth(1).unwrap_or_default();
    assert!(
        report.contains("Chưa làm được: Nguyễn Văn An — Chưa có số liệu"),
        "{text}"
    );
    assert!(report.contains("Đã xong: Lê Văn Cường ("), "{text}");
    assert!(!text.contains("Dọn dẹp"), "{text}");
}

/// A group's `lead` or a task's `escalate_to` naming nobody, and a `done_when` that is not a
/// choice, are errors at their place, with what to write.
#[test]
fn mistakes_in_who_is_told_are_located() {
    let staff = "groups:\n  - id: csvc\n    name: Cơ sở vật chất\n    lead: ann\n    digest: weekly 07:00\npeople:\n  - id: an\n    name: An\n    email: an@example.org\n    groups: [csvc]\n";
    let tasks = "tasks:\n  - id: treo-co\n    title: Treo cờ\n    do: Treo cờ.\n    before: 1d\n    who: [csvc]\n    done_when: moi-nguoi\n    escalate_to: [hieu-truong]\n";
    let p = minimal(&[
        ("config/staff.yaml", staff),
        ("calendars/tasks.yaml", tasks),
    ]);
    let r = p.run(&["check"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    for (at, what) in [
        (
            "config/staff.yaml:4:11: lỗi: ",
            "không có người nào mã `ann` để làm trưởng nhóm",
        ),
        (
            "config/staff.yaml:5:13: lỗi: ",
            "`digest: weekly 07:00` không hợp lệ",
        ),
        (
            "calendars/tasks.yaml:7:16: lỗi: ",
            "`done_when: moi-nguoi` không hợp lệ",
        ),
        (
            "calendars/tasks.yaml:8:19: lỗi: ",
            "không có nhóm hay người nào mã `hieu-truong`",
        ),
    ] {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.starts_with(at) && l.contains(what)),
            "{at}{what}\n{}",
            r.stderr
        );
    }
    assert!(r.stderr.contains("có phải là `an`?"), "{}", r.stderr);
}

fn rows_header() -> Vec<String> {
    ngayle::report::HEADER
        .iter()
        .map(|h| h.to_string())
        .collect()
}

/// Ban giám hiệu with `digest: daily 07:00`: two tasks of one day left undone (deadlines 07:30
/// and 12:00) reach the principal in one email, at 07:00 the next day.
#[test]
fn a_daily_digest_gathers_the_escalations_of_a_day_into_one_email() {
    let server = SmtpServer::start();
    let day = today() - chrono::Duration::days(2);
    let config = format!(
        "{}mail:\n  from: \"Trường <nhacviec@example.org>\"\n  smtp: {}\nreminders:\n  workdays: [mon, tue, wed, thu, fri, sat, sun]\n",
        crate::support::CONFIG,
        server.url()
    );
    let staff = "groups:\n  - id: ban-giam-hieu\n    name: Ban giám hiệu\n    digest: daily 07:00\n  - id: csvc\n    name: Cơ sở vật chất\npeople:\n  - id: hieu-truong\n    name: Dương Thị Tâm\n    email: hieutruong@example.org\n    groups: [ban-giam-hieu]\n  - id: an\n    name: Nguyễn Văn An\n    email: an@example.org\n    groups: [csvc]\n";
    let tasks = "tasks:\n  - id: treo-co\n    title: Treo cờ\n    do: Treo cờ.\n    remind: 1d\n    who: [csvc]\n  - id: pano\n    title: Treo pano\n    do: Treo pano.\n    due: \"12:00\"\n    remind: 1d\n    who: [csvc]\n";
    let layer = format!(
        "events:\n  - id: ngay-thu\n    name: Ngày thử\n    date: {}\n    tasks: [treo-co, pano]\n",
        day.format("%-d/%-m/%Y")
    );
    let p = minimal(&[
        ("config/ngayle.yaml", &config),
        ("config/staff.yaml", staff),
        ("calendars/tasks.yaml", tasks),
        ("calendars/national.yaml", &layer),
    ]);
    send_due(&p, &(Utc::now() - chrono::Duration::days(3)).to_rfc3339());
    let out = send_due(&p, &Utc::now().to_rfc3339());
    let got = server.settled(WAIT);
    assert_eq!(got.len(), 1, "{out}");
    assert_eq!(got[0].to, ["hieutruong@example.org"]);
    let mail = got[0].parsed();
    assert!(
        mail.subject
            .starts_with("[Chưa xong] Treo cờ và 1 việc khác"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains("Treo pano"), "{}", mail.text);
    // Sent at 07:00 the day after (the late notice names the time it was due).
    let r = p.run(&[
        "upcoming",
        "--from",
        &(day + chrono::Duration::days(1))
            .format("%Y-%m-%d")
            .to_string(),
        "--days",
        "1",
    ]);
    assert!(
        r.stdout
            .lines()
            .filter(|l| l.contains("07:00") && l.contains("Dương Thị Tâm"))
            .count()
            == 2,
        "{}",
        r.stdout
    );
}
