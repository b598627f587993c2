#!/usr/bin/env python3
"""Cold start to the first feed byte: ngayle beside nginx, alternating, same client.

For each run: start the server process, then connect to 127.0.0.1:PORT and send
`GET PATH` again and again (0.5 ms apart) until the first byte of an answer arrives; the time
from spawn to that byte is the run's cold start. The process is then stopped (SIGTERM) and
awaited before the next run. Prints one JSON object: the runs and the medians, in ms.

Usage: bench_feed_cold.py RUNS PATH -- NGINX_PORT NGINX_CMD... -- NGAYLE_PORT NGAYLE_CMD...
(the ngayle command runs in $BENCH_COLD_CWD when set; with BENCH_COLD_GZIP=1 the request
asks for gzip; with BENCH_COLD_EMPTY_DB=FILE that SQLite file and its -wal and -shm are
deleted before each ngayle run, so that every run starts on an empty database). Every wait
is bounded.

It refuses to start when something already listens on either port: the first byte would then
come from that server, not from the one just started.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import time

LIMIT_S = 20.0


def first_byte(port: int, path: str, started: float) -> float:
    gzip = "Accept-Encoding: gzip\r\n" if os.environ.get("BENCH_COLD_GZIP") == "1" else ""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{gzip}\r\n".encode()
    while time.perf_counter() - started < LIMIT_S:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=LIMIT_S) as s:
                s.sendall(request)
                if s.recv(1):
                    return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.0005)
    raise SystemExit(f"no answer on port {port} within {LIMIT_S} s")


def port_taken(port: int) -> bool:
    """True when something listens on 127.0.0.1:PORT (or the port cannot be bound)."""
    with socket.socket() as s:
        # As servers bind: connections of earlier runs in TIME_WAIT do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def empty_db(db: str | None) -> None:
    if db:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(db + suffix)
            except FileNotFoundError:
                pass


def run(cmd: list[str], port: int, path: str, cwd: str | None) -> float:
    if port_taken(port):
        raise SystemExit(f"port {port} is already taken: stop what listens there first")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        got = first_byte(port, path, started)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=LIMIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return (got - started) * 1000.0


def main() -> None:
    args = sys.argv[1:]
    runs, path = int(args[0]), args[1]
    rest = args[2:]
    if rest.count("--") != 2 or rest[0] != "--":
        raise SystemExit(__doc__)
    second = rest.index("--", 1)
    nginx, ngayle = rest[1:second], rest[second + 1 :]
    nginx_port, nginx_cmd = int(nginx[0]), nginx[1:]
    ngayle_port, ngayle_cmd = int(ngayle[0]), ngayle[1:]
    cwd = os.environ.get("BENCH_COLD_CWD")
    db = os.environ.get("BENCH_COLD_EMPTY_DB")
    for port in (nginx_port, ngayle_port):
        if port_taken(port):
            raise SystemExit(f"port {port} is already taken: stop what listens there first")
    out: dict[str, list[float]] = {"nginx": [], "ngayle": []}
    for i in range(runs):
        # Alternate which goes first, so a drift of the machine hits both alike.
        order = [("nginx", nginx_cmd, nginx_port, None), ("ngayle", ngayle_cmd, ngayle_port, cwd)]
        if i % 2:
            order.reverse()
        for name, cmd, port, where in order:
            if name == "ngayle":
                empty_db(db)
            out[name].append(run(cmd, port, path, where))
    print(
        json.dumps(
            {
                "runs": out,
                "nginx_ms": statistics.median(out["nginx"]),
                "ngayle_ms": statistics.median(out["ngayle"]),
            }
        )
    )


if __name__ == "__main__":
    main()
