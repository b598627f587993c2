//! The test SMTP server (`support::smtp`) driven by lettre (the client ngayle uses) and by raw
//! sockets: what the other tests rely on it for — envelopes, decoding, rejections, AUTH, stop and
//! restart on one port, many messages on one connection, clients that vanish.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, SmtpTransport, Tokio1Executor, Transport,
};

use crate::support::smtp::SmtpServer;

const SUBJECT: &str =
    "[Nhắc việc] Treo cờ Tổ quốc — Kỷ niệm 49 năm Ngày Giải phóng miền Nam (30/4/2024)";
const WAIT: Duration = Duration::from_secs(10);

fn client(server: &SmtpServer) -> SmtpTransport {
    SmtpTransport::builder_dangerous("127.0.0.1")
        .port(server.addr().port())
        .timeout(Some(Duration::from_secs(10)))
        .pool_config(PoolConfig::new().max_size(1))
        .build()
}

fn mailbox(s: &str) -> Mailbox {
    s.parse().unwrap_or_else(|e| panic!("mailbox {s}: {e}"))
}

fn simple(to: &str, subject: &str) -> Message {
    Message::builder()
        .from(mailbox("Trường MN Hoa Phượng <nhacviec@example.org>"))
        .to(mailbox(to))
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(String::from(
            "Kính gửi cô Tâm,\nNhớ treo cờ.\n.dòng bắt đầu bằng dấu chấm\n",
        ))
        .unwrap_or_else(|e| panic!("message: {e}"))
}

fn refused(addr: SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
    )
}

/// A raw client: sends `lines`, returns the server's replies read so far.
fn talk(stream: &mut TcpStream, line: &str) -> String {
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .unwrap_or_else(|e| panic!("write: {e}"));
    read_reply(stream)
}

fn read_reply(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut all = String::new();
    let mut buf = [0u8; 1];
    // Read until a line whose 4th byte is a space (the last line of a reply).
    let mut line = Vec::new();
    loop {
        match stream.read(&mut buf) {
            Ok(1) => {
                line.push(buf[0]);
                if buf[0] == b'\n' {
                    let l = String::from_utf8_lossy(&line).into_owned();
                    all.push_str(&l);
                    if l.as_bytes().get(3) != Some(&b'-') {
                        return all;
                    }
                    line.clear();
                }
            }
            _ => return all,
        }
    }
}

fn raw_connect(server: &SmtpServer) -> TcpStream {
    let mut s = TcpStream::connect(server.addr()).unwrap_or_else(|e| panic!("connect: {e}"));
    let greeting = read_reply(&mut s);
    assert!(greeting.starts_with("220 "), "{greeting}");
    s
}

#[test]
fn one_message_arrives_with_its_envelope_and_decoded_vietnamese_subject() {
    let server = SmtpServer::start();
    assert_eq!(
        server.url(),
        format!("smtp://127.0.0.1:{}", server.addr().port())
    );
    let msg = simple("Dương Thị Tâm <hieutruong@example.org>", SUBJECT);
    client(&server)
        .send(&msg)
        .unwrap_or_else(|e| panic!("send: {e}"));
    let got = server.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "nhacviec@example.org");
    assert_eq!(got[0].to, vec!["hieutruong@example.org".to_owned()]);
    let mail = got[0].parsed();
    assert_eq!(mail.subject, SUBJECT);
    assert_eq!(mail.from, "Trường MN Hoa Phượng <nhacviec@example.org>");
    assert_eq!(
        mail.to,
        vec!["Dương Thị Tâm <hieutruong@example.org>".to_owned()]
    );
    assert!(mail.text.contains("Nhớ treo cờ."), "{:?}", mail.text);
    // Dot-stuffed by the client, unstuffed by the server.
    assert!(mail.text.contains("\n.dòng bắt đầu"), "{:?}", mail.text);
    assert_eq!(mail.html, "");
    assert!(mail.date.is_some());
    // The raw Subject is encoded (RFC 2047), not 8-bit.
    let raw_subject = mail
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("subject"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(raw_subject.starts_with("=?utf-8?"), "{raw_subject}");
    assert!(raw_subject.is_ascii());
}

#[tokio::test]
async fn multipart_alternative_yields_both_parts_async_client() {
    let server = SmtpServer::start();
    let msg = Message::builder()
        .from(mailbox("Trường MN Hoa Phượng <nhacviec@example.org>"))
        .reply_to(mailbox("Văn thư Trường MN Hoa Phượng <vanthu@example.org>"))
        .to(mailbox("phuongntm@example.org"))
        .to(mailbox("Nguyễn Thị Ngọc Anh <ngocanhnt@example.org>"))
        .message_id(Some("<k1.abc@ngayle.example.org>".to_owned()))
        .subject(SUBJECT)
        .multipart(MultiPart::alternative_plain_html(
            String::from("Treo cờ trước 07:00 ngày 29/4/2024."),
            String::from("<p>Treo cờ trước <b>07:00</b> ngày 29/4/2024 &lt;script&gt;</p>"),
        ))
        .unwrap_or_else(|e| panic!("message: {e}"));
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.addr().port())
        .build();
    transport
        .send(msg)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let got = server.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].to,
        vec![
            "phuongntm@example.org".to_owned(),
            "ngocanhnt@example.org".to_owned()
        ]
    );
    let mail = got[0].parsed();
    assert_eq!(mail.subject, SUBJECT);
    assert_eq!(mail.text, "Treo cờ trước 07:00 ngày 29/4/2024.");
    assert_eq!(
        mail.html,
        "<p>Treo cờ trước <b>07:00</b> ngày 29/4/2024 &lt;script&gt;</p>"
    );
    assert_eq!(
        mail.reply_to.as_deref(),
        Some("Văn thư Trường MN Hoa Phượng <vanthu@example.org>")
    );
    assert_eq!(
        mail.to,
        vec![
            "phuongntm@example.org".to_owned(),
            "Nguyễn Thị Ngọc Anh <ngocanhnt@example.org>".to_owned()
        ]
    );
    assert_eq!(
        mail.message_id.as_deref(),
        Some("k1.abc@ngayle.example.org")
    );
    let names: Vec<&str> = mail.headers.iter().map(|(n, _)| n.as_str()).collect();
    for h in [
        "From",
        "Reply-To",
        "To",
        "Subject",
        "Message-ID",
        "Date",
        "MIME-Version",
    ] {
        assert!(names.contains(&h), "{h} missing from {names:?}");
    }
}

#[test]
fn a_rejected_recipient_is_a_permanent_error_for_the_client() {
    let server = SmtpServer::start();
    server.reject("Bad@Example.org");
    let transport = client(&server);
    let err = transport
        .send(&simple("bad@example.org", "x"))
        .err()
        .unwrap_or_else(|| panic!("a rejected recipient was accepted"));
    assert!(err.is_permanent(), "{err}");
    assert_eq!(err.status().map(|c| c.to_string()).as_deref(), Some("550"));
    // The transport keeps working, the others still arrive.
    transport
        .send(&simple("good@example.org", "y"))
        .unwrap_or_else(|e| panic!("send: {e}"));
    let got = server.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, vec!["good@example.org".to_owned()]);
}

#[test]
fn stop_refuses_connections_and_start_on_the_same_port_serves_again() {
    let server = SmtpServer::start();
    let addr = server.addr();
    let transport = client(&server);
    transport
        .send(&simple("a@example.org", "before"))
        .unwrap_or_else(|e| panic!("send: {e}"));
    assert_eq!(server.wait_for(1, WAIT).len(), 1);
    // Also a client stuck in the middle of a session must not hold up stop().
    let mut stuck = raw_connect(&server);
    talk(&mut stuck, "EHLO stuck");
    let t = Instant::now();
    server.stop();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(
        refused(addr),
        "connections to a stopped server must be refused"
    );
    // The pooled connection is gone too: the client sees an error, not a hang.
    let err = transport
        .send(&simple("a@example.org", "while down"))
        .err()
        .unwrap_or_else(|| panic!("sent to a stopped server"));
    assert!(!err.is_permanent(), "down must not look permanent: {err}");

    let again = SmtpServer::start_on(addr.port());
    assert_eq!(again.addr(), addr);
    transport
        .send(&simple("a@example.org", "after"))
        .unwrap_or_else(|e| panic!("send after restart: {e}"));
    let got = again.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].parsed().subject, "after");
    again.stop();
    assert!(refused(addr));
}

#[test]
fn stop_keeping_port_refuses_connections_and_start_again_serves_on_the_same_port() {
    let server = SmtpServer::start();
    let addr = server.addr();
    let down = server.stop_keeping_port();
    assert_eq!(down.addr(), addr);
    assert_eq!(down.url(), format!("smtp://{addr}"));
    assert!(refused(addr), "connections to a held port must be refused");
    let again = down.start_again();
    assert_eq!(again.addr(), addr);
    client(&again)
        .send(&simple("a@example.org", "after"))
        .unwrap_or_else(|e| panic!("send after start_again: {e}"));
    assert_eq!(again.wait_for(1, WAIT).len(), 1);
}

#[tokio::test]
async fn five_hundred_messages_over_one_connection_all_arrive() {
    // lettre's own connection type on one TCP connection with TCP_NODELAY (lettre 0.11.23
    // never sets it: see `the_pooled_transport_reuses_one_connection`).
    use lettre::transport::smtp::client::AsyncSmtpConnection;
    use lettre::transport::smtp::extension::ClientId;
    let server = SmtpServer::start();
    let tcp = tokio::net::TcpStream::connect(server.addr())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tcp.set_nodelay(true).unwrap_or_else(|e| panic!("{e}"));
    let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &ClientId::default())
        .await
        .unwrap_or_else(|e| panic!("ehlo: {e}"));
    let t = Instant::now();
    for i in 0..500 {
        let msg = simple(&format!("p{i:04}@example.org"), &format!("{SUBJECT} #{i}"));
        conn.send(msg.envelope(), &msg.formatted())
            .await
            .unwrap_or_else(|e| panic!("send {i}: {e}"));
    }
    let elapsed = t.elapsed();
    let _ = conn.quit().await;
    let got = server.wait_for(500, WAIT);
    assert_eq!(got.len(), 500);
    assert_eq!(server.connections(), 1);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.to, vec![format!("p{i:04}@example.org")]);
    }
    assert_eq!(got[499].parsed().subject, format!("{SUBJECT} #499"));
    // No 40 ms stall per message (that would be 20 s).
    assert!(
        elapsed < Duration::from_secs(10),
        "500 messages took {elapsed:?}"
    );
}

#[test]
fn the_pooled_transport_reuses_one_connection() {
    // lettre 0.11.23 leaves Nagle on and writes the body and the final "\r\n.\r\n" in
    // two writes: every message then waits for the server's delayed ACK (~40 ms on
    // Linux). Fifty messages are enough to show the reuse without a long test.
    let server = SmtpServer::start();
    let transport = client(&server);
    for i in 0..50 {
        transport
            .send(&simple(&format!("p{i:04}@example.org"), &format!("#{i}")))
            .unwrap_or_else(|e| panic!("send {i}: {e}"));
    }
    let got = server.wait_for(50, WAIT);
    assert_eq!(got.len(), 50);
    assert_eq!(
        server.connections(),
        1,
        "the pooled client should reuse one connection"
    );
    assert_eq!(got[49].parsed().subject, "#49");
}

#[test]
fn several_servers_run_side_by_side() {
    let servers: Vec<SmtpServer> = (0..4).map(|_| SmtpServer::start()).collect();
    let ports: HashSet<u16> = servers.iter().map(|s| s.addr().port()).collect();
    assert_eq!(ports.len(), 4);
    std::thread::scope(|scope| {
        for (i, server) in servers.iter().enumerate() {
            scope.spawn(move || {
                let transport = client(server);
                for j in 0..20 {
                    transport
                        .send(&simple(&format!("s{i}m{j}@example.org"), "x"))
                        .unwrap_or_else(|e| panic!("send: {e}"));
                }
            });
        }
    });
    for (i, server) in servers.iter().enumerate() {
        let got = server.received();
        assert_eq!(got.len(), 20);
        assert!(got.iter().all(|r| r.to[0].starts_with(&format!("s{i}m"))));
    }
}

#[test]
fn a_client_gone_in_the_middle_of_data_leaves_nothing_and_wedges_nothing() {
    let server = SmtpServer::start();
    // Like a kill -9 of the sender: the socket closes in the middle of DATA.
    let mut s = raw_connect(&server);
    assert!(talk(&mut s, "EHLO killed").starts_with("250"));
    assert!(talk(&mut s, "MAIL FROM:<nhacviec@example.org>").starts_with("250"));
    assert!(talk(&mut s, "RCPT TO:<a@example.org>").starts_with("250"));
    assert!(talk(&mut s, "DATA").starts_with("354"));
    s.write_all(b"Subject: half\r\n\r\nhalf a mes")
        .unwrap_or_else(|e| panic!("{e}"));
    drop(s);
    // A client that connects and then says nothing does not hold anyone up either.
    let _silent = raw_connect(&server);
    client(&server)
        .send(&simple("b@example.org", "whole"))
        .unwrap_or_else(|e| panic!("send: {e}"));
    let got = server.wait_for(1, WAIT);
    // The killed session was the first connection: once its thread has ended, its half message
    // can no longer be recorded late.
    assert!(
        server.wait_closed(1, WAIT),
        "the killed session's connection is still open"
    );
    assert_eq!(server.received().len(), 1);
    assert_eq!(got[0].parsed().subject, "whole");
    // What may still be open: the silent client and lettre's pooled connection.
    assert!(server.open_connections() <= 2);
}

/// What every "nothing else arrived" check relies on: a message whose data was complete when
/// its client vanished (a kill after the final dot) is recorded when the server gets to it —
/// here a second later — and `wait_idle` returns only after that.
#[test]
fn wait_idle_returns_after_a_message_answered_once_its_client_had_gone() {
    let server = SmtpServer::start();
    server.set_delay(Duration::from_secs(1));
    let mut s = raw_connect(&server);
    assert!(talk(&mut s, "EHLO gone").starts_with("250"));
    assert!(talk(&mut s, "MAIL FROM:<nhacviec@example.org>").starts_with("250"));
    assert!(talk(&mut s, "RCPT TO:<a@example.org>").starts_with("250"));
    assert!(talk(&mut s, "DATA").starts_with("354"));
    s.write_all(b"Subject: late\r\n\r\nlate\r\n.\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    drop(s);
    assert!(server.wait_idle(WAIT), "the connection stayed open");
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].parsed().subject, "late");
    assert_eq!(server.open_connections(), 0);
}

#[test]
fn raw_protocol_replies() {
    let server = SmtpServer::start();
    let mut s = raw_connect(&server);
    assert!(talk(&mut s, "MAIL FROM:<a@example.org>").starts_with("503"));
    let ehlo = talk(&mut s, "EHLO me");
    assert!(
        ehlo.contains("250-8BITMIME") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    assert!(talk(&mut s, "DATA").starts_with("503"));
    assert!(talk(&mut s, "RCPT TO:<x@example.org>").starts_with("503"));
    assert!(talk(&mut s, "MAIL FROM:<>").starts_with("250"));
    assert!(talk(&mut s, "DATA").starts_with("554"));
    assert!(talk(&mut s, "RSET").starts_with("250"));
    assert!(talk(&mut s, "NOOP").starts_with("250"));
    assert!(talk(&mut s, "AUTH PLAIN AGEAYg==").starts_with("502"));
    assert!(talk(&mut s, "BOGUS").starts_with("500"));
    assert!(talk(&mut s, "mail from: <A@Example.org> BODY=8BITMIME").starts_with("250"));
    assert!(talk(&mut s, "RCPT TO:<b@example.org>").starts_with("250"));
    assert!(talk(&mut s, "DATA").starts_with("354"));
    s.write_all(b"Subject: dots\r\n\r\n..leading\r\n.\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(read_reply(&mut s).starts_with("250"));
    assert!(talk(&mut s, "QUIT").starts_with("221"));
    let got = server.received();
    assert_eq!(got[0].from, "A@Example.org");
    assert_eq!(got[0].raw, b"Subject: dots\r\n\r\n.leading\r\n");
}

#[test]
fn auth_plain_and_login_accept_the_configured_user_and_refuse_others() {
    let server = SmtpServer::with_auth("nhacviec", "mật khẩu");
    let with = |user: &str, pass: &str, mechanism| {
        SmtpTransport::builder_dangerous("127.0.0.1")
            .port(server.addr().port())
            .credentials(Credentials::new(user.to_owned(), pass.to_owned()))
            .authentication(vec![mechanism])
            .pool_config(PoolConfig::new().max_size(1))
            .build()
    };
    use lettre::transport::smtp::authentication::Mechanism;
    for mechanism in [Mechanism::Plain, Mechanism::Login] {
        with("nhacviec", "mật khẩu", mechanism)
            .send(&simple("a@example.org", "authed"))
            .unwrap_or_else(|e| panic!("{mechanism:?}: {e}"));
        let err = with("nhacviec", "sai", mechanism)
            .send(&simple("a@example.org", "wrong password"))
            .err()
            .unwrap_or_else(|| panic!("{mechanism:?}: a wrong password was accepted"));
        assert_eq!(err.status().map(|c| c.to_string()).as_deref(), Some("535"));
        assert!(err.is_permanent());
    }
    // Without credentials: MAIL is refused.
    let err = client(&server)
        .send(&simple("a@example.org", "anonymous"))
        .err()
        .unwrap_or_else(|| panic!("accepted mail without AUTH"));
    assert_eq!(err.status().map(|c| c.to_string()).as_deref(), Some("530"));
    assert_eq!(server.received().len(), 2);
}
