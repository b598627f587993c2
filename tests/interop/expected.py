"""What a feed must contain, worked out without ngayle's feed code.

The reference is `ngayle events --format tsv` for the feed's date range (never a hand-typed list):
one line per occurrence, `date event_id anniversary class official_title summary`, date = first
day; `summary` is the calendar title the feeds' SUMMARY must carry. The tsv has
no span, so each event's `days` (default 1) is read from the calendar YAML with PyYAML, and so
are the tasks and their `who`, to tell which occurrences give a group a task.

As a command it writes the expected occurrences for the other checkers (ical.js, khal):

    expected.py EVENTS_TSV CONFIG_YAML > expected.tsv      # start  end(exclusive)  event_id  title

and, with `--person ID`, only the occurrences that give that person a task (their own feed,
`/calendar/me/TOKEN.ics`); with `--events-tsv` too, as the lines of EVENTS_TSV themselves (the
input of the khal checker):

    expected.py EVENTS_TSV CONFIG_YAML --person ID [--events-tsv] > person.tsv
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import pathlib
import sys

import yaml

# Checks that failed so far, in this process (the checkers print PASS/FAIL lines through `check`).
FAILED = 0


def check(name: str, ok: bool, detail: str = "") -> bool:
    """Prints `PASS name` or `FAIL name: detail` (run.sh counts them) and returns `ok`."""
    global FAILED
    if ok:
        print(f"PASS {name}")
    else:
        FAILED += 1
        print(f"FAIL {name}: {detail}")
    sys.stdout.flush()
    return ok

ROUND_CLASSES = {"tron", "le5"}


@dataclasses.dataclass(frozen=True)
class Occurrence:
    start: dt.date
    end: dt.date  # exclusive, as DTEND;VALUE=DATE
    event_id: str
    anniversary: str
    klass: str
    title: str  # the calendar title: what SUMMARY says (the tsv's sixth column)


@dataclasses.dataclass
class Schedule:
    days: dict[str, int]  # event id -> span in days
    tasks_of_event: dict[str, tuple[list[str], list[str]]]  # id -> (tasks, round_tasks)
    who: dict[str, list[str]]  # task id -> group/person ids (or `all`)
    groups_of_person: dict[str, list[str]]
    trigger: dict[str, dt.timedelta]  # task id -> alarm offset from the event's first day, 00:00
    title: dict[str, str]  # task id -> title


def load_schedule(config_path: str | pathlib.Path) -> Schedule:
    config_path = pathlib.Path(config_path)
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    base = config_path.parent
    calendars = (base / config.get("calendars", "../calendars")).resolve()
    staff = yaml.safe_load((base / config.get("staff", "staff.yaml")).read_text(encoding="utf-8"))

    days: dict[str, int] = {}
    tasks_of_event: dict[str, tuple[list[str], list[str]]] = {}
    for layer in sorted(calendars.glob("*.yaml")):
        if layer.name == "tasks.yaml":
            continue
        doc = yaml.safe_load(layer.read_text(encoding="utf-8")) or {}
        for ev in doc.get("events") or []:
            days[ev["id"]] = int(ev.get("days", 1))
            tasks_of_event[ev["id"]] = (list(ev.get("tasks") or []), list(ev.get("round_tasks") or []))
    tasks_doc = yaml.safe_load((calendars / "tasks.yaml").read_text(encoding="utf-8"))
    who = {t["id"]: list(t.get("who") or []) for t in tasks_doc.get("tasks") or []}
    groups_of_person = {p["id"]: list(p.get("groups") or []) for p in staff.get("people") or []}
    send_at = str((config.get("reminders") or {}).get("send_at", "07:30"))
    trigger = {t["id"]: _triggers(t, send_at) for t in tasks_doc.get("tasks") or []}
    title = {t["id"]: str(t["title"]) for t in tasks_doc.get("tasks") or []}
    return Schedule(days, tasks_of_event, who, groups_of_person, trigger, title)


def _lead(text: str) -> tuple[str, int]:
    """`7d`/`2w` → ("d", days); `2h`/`30m` → ("m", minutes)."""
    text = text.strip()
    n, unit = int(text[:-1]), text[-1]
    return ("d", n * {"d": 1, "w": 7}[unit]) if unit in "dw" else ("m", n * {"h": 60, "m": 1}[unit])


def _hm(text: str) -> dt.timedelta:
    hh, mm = (int(x) for x in text.split(":"))
    return dt.timedelta(hours=hh, minutes=mm)


def _triggers(t: dict, send_at: str) -> tuple:
    """Each reminder's alarm, as a TRIGGER relative to the all-day start (its 00:00): the task's
    deadline (`due`: days from the event and a time; default the event day at `send_at`, or its
    same-day reminder's `at` when later) less each lead of `remind` (or the one of `before`): a
    lead in days on that many days before the deadline's day at `at`, one in hours or minutes
    exactly that long before the deadline."""
    leads = [_lead(str(x)) for x in (t["remind"] if "remind" in t else [t["before"]])]
    if not isinstance(t.get("remind", []), list):
        leads = [_lead(str(t["remind"]))]
    at = _hm(str(t.get("at", send_at)))
    days, time = 0, None
    for word in str(t.get("due", "")).split():
        if ":" in word:
            time = _hm(word)
        else:
            sign = -1 if word.startswith("-") else 1
            days = sign * _lead(word.lstrip("+-"))[1]
    if time is None:
        time = max(_hm(send_at), at) if ("d", 0) in leads else _hm(send_at)
    deadline = dt.timedelta(days=days) + time
    out = []
    for unit, n in leads:
        if unit == "d":
            out.append(min(dt.timedelta(days=days - n) + at, deadline))
        else:
            out.append(deadline - dt.timedelta(minutes=n))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Reminder:
    event_id: str
    date: dt.date  # the occurrence's first day
    task: str
    person: str
    trigger: dt.timedelta  # the instant it is due, from the first day's 00:00 in Vietnam


VIETNAM = dt.timezone(dt.timedelta(hours=7))


def _tsv_rows(path: str | pathlib.Path, ncols: int) -> list[list[str]]:
    """The non-empty lines of a tsv file, each split into exactly `ncols` columns."""
    rows = []
    for n, line in enumerate(pathlib.Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line:
            continue
        cols = line.split("\t")
        if len(cols) != ncols:
            raise ValueError(f"{path}:{n}: expected {ncols} tab-separated columns, got {len(cols)}: {line!r}")
        rows.append(cols)
    return rows


def read_upcoming_tsv(path: str | pathlib.Path) -> list[Reminder]:
    """`ngayle upcoming --format tsv`: `due_at event_id event_date task_id person_id email`, due_at
    RFC 3339 at +07:00 — the reminder plan, computed by ngayle's planner, not its feed writer."""
    out = []
    for cols in _tsv_rows(path, 6):
        due = dt.datetime.fromisoformat(cols[0])
        date = dt.date.fromisoformat(cols[2])
        start = dt.datetime.combine(date, dt.time(0, 0), VIETNAM)
        out.append(Reminder(cols[1], date, cols[3], cols[4], due - start))
    return out


def read_events_tsv(path: str | pathlib.Path, schedule: Schedule) -> list[Occurrence]:
    out = []
    for cols in _tsv_rows(path, 6):
        date, event_id, anniversary, klass, _official, title = cols
        start = dt.date.fromisoformat(date)
        if event_id not in schedule.days:
            raise ValueError(f"{path}: event id {event_id!r} (on {date}) not found in the calendar YAML")
        end = start + dt.timedelta(days=schedule.days[event_id])
        out.append(Occurrence(start, end, event_id, anniversary, klass, title))
    return out


def _tasks(occ: Occurrence, schedule: Schedule) -> list[str]:
    tasks, round_tasks = schedule.tasks_of_event[occ.event_id]
    return tasks + (round_tasks if occ.klass in ROUND_CLASSES else [])


def group_tasks(occ: Occurrence, group: str, schedule: Schedule) -> list[str]:
    """The tasks of this occurrence that are the group's: its `who` names the group, or is `all`
    (everyone, so every group). A task given to a person by id is that person's, not the group's.
    PRODUCT.md §5: a group feed has "the events that give this group a task", one VALARM per task."""
    return [t for t in _tasks(occ, schedule) if group in schedule.who.get(t, []) or "all" in schedule.who.get(t, [])]


def person_tasks(occ: Occurrence, person: str, schedule: Schedule) -> list[str]:
    """The tasks of this occurrence that are the person's: its `who` is `all`, names the person by
    id, or names a group the person is in (staff.yaml). A person's own feed has the events that
    give them a task, only those tasks in the text, one VALARM per reminder of each."""
    groups = set(schedule.groups_of_person.get(person, []))
    return [t for t in _tasks(occ, schedule)
            if {"all", person} & set(schedule.who.get(t, [])) or groups & set(schedule.who.get(t, []))]


def group_tasks_named(occ: Occurrence, group: str, schedule: Schedule) -> list[str]:
    """Only tasks whose `who` names the group itself; used to explain a mismatch."""
    return [t for t in _tasks(occ, schedule) if group in schedule.who.get(t, [])]


def group_tasks_with_members(occ: Occurrence, group: str, schedule: Schedule) -> list[str]:
    """Also tasks given by person id to a member of the group; used to explain a mismatch."""
    return [t for t in _tasks(occ, schedule)
            if group in schedule.who.get(t, []) or "all" in schedule.who.get(t, [])
            or any(group in schedule.groups_of_person.get(p, []) for p in schedule.who.get(t, []))]


def multiset(items) -> collections.Counter:
    return collections.Counter(items)


def diff_text(expected: collections.Counter, got: collections.Counter, limit: int = 8) -> str:
    missing = list((expected - got).elements())
    extra = list((got - expected).elements())
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing from the feed, e.g. {sorted(missing, key=str)[:limit]}")
    if extra:
        parts.append(f"{len(extra)} not expected, e.g. {sorted(extra, key=str)[:limit]}")
    return "; ".join(parts) or "equal"


def main(argv: list[str]) -> int:
    args = argv[1:]
    raw = "--events-tsv" in args
    args = [a for a in args if a != "--events-tsv"]
    person = None
    if "--person" in args:
        i = args.index("--person")
        if i + 1 >= len(args):
            print(__doc__, file=sys.stderr)
            return 2
        person = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2 or (raw and person is None):
        print(__doc__, file=sys.stderr)
        return 2
    schedule = load_schedule(args[1])
    if person is not None and person not in schedule.groups_of_person:
        print(f"no person {person!r} in the staff", file=sys.stderr)
        return 2
    lines = [ln for ln in pathlib.Path(args[0]).read_text(encoding="utf-8").splitlines() if ln]
    for line, o in zip(lines, read_events_tsv(args[0], schedule)):
        if person is not None and not person_tasks(o, person, schedule):
            continue
        if raw:
            sys.stdout.write(line + "\n")
        else:
            sys.stdout.write(f"{o.start.isoformat()}\t{o.end.isoformat()}\t{o.event_id}\t{o.title}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
