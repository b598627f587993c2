"""A real calendar client: vdirsyncer subscribes to the served feed (http storage -> a folder of
.ics files), khal shows that folder, and what khal lists must be the `ngayle events` occurrences
on their days.

Run by run.sh; prints `PASS name` / `FAIL name: why` lines and exits 1 if any failed. All config,
state and caches live under --workdir (XDG_* and HOME point there).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import pathlib
import random
import re
import subprocess
import sys

import expected as ref
from expected import check

TIMEOUT = 180  # seconds per vdirsyncer / khal command
LUNAR = ("tet-nguyen-dan", "gio-to-hung-vuong", "tet-trung-thu")


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, e.stdout or "", f"timed out after {TIMEOUT}s")


def complaints(stderr: str) -> list[str]:
    """Lines where a tool warns or errs (khal and vdirsyncer log `warning:` / `error:`)."""
    return [ln for ln in stderr.splitlines() if re.search(r"warn|error|critical|skipp|invalid|could not", ln, re.I)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True, help="the feed URL")
    ap.add_argument("--config", required=True, help="ngayle config (for the events' days)")
    ap.add_argument("--events", required=True, help="ngayle events --format tsv for the feed's years")
    ap.add_argument("--from-year", type=int, required=True)
    ap.add_argument("--to-year", type=int, required=True)
    ap.add_argument("--bindir", required=True, help="folder holding the vdirsyncer and khal commands")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--days-off", default="",
                    help="the feed's days off as check_python.py read them (start end uid summary)")
    ap.add_argument("--label", default="", help="a prefix for the check names (another feed than the full one)")
    ap.add_argument("--min-lunar", type=int, default=3,
                    help="lunar occurrences the sample must hold (a person's feed may have none)")
    args = ap.parse_args()
    if args.label:
        plain = check

        def labelled(name: str, ok: bool, detail: str = "") -> bool:
            return plain(f"{args.label}: {name}", ok, detail)

        globals()["check"] = labelled

    schedule = ref.load_schedule(args.config)
    occs = ref.read_events_tsv(args.events, schedule)
    work = pathlib.Path(args.workdir).resolve()
    caldir = work / "vdir" / "ngayle"
    for d in (caldir, work / "vdirsyncer-status", work / "home", work / "xdg-config", work / "xdg-data",
              work / "xdg-cache"):
        d.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{args.bindir}:/usr/bin:/bin",
        "HOME": str(work / "home"),
        "XDG_CONFIG_HOME": str(work / "xdg-config"),
        "XDG_DATA_HOME": str(work / "xdg-data"),
        "XDG_CACHE_HOME": str(work / "xdg-cache"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "Asia/Ho_Chi_Minh",
    }

    # ---- vdirsyncer: http storage (the served URL) -> filesystem storage
    vconf = work / "vdirsyncer.conf"
    vconf.write_text(
        f"""[general]
status_path = "{work / 'vdirsyncer-status'}/"

[pair ngayle_feed]
a = "ngayle_served"
b = "ngayle_folder"
collections = null
conflict_resolution = "a wins"

[storage ngayle_served]
type = "http"
url = "{args.url}"

[storage ngayle_folder]
type = "filesystem"
path = "{caldir}/"
fileext = ".ics"
""",
        encoding="utf-8",
    )
    vds = os.path.join(args.bindir, "vdirsyncer")
    for verb in ("discover", "sync"):
        p = run([vds, "--config", str(vconf), verb], env)
        (work / f"vdirsyncer-{verb}.log").write_text(p.stdout + p.stderr, encoding="utf-8")
        check(f"vdirsyncer {verb}: exit 0", p.returncode == 0, f"exit {p.returncode}: {(p.stdout + p.stderr).strip()[-800:]}")
        c = complaints(p.stderr)
        check(f"vdirsyncer {verb}: no warnings or errors", not c, f"{len(c)} lines, e.g. {c[:5]}")
    files = sorted(caldir.glob("*.ics"))
    days_off = [ln for ln in (pathlib.Path(args.days_off).read_text(encoding="utf-8").splitlines()
                              if args.days_off else []) if ln]
    check(f"vdirsyncer: one .ics item per occurrence (and per day off) in the folder ({len(occs)} + {len(days_off)})",
          len(files) == len(occs) + len(days_off), f"{len(files)} files")

    # ---- khal on that folder
    kconf = work / "khal.conf"
    kconf.write_text(
        f"""[calendars]
[[ngayle]]
path = {caldir}/
color = dark green

[sqlite]
path = {work / 'khal.db'}

[locale]
timeformat = %H:%M
dateformat = %Y-%m-%d
longdateformat = %Y-%m-%d
datetimeformat = %Y-%m-%d %H:%M
longdatetimeformat = %Y-%m-%d %H:%M
local_timezone = Asia/Ho_Chi_Minh
default_timezone = Asia/Ho_Chi_Minh
firstweekday = 0

[default]
default_calendar = ngayle
""",
        encoding="utf-8",
    )
    khal = os.path.join(args.bindir, "khal")
    first, last = dt.date(args.from_year, 1, 1), dt.date(args.to_year, 12, 31)
    # Every event once, by start day.
    p = run([khal, "-c", str(kconf), "list", "--once", "--day-format", "", "--format", "{start-date}\t{end-date}\t{title}",
             first.isoformat(), last.isoformat()], env)
    (work / "khal-list-once.txt").write_text(p.stdout + p.stderr, encoding="utf-8")
    check("khal list --once: exit 0", p.returncode == 0, f"exit {p.returncode}: {p.stderr.strip()[-800:]}")
    c = complaints(p.stderr)
    check("khal list: no warnings or errors about the calendar", not c, f"{len(c)} lines, e.g. {c[:5]}")
    got = collections.Counter(tuple(ln.split("\t", 2)) for ln in p.stdout.splitlines() if ln.strip())
    # khal's {end-date} of an all-day event is its last day (DTEND - 1).
    want = collections.Counter((o.start.isoformat(), (o.end - dt.timedelta(days=1)).isoformat(), o.title)
                               for o in occs)
    # The official breaks and make-up working days of the full feed, too.
    extra = 0
    if args.days_off:
        for line in pathlib.Path(args.days_off).read_text(encoding="utf-8").splitlines():
            if line:
                start, end, _uid, summary = line.split("\t")
                last_day = (dt.date.fromisoformat(end) - dt.timedelta(days=1)).isoformat()
                want[(start, last_day, summary)] += 1
                extra += 1
    check(f"khal lists exactly the occurrences of `ngayle events` (first day, last day, title; {len(occs)})"
          + (f" and the {extra} days off" if extra else ""),
          got == want, ref.diff_text(want, got))
    check("khal lists as many events as `ngayle events` (and the days off)", sum(got.values()) == len(occs) + extra,
          f"khal {sum(got.values())}, events {len(occs)} + {extra}")

    # As a person reads it: day headings, each event under every day it spans.
    p = run([khal, "-c", str(kconf), "list", "--day-format", "== {date}", "--format", "{title}",
             first.isoformat(), last.isoformat()], env)
    (work / "khal-list-days.txt").write_text(p.stdout + p.stderr, encoding="utf-8")
    check("khal list (by day): exit 0", p.returncode == 0, f"exit {p.returncode}: {p.stderr.strip()[-800:]}")
    under: dict[str, list[str]] = collections.defaultdict(list)
    day = None
    for ln in p.stdout.splitlines():
        if ln.startswith("== "):
            day = ln[3:].strip()
        elif ln.strip() and day is not None:
            under[day].append(ln)
    rng = random.Random(20240507)  # a fixed sample, the same on every run
    lunar = [o for o in occs if o.event_id in LUNAR]
    multi = [o for o in occs if (o.end - o.start).days > 1]
    rest = [o for o in occs if o not in lunar and o not in multi]
    sample = lunar + multi + rng.sample(rest, min(len(rest), max(20, 30 - len(lunar) - len(multi))))
    missing = []
    for o in sample:
        d = o.start
        while d < o.end:
            if first <= d <= last and o.title not in under.get(d.isoformat(), []):
                missing.append((d.isoformat(), o.event_id))
            d += dt.timedelta(days=1)
    check(f"khal shows each of {len(sample)} sampled occurrences ({len(lunar)} of them lunar: "
          f"{', '.join(LUNAR)}; {len(multi)} multi-day) under every day it spans in the listed range",
          len(sample) >= min(20, len(occs)) and len(lunar) >= args.min_lunar and not missing,
          f"missing {missing[:8]}")
    return 1 if ref.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
