#!/usr/bin/env python3
"""The SMTP sink of scripts/bench-mail.sh: aiosmtpd on 127.0.0.1 that counts and discards.

    bench_mail_sink.py serve READY_FILE [--max-seconds S]
        Listens for SMTP on 127.0.0.1:<free port> and for control on 127.0.0.1:<another>,
        writes {"smtp": PORT, "control": PORT} to READY_FILE once both accept, and runs until
        SIGTERM/SIGINT or S seconds (default 900).
    bench_mail_sink.py stats CONTROL_PORT
        Prints the counts as JSON: {"messages": N, "recipients": N, "bytes": N,
        "by_sender": {"a@b": N, ...}}.

Each message is counted by its envelope sender when its DATA ends (before the 250 goes out),
so the counts are final as soon as a client has its last reply.
"""

import asyncio
import collections
import json
import logging
import os
import signal
import sys

from aiosmtpd.smtp import SMTP


class Counter:
    def __init__(self):
        self.messages = 0
        self.recipients = 0
        self.bytes = 0
        self.by_sender = collections.Counter()

    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        self.recipients += len(envelope.rcpt_tos)
        self.bytes += len(envelope.content or b"")
        self.by_sender[envelope.mail_from] += 1
        return "250 OK"

    def stats(self):
        return {
            "messages": self.messages,
            "recipients": self.recipients,
            "bytes": self.bytes,
            "by_sender": dict(self.by_sender),
        }


def serve(ready_file, max_seconds):
    logging.basicConfig(level=logging.WARNING)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    counter = Counter()

    def smtp_factory():
        # hostname given: the default is socket.getfqdn(), a DNS lookup.
        return SMTP(counter, hostname="bench-sink", ident="bench-sink", timeout=60)

    async def control(reader, writer):
        try:
            await asyncio.wait_for(reader.readline(), 5)
            writer.write((json.dumps(counter.stats()) + "\n").encode())
            await writer.drain()
        finally:
            writer.close()

    smtp = loop.run_until_complete(loop.create_server(smtp_factory, host="127.0.0.1", port=0))
    ctl = loop.run_until_complete(asyncio.start_server(control, host="127.0.0.1", port=0))
    ports = {
        "smtp": smtp.sockets[0].getsockname()[1],
        "control": ctl.sockets[0].getsockname()[1],
    }
    tmp = ready_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ports, f)
    os.replace(tmp, ready_file)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    loop.call_later(max_seconds, loop.stop)
    try:
        loop.run_forever()
    finally:
        smtp.close()
        ctl.close()


def stats(port):
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"stats\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    sys.stdout.write(data.decode())


def main(argv):
    if len(argv) >= 2 and argv[0] == "serve":
        max_seconds = 900.0
        if len(argv) == 4 and argv[2] == "--max-seconds":
            max_seconds = float(argv[3])
        serve(argv[1], max_seconds)
    elif len(argv) == 2 and argv[0] == "stats":
        stats(int(argv[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
