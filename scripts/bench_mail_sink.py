#!/usr/bin/env python3
"""The SMTP sink of scripts/bench-mail.sh: counts and discards, on 127.0.0.1, standard library only.

    bench_mail_sink.py serve READY_FILE [--max-seconds S]
        Listens for SMTP on 127.0.0.1:<free port> and for control on 127.0.0.1:<another>,
        writes {"smtp": PORT, "control": PORT} to READY_FILE once both accept, and runs until
        SIGTERM/SIGINT or S seconds (default 900).
    bench_mail_sink.py stats CONTROL_PORT
        Prints the counts as JSON: {"messages": N, "recipients": N, "bytes": N,
        "by_sender": {"a@b": N, ...}, "connections": [{"id": N, "opened": T, "first": T,
        "last": T, "messages": N}, ...], "cpu_seconds": S}: the latest 32 connections, with the
        wall-clock times (seconds since the epoch) of their opening, first and last message.

Each message is counted by its envelope sender when its DATA ends (before the 250 goes out),
so the counts are final as soon as a client has its last reply.

Why not aiosmtpd (the sink until issue 14): it runs every command through several coroutine
layers, and the plain client reached only 360-569 msg/s through it on this machine, where both
clients reach thousands with a faster sink: it measured itself. Why not asyncio either: measured,
an asyncio.Protocol doing this same parsing spent ~55 us of CPU per message of a client that
waits for each reply (smtplib, ngayle), this blocking thread per connection ~23 us (one recv
and one send per command, no event loop). Measured alone (scripts/bench_mail_flood.py: every
transaction of a session pipelined on one connection) it takes tens of thousands of messages a
second; bench-mail.sh measures that every round and fails if it is not 3x the fastest client.

It speaks as much SMTP as ngayle (lettre) and smtplib use: EHLO/HELO (EHLO offers 8BITMIME,
SMTPUTF8, PIPELINING and SIZE), MAIL, RCPT, DATA, RSET, NOOP, QUIT; anything else is answered
502. The DATA content is not unstuffed, only its end (CRLF . CRLF) is found; its byte count is
the content up to and including the CRLF before the dot. Replies to pipelined commands are
collected and written once per read, as RFC 2920 allows.
"""

import collections
import json
import os
import signal
import socket
import sys
import threading
import time

# A command line longer than this (without its CRLF) is refused and the connection closed; a
# message larger than MAX_MESSAGE likewise. Both only bound memory: the clients stay far below.
MAX_LINE = 4096
MAX_MESSAGE = 16 * 1024 * 1024
# How many of the latest connections `stats` describes.
KEEP_CONNECTIONS = 32

GREETING = b"220 bench-sink ESMTP\r\n"
EHLO_REPLY = (
    b"250-bench-sink\r\n"
    b"250-8BITMIME\r\n"
    b"250-SMTPUTF8\r\n"
    b"250-PIPELINING\r\n"
    b"250 SIZE " + str(MAX_MESSAGE).encode() + b"\r\n"
)
OK = b"250 OK\r\n"
GO_AHEAD = b"354 End data with <CR><LF>.<CR><LF>\r\n"
BYE = b"221 Bye\r\n"


class Counter:
    """What every connection received, under one lock (one connection per thread)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = 0
        self.recipients = 0
        self.bytes = 0
        self.by_sender = collections.Counter()
        # The latest connections: when each opened and took its first and last message (wall
        # clock, to compare with a client's start), so a client's sending pace can be told
        # from its start-up.
        self.connections = collections.deque(maxlen=KEEP_CONNECTIONS)
        self.opened = 0

    def connect(self):
        """A new connection's record, kept in `connections`."""
        with self.lock:
            self.opened += 1
            record = {"id": self.opened, "opened": time.time(), "messages": 0}
            self.connections.append(record)
            return record

    def count(self, connection, sender, recipients, size):
        now = time.time()
        with self.lock:
            self.messages += 1
            self.recipients += recipients
            self.bytes += size
            self.by_sender[sender] += 1
            connection.setdefault("first", now)
            connection["last"] = now
            connection["messages"] += 1

    def stats(self):
        with self.lock:
            return {
                "messages": self.messages,
                "recipients": self.recipients,
                "bytes": self.bytes,
                "by_sender": dict(self.by_sender),
                "connections": [dict(c) for c in self.connections],
                # The sink's own CPU time so far (user + system, all threads): how busy it was.
                "cpu_seconds": round(time.process_time(), 4),
            }


def sender_of(args):
    """The address in `FROM:<addr> PARAMS` (case kept, as aiosmtpd kept it), or None."""
    head = args[:5].upper()
    if head != b"FROM:":
        return None
    rest = args[5:].strip()
    if rest.startswith(b"<"):
        end = rest.find(b">")
        if end < 0:
            return None
        return rest[1:end].decode("utf-8", "replace")
    return rest.split(b" ", 1)[0].decode("utf-8", "replace")


class Session:
    """One SMTP conversation: a buffer, a position in it, and whether DATA content is being read.

    Knows nothing of sockets: `feed` takes what arrived and returns the replies to write.
    """

    def __init__(self, counter):
        self.counter = counter
        self.record = counter.connect()
        # Bytes not yet consumed (appended to and cut from the front: linear in what arrives).
        self.buf = bytearray()
        self.in_data = False
        # While in DATA: where in `buf` the search for CRLF . CRLF goes on (so a message that
        # arrives in many reads is scanned once), and the envelope being received.
        self.scan = 0
        self.mail_from = None
        self.rcpts = 0

    def feed(self, data):
        """The replies to what has arrived so far, and whether to close after writing them."""
        buf = self.buf
        buf += data
        pos = 0
        out = []
        size = len(buf)
        while pos < size:
            if self.in_data:
                if self.scan == pos and buf.startswith(b".\r\n", pos):
                    # An empty message: the dot right after DATA's line.
                    end, body_end = pos + 3, pos
                else:
                    i = buf.find(b"\r\n.\r\n", max(self.scan, pos))
                    if i < 0:
                        if size - pos > MAX_MESSAGE:
                            out.append(b"552 Message too large\r\n")
                            return b"".join(out), True
                        # Rescan only the last 4 bytes next time: the end may straddle reads.
                        self.scan = max(pos, size - 4)
                        break
                    end, body_end = i + 5, i + 2
                self.counter.count(self.record, self.mail_from, self.rcpts, body_end - pos)
                self.in_data = False
                self.mail_from = None
                self.rcpts = 0
                out.append(OK)
                pos = end
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if size - pos > MAX_LINE:
                    out.append(b"500 Line too long\r\n")
                    return b"".join(out), True
                break
            line = bytes(buf[pos:eol])
            pos = eol + 2
            verb = line[:4].upper()
            if verb == b"MAIL":
                sender = sender_of(line[5:])
                if sender is None:
                    out.append(b"501 Syntax: MAIL FROM:<address>\r\n")
                elif self.mail_from is not None:
                    out.append(b"503 Error: nested MAIL command\r\n")
                else:
                    self.mail_from = sender
                    out.append(OK)
            elif verb == b"RCPT":
                if self.mail_from is None:
                    out.append(b"503 Error: need MAIL command\r\n")
                elif line[5:8].upper() != b"TO:":
                    out.append(b"501 Syntax: RCPT TO:<address>\r\n")
                else:
                    self.rcpts += 1
                    out.append(OK)
            elif verb == b"DATA":
                if not self.rcpts:
                    out.append(b"503 Error: need RCPT command\r\n")
                else:
                    self.in_data = True
                    self.scan = pos
                    out.append(GO_AHEAD)
            elif verb == b"EHLO":
                self.mail_from, self.rcpts = None, 0
                out.append(EHLO_REPLY)
            elif verb == b"HELO":
                self.mail_from, self.rcpts = None, 0
                out.append(b"250 bench-sink\r\n")
            elif verb == b"RSET":
                self.mail_from, self.rcpts = None, 0
                out.append(OK)
            elif verb == b"NOOP":
                out.append(OK)
            elif verb == b"QUIT":
                out.append(BYE)
                return b"".join(out), True
            else:
                out.append(b"502 Command not implemented\r\n")
        del buf[:pos]
        if self.in_data:
            self.scan -= pos
        return b"".join(out), False


def converse(sock, counter):
    """One connection, on its own thread: read, answer, until QUIT, EOF or a minute of silence."""
    session = Session(counter)
    try:
        # As asyncio (and so aiosmtpd) does: a reply goes out at once, never held back by
        # Nagle's algorithm waiting for the client's delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(60)
        sock.sendall(GREETING)
        while True:
            data = sock.recv(1 << 18)
            if not data:
                break
            out, close = session.feed(data)
            if out:
                sock.sendall(out)
            if close:
                break
    except OSError:
        pass
    finally:
        sock.close()


def control(sock, counter):
    try:
        sock.settimeout(5)
        sock.recv(256)
        sock.sendall((json.dumps(counter.stats()) + "\n").encode())
    except OSError:
        pass
    finally:
        sock.close()


def accept(listener, handler, counter):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handler, args=(conn, counter), daemon=True).start()


def serve(ready_file, max_seconds):
    counter = Counter()
    ports = {}
    for name, handler in (("smtp", converse), ("control", control)):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        ports[name] = listener.getsockname()[1]
        threading.Thread(target=accept, args=(listener, handler, counter), daemon=True).start()
    tmp = ready_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ports, f)
    os.replace(tmp, ready_file)

    # The threads are daemons: leaving the main thread ends them all.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    time.sleep(max_seconds)


def stats(port):
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
