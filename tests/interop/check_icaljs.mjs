// Checks a served feed with ical.js, the iCalendar parser inside Thunderbird.
//
//   node check_icaljs.mjs FEED_URL EXPECTED_TSV FROM_YEAR TO_YEAR
//
// EXPECTED_TSV is written by expected.py from `ngayle events --format tsv` (start, exclusive end,
// event id, title). Prints one `PASS name` / `FAIL name: why` line per check; exits 1 on failure.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

const [url, expectedPath, fromYear, toYear] = process.argv.slice(2);
if (!toYear) {
  console.error("usage: node check_icaljs.mjs FEED_URL EXPECTED_TSV FROM_YEAR TO_YEAR");
  process.exit(2);
}
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) console.log(`PASS ${name}`);
  else {
    failed += 1;
    console.log(`FAIL ${name}: ${detail}`);
  }
}
function counter(items) {
  const m = new Map();
  for (const k of items) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}
function diff(want, got) {
  const missing = [];
  const extra = [];
  for (const [k, n] of want) for (let i = (got.get(k) ?? 0); i < n; i++) missing.push(k);
  for (const [k, n] of got) for (let i = (want.get(k) ?? 0); i < n; i++) extra.push(k);
  const parts = [];
  if (missing.length) parts.push(`${missing.length} missing, e.g. ${JSON.stringify(missing.sort().slice(0, 6))}`);
  if (extra.length) parts.push(`${extra.length} not expected, e.g. ${JSON.stringify(extra.sort().slice(0, 6))}`);
  return parts.join("; ");
}

const label = `ical.js ${new URL(url).pathname}`;
const resp = await fetch(url, { signal: AbortSignal.timeout(20000) });
const text = await resp.text();
check(`${label}: 200`, resp.status === 200, `status ${resp.status}`);

let comp;
try {
  comp = new ICAL.Component(ICAL.parse(text));
  check(`${label}: ICAL.parse accepts it`, comp.name === "vcalendar", `top component ${comp.name}`);
} catch (e) {
  check(`${label}: ICAL.parse accepts it`, false, `${e.name}: ${e.message}`);
  process.exit(1);
}

for (const [prop, want] of [
  ["version", "2.0"],
  ["calscale", "GREGORIAN"],
  ["method", "PUBLISH"],
  ["x-wr-timezone", "Asia/Ho_Chi_Minh"],
]) {
  const v = comp.getFirstPropertyValue(prop);
  check(`${label}: ${prop.toUpperCase()}:${want}`, String(v) === want, `got ${JSON.stringify(v)}`);
}
for (const prop of ["prodid", "x-wr-calname", "refresh-interval"]) {
  const p = comp.getFirstProperty(prop);
  check(`${label}: has ${prop.toUpperCase()}`, p !== null && String(p.getFirstValue()).length > 0, "missing");
}

const vevents = comp.getAllSubcomponents("vevent");
const events = vevents.map((v) => new ICAL.Event(v));
const uids = counter(events.map((e) => e.uid));
const dups = [...uids].filter(([, n]) => n > 1).map(([u]) => u);
check(`${label}: UIDs unique`, dups.length === 0 && !uids.has(null) && !uids.has(undefined), `duplicates ${dups.slice(0, 5)}`);

const notDate = events.filter((e) => !e.startDate?.isDate || !e.endDate?.isDate).map((e) => e.uid);
check(`${label}: start and end are all-day DATE values`, notDate.length === 0, `${notDate.length} not, e.g. ${notDate.slice(0, 3)}`);
const recurring = events.filter((e) => e.isRecurring()).map((e) => e.uid);
check(`${label}: no recurrence rules (one VEVENT per occurrence)`, recurring.length === 0, `${recurring.slice(0, 3)}`);

const expected = readFileSync(expectedPath, "utf8").split("\n").filter((l) => l.length > 0).map((l) => l.split("\t"));
const want = counter(expected.map(([start, end, , title]) => `${start}|${end}|${title}`));
const got = counter(
  events
    .filter((e) => e.startDate && e.endDate)
    .map((e) => `${e.startDate.toString()}|${e.endDate.toString()}|${e.summary}`),
);
check(
  `${label}: (start, end, summary) of ICAL.Event equal \`ngayle events\` for ${fromYear}-${toYear} (${expected.length} occurrences)`,
  diff(want, got) === "",
  diff(want, got),
);

// DTEND = DTSTART + the event's days: ical.js's duration agrees with the end date.
const badDur = events
  .filter((e) => e.startDate && e.endDate)
  .filter((e) => e.duration.toSeconds() <= 0 || e.duration.toSeconds() % 86400 !== 0)
  .map((e) => e.uid);
check(`${label}: every duration is a positive whole number of days`, badDur.length === 0, `${badDur.slice(0, 3)}`);

process.exit(failed ? 1 : 0);
