//! Deadlines and repeated reminders (issue 15): a task's `due` is what its emails call "Hạn",
//! each lead of its `remind` is one email, sent once across processes, and a reminder that
//! can only go out after its deadline is not sent.

use std::time::Duration;

use crate::support::smtp::SmtpServer;
use crate::support::{CONFIG, Project, minimal};

const WAIT: Duration = Duration::from_secs(60);

/// 22/12/2026 (a Tuesday), a banner due the evening before, reminded a week and a day ahead.
const LAYER: &str = "events:\n  - id: thanh-lap-qd\n    name: Ngày thành lập Quân đội nhân dân Việt Nam\n    date: 22/12\n    since: 1944\n    tasks: [pano]\n";
const TASKS: &str = "tasks:\n  - id: pano\n    title: Treo pano, băng rôn\n    do: Treo pano ở cổng trường.\n    due: -1d 17:00\n    remind: [7d, 1d]\n    who: [csvc]\n";

fn project(server: &SmtpServer) -> Project {
    let p = minimal(&[
        ("calendars/national.yaml", LAYER),
        ("calendars/tasks.yaml", TASKS),
    ]);
    p.write(
        "config/ngayle.yaml",
        &format!(
            "{CONFIG}mail:\n  from: \"Trường <nhacviec@example.org>\"\n  smtp: {}\n",
            server.url()
        ),
    );
    p
}

#[test]
fn two_leads_are_two_emails_each_once_across_processes_with_the_real_deadline() {
    let server = SmtpServer::start();
    let p = project(&server);
    // The 7-day reminder: 7 days before the deadline's day (Monday 21/12) is Monday 14/12,
    // at the unit's send_at.
    for _ in 0..2 {
        let r = p.run(&["send-due", "--now", "2026-12-14T07:30:00+07:00"]);
        assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    }
    let first = server.settled(WAIT);
    assert_eq!(first.len(), 1, "the first reminder, once");
    let mail = first[0].parsed();
    assert!(
        mail.text.contains("Hạn: 17:00 Thứ Hai 21/12/2026"),
        "{}",
        mail.text
    );
    assert!(
        mail.text.contains("Nhắc lúc: 07:30 Thứ Hai 14/12/2026"),
        "{}",
        mail.text
    );
    assert!(mail.subject.contains("hạn 17:00 21/12"), "{}", mail.subject);

    // Nothing between the two.
    let r = p.run(&["send-due", "--now", "2026-12-17T07:30:00+07:00"]);
    assert!(r.stdout.contains("Đã gửi 0 thư"), "{}", r.stdout);
    // The 1-day reminder: the day before Monday 21/12 is a Sunday, so it goes on the last
    // workday before it, Friday 18/12, at 07:30.
    let r = p.run(&["send-due", "--now", "2026-12-18T07:30:00+07:00"]);
    assert!(r.stdout.contains("Đã gửi 1 thư"), "{}", r.stdout);
    let both = server.settled(WAIT);
    assert_eq!(both.len(), 2);
    let second = both[1].parsed();
    assert!(
        second.text.contains("Nhắc lúc: 07:30 Thứ Sáu 18/12/2026"),
        "{}",
        second.text
    );
    assert!(
        second.text.contains("Hạn: 17:00 Thứ Hai 21/12/2026"),
        "{}",
        second.text
    );
    // Later runs, in new processes, send neither again.
    for now in ["2026-12-18T07:31:00+07:00", "2026-12-21T08:00:00+07:00"] {
        let r = p.run(&["send-due", "--now", now]);
        assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("Đã gửi 0 thư"), "{}", r.stdout);
    }
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert_eq!(server.received().len(), 2, "each reminder once");
}

#[test]
fn a_reminder_that_can_only_go_after_its_deadline_is_skipped_with_why() {
    let server = SmtpServer::start();
    let p = project(&server);
    let config = p.read("config/ngayle.yaml");
    p.write(
        "config/ngayle.yaml",
        &format!("{config}reminders:\n  catch_up: 5d\n"),
    );
    p.start_store("2026-12-10T07:30:00+07:00");
    // The service was down from before the 1-day reminder (Friday 18/12) until after the
    // deadline (Monday 21/12 17:00): within the 5-day catch-up, but too late to be of use.
    // (The 7-day one is past the catch-up too.)
    let r = p.run(&["send-due", "--now", "2026-12-21T18:00:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Đã gửi 0 thư"), "{}", r.stdout);
    assert!(r.stdout.contains("bỏ qua 2"), "{}", r.stdout);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("thanh-lap-qd/2026-12-22/pano/an/1d"))
        .unwrap_or_default();
    assert!(
        line.contains("đã quá hạn công việc khi có thể gửi"),
        "{}",
        r.stderr
    );
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert!(server.received().is_empty());
}

#[test]
fn a_late_email_says_the_service_was_stopped_when_nothing_tried_it() {
    let server = SmtpServer::start();
    let p = project(&server);
    p.start_store("2026-12-10T07:30:00+07:00");
    // Two hours late, deadline days away: sent, and the reason is the service, not the mail.
    let r = p.run(&["send-due", "--now", "2026-12-14T09:30:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let got = server.settled(WAIT);
    assert_eq!(got.len(), 1);
    let mail = got[0].parsed();
    assert!(mail.subject.contains("gửi muộn"), "{}", mail.subject);
    let text = mail.text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("dịch vụ nhắc việc không chạy khi đến giờ nhắc"),
        "{}",
        mail.text
    );
    assert!(!mail.text.contains("máy chủ gửi thư"), "{}", mail.text);
}

#[test]
fn a_first_start_logs_one_line_for_what_was_due_before_it() {
    let server = SmtpServer::start();
    let p = project(&server);
    // A new store on 21/12 at 08:00: both reminders (14/12, 18/12) were due before it.
    let r = p.run(&["send-due", "--now", "2026-12-21T08:00:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Đã gửi 0 thư"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("2 lời nhắc đến hạn trước khi ngayle bắt đầu chạy"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stderr.contains("thanh-lap-qd/"),
        "no line per reminder: {}",
        r.stderr
    );
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.contains("trước khi ngayle bắt đầu chạy"))
            .count(),
        1,
        "{}",
        r.stderr
    );
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert!(server.received().is_empty());
}

/// An admin adds a longer lead to a task whose one reminder was already sent: the sent one is
/// not sent again (each lead keeps its own key, whatever the list around it).
#[test]
fn adding_a_longer_lead_after_a_reminder_went_out_does_not_send_it_again() {
    let server = SmtpServer::start();
    let p = project(&server);
    p.edit("calendars/tasks.yaml", "remind: [7d, 1d]", "remind: [1d]");
    p.start_store("2026-12-10T07:30:00+07:00");
    let r = p.run(&["send-due", "--now", "2026-12-18T07:30:00+07:00"]);
    assert!(
        r.stdout.contains("Đã gửi 1 thư"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    p.edit("calendars/tasks.yaml", "remind: [1d]", "remind: [7d, 1d]");
    let r = p.run(&["send-due", "--now", "2026-12-18T08:00:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("Đã gửi 0 thư"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(server.wait_idle(WAIT), "a connection stayed open");
    assert_eq!(server.received().len(), 1, "the 1-day reminder once");
}

/// An admin drops the longer lead after its reminder went out: the shorter one still goes
/// out when it falls due (it was never sent).
#[test]
fn dropping_the_longer_lead_after_it_went_out_still_sends_the_shorter_one() {
    let server = SmtpServer::start();
    let p = project(&server);
    p.start_store("2026-12-10T07:30:00+07:00");
    let r = p.run(&["send-due", "--now", "2026-12-14T07:30:00+07:00"]);
    assert!(
        r.stdout.contains("Đã gửi 1 thư"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    p.edit("calendars/tasks.yaml", "remind: [7d, 1d]", "remind: [1d]");
    let r = p.run(&["send-due", "--now", "2026-12-18T07:30:00+07:00"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("Đã gửi 1 thư"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let got = server.settled(WAIT);
    assert_eq!(got.len(), 2, "the 7-day reminder, then the 1-day one");
    let text = got[1].parsed().text;
    assert!(
        text.contains("Nhắc lúc: 07:30 Thứ Sáu 18/12/2026"),
        "{text}"
    );
}
