#!/usr/bin/env bash
# Interoperability harness: runs the real `ngayle serve` on a copy of the shipped config and
# calendars, then reads its feeds with independent parsers (Python icalendar and
# recurring-ical-events, ical.js from Thunderbird) and a real client (vdirsyncer into a folder,
# khal on that folder). The reference for every comparison is `ngayle events --format tsv` for
# the same range. It also checks the JSON Schemas in schema/ against the shipped files and
# `ngayle check` (check_schema.py, with Python jsonschema; check_schema_patterns.mjs: as JavaScript
# compiles the patterns, as VS Code does).
#
#   bash tests/interop/run.sh [NGAYLE_BINARY]        # default target/debug/ngayle
#
# Installs what it needs on first use: a Python venv at $NGAYLE_INTEROP_VENV (default
# /opt/ngayle-interop) from requirements.txt, and ical.js with `npm ci` into
# tests/interop/node_modules. Prints `PASS name` / `FAIL name: why` per check and ends with the
# line `N passed, N failed`; exits 1 if anything failed. Set NGAYLE_INTEROP_KEEP=1 to keep the
# temp folder (it is kept anyway when a check failed). Traffic goes only to 127.0.0.1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=${NGAYLE_INTEROP_VENV:-/opt/ngayle-interop}
PY="$VENV/bin/python"
BIN=${1:-target/debug/ngayle}
if [[ "$BIN" != /* ]]; then # relative: to the current folder, else to the repository root
  [[ -e "$BIN" ]] || BIN="$ROOT/$BIN"
  BIN="$(cd "$(dirname "$BIN")" 2>/dev/null && pwd || dirname "$BIN")/$(basename "$BIN")"
fi
unset NGAYLE_CONFIG
export PYTHONDONTWRITEBYTECODE=1
START_TS=$(date +%s)

PASSED=0
FAILED=0
SUMMARY_DONE=0
SERVER_PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ngayle-interop.XXXXXX")

pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1"; FAILED=$((FAILED + 1)); }
expect() { # expect NAME COMMAND... : one check from a command's exit status
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

summary() {
  SUMMARY_DONE=1
  if [[ $FAILED != 0 || "${NGAYLE_INTEROP_KEEP:-0}" == 1 ]]; then
    echo "interop: $(($(date +%s) - START_TS)) s; logs and feeds kept in $WORK"
  else
    echo "interop: $(($(date +%s) - START_TS)) s"
  fi
  echo "$PASSED passed, $FAILED failed"
}

cleanup() {
  local rc=$?
  for pid in "${SERVER_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [[ $SUMMARY_DONE == 0 ]]; then
    fail "harness aborted (exit $rc) before all checks ran"
    summary
    rc=1
  fi
  if [[ $FAILED == 0 && "${NGAYLE_INTEROP_KEEP:-0}" != 1 ]]; then
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_checker NAME COMMAND... : run a checker script, count its PASS/FAIL lines.
run_checker() {
  local name=$1 rc=0 p f
  shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  cat "$WORK/$name.out"
  p=$(grep -c '^PASS ' "$WORK/$name.out" || true)
  f=$(grep -c '^FAIL ' "$WORK/$name.out" || true)
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  if [[ -s "$WORK/$name.err" ]]; then
    echo "--- $name stderr (last 20 lines):"
    tail -n 20 "$WORK/$name.err" | sed 's/^/    /'
  fi
  if [[ $rc != 0 && $f == 0 ]]; then
    fail "$name exited $rc without reporting a failed check (crashed or timed out)"
  fi
}

# start_server CONFIG LOG : start `ngayle serve` on a port it binds itself (127.0.0.1:0: no port
# is picked here and released for it, which another process could take meanwhile), read that
# port from its start-up line ("ngayle đang chạy: http://127.0.0.1:PORT/calendar.ics"), wait for
# /healthz; sets SERVER_PID and SERVER_PORT.
start_server() {
  local config=$1 log=$2
  SERVER_PORT=
  # A background job of a non-interactive shell starts with SIGINT ignored; give the server the
  # default disposition, as a terminal or a service manager would, so that the SIGINT check means
  # something.
  "$PY" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$BIN" --config "$config" serve --listen "127.0.0.1:0" >"$log" 2>&1 &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  for _ in $(seq 150); do # at most ~30 s (0.2 s apart, each try at most 2 s)
    if [[ -z $SERVER_PORT ]]; then
      SERVER_PORT=$(sed -n 's|.*đang chạy: http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log" | head -n 1)
    fi
    if [[ -n $SERVER_PORT ]] &&
      curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$SERVER_PORT/healthz" 2>/dev/null; then
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "--- server log ($log):"
  tail -n 30 "$log" | sed 's/^/    /'
  return 1
}

# stop_server PID SIGNAL : the server must exit by itself within 10 s of the signal, with status 0.
stop_server() {
  local pid=$1 sig=$2 rc=0
  if ! kill -0 "$pid" 2>/dev/null; then
    fail "ngayle serve was still running before SIG$sig (it had exited)"
    return
  fi
  kill -"$sig" "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    fail "ngayle serve stops within 10 s of SIG$sig (still running; killed)"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return
  fi
  wait "$pid" || rc=$?
  if [[ $rc == 0 ]]; then pass "ngayle serve stops on SIG$sig with exit status 0"; else fail "ngayle serve stops on SIG$sig with exit status 0: status $rc"; fi
}

http_status() { # http_status URL -> prints the status code (000 when no answer)
  curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$1" || true
}

echo "== interop: $BIN"
echo "== setup (venv $VENV, npm ci in tests/interop)"
if ! cmp -s "$HERE/requirements.txt" "$VENV/.ngayle-interop-requirements.txt" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$VENV/.ngayle-interop-requirements.txt"
fi
(cd "$HERE" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
"$VENV/bin/python" -c 'import icalendar, recurring_ical_events, yaml, jsonschema' &&
  "$VENV/bin/vdirsyncer" --version >/dev/null && "$VENV/bin/khal" --version >/dev/null

if [[ ! -x "$BIN" ]]; then
  fail "ngayle binary $BIN exists (cargo build first)"
  summary
  exit 1
fi
if ! "$BIN" serve --help >/dev/null 2>&1; then
  fail "ngayle has a serve command ($BIN serve --help)"
  summary
  exit 1
fi

# ---- a copy of the shipped config and calendars: the server writes its state next to them
cp -r "$ROOT/config" "$ROOT/calendars" "$WORK/"
# One more layer, only in the copy, for what the shipped calendars lack: an event spanning the
# new year (DTEND = start + days in the next year), a lunar event of several days, and a title with
# `;`, `,` and `\` (TEXT escaping).
cat >"$WORK/calendars/zz-interop.yaml" <<'EOF'
name: Kiểm thử liên thông (chỉ có trong bản sao tạm của tests/interop)
events:
  - id: interop-qua-nam-moi
    name: Tuần thử nghiệm qua năm mới; có dấu phẩy, chấm phẩy và gạch chéo \ trong tiêu đề
    date: 30/12
    days: 4
    tasks: [tin-bai-web]
  - id: interop-am-lich-nhieu-ngay
    name: Hội thử nghiệm theo âm lịch kéo dài ba ngày
    lunar: 14/8
    days: 3
    since: 2000
    tasks: [treo-co]
EOF
CFG="$WORK/config/ngayle.yaml"
expect "ngayle check accepts the copied config and calendars" "$BIN" --config "$CFG" check
# The JSON Schemas in schema/ (what VS Code checks as the admin types) against the shipped files and
# against ngayle check: one mistake each, refused by both, or by check alone when a schema cannot
# express it (cross-file references, unique ids, leap years).
run_checker schema "$PY" "$HERE/check_schema.py" "$BIN" "$ROOT" "$WORK/schema"
run_checker schema-patterns node "$HERE/check_schema_patterns.mjs" "$ROOT/schema"

Y=$(TZ=Asia/Ho_Chi_Minh date +%Y)
FROM_YEAR=$((Y - 1))
TO_YEAR=$((Y + 2))
echo "== feed years $FROM_YEAR..$TO_YEAR (current year $Y in Asia/Ho_Chi_Minh)"
"$BIN" --config "$CFG" events --from "$FROM_YEAR-01-01" --to "$TO_YEAR-12-31" --format tsv >"$WORK/events.tsv"
"$PY" "$HERE/expected.py" "$WORK/events.tsv" "$CFG" >"$WORK/expected.tsv"
# The reminders of those years' occurrences, by ngayle's planner (a month of leads before the first
# day, deadlines after the last), to count the alarms of each personal feed.
UP_FROM="$((FROM_YEAR - 1))-10-01"
UP_DAYS=$(( ($(date -u -d "$((TO_YEAR + 1))-01-31" +%s) - $(date -u -d "$UP_FROM" +%s)) / 86400 + 1 ))
"$BIN" --config "$CFG" upcoming --from "$UP_FROM" --days "$UP_DAYS" --format tsv >"$WORK/upcoming.tsv"
echo "   $(wc -l <"$WORK/events.tsv") occurrences in ngayle events"
# The official days off of those years (`ngayle days-off`), for the days-off feed's breaks.
: >"$WORK/days-off.tsv"
for y in $(seq "$FROM_YEAR" "$TO_YEAR"); do
  "$BIN" --config "$CFG" days-off --year "$y" --format tsv >>"$WORK/days-off.tsv"
done
echo "   $(grep -c "	off	" "$WORK/days-off.tsv") days off, $(grep -c "	work	" "$WORK/days-off.tsv") make-up working days in ngayle days-off"

if start_server "$CFG" "$WORK/server.log"; then
  PORT=$SERVER_PORT
  pass "ngayle serve answers /healthz on 127.0.0.1:$PORT"
else
  fail "ngayle serve (on 127.0.0.1:0) says its port and answers /healthz within 30 s"
  summary
  exit 1
fi
BASE="http://127.0.0.1:$PORT"
MAIN_PID=$SERVER_PID
expect "the state file is created at the config's state: path (relative to the config file)" \
  test -f "$WORK/var/ngayle.sqlite"

# ---- each person's own feed: the URLs from `ngayle feeds`, under this server's address
"$BIN" --config "$CFG" feeds --format tsv >"$WORK/feeds.tsv"
PEOPLE_IN_STAFF=$("$PY" -c 'import sys, yaml; print(len(yaml.safe_load(open(sys.argv[1], encoding="utf-8"))["people"]))' \
  "$WORK/config/staff.yaml")
expect "ngayle feeds lists every person of staff.yaml with a personal feed URL" \
  test "$(grep -c '^person	.*/calendar/me/[a-z2-7]*\.ics$' "$WORK/feeds.tsv")" = "$PEOPLE_IN_STAFF"
# A teacher of khoi-4-5-tuoi and the csvc staff member (their tasks differ).
PERSONS=(gv-le-thi-thu-ha nhan-vien-csvc)
PEOPLE=
for person in "${PERSONS[@]}"; do
  url=$(awk -F'\t' -v p="$person" '$1 == "person" && $2 == p { print $5 }' "$WORK/feeds.tsv")
  PEOPLE="$PEOPLE,$person=$BASE/${url#*://*/}"
done
PERSON_URL=$BASE/$(awk -F'\t' -v p="${PERSONS[0]}" '$1 == "person" && $2 == p { print $5 }' "$WORK/feeds.tsv" | sed 's|^[a-z]*://[^/]*/||')
"$PY" "$HERE/expected.py" "$WORK/events.tsv" "$CFG" --person "${PERSONS[0]}" >"$WORK/expected-person.tsv"
"$PY" "$HERE/expected.py" "$WORK/events.tsv" "$CFG" --person "${PERSONS[0]}" --events-tsv >"$WORK/events-person.tsv"
echo "   ${PERSONS[0]}: $(wc -l <"$WORK/events-person.tsv") occurrences with a task of theirs"

echo "== Python: icalendar $("$PY" -c 'import icalendar; print(icalendar.__version__)'), recurring-ical-events"
run_checker python timeout 300 "$PY" "$HERE/check_python.py" --base "$BASE" --bin "$BIN" --config "$CFG" \
  --events "$WORK/events.tsv" --from-year "$FROM_YEAR" --to-year "$TO_YEAR" \
  --groups csvc,truyen-thong --people "${PEOPLE#,}" --upcoming "$WORK/upcoming.tsv" \
  --days-off "$WORK/days-off.tsv" --workdir "$WORK"
echo "== python holidays $("$PY" -c 'import holidays; print(holidays.__version__)') (holidays.VN): the days off of 2024..2030"
run_checker holidays timeout 120 "$PY" "$HERE/check_holidays.py" --bin "$BIN" --config "$CFG" \
  --from-year 2024 --to-year 2030
# The full feed holds the commemorations and the days off (whose dates check_python.py checked).
cat "$WORK/expected.tsv" "$WORK/expected-days-off.tsv" >"$WORK/expected-full.tsv"

echo "== ical.js $(node -p 'require("'"$HERE"'/node_modules/ical.js/package.json").version')"
run_checker icaljs timeout 120 node "$HERE/check_icaljs.mjs" "$BASE/calendar.ics" "$WORK/expected-full.tsv" \
  "$FROM_YEAR" "$TO_YEAR"
run_checker icaljs-days-off timeout 120 node "$HERE/check_icaljs.mjs" "$BASE/calendar/ngay-nghi.ics" \
  "$WORK/expected-days-off.tsv" "$FROM_YEAR" "$TO_YEAR"
run_checker icaljs-person timeout 120 node "$HERE/check_icaljs.mjs" "$PERSON_URL" "$WORK/expected-person.tsv" \
  "$FROM_YEAR" "$TO_YEAR"

echo "== vdirsyncer $("$VENV/bin/vdirsyncer" --version | awk '{print $NF}') -> khal $("$VENV/bin/khal" --version | awk '{print $NF}')"
mkdir -p "$WORK/client"
run_checker khal timeout 600 "$PY" "$HERE/check_khal.py" --url "$BASE/calendar.ics" --config "$CFG" \
  --events "$WORK/events.tsv" --from-year "$FROM_YEAR" --to-year "$TO_YEAR" --bindir "$VENV/bin" \
  --days-off "$WORK/expected-days-off.tsv" --workdir "$WORK/client"
mkdir -p "$WORK/client-person"
run_checker khal-person timeout 600 "$PY" "$HERE/check_khal.py" --url "$PERSON_URL" --config "$CFG" \
  --events "$WORK/events-person.tsv" --from-year "$FROM_YEAR" --to-year "$TO_YEAR" --bindir "$VENV/bin" \
  --workdir "$WORK/client-person" --label "khal ${PERSONS[0]}'s own feed" --min-lunar 0

stop_server "$MAIN_PID" TERM

# ---- http.feed_token: a second copy with a token, stopped with SIGINT
echo "== feed token"
mkdir -p "$WORK/token"
cp -r "$WORK/config" "$WORK/calendars" "$WORK/token/"
TOKEN="interop-$RANDOM$RANDOM"
sed -i "s/^http:.*$/http:\n  feed_token: \"$TOKEN\"/" "$WORK/token/config/ngayle.yaml"
if start_server "$WORK/token/config/ngayle.yaml" "$WORK/token/server.log"; then
  TOKEN_PID=$SERVER_PID
  TBASE="http://127.0.0.1:$SERVER_PORT"
  for path in /calendar.ics /calendar/csvc.ics; do
    s=$(http_status "$TBASE$path")
    [[ $s == 404 ]] && pass "token set: $path without ?token= gives 404" || fail "token set: $path without ?token= gives 404: got $s"
    s=$(http_status "$TBASE$path?token=wrong-$TOKEN")
    [[ $s == 404 ]] && pass "token set: $path with a wrong token gives 404" || fail "token set: $path with a wrong token gives 404: got $s"
    s=$(http_status "$TBASE$path?token=$TOKEN")
    [[ $s == 200 ]] && pass "token set: $path?token=TOKEN gives 200" || fail "token set: $path?token=TOKEN gives 200: got $s"
  done
  curl -s --max-time 10 -o "$WORK/token/served.ics" "$TBASE/calendar.ics?token=$TOKEN" || true
  expect "token set: the feed with the token is a calendar" \
    grep -q '^BEGIN:VCALENDAR' "$WORK/token/served.ics"
  stop_server "$TOKEN_PID" INT
else
  fail "ngayle serve with http.feed_token answers /healthz within 30 s"
fi

Y2=$(TZ=Asia/Ho_Chi_Minh date +%Y)
if [[ $Y2 != "$Y" ]]; then
  fail "the year changed during the run ($Y -> $Y2) in Asia/Ho_Chi_Minh: run again"
fi
if [[ $FAILED != 0 ]]; then
  echo "--- server log (last 20 lines of $WORK/server.log):"
  tail -n 20 "$WORK/server.log" | sed 's/^/    /'
fi
summary
[[ $FAILED == 0 ]]
