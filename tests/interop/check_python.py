"""Checks the served feeds with the PyPI parsers `icalendar` and `recurring-ical-events`.

Run by run.sh against a running `ngayle serve`; prints one `PASS name` or `FAIL name: why` line
per check and exits 1 if any failed. The reference for what the feed must hold is
`ngayle events --format tsv` for the same range (see expected.py).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import gzip
import json
import pathlib
import subprocess
import sys
import urllib.error
import urllib.request

import icalendar
import recurring_ical_events

import expected as ref
from expected import check

TIMEOUT = 20  # seconds, for every HTTP request and every ngayle command


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:  # 304 and 4xx land here
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def raw_line_problems(body: bytes) -> list[str]:
    """RFC 5545 §3.1: CRLF after every content line, no line longer than 75 octets (CRLF not
    counted), a fold never splits a UTF-8 sequence."""
    problems = []
    if not body.endswith(b"\r\n"):
        problems.append("body does not end with CRLF")
    lines = body.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for n, line in enumerate(lines, 1):
        if b"\n" in line or b"\r" in line:
            problems.append(f"line {n}: bare LF or CR: {line[:60]!r}")
        if len(line) > 75:
            problems.append(f"line {n}: {len(line)} octets: {line[:60]!r}...")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(f"line {n}: not UTF-8 on its own (a fold splits a character?): {e}")
        if n == 1 and line.startswith(b"\xef\xbb\xbf"):
            problems.append("line 1 starts with a UTF-8 byte order mark")
    return problems


def parse(body: bytes) -> tuple[icalendar.Calendar | None, str]:
    try:
        return icalendar.Calendar.from_ical(body), ""
    except Exception as e:  # noqa: BLE001 - any parser complaint is a finding
        return None, f"{type(e).__name__}: {e}"


def parser_errors(cal: icalendar.Calendar) -> list[str]:
    errs = []
    for comp in cal.walk():
        for err in getattr(comp, "errors", []) or []:
            errs.append(f"{comp.name}: {err}")
    return errs


def is_date(prop) -> bool:
    return prop is not None and type(prop.dt) is dt.date and prop.params.get("VALUE") == "DATE"


def vevents(cal: icalendar.Calendar) -> list[icalendar.Event]:
    return [c for c in cal.walk("VEVENT")]


def is_day_off(e) -> bool:
    """An official break or make-up working day (checked against `ngayle days-off` on its own:
    the comparisons with `ngayle events` leave them out)."""
    uid = str(e.get("UID"))
    return uid.startswith("nghi-") or uid.startswith("lam-bu-")


def commemorations(events) -> list:
    return [e for e in events if not is_day_off(e)]


def expected_breaks(days_off_tsv: pathlib.Path, workdays: list[str]) -> tuple[set, set]:
    """From `ngayle days-off --format tsv` of the feed's years: each break as (first day, day
    after the last) — a run of consecutive days that are off, or weekly rest days not worked,
    holding at least one day off — and each make-up working day. Computed here, not by
    ngayle's grouping."""
    off, work = set(), set()
    for line in days_off_tsv.read_text(encoding="utf-8").splitlines():
        if not line:
            continue
        day, kind = line.split("\t")[:2]
        (off if kind == "off" else work).add(dt.date.fromisoformat(day))
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    rest = lambda d: names[d.weekday()] not in workdays and d not in work  # noqa: E731
    free = lambda d: d in off or rest(d)  # noqa: E731
    breaks = set()
    for d in sorted(off):
        if any(a <= d < b for a, b in breaks):
            continue
        a, b = d, d
        while free(a - dt.timedelta(days=1)):
            a -= dt.timedelta(days=1)
        while free(b + dt.timedelta(days=1)):
            b += dt.timedelta(days=1)
        breaks.add((a, b + dt.timedelta(days=1)))
    return breaks, {(d, d + dt.timedelta(days=1)) for d in work}


def common_feed_checks(label: str, url: str, body: bytes, headers: dict[str, str], cal) -> None:
    """Checks every feed must pass: transport, raw text, calendar properties, VEVENT basics."""
    ctype = headers.get("content-type", "")
    check(f"{label}: Content-Type text/calendar; charset=utf-8",
          ctype.replace(" ", "").lower() == "text/calendar;charset=utf-8", f"got {ctype!r}")
    problems = raw_line_problems(body)
    check(f"{label}: every line CRLF-terminated, <= 75 octets, UTF-8", not problems,
          f"{len(problems)} problems: {problems[:5]}")
    if cal is None:
        return
    errs = parser_errors(cal)
    check(f"{label}: icalendar parses without errors", not errs, f"{errs[:5]}")

    want = {
        "VERSION": lambda v: str(v) == "2.0",
        "PRODID": lambda v: bool(str(v)),
        "CALSCALE": lambda v: str(v) == "GREGORIAN",
        "METHOD": lambda v: str(v) == "PUBLISH",
        "X-WR-CALNAME": lambda v: bool(str(v)),
        "X-WR-TIMEZONE": lambda v: str(v) == "Asia/Ho_Chi_Minh",
        "REFRESH-INTERVAL": lambda v: v is not None,
    }
    for key, ok in want.items():
        val = cal.get(key)
        check(f"{label}: calendar has {key}", val is not None and ok(val), f"got {val!r}")
    # RFC 7986 §5.7: REFRESH-INTERVAL has no default value type, so VALUE=DURATION is required.
    line = next((ln for ln in body.split(b"\r\n") if ln.startswith(b"REFRESH-INTERVAL")), b"")
    check(f"{label}: REFRESH-INTERVAL;VALUE=DURATION (RFC 7986 5.7)",
          line.startswith(b"REFRESH-INTERVAL;VALUE=DURATION:P"), f"got {line!r}")

    evs = vevents(cal)
    check(f"{label}: has VEVENTs", len(evs) > 0, "no VEVENT")
    uids = collections.Counter(str(e.get("UID")) for e in evs)
    dups = [u for u, n in uids.items() if n > 1]
    check(f"{label}: UIDs unique", not dups and "None" not in uids, f"duplicates: {dups[:5]}")
    no_stamp = [str(e.get("UID")) for e in evs if e.get("DTSTAMP") is None]
    check(f"{label}: every VEVENT has DTSTAMP (RFC 5545 3.6.1)", not no_stamp, f"{len(no_stamp)} without, e.g. {no_stamp[:3]}")
    bad = [str(e.get("UID")) for e in evs if not is_date(e.get("DTSTART"))]
    check(f"{label}: every DTSTART is VALUE=DATE", not bad, f"{len(bad)} not, e.g. {bad[:3]}")
    bad = [str(e.get("UID")) for e in evs if not is_date(e.get("DTEND"))]
    check(f"{label}: every DTEND is VALUE=DATE", not bad, f"{len(bad)} not, e.g. {bad[:3]}")
    bad = [str(e.get("UID")) for e in evs
           if is_date(e.get("DTSTART")) and is_date(e.get("DTEND")) and not e["DTEND"].dt > e["DTSTART"].dt]
    check(f"{label}: every DTEND after DTSTART", not bad, f"{bad[:3]}")
    rec = [str(e.get("UID")) for e in evs if any(k in e for k in ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"))]
    check(f"{label}: one VEVENT per occurrence (no RRULE/RDATE)", not rec, f"{rec[:3]}")


def http_cache_checks(label: str, url: str, body: bytes, headers: dict[str, str]) -> None:
    etag = headers.get("etag")
    check(f"{label}: strong ETag", bool(etag) and not etag.startswith("W/") and etag.startswith('"'),
          f"got {etag!r}")
    status2, headers2, body2 = fetch(url)
    check(f"{label}: a second fetch gives the same ETag and body",
          status2 == 200 and headers2.get("etag") == etag and body2 == body,
          f"status {status2}, ETag {headers2.get('etag')!r} vs {etag!r}, same body: {body2 == body}")
    if etag:
        status3, _, body3 = fetch(url, {"If-None-Match": etag})
        check(f"{label}: If-None-Match with the ETag gives 304 without a body",
              status3 == 304 and body3 == b"", f"status {status3}, {len(body3)} bytes")
        status4, _, _ = fetch(url, {"If-None-Match": '"not-the-etag"'})
        check(f"{label}: If-None-Match with another ETag gives 200", status4 == 200, f"status {status4}")
    status5, headers5, body5 = fetch(url, {"Accept-Encoding": "gzip"})
    ok = status5 == 200 and headers5.get("content-encoding", "").lower() == "gzip"
    detail = f"status {status5}, Content-Encoding {headers5.get('content-encoding')!r}"
    if ok:
        try:
            ok = gzip.decompress(body5) == body
            detail = "gunzipped body differs from the plain one"
        except OSError as e:
            ok, detail = False, f"not gzip: {e}"
    check(f"{label}: gzip when asked (Accept-Encoding: gzip)", ok, detail)


def cli_ics(args, outdir: pathlib.Path | None, name: str, extra: list[str]) -> tuple[bytes | None, str]:
    """`ngayle ics` for the same years, with the same config and state file as the server; into
    a file with -o, or to standard output when outdir is None."""
    out = outdir / f"cli-{name}.ics" if outdir else None
    cmd = [args.bin, "--config", args.config, "ics", "--from-year", str(args.from_year),
           "--to-year", str(args.to_year), *extra] + (["-o", str(out)] if out else [])
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"timed out: {' '.join(cmd)}"
    if p.returncode != 0:
        return None, f"exit {p.returncode}: {p.stderr.decode(errors='replace').strip()[:400]}"
    return (out.read_bytes() if out else p.stdout), ""


def same_bytes_detail(a: bytes, b: bytes) -> str:
    if a == b:
        return ""
    la, lb = a.split(b"\r\n"), b.split(b"\r\n")
    for i, (x, y) in enumerate(zip(la, lb), 1):
        if x != y:
            return f"first difference at line {i}: served {x!r} vs cli {y!r}"
    return f"lengths differ: served {len(a)} bytes, cli {len(b)} bytes"


def served_feed(label: str, url: str, saved: pathlib.Path):
    """GET a served feed, keep its bytes in `saved`, and run the checks every feed gets (status,
    parse, properties, HTTP caching): (headers, body, calendar or None), or None without a 200."""
    status, headers, body = fetch(url)
    if not check(f"{label}: 200", status == 200, f"status {status}, {body[:200]!r}"):
        return None
    saved.write_bytes(body)
    cal, err = parse(body)
    check(f"{label}: icalendar parses it", cal is not None, err)
    common_feed_checks(label, url, body, headers, cal)
    http_cache_checks(label, url, body, headers)
    return headers, body, cal


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--bin", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--events", required=True, help="ngayle events --format tsv for the feed's years")
    ap.add_argument("--from-year", type=int, required=True)
    ap.add_argument("--to-year", type=int, required=True)
    ap.add_argument("--groups", required=True, help="comma-separated group ids")
    ap.add_argument("--people", default="", help="comma-separated PERSON_ID=FEED_URL (ngayle feeds)")
    ap.add_argument("--upcoming", required=True,
                    help="ngayle upcoming --format tsv over the feed's years (each person's reminders)")
    ap.add_argument("--days-off", required=True,
                    help="ngayle days-off --format tsv of every year of the feed (date kind why basis)")
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    workdir = pathlib.Path(args.workdir)
    schedule = ref.load_schedule(args.config)
    occs = ref.read_events_tsv(args.events, schedule)
    reminders = ref.read_upcoming_tsv(args.upcoming)
    first, last = dt.date(args.from_year, 1, 1), dt.date(args.to_year, 12, 31)
    check("reference: events tsv covers the feed's years",
          occs and min(o.start for o in occs) <= first + dt.timedelta(days=40) and max(o.start for o in occs) >= last - dt.timedelta(days=40),
          f"{len(occs)} occurrences")

    status, headers, body = fetch(args.base + "/healthz")
    ok = status == 200
    try:
        json.loads(body)
    except ValueError:
        ok = False
    check("/healthz: 200 with JSON", ok, f"status {status}, body {body[:200]!r}")

    # ---- the full feed
    label = "/calendar.ics"
    url = args.base + label
    status, headers, body = fetch(url)
    if not check(f"{label}: 200", status == 200, f"status {status}, {body[:200]!r}"):
        return 1
    (workdir / "served-calendar.ics").write_bytes(body)
    cal, err = parse(body)
    check(f"{label}: icalendar parses it", cal is not None, err)
    common_feed_checks(label, url, body, headers, cal)
    http_cache_checks(label, url, body, headers)

    full_by_uid = {}
    full_stamps = {}
    if cal is not None:
        for e in vevents(cal):
            full_by_uid[str(e.get("UID"))] = (e.get("DTSTART").dt if e.get("DTSTART") else None, str(e.get("SUMMARY")))
            full_stamps[str(e.get("UID"))] = e.get("DTSTAMP").dt if e.get("DTSTAMP") else None
        want = ref.multiset((o.start, o.end, o.title) for o in occs)
        try:
            expanded = commemorations(recurring_ical_events.of(cal).between(first, last + dt.timedelta(days=1)))
            got = ref.multiset((e["DTSTART"].dt, e["DTEND"].dt, str(e.get("SUMMARY"))) for e in expanded)
            check(f"{label}: recurring-ical-events between {first} and {last} gives exactly the "
                  f"(start, end, summary) of `ngayle events` ({sum(want.values())} occurrences)",
                  got == want, ref.diff_text(want, got))
        except Exception as e:  # noqa: BLE001
            check(f"{label}: recurring-ical-events expands it", False, f"{type(e).__name__}: {e}")
        check(f"{label}: as many VEVENTs (besides the days off) as occurrences",
              len(commemorations(vevents(cal))) == len(occs),
              f"{len(commemorations(vevents(cal)))} VEVENTs, {len(occs)} occurrences")
        lunar = {"tet-nguyen-dan", "gio-to-hung-vuong", "tet-trung-thu"}
        lunar_occ = [(o.start, o.title) for o in occs if o.event_id in lunar]
        got_pairs = {(d, s) for d, s in full_by_uid.values()}
        missing = [x for x in lunar_occ if x not in got_pairs]
        check(f"{label}: the lunar days ({len(lunar_occ)} occurrences of {', '.join(sorted(lunar))}) on their solar dates",
              len(lunar_occ) >= 3 * (args.to_year - args.from_year + 1) - 1 and not missing, f"missing {missing}")

    # ---- other years, through `ngayle ics`: the lunar traps and the ends of the range
    for year in (1985, 2007, 2023, 2054, 2062, 2199):
        tsv = workdir / f"events-{year}.tsv"
        ev = subprocess.run([args.bin, "--config", args.config, "events", "--from", f"{year}-01-01",
                             "--to", f"{year}-12-31", "--format", "tsv"], capture_output=True, timeout=60)
        tsv.write_bytes(ev.stdout)
        ics = subprocess.run([args.bin, "--config", args.config, "ics", "--from-year", str(year),
                              "--to-year", str(year)], capture_output=True, timeout=60)
        ycal, yerr = parse(ics.stdout) if ics.returncode == 0 else (None, ics.stderr.decode(errors="replace"))
        if not check(f"`ngayle ics` for {year}: icalendar parses it", ev.returncode == 0 and ycal is not None, yerr):
            continue
        want = ref.multiset((o.start, o.end, o.title) for o in ref.read_events_tsv(tsv, schedule))
        got = ref.multiset((e["DTSTART"].dt, e["DTEND"].dt, str(e.get("SUMMARY")))
                           for e in commemorations(recurring_ical_events.of(ycal).between(dt.date(year, 1, 1), dt.date(year + 1, 1, 1))))
        check(f"`ngayle ics` for {year}: recurring-ical-events gives exactly the (start, end, summary) of "
              f"`ngayle events` ({sum(want.values())} occurrences)", want == got and sum(want.values()) > 0,
              ref.diff_text(want, got))

    cli, err = cli_ics(args, workdir, "calendar", [])
    check(f"`ngayle ics --from-year {args.from_year} --to-year {args.to_year} -o FILE` is byte-identical to the served {label}",
          cli is not None and cli == body, err or same_bytes_detail(body, cli or b""))
    cli, err = cli_ics(args, None, "calendar", [])
    check(f"`ngayle ics --from-year {args.from_year} --to-year {args.to_year}` (standard output) is byte-identical to the served {label}",
          cli is not None and cli == body, err or same_bytes_detail(body, cli or b""))

    # ---- group feeds
    for group in [g for g in args.groups.split(",") if g]:
        label = f"/calendar/{group}.ics"
        served = served_feed(label, args.base + label, workdir / f"served-{group}.ics")
        if served is None:
            continue
        _, gbody, gcal = served
        if gcal is not None:
            evs = vevents(gcal)
            not_in_full = [str(e.get("UID")) for e in evs
                           if full_by_uid.get(str(e.get("UID"))) != (e["DTSTART"].dt, str(e.get("SUMMARY")))]
            check(f"{label}: every event is in the full feed with the same UID, date and summary",
                  not not_in_full, f"{len(not_in_full)} not, e.g. {not_in_full[:3]}")
            bad = []
            for e in evs:
                alarms = [a for a in e.walk("VALARM")]
                if not alarms or any(str(a.get("ACTION")) != "DISPLAY" or a.get("TRIGGER") is None
                                     or a.get("DESCRIPTION") is None for a in alarms):
                    bad.append(str(e.get("UID")))
            check(f"{label}: every event has >= 1 VALARM, each ACTION:DISPLAY with TRIGGER and DESCRIPTION",
                  not bad, f"{len(bad)} events not, e.g. {bad[:3]}")
            # Which occurrences and how many alarms: from the YAML (tasks whose `who` names the group).
            want = ref.multiset((o.start, o.title, sum(len(schedule.trigger[t]) for t in ref.group_tasks(o, group, schedule)))
                                for o in occs if ref.group_tasks(o, group, schedule))
            got = ref.multiset((e["DTSTART"].dt, str(e.get("SUMMARY")), len(e.walk("VALARM"))) for e in evs)
            detail = ref.diff_text(want, got)
            if got != want:
                for other, how in ((ref.group_tasks_named, "only tasks whose `who` names the group"),
                                   (ref.group_tasks_with_members, "tasks given to its members by person id too")):
                    alt = ref.multiset((o.start, o.title, sum(len(schedule.trigger[t]) for t in other(o, group, schedule)))
                                       for o in occs if other(o, group, schedule))
                    if got == alt:
                        detail += f" -- the feed matches when counting {how}"
            check(f"{label}: the occurrences that give {group} a task, one VALARM per reminder of each task "
                  f"({sum(want.values())} occurrences)", got == want, detail)
            # Each alarm at its reminder's planned instant, the deadline less each lead (TRIGGER
            # relative to the all-day start; not moved off days off, as the email's send day is).
            want = ref.multiset((o.start, o.title, tuple(sorted(x for t in ref.group_tasks(o, group, schedule) for x in schedule.trigger[t])))
                                for o in occs if ref.group_tasks(o, group, schedule))
            got = ref.multiset((e["DTSTART"].dt, str(e.get("SUMMARY")),
                                tuple(sorted(a["TRIGGER"].dt for a in e.walk("VALARM") if a.get("TRIGGER") is not None
                                             and isinstance(a["TRIGGER"].dt, dt.timedelta))))
                               for e in evs)
            check(f"{label}: each VALARM's TRIGGER is its reminder's planned instant (`due` less each `remind`)",
                  got == want, ref.diff_text(want, got, limit=3))
        cli, err = cli_ics(args, workdir, group, ["--group", group])
        check(f"`ngayle ics --group {group}` is byte-identical to the served {label}",
              cli is not None and cli == gbody, err or same_bytes_detail(gbody, cli or b""))

    status, _, _ = fetch(args.base + "/calendar/no-such-group.ics")
    check("/calendar/no-such-group.ics: 404", status == 404, f"status {status}")

    # ---- the official days off: /calendar/ngay-nghi.ics, and the same events in the full feed
    config_doc = ref.yaml.safe_load(pathlib.Path(args.config).read_text(encoding="utf-8")) or {}
    workdays = [str(w) for w in (config_doc.get("reminders") or {}).get("workdays") or ["mon", "tue", "wed", "thu", "fri"]]
    want_breaks, want_work = expected_breaks(pathlib.Path(args.days_off), workdays)
    label = "/calendar/ngay-nghi.ics"
    served = served_feed(label, args.base + label, workdir / "served-ngay-nghi.ics")
    rows = []
    if served is not None:
        _, _, dcal = served
        if dcal is not None:
            evs = vevents(dcal)
            check(f"{label}: only days off (UIDs nghi-…, lam-bu-…)", all(is_day_off(e) for e in evs),
                  f"{[str(e.get('UID')) for e in evs if not is_day_off(e)][:3]}")
            got_breaks = {(e["DTSTART"].dt, e["DTEND"].dt) for e in evs if str(e.get("UID")).startswith("nghi-")}
            got_work = {(e["DTSTART"].dt, e["DTEND"].dt) for e in evs if str(e.get("UID")).startswith("lam-bu-")}
            check(f"{label}: one event per break of `ngayle days-off` {args.from_year}-{args.to_year}, "
                  f"its days off and the rest days around them ({len(want_breaks)} breaks)",
                  got_breaks == want_breaks and len(want_breaks) >= 5 * (args.to_year - args.from_year + 1),
                  f"missing {sorted(want_breaks - got_breaks)[:4]}, extra {sorted(got_breaks - want_breaks)[:4]}")
            check(f"{label}: one event per make-up working day ({len(want_work)})", got_work == want_work,
                  f"missing {sorted(want_work - got_work)}, extra {sorted(got_work - want_work)}")
            opaque = [str(e.get("UID")) for e in evs if str(e.get("TRANSP")) != "TRANSPARENT"]
            check(f"{label}: every event TRANSP:TRANSPARENT (a break does not block time)", not opaque, f"{opaque[:3]}")
            titled = [str(e.get("UID")) for e in evs
                      if not (str(e.get("SUMMARY")).startswith("Nghỉ ") or str(e.get("SUMMARY")).startswith("Làm bù "))]
            check(f"{label}: titles say Nghỉ … or Làm bù …", not titled, f"{titled[:3]}")
            in_full = [str(e.get("UID")) for e in evs
                       if full_by_uid.get(str(e.get("UID"))) != (e["DTSTART"].dt, str(e.get("SUMMARY")))]
            check(f"{label}: every event is in the full feed with the same UID, date and summary", not in_full,
                  f"{in_full[:3]}")
            rows = sorted((e["DTSTART"].dt.isoformat(), e["DTEND"].dt.isoformat(), str(e.get("UID")),
                           str(e.get("SUMMARY"))) for e in evs)
    # For ical.js and khal: the days off as this parser read them (their dates checked above).
    (workdir / "expected-days-off.tsv").write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")

    # ---- each person's own feed: exactly that person's tasks
    for item in [p for p in args.people.split(",") if p]:
        person, _, url = item.partition("=")
        label = f"/calendar/me/<{person}>.ics"
        served = served_feed(label, url, workdir / f"served-person-{person}.ics")
        if served is None:
            continue
        headers, pbody, pcal = served
        check(f"{label}: Cache-Control private (a feed of one person)",
              headers.get("cache-control", "").startswith("private"), f"got {headers.get('cache-control')!r}")
        if pcal is None:
            continue
        evs = vevents(pcal)
        not_in_full = [str(e.get("UID")) for e in evs
                       if full_by_uid.get(str(e.get("UID"))) != (e["DTSTART"].dt, str(e.get("SUMMARY")))]
        check(f"{label}: every event is in the full feed with the same UID, date and summary",
              not not_in_full, f"{len(not_in_full)} not, e.g. {not_in_full[:3]}")
        other_stamp = [str(e.get("UID")) for e in evs
                       if e.get("DTSTAMP") is None or full_stamps.get(str(e.get("UID"))) != e["DTSTAMP"].dt]
        check(f"{label}: every DTSTAMP is the full feed's for the same event", not other_stamp,
              f"{len(other_stamp)} differ, e.g. {other_stamp[:3]}")
        mine = [(o, ref.person_tasks(o, person, schedule)) for o in occs]
        mine = [(o, ts) for o, ts in mine if ts]
        check(f"{label}: the person has tasks in these years (the shipped files changed?)", len(mine) > 3,
              f"{len(mine)} occurrences")
        # Which occurrences, how many alarms: one per reminder of each of their tasks (the YAML).
        want = ref.multiset((o.start, o.title, sum(len(schedule.trigger[t]) for t in ts)) for o, ts in mine)
        got = ref.multiset((e["DTSTART"].dt, str(e.get("SUMMARY")), len(e.walk("VALARM"))) for e in evs)
        check(f"{label}: exactly the occurrences that give {person} a task (by group, by id or `all`), "
              f"one VALARM per reminder ({sum(want.values())} occurrences)", got == want, ref.diff_text(want, got))
        # ... and as many as ngayle's planner gives that person (`ngayle upcoming`, whose instants are
        # the send times, moved off days off, so only their number is compared).
        theirs = collections.Counter((r.event_id, r.date) for r in reminders if r.person == person)
        want = ref.multiset((o.start, o.title, theirs[(o.event_id, o.start)]) for o, ts in mine)
        check(f"{label}: as many VALARMs per event as {person} has reminders in `ngayle upcoming`",
              got == want, ref.diff_text(want, got, limit=3))
        want = ref.multiset((o.start, o.title, tuple(sorted(x for t in ts for x in schedule.trigger[t]))) for o, ts in mine)
        got = ref.multiset((e["DTSTART"].dt, str(e.get("SUMMARY")),
                            tuple(sorted(a["TRIGGER"].dt for a in e.walk("VALARM") if a.get("TRIGGER") is not None
                                         and isinstance(a["TRIGGER"].dt, dt.timedelta))))
                           for e in evs)
        check(f"{label}: each VALARM's TRIGGER is its reminder's planned instant (`due` less each `remind`)",
              got == want and sum(len(k[2]) * n for k, n in want.items()) > 0, ref.diff_text(want, got, limit=3))
        # The text lists that person's tasks and no other ("• TITLE — hạn ..." per task).
        want = ref.multiset((o.start, o.title, tuple(sorted(schedule.title[t] for t in ts))) for o, ts in mine)
        got = ref.multiset((e["DTSTART"].dt, str(e.get("SUMMARY")),
                            tuple(sorted(ln[2:].split(" — hạn ")[0] for ln in str(e.get("DESCRIPTION", "")).split("\n")
                                         if ln.startswith("• "))))
                           for e in evs)
        check(f"{label}: each DESCRIPTION lists exactly {person}'s tasks", got == want, ref.diff_text(want, got, limit=3))
        alarm_text = [str(e.get("UID")) for e in evs
                      if any(" — hạn " not in str(a.get("DESCRIPTION", "")) for a in e.walk("VALARM"))]
        check(f"{label}: every VALARM's text has the deadline (`— hạn …`)", not alarm_text, f"{alarm_text[:3]}")
        token = url.rsplit("/", 1)[-1].removesuffix(".ics")
        wrong = url.replace(token, token[:-1] + ("a" if token[-1] != "a" else "b"))
        status, _, body = fetch(wrong)
        check(f"{label}: the token with one letter changed gives 404", status == 404, f"status {status}")
    return 1 if ref.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
