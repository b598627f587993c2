"""Checks what Postfix delivered into the Maildir against what `ngayle upcoming` promised.

Independent of ngayle: the messages are read with Python's standard `mailbox` and `email`
packages, the project files with PyYAML, and the expected texts are rebuilt here from the
templates' documented shape. Prints `PASS name` / `FAIL name: why` per check; exits 1 if any
check failed.
"""

import argparse
import collections
import datetime
import email
import email.policy
import glob
import html
import mailbox
import os
import re
import sys

import yaml

VIETNAM = datetime.timezone(datetime.timedelta(hours=7))
WEEKDAYS = ["Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật"]
# delivery.rs: a reminder sent more than this after its due time is "late" (subject and body).
LATE_AFTER = datetime.timedelta(minutes=15)

failed = 0


def check(name, problems):
    """One check: PASS when `problems` is empty, else FAIL with the first few."""
    global failed
    if problems:
        failed += 1
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        print(f"FAIL {name}: " + "; ".join(str(p) for p in problems[:3]) + more)
    else:
        print(f"PASS {name}")


def duration(text):
    m = re.fullmatch(r"(\d+)([dhwm])", str(text).strip())
    if not m:
        raise ValueError(f"duration {text!r}")
    n, unit = int(m.group(1)), m.group(2)
    return {"d": datetime.timedelta(days=n), "h": datetime.timedelta(hours=n),
            "w": datetime.timedelta(weeks=n), "m": datetime.timedelta(minutes=n)}[unit]


def due_text(instant):
    """`item.due` as delivery.rs formats it: 07:00 Thứ Hai 29/04/2024 (UTC+7)."""
    t = instant.astimezone(VIETNAM)
    return f"{t:%H:%M} {WEEKDAYS[t.weekday()]} {t:%d/%m/%Y}"


def dmy(iso_date):
    return datetime.date.fromisoformat(iso_date).strftime("%d/%m/%Y")


def dmy_short(iso_date):
    d = datetime.date.fromisoformat(iso_date)
    return f"{d.day}/{d.month}/{d.year}"


def items_of_text(text):
    """The numbered items of the plain-text part: [(title, ngày line, hạn)], lines unwrapped."""
    items = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^\d+\. (.*)$", lines[i])
        if not m:
            i += 1
            continue
        title = m.group(1)
        i += 1
        # A long title is wrapped onto unindented lines up to the item's first field.
        while i < len(lines) and not lines[i].startswith("   "):
            title += " " + lines[i]
            i += 1
        fields = {}
        while i < len(lines) and lines[i].startswith("   "):
            f = re.match(r"^   ([^:]+): (.*)$", lines[i])
            if f:
                fields[f.group(1)] = f.group(2)
            i += 1
        # "Nhắc lúc" is when the reminder was due to go out ("Hạn" is the task's deadline).
        items.append((title, fields.get("Ngày", ""), fields.get("Nhắc lúc", "")))
    return items


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--upcoming", required=True, help="ngayle upcoming --format tsv")
    ap.add_argument("--now", required=True, help="the --now of send-due (RFC 3339)")
    ap.add_argument("--project", required=True, help="folder with config/ and calendars/")
    ap.add_argument("--public-url", required=True)
    ap.add_argument("--token", required=True, help="NGAYLE_FEED_TOKEN of the run")
    ap.add_argument("--feeds", required=True, help="ngayle feeds --format tsv (kind id name email url)")
    ap.add_argument("--send-output", required=True, help="stdout of send-due")
    a = ap.parse_args()

    config = yaml.safe_load(open(os.path.join(a.project, "config/ngayle.yaml"), encoding="utf-8"))
    staff = yaml.safe_load(open(os.path.join(a.project, "config/staff.yaml"), encoding="utf-8"))
    people = {p["id"]: p for p in staff["people"]}
    own_feed = {}
    for line in open(a.feeds, encoding="utf-8").read().splitlines():
        kind, fid, _name, _email, url = line.split("\t")
        if kind == "person":
            own_feed[fid] = url
    tasks = {}
    event_names = collections.defaultdict(set)
    for path in sorted(glob.glob(os.path.join(a.project, "calendars/*.yaml"))):
        doc = yaml.safe_load(open(path, encoding="utf-8")) or {}
        for t in doc.get("tasks") or []:
            tasks[t["id"]] = t["title"]
        for e in doc.get("events") or []:
            if "name" in e:
                event_names[e["id"]].add(e["name"])
    now = datetime.datetime.fromisoformat(a.now)
    catch_up = duration(config["reminders"]["catch_up"])

    # What was promised: the rows of `upcoming` due in (now - catch_up, now], one email per
    # person and due instant (older ones are skipped, not sent; later ones are not due yet).
    promised = collections.defaultdict(list)
    for line in open(a.upcoming, encoding="utf-8").read().splitlines():
        due_at, event_id, event_date, task_id, person_id, addr = line.split("\t")
        due = datetime.datetime.fromisoformat(due_at)
        if now - catch_up <= due <= now:
            promised[(addr.lower(), due)].append(
                {"event": event_id, "date": event_date, "task": task_id, "person": person_id})
    rows = [r for batch in promised.values() for r in batch]
    recipients = {addr for addr, _ in promised}
    events = {r["event"] for r in rows}
    check(f"the test is a real burst: {len(promised)} emails, {len(rows)} reminders, "
          f"{len(recipients)} recipients, {len(events)} events (at least 5 recipients, 2 events)",
          [] if len(recipients) >= 5 and len(events) >= 2 else ["too small"])

    # What arrived. Maildir files are read as bytes and parsed by `email` (modern policy: decodes
    # RFC 2047 headers, transfer encodings and charsets).
    box = mailbox.Maildir(a.maildir, factory=None, create=False)
    messages = []
    for key in box.keys():
        raw = box.get_bytes(key)
        messages.append((key, raw, email.message_from_bytes(raw, policy=email.policy.default)))

    problems = {name: [] for name in [
        "envelope", "to", "from", "subject-encoded", "subject", "greeting", "items", "due",
        "html", "feed", "ack", "late"]}
    got = collections.Counter()
    unexpected = []
    for key, raw, msg in messages:
        delivered_to = msg.get_all("Delivered-To") or []
        original_to = msg.get_all("X-Original-To") or []
        envelope = {str(v).strip().lower() for v in delivered_to + original_to}
        to = msg["To"].addresses if msg["To"] else ()
        where = f"{key} (To {msg['To']})"
        if len(delivered_to) != 1 or len(original_to) != 1 or len(envelope) != 1:
            problems["envelope"].append(f"{where}: Delivered-To {delivered_to}, X-Original-To {original_to}")
            continue
        (rcpt,) = envelope
        if len(to) != 1 or to[0].addr_spec.lower() != rcpt:
            problems["to"].append(f"{where}: To {msg['To']} but the envelope recipient is {rcpt}")

        text_part = msg.get_body(preferencelist=("plain",))
        html_part = msg.get_body(preferencelist=("html",))
        text = text_part.get_content().replace("\r\n", "\n") if text_part else ""
        page = html_part.get_content() if html_part else ""
        items = items_of_text(text)
        dues = {h for _, _, h in items}
        # Which promised email is it? The one to this envelope recipient due at the time it names.
        batch_key = next((k for k in promised if k[0] == rcpt and {due_text(k[1])} == dues), None)
        if batch_key is None:
            unexpected.append(f"{where}: deadlines {sorted(dues)}, subject {msg['Subject']}")
            continue
        got[batch_key] += 1
        batch = promised[batch_key]
        due = batch_key[1]
        person = people[batch[0]["person"]]
        late = now - due > LATE_AFTER

        if to and to[0].display_name != person["name"]:
            problems["to"].append(f"{where}: display name {to[0].display_name!r}, staff.yaml says {person['name']!r}")
        sender = msg["From"].addresses[0].addr_spec if msg["From"] else None
        if sender != re.search(r"<(.+)>", config["mail"]["from"]).group(1):
            problems["from"].append(f"{where}: From {msg['From']}")
        raw_subject = re.search(rb"^Subject:(.*(?:\r?\n[ \t].*)*)", raw, re.M | re.I)
        if not raw_subject or not raw_subject.group(1).isascii() or b"=?" not in raw_subject.group(1):
            problems["subject-encoded"].append(f"{where}: raw {raw_subject.group(1)[:60] if raw_subject else None!r}")

        # The subject (subject.txt.j2): "[Nhắc việc] " or "[Nhắc việc — gửi muộn] ", the batch's
        # task titles, the first event's name and short date, and "và N ngày lễ khác".
        subject = str(msg["Subject"])
        titles = [tasks[r["task"]] for r in batch]
        batch_events = {r["event"] for r in batch}
        prefix = "[Nhắc việc — gửi muộn] " if late else "[Nhắc việc] "
        why = []
        if not subject.startswith(prefix):
            why.append(f"does not start with {prefix!r}")
        # The subject names the nearest deadline's task (maybe shortened with "…") and fits in
        # 90 characters ("và N việc khác" for the rest).
        if not any(t[:20] in subject for t in titles):
            why.append(f"names none of the tasks {sorted(set(titles))}")
        if len(subject) > 90:
            why.append(f"{len(subject)} characters")
        if why:
            problems["subject"].append(f"{where}: {subject!r} " + ", ".join(why))

        if not text.startswith(f"Kính gửi đồng chí {person['name']}"):
            problems["greeting"].append(f"{where}: {text[:60]!r}")

        # The items: one per promised reminder, with its task, the event's weekday and date, and
        # the deadline "Hạn: HH:MM Thứ … DD/MM/YYYY" of `upcoming`'s due_at.
        want = collections.Counter(
            (tasks[r["task"]], f"{WEEKDAYS[datetime.date.fromisoformat(r['date']).weekday()]} {dmy(r['date'])}")
            for r in batch)
        have = collections.Counter((t, " ".join(n.split(" ")[:3])) for t, n, _ in items)
        if want != have:
            problems["items"].append(f"{where}: items {sorted(have.elements())}, promised {sorted(want.elements())}")
        if [h for _, _, h in items] != [due_text(due)] * len(batch):
            problems["due"].append(f"{where}: Hạn {[h for _, _, h in items]}, promised {due_text(due)} x {len(batch)}")
        html_titles = [html.unescape(t) for t in re.findall(r'font-size: 18px; font-weight: bold;[^"]*">(.*?)</div>', page)]
        html_dues = [html.unescape(t) for t in re.findall(r'>Nhắc lúc</div>\s*<div class="value">(.*?)</div>', page)]
        if sorted(html_titles) != sorted(titles) or html_dues != [due_text(due)] * len(batch):
            problems["html"].append(f"{where}: HTML items {html_titles} due {html_dues}")

        # The feed link: the reader's own feed (`ngayle feeds`), under the public URL, without
        # the shared feeds' token.
        feed = own_feed.get(batch[0]["person"], "")
        text_all = re.findall(r"https?://\S+", text)
        html_all = [html.unescape(h) for h in re.findall(r'href="([^"]*)"', page)]
        ack_prefix = f"{a.public_url}/xong/"
        text_links = [u for u in text_all if not u.startswith(ack_prefix)]
        html_links = [u for u in html_all if not u.startswith(ack_prefix)]
        if (not feed.startswith(f"{a.public_url}/calendar/me/") or a.token in feed
                or text_links != [feed] or html_links != [feed]):
            problems["feed"].append(f"{where}: text links {text_links}, HTML links {html_links}, want {feed!r}")
        # The "Đã xong" links: for each reminder, one of this person and task occurrence
        # (EVENT.YYYYMMDD.TASK.PERSON.LASTDAY.TAG) and its "Chưa làm được" twin, in both parts.
        want_acks = sorted(
            f"{ack_prefix}{r['event']}.{r['date'].replace('-', '')}.{r['task']}.{r['person']}."
            for r in batch)
        for part, links in (("text", text_all), ("HTML", html_all)):
            done = [u for u in links if u.startswith(ack_prefix) and not u.endswith("?ket_qua=chua")]
            heads = sorted(u.rsplit(".", 2)[0] + "." for u in done)
            twins = sorted(u for u in links if u.endswith("?ket_qua=chua"))
            if heads != want_acks or twins != sorted(u + "?ket_qua=chua" for u in done):
                problems["ack"].append(f"{where}: {part} links {done}, want one per {want_acks}")

        says_late = "gửi muộn hơn dự kiến" in text
        if says_late != late:
            problems["late"].append(f"{where}: due {due_text(due)}, sent at {due_text(now)}, the text says late: {says_late}")

    n_late = sum(1 for (_, due) in promised if now - due > LATE_AFTER)
    check(f"{len(messages)} messages arrived for {len(promised)} promised emails", [] if len(messages) == len(promised) else [f"{len(messages)} != {len(promised)}"])
    check("every message has one envelope recipient (Delivered-To, X-Original-To)", problems["envelope"])
    missing = [f"{addr} due {due_text(due)}" for (addr, due) in promised if got[(addr, due)] == 0]
    twice = [f"{addr} due {due_text(due)}: {n} times" for (addr, due), n in got.items() if n > 1]
    check("every promised (person, due instant) arrived", missing)
    check("no (person, due instant) arrived twice", twice)
    check("no message arrived that was not promised", unexpected)
    check("To is the envelope recipient, with the person's Vietnamese name", problems["to"])
    check(f"From is the configured sender ({config['mail']['from']})", problems["from"])
    check("the subject is RFC 2047-encoded on the wire (ASCII only)", problems["subject-encoded"])
    check(f"the decoded subject is the template's: tasks, event and date, [Nhắc việc — gửi muộn] for the {n_late} late emails", problems["subject"])
    check("the text greets the person by name", problems["greeting"])
    check("the text lists each promised reminder: task title, event weekday and date", problems["items"])
    check("each deadline (Hạn) in the text is upcoming's due_at (HH:MM Thứ … DD/MM/YYYY)", problems["due"])
    check("the HTML part has the same tasks and deadlines", problems["html"])
    check("the one feed link (text and HTML) is the reader's own feed, {public_url}/calendar/me/TOKEN.ics (ngayle feeds)",
          problems["feed"])
    check("each reminder has its own signed \"Đã xong\" link and \"Chưa làm được\" twin (text and HTML)",
          problems["ack"])
    check("the late notice is in exactly the late emails", problems["late"])

    out = open(a.send_output, encoding="utf-8").read()
    late_rows = sum(len(b) for (_, due), b in promised.items() if now - due > LATE_AFTER)
    said = f"Đã gửi {len(promised)} thư ({len(rows)} lời nhắc, {late_rows} muộn)"
    check(f"send-due says: {said}", [] if said in out else [out.strip()])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
