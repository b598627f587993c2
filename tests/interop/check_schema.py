"""The JSON Schemas in schema/ against the shipped files and against `ngayle check`.

    python check_schema.py NGAYLE_BINARY REPOSITORY_ROOT WORK_FOLDER

1. Every schema is a valid draft 2020-12 schema; every shipped file names its schema on its first
   line (`# yaml-language-server: $schema=../schema/NAME.schema.json`, the path resolving).
2. Every shipped file validates against its schema.
3. Mutated copies of the shipped project, one mistake each: those a schema can express are refused
   by the schema AND by `ngayle check`; those it cannot (cross-file references, unique ids, leap
   years, ranges) are accepted by the schema and refused by `ngayle check`: only ngayle check can
   see them.

The files are read as YAML 1.2 (the core schema), as serde_yaml and the VS Code YAML extension read
them: `off`, `yes` are strings, `07:30` is a string, `2024-11-01` is a string. PyYAML's default is
YAML 1.1, where all three are something else.

Prints `PASS name` / `FAIL name: why` per check.
"""

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

BIN, ROOT, WORK = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
SCHEMAS = ROOT / "schema"
FAILED = 0


def report(ok, name, why=""):
    global FAILED
    if ok:
        print(f"PASS {name}")
    else:
        FAILED += 1
        print(f"FAIL {name}: {why}")


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema's implicit types only (null, true/false, ints,
    floats); everything else, timestamps and sexagesimal numbers included, is a string."""


Yaml12Loader.yaml_implicit_resolvers = {}
for tag, pattern, first in [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
]:
    Yaml12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(pattern), list(first))


def construct_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # 1.2: a leading 0 is not octal


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", construct_int)


def load(text):
    return yaml.load(text, Loader=Yaml12Loader)


def schema_name(rel):
    """The schema of a file, by its path relative to the repository root."""
    if rel == "config/ngayle.yaml":
        return "ngayle"
    if rel == "config/staff.yaml":
        return "staff"
    if rel == "calendars/tasks.yaml":
        return "tasks"
    if rel == "calendars/ngay-nghi.yaml":
        return "ngay-nghi"
    return "layer"


def validator(name):
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def problems(name, data):
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:160]}"
        for e in validator(name).iter_errors(data)
    ]


SHIPPED = ["config/ngayle.yaml", "config/staff.yaml"] + sorted(
    f"calendars/{p.name}" for p in (ROOT / "calendars").glob("*.yaml")
)

# ---- 1. the schemas themselves, and the first line of each shipped file
for path in sorted(SCHEMAS.glob("*.schema.json")):
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        ok = schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema"
        report(ok, f"schema/{path.name} is a valid JSON Schema draft 2020-12", schema.get("$schema"))
    except (ValueError, jsonschema.SchemaError) as e:
        report(False, f"schema/{path.name} is a valid JSON Schema draft 2020-12", str(e)[:300])

for rel in SHIPPED:
    first = (ROOT / rel).read_text(encoding="utf-8").split("\n", 1)[0]
    want = f"# yaml-language-server: $schema=../schema/{schema_name(rel)}.schema.json"
    target = (ROOT / rel).parent / first.removeprefix("# yaml-language-server: $schema=")
    report(
        first == want and target.is_file(),
        f"{rel} names its schema on its first line ({schema_name(rel)})",
        f"first line {first!r}, want {want!r}",
    )

# ---- 2. every shipped file validates
for rel in SHIPPED:
    data = load((ROOT / rel).read_text(encoding="utf-8"))
    bad = problems(schema_name(rel), data)
    report(not bad, f"{rel} validates against schema/{schema_name(rel)}.schema.json", "; ".join(bad[:5]))


# ---- 3. one mistake each, on a copy of the shipped project
def first(items, key):
    """The first item of a list that has `key`."""
    return next(i for i in items if key in i)


def event(d):
    return d["events"][0]


# (what, file, the mistake, the schema refuses it: True, or why only ngayle check can see it,
#  what ngayle check says)
CASES = [
    ("an unknown key in an event", "calendars/national.yaml",
     lambda d: event(d).update(nmae="x"), True, "khóa `nmae` không dùng được"),
    ("an unknown key at the top of tasks.yaml", "calendars/tasks.yaml",
     lambda d: d.update(task=[]), True, "khóa `task` không dùng được"),
    ("an unknown key in a group", "config/staff.yaml",
     lambda d: d["groups"][0].update(mane="x"), True, "khóa `mane` không dùng được"),
    ("an unknown key in config/ngayle.yaml", "config/ngayle.yaml",
     lambda d: d["reminders"].update(sendat="07:00"), True, "khóa `sendat` không dùng được"),
    ("a bad event id", "calendars/national.yaml",
     lambda d: event(d).update(id="Giỗ Tổ"), True, "mã `Giỗ Tổ` không hợp lệ"),
    ("a bad group id", "config/staff.yaml",
     lambda d: d["groups"][0].update(id="ban_giam_hieu"), True, "ban_giam_hieu"),
    ("a bad date 31/2", "calendars/national.yaml",
     lambda d: first(d["events"], "date").update(date="31/2"), True, "ngày 31/2 không tồn tại"),
    ("a bad date 31/4", "calendars/national.yaml",
     lambda d: first(d["events"], "date").update(date="31/4"), True, "ngày 31/4 không tồn tại"),
    ("a bad month 1/13", "calendars/national.yaml",
     lambda d: first(d["events"], "date").update(date="1/13"), True, "tháng 13 không tồn tại"),
    ("a bad lunar month 10/13", "calendars/national.yaml",
     lambda d: first(d["events"], "lunar").update(lunar="10/13"), True, "tháng âm lịch 13 không tồn tại"),
    ("a lunar date with a year", "calendars/national.yaml",
     lambda d: first(d["events"], "lunar").update(lunar="10/3/2024"), True, "có năm"),
    ("both date and lunar", "calendars/national.yaml",
     lambda d: first(d["events"], "date").update(lunar="1/1"), True, "chỉ có một trong hai"),
    ("no date", "calendars/national.yaml",
     lambda d: first(d["events"], "date").pop("date"), True, "thiếu ngày"),
    ("a bad duration unit 1 tuan", "calendars/tasks.yaml",
     lambda d: first(d["tasks"], "before").update(before="1 tuan"), True, "có phải là `tuần`?"),
    ("a bad duration unit 2x in remind", "calendars/tasks.yaml",
     lambda d: first(d["tasks"], "remind").update(remind=["2x"]), True, "thời gian nhắc `2x` không hợp lệ"),
    ("an hour lead in before (days only)", "calendars/tasks.yaml",
     lambda d: first(d["tasks"], "before").update(before="2 giờ"), True, "`giờ` không dùng được"),
    ("both remind and before", "calendars/tasks.yaml",
     lambda d: first(d["tasks"], "before").update(remind=["1d"]), True, "có cả `remind` và `before`"),
    ("a due without a sign", "calendars/tasks.yaml",
     lambda d: d["tasks"][0].update(due="1d 17:00"), True, "là trước hay sau ngày lễ?"),
    ("a wrong move", "calendars/tasks.yaml",
     lambda d: d["tasks"][0].update(move="sideways"), True, "`move: sideways` không hợp lệ"),
    ("a bad time of day in at", "calendars/tasks.yaml",
     lambda d: d["tasks"][0].update(at="7h30"), True, "giờ `7h30` không hợp lệ"),
    ("no who", "calendars/tasks.yaml",
     lambda d: d["tasks"][0].pop("who"), True, "thiếu `who`"),
    ("a wrong category", "calendars/national.yaml",
     lambda d: event(d).update(category="holidays"), True, "loại `holidays` không có"),
    ("a wrong only", "calendars/national.yaml",
     lambda d: first(d["events"], "since").update(only="tron"), True, "`only: tron` không hợp lệ"),
    ("only round without since", "calendars/national.yaml",
     lambda d: (first(d["events"], "date").pop("since", None),
                first(d["events"], "date").update(only="round")), True, "`only: round` cần `since`"),
    ("a wrong day_off", "calendars/national.yaml",
     lambda d: event(d).update(day_off="yes"), True, "`day_off: yes` không hợp lệ"),
    ("days 0", "calendars/national.yaml",
     lambda d: event(d).update(days=0), True, "số ngày `0` không hợp lệ"),
    ("a wrong holiday id", "calendars/ngay-nghi.yaml",
     lambda d: d["decisions"][0].update(holiday="tet-am-lich"), True, "không có ngày lễ `tet-am-lich`"),
    ("a bad day in off", "calendars/ngay-nghi.yaml",
     lambda d: d["decisions"][0].update(off="30/2..3/3"), True, "30/2"),
    ("a year out of range", "calendars/ngay-nghi.yaml",
     lambda d: d["decisions"][0].update(year=3000), True, "không phải một năm từ 1900 đến 2199"),
    ("a wrong weekday", "config/ngayle.yaml",
     lambda d: d["reminders"].update(workdays=["mon", "funday"]), True, "`funday` không phải tên ngày"),
    ("a bad send_at", "config/ngayle.yaml",
     lambda d: d["reminders"].update(send_at="7h30"), True, "giờ `7h30` không hợp lệ"),
    ("another time zone", "config/ngayle.yaml",
     lambda d: d.update(timezone="Asia/Bangkok"), True, "múi giờ `Asia/Bangkok` không được hỗ trợ"),
    ("warn_shrink without %", "config/ngayle.yaml",
     lambda d: d.setdefault("reload", {}).update(warn_shrink="20"), True, "không phải tỉ lệ phần trăm"),
    ("an email without @", "config/staff.yaml",
     lambda d: d["people"][0].update(email="an.example.org"), True, "không phải địa chỉ email"),
    ("a control character in a name", "calendars/national.yaml",
     lambda d: event(d).update(name="Ngày\x1b lễ"), True, "ESC"),
    # What only ngayle check can see: the schema accepts these.
    ("an event naming a task that does not exist", "calendars/national.yaml",
     lambda d: first(d["events"], "tasks").update(tasks=["khong-co-viec"]),
     "a reference to tasks.yaml (another file)", "không có việc `khong-co-viec` trong tasks.yaml"),
    ("a task for someone not in staff.yaml", "calendars/tasks.yaml",
     lambda d: d["tasks"][0].update(who=["khong-co-ai"]),
     "a reference to config/staff.yaml (another file)", "không có nhóm hay người nào mã `khong-co-ai`"),
    ("a person in a group that does not exist", "config/staff.yaml",
     lambda d: d["people"][0].update(groups=["khong-co-nhom"]),
     "a reference to another list", "không có nhóm `khong-co-nhom`"),
    ("two tasks with one id", "calendars/tasks.yaml",
     lambda d: d["tasks"][1].update(id=d["tasks"][0]["id"]),
     "ids unique (uniqueItems cannot look at one key of objects)", "bị trùng"),
    ("since in the future", "calendars/national.yaml",
     lambda d: first(d["events"], "since").update(since=2999),
     "depends on today's date", "ở tương lai"),
    ("29/2 since a common year", "calendars/national.yaml",
     lambda d: first(d["events"], "since").update(date="29/2", since=1983),
     "a leap year of `since`, another key", "không nhuận"),
    ("day_off A..B with A after B", "calendars/national.yaml",
     lambda d: event(d).update(day_off="3..1"),
     "an order between two numbers in one string", "3 ở sau 1"),
    ("a days-off range longer than 31 days", "calendars/ngay-nghi.yaml",
     lambda d: d["decisions"][0].update(off="1/1..28/2"),
     "a length between two dates", "dài quá 31 ngày"),
    ("a lead longer than a year", "calendars/tasks.yaml",
     lambda d: first(d["tasks"], "before").update(before="400d"),
     "a number's range across units (kept permissive)", "dài quá một năm"),
]

# Forms the resolver accepts that the shipped files do not use: the schema must accept them too
# (it is not stricter than ngayle check), and so does check.
ACCEPTED = [
    ("Vietnamese units in before, remind and due", "calendars/tasks.yaml",
     lambda d: (first(d["tasks"], "before").update(before="1 tuần"),
                first(d["tasks"], "remind").update(remind=["3 ngày", "2 giờ", "30 phút", "1 Tuần"],
                                                   due="-1 ngày 17:00"))),
    ("one lead without a list, due after the event, move keep and later", "calendars/tasks.yaml",
     lambda d: (first(d["tasks"], "remind").update(remind="2w", due="+2d"),
                d["tasks"][0].update(move="keep"), d["tasks"][-1].update(move="later"))),
    ("a due that is only a time, and 0d", "calendars/tasks.yaml",
     lambda d: (first(d["tasks"], "before").update(due="17:00"), d["tasks"][-1].update(due="0d"))),
    ("one-off dates D/M/YYYY and YYYY-MM-DD, days, day_off true and -1..3", "calendars/national.yaml",
     lambda d: (d["events"].append({"id": "thu-mot-lan", "name": "Thử một lần", "date": "1/11/2024",
                                    "days": 2, "day_off": True, "category": "other"}),
                d["events"].append({"id": "thu-iso", "name": "Thử ISO", "date": "2024-11-02",
                                    "day_off": "-1..+3", "tasks": "treo-co", "note": "hai\ndòng"}))),
    ("29/2 every year, a lunar 30/12", "calendars/national.yaml",
     lambda d: d["events"].extend([{"id": "thu-29-2", "name": "Thử 29/2", "date": "29/2", "since": 1980},
                                   {"id": "thu-30-12", "name": "Thử 30 tháng Chạp", "lunar": "30/12"}])),
    ("a decision with a list of days and holidays, work and cancel", "calendars/ngay-nghi.yaml",
     lambda d: d["decisions"].append({"year": 2030, "holiday": ["30-4", "1-5"],
                                      "off": ["27/4/2030", "29/4..1/5"], "work": "4/5", "cancel": []})),
    ("workdays in capitals, a single one, warn_shrink and max_connections", "config/ngayle.yaml",
     lambda d: (d["reminders"].update(workdays=["Mon", "TUE", "wed", "thu", "fri", "sat"], catch_up="12 giờ",
                                      lease="90s"),
                d.update(reload={"warn_shrink": "35%"}, shutdown_grace="30 giây"),
                d["http"].update(max_connections=100, feed_token="0123456789abcdef0123"))),
    ("a person in one group written without a list", "config/staff.yaml",
     lambda d: d["people"][0].update(groups=d["groups"][0]["id"])),
]

shipped = {rel: load((ROOT / rel).read_text(encoding="utf-8")) for rel in SHIPPED}
for i, (what, rel, mistake, schema_refuses, said) in enumerate(CASES):
    data = copy.deepcopy(shipped[rel])
    try:
        mistake(data)
    except (StopIteration, KeyError, IndexError) as e:
        report(False, f"mistake '{what}' applies to the shipped {rel}", f"nothing to change ({e!r})")
        continue
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False)
    # What an editor sees: the written file read back as YAML 1.2.
    bad = problems(schema_name(rel), load(text))
    if schema_refuses is True:
        report(bool(bad), f"schema refuses {what} ({rel})", "the schema accepts it")
    else:
        report(not bad, f"schema accepts {what} ({rel}): only ngayle check can see this — {schema_refuses}",
               "; ".join(bad[:3]))
    project = WORK / f"case-{i:02}"
    shutil.rmtree(project, ignore_errors=True)
    for folder in ("config", "calendars"):
        shutil.copytree(ROOT / folder, project / folder)
    (project / rel).write_text(text, encoding="utf-8")
    run = subprocess.run([BIN, "--config", str(project / "config/ngayle.yaml"), "check"],
                         capture_output=True, text=True, timeout=60)
    out = run.stdout + run.stderr
    located = any(line.startswith(str(project / rel)) or line.startswith(rel) for line in out.splitlines())
    report(run.returncode != 0 and said in out and "lỗi" in out,
           f"ngayle check refuses {what} ({rel}: “{said}”)",
           f"exit {run.returncode}, located in {rel}: {located}, output: {out.strip()[:400]!r}")


def check(project):
    run = subprocess.run([BIN, "--config", str(project / "config/ngayle.yaml"), "check"],
                         capture_output=True, text=True, timeout=60)
    return run.returncode, run.stdout + run.stderr


for i, (what, rel, change) in enumerate(ACCEPTED):
    data = copy.deepcopy(shipped[rel])
    change(data)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False)
    bad = problems(schema_name(rel), load(text))
    report(not bad, f"schema accepts {what} ({rel})", "; ".join(bad[:3]))
    project = WORK / f"accepted-{i:02}"
    shutil.rmtree(project, ignore_errors=True)
    for folder in ("config", "calendars"):
        shutil.copytree(ROOT / folder, project / folder)
    (project / rel).write_text(text, encoding="utf-8")
    rc, out = check(project)
    report(rc == 0, f"ngayle check accepts {what} ({rel})", f"exit {rc}: {out.strip()[:400]!r}")

sys.exit(1 if FAILED else 0)
