#!/usr/bin/env python3
"""The plain client of scripts/bench-mail.sh: smtplib over ONE connection, timed.

    bench_mail_plain.py PORT COUNT

Builds COUNT reminder-like messages first (multipart/alternative text + HTML, Vietnamese
subject and body, about 4 KB each, one recipient each: p0001@example.org, ...), then times
sending all of them over a single SMTP connection to 127.0.0.1:PORT (EHLO once, then
MAIL/RCPT/DATA per message, QUIT). Prints one JSON line:
{"messages": N, "seconds": S, "rate": N/S, "bytes_per_message": B, "build_seconds": S}.
"""

import json
import smtplib
import sys
import time
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

SENDER = "bench-plain@example.org"
SUBJECT = "[Nhắc việc] Treo cờ Tổ quốc — Kỷ niệm 49 năm Ngày Giải phóng miền Nam (30/4/2024)"

TEXT = """Kính gửi đồng chí {name} ({title}),

Trường Mầm non Hoa Phượng nhắc đồng chí công việc cho ngày lễ sắp tới:

Sự kiện: Kỷ niệm 49 năm Ngày Giải phóng miền Nam, thống nhất đất nước (30/4/1975 - 30/4/2024)
Ngày: Thứ Ba, 30/04/2024 (âm lịch: 22/3/2024), năm lẻ 5

Việc cần làm:
- Treo cờ Tổ quốc tại trường — hạn: 07:00 Thứ Hai, 29/04/2024
  Kiểm tra cột cờ, dây kéo; treo cờ Tổ quốc đúng quy cách (không rách, không bạc màu) ở cổng
  trường và trước khu nhà chính, giữ cờ trong suốt thời gian treo cờ theo thông báo của UBND.
  Cùng thực hiện: Đinh Văn Tuấn, Hoàng Văn Nam.

Lịch của nhóm: http://127.0.0.1:8080/calendar/csvc.ics

Thư này do ngayle gửi tự động; trả lời thư sẽ đến Văn thư của trường.
"""

HTML = """<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><title>Nhắc việc</title></head>
<body style="font-family: sans-serif">
<p>Kính gửi đồng chí <strong>{name}</strong> ({title}),</p>
<p>Trường Mầm non Hoa Phượng nhắc đồng chí công việc cho ngày lễ sắp tới:</p>
<table>
<tr><th align="left">Sự kiện</th><td>Kỷ niệm 49 năm Ngày Giải phóng miền Nam, thống nhất đất nước (30/4/1975 - 30/4/2024)</td></tr>
<tr><th align="left">Ngày</th><td>Thứ Ba, 30/04/2024 (âm lịch: 22/3/2024), năm lẻ 5</td></tr>
</table>
<h3>Việc cần làm</h3>
<ul>
<li><strong>Treo cờ Tổ quốc tại trường</strong> — hạn: 07:00 Thứ Hai, 29/04/2024<br>
Kiểm tra cột cờ, dây kéo; treo cờ Tổ quốc đúng quy cách (không rách, không bạc màu) ở cổng
trường và trước khu nhà chính, giữ cờ trong suốt thời gian treo cờ theo thông báo của UBND.<br>
Cùng thực hiện: Đinh Văn Tuấn, Hoàng Văn Nam.</li>
</ul>
<p><a href="http://127.0.0.1:8080/calendar/csvc.ics">Lịch của nhóm</a></p>
<p style="color: #666">Thư này do ngayle gửi tự động; trả lời thư sẽ đến Văn thư của trường.</p>
</body></html>
"""


def template():
    """One message with ASCII placeholders for what differs per recipient.

    (Building each message with the email package costs ~13 ms in Python: more than sending it.)
    """
    name = "Nguyễn Thị Mai Phương"
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"Trường MN Hoa Phượng <{SENDER}>"
    msg["To"] = f"{name} <p0000@example.org>"
    msg["Reply-To"] = "Văn thư Trường MN Hoa Phượng <vanthu@example.org>"
    msg["Subject"] = SUBJECT
    msg["Date"] = format_datetime(datetime(2024, 4, 29, 7, 0, tzinfo=timezone(timedelta(hours=7))))
    msg["Message-ID"] = "<bench.p0000.0123456789@example.org>"
    msg.set_content(TEXT.format(name=name, title="Giáo viên"))
    msg.add_alternative(HTML.format(name=name, title="Giáo viên"), subtype="html")
    data = msg.as_bytes()
    assert data.count(b"p0000") == 2, data
    return data


def build(base, i):
    rcpt = f"p{i:04d}@example.org"
    return rcpt, base.replace(b"p0000", f"p{i:04d}".encode())


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    port, count = int(argv[0]), int(argv[1])
    t0 = time.perf_counter()
    base = template()
    messages = [build(base, i) for i in range(1, count + 1)]
    build_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="bench-plain", timeout=30) as smtp:
        smtp.ehlo()
        for rcpt, data in messages:
            refused = smtp.sendmail(SENDER, [rcpt], data)
            if refused:
                sys.exit(f"refused: {refused}")
    seconds = time.perf_counter() - t0

    print(
        json.dumps(
            {
                "messages": count,
                "seconds": round(seconds, 4),
                "rate": round(count / seconds, 1),
                "bytes_per_message": sum(len(d) for _, d in messages) // max(count, 1),
                "build_seconds": round(build_seconds, 3),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
