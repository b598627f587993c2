#!/usr/bin/env python3
"""The sink-alone client of scripts/bench-mail.sh: how fast the sink takes mail, when nothing waits.

    bench_mail_flood.py PORT COUNT

Builds the same COUNT messages as scripts/bench_mail_plain.py (same template, same size), and
from them ONE byte string holding a whole SMTP session: EHLO, then MAIL FROM:<bench-flood@...>
SIZE=..., RCPT TO, DATA, the dot-stuffed content and its final dot for every message, then QUIT.
Timed: connecting to 127.0.0.1:PORT, writing all of it at once (a thread writes while this one
reads; no command waits for its reply, so the client costs almost nothing and the sink's own
rate is what is measured), until the sink closes the connection after its 221. Then checks the
replies: COUNT 354s, every other reply 2xx, the last 221. Prints one JSON line:
{"messages": N, "seconds": S, "rate": N/S, "bytes_per_message": B}.
"""

import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_mail_plain  # noqa: E402  (the same messages as the plain client)

SENDER = "bench-flood@example.org"


def session(count):
    """The whole session's bytes, and the content size per message (as the sink counts it)."""
    base = bench_mail_plain.template()
    parts = [b"EHLO bench-flood\r\n"]
    total = 0
    for i in range(1, count + 1):
        rcpt, data = bench_mail_plain.build(base, i)
        # As smtplib does: CRLF line ends, a dot at a line's start doubled, a CRLF at the end.
        data = re.sub(rb"(?m)^\.", b"..", data)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        total += len(data)
        parts.append(
            b"MAIL FROM:<%s> SIZE=%d\r\nRCPT TO:<%s>\r\nDATA\r\n"
            % (SENDER.encode(), len(data), rcpt.encode())
        )
        parts.append(data)
        parts.append(b".\r\n")
    parts.append(b"QUIT\r\n")
    return b"".join(parts), total // max(count, 1)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    port, count = int(argv[0]), int(argv[1])
    payload, per_message = session(count)

    replies = []
    failure = []
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:

        def write():
            try:
                s.sendall(payload)
            except OSError as e:
                failure.append(e)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            replies.append(chunk)
        seconds = time.perf_counter() - t0
        writer.join(10)
    if failure:
        sys.exit(f"writing to the sink failed: {failure[0]}")

    lines = b"".join(replies).split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    # The greeting and EHLO's lines, then 250 250 354 250 per message, then 221.
    go_aheads = sum(1 for x in lines if x.startswith(b"354 "))
    bad = [x for x in lines if not (x[:1] == b"2" or x.startswith(b"354 "))]
    if bad or go_aheads != count or not lines or not lines[-1].startswith(b"221"):
        sys.exit(
            f"the sink's replies are not what {count} messages get: "
            f"{go_aheads} x 354, {len(bad)} refusals (first: {bad[:1]}), last {lines[-1:]}"
        )

    print(
        json.dumps(
            {
                "messages": count,
                "seconds": round(seconds, 4),
                "rate": round(count / seconds, 1),
                "bytes_per_message": per_message,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
