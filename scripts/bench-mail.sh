#!/usr/bin/env bash
# Mail throughput: `ngayle send-due` against a plain client, same sink, same run.
#
# One local SMTP sink (Python aiosmtpd on 127.0.0.1, counts and discards: scripts/bench_mail_sink.py)
# receives, one after the other:
#   1. plain: Python smtplib sending N reminder-like messages (multipart/alternative, Vietnamese,
#      ~4 KB) over ONE connection, prebuilt, timed (scripts/bench_mail_plain.py);
#   2. ngayle: `ngayle send-due --now 2026-06-01T08:00:00+07:00` on a temporary project
#      (scripts/bench_mail_project.py) with N people in groups of $BENCH_MAIL_GROUP (default 2),
#      one task per group, all due at 08:00 on 1/6/2026 for one event: N reminders, one email
#      each, timed as a whole (load, store, render, send). Small groups keep the emails
#      reminder-sized, as each email names the others on its task (BENCH_MAIL_GROUP=N puts
#      everyone in one group and one task instead).
# The two run one after the other, $BENCH_MAIL_ROUNDS times (default 3; ngayle starts from an
# empty database each time), so that both see the same machine: this one is shared and its
# speed drifts by ±30 % from minute to minute. The sink must count exactly N each time. Prints
# both rates and the ratio per round, then the median ratio and PASS/FAIL against the target
# ngayle ≥ 0.8 × plain (issues 4 and 6). Exit 0 on PASS, 1 on FAIL or error.
#
# Usage: scripts/bench-mail.sh [N]     (default 2000; BENCH_MAIL_KEEP=1 keeps the temporary
#        project, the sink's log and send-due's output for a look afterwards;
#        BENCH_MAIL_WRAP="/usr/bin/time -v" runs send-due under that command, its report going
#        to send-due's stderr in the kept folder)
# Needs python3 (with venv); installs aiosmtpd==1.4.6 into $BENCH_MAIL_VENV
# (default /opt/ngayle-bench-mail) the first time. Only 127.0.0.1; every step has a time limit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
n=${1:-2000}
[[ $n =~ ^[1-9][0-9]{0,3}$ ]] || { echo "N must be 1..9999" >&2; exit 1; }
target=0.8
now=2026-06-01T08:00:00+07:00
venv=${BENCH_MAIL_VENV:-/opt/ngayle-bench-mail}
group=${BENCH_MAIL_GROUP:-2}
rounds=${BENCH_MAIL_ROUNDS:-3}
[[ $rounds =~ ^[1-9]$ ]] || { echo "BENCH_MAIL_ROUNDS must be 1..9" >&2; exit 1; }
[[ $group =~ ^[1-9][0-9]{0,3}$ ]] || { echo "BENCH_MAIL_GROUP must be 1..9999" >&2; exit 1; }

# --- the sink's Python (idempotent, bounded) ----------------------------------------------------
if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  echo "installing aiosmtpd into $venv" >&2
  python3 -m venv "$venv"
  timeout 300 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6'
fi
py="$venv/bin/python"

work=$(mktemp -d)
sink_pid=
cleanup() {
  if [[ -n $sink_pid ]]; then
    kill "$sink_pid" 2>/dev/null || true
    wait "$sink_pid" 2>/dev/null || true
  fi
  if [[ -n ${BENCH_MAIL_KEEP:-} ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- build ngayle (before the sink starts: the build is not timed) -----------------------------
timeout 1800 cargo build --release --quiet
ngayle="$repo/target/release/ngayle"
have_send_due=1
"$ngayle" send-due --help >/dev/null 2>&1 || have_send_due=0

# --- the sink ----------------------------------------------------------------------------------
"$py" scripts/bench_mail_sink.py serve "$work/sink.json" --max-seconds 1200 2>"$work/sink.log" &
sink_pid=$!
for _ in $(seq 100); do [[ -s $work/sink.json ]] && break; sleep 0.1; done
[[ -s $work/sink.json ]] || { echo "the sink did not start:" >&2; cat "$work/sink.log" >&2; exit 1; }
smtp_port=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["smtp"])' "$work/sink.json")
ctl_port=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$work/sink.json")
# "MESSAGES BYTES" counted by the sink so far.
sink_stats() { "$py" scripts/bench_mail_sink.py stats "$ctl_port" | "$py" -c 'import json,sys; d=json.load(sys.stdin); print(d["messages"], d["bytes"])'; }

field() { "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# --- ngayle's project (set up once, not timed) --------------------------------------------------
proj="$work/project"
mkdir -p "$proj"
cp -r config calendars "$proj/"
# Only the bench's layer: drop every shipped layer file (keep tasks.yaml and README.md).
find "$proj/calendars" -maxdepth 1 -name '*.yaml' ! -name tasks.yaml -delete
"$py" scripts/bench_mail_project.py "$proj" "$n" "$group"
cfg="$proj/config/ngayle.yaml"
sed -i -E "s|^([[:space:]]+smtp:).*|\1 smtp://127.0.0.1:$smtp_port|" "$cfg"
sed -i -E "s|^state:.*|state: $proj/var/ngayle.sqlite|" "$cfg"
mkdir -p "$proj/var"
grep -q "smtp://127.0.0.1:$smtp_port" "$cfg" || { echo "could not set mail.smtp in $cfg" >&2; exit 1; }
if [[ $have_send_due == 1 ]] && ! (cd "$proj" && "$ngayle" --config "$cfg" check >"$work/check.out" 2>&1); then
  echo "ngayle check failed on the generated project:" >&2; tail -20 "$work/check.out" >&2; exit 1
fi

# --- rounds: plain, then ngayle (fresh database), side by side ---------------------------------
echo "bench-mail: $n messages each to one aiosmtpd sink on 127.0.0.1, $(nproc) cores, $rounds round(s) (ngayle: groups of $group)"
fail=()
ratios=()
for round in $(seq "$rounds"); do
  # 1. plain client
  read -r m0 _ < <(sink_stats)
  plain_json=$(timeout 600 "$py" scripts/bench_mail_plain.py "$smtp_port" "$n")
  read -r m1 _ < <(sink_stats)
  plain_got=$((m1 - m0))
  plain_rate=$(field "$plain_json" rate)
  plain_secs=$(field "$plain_json" seconds)
  plain_size=$(field "$plain_json" bytes_per_message)
  [[ $plain_got == "$n" ]] || fail+=("round $round: sink counted $plain_got plain messages, not $n")
  printf '%-8s %6s received  %8s s  %9s msg/s  (smtplib, one connection, %s bytes/message)\n' \
    "plain" "$plain_got" "$plain_secs" "$plain_rate" "$plain_size"

  # 2. ngayle: every reminder due, none recorded yet
  if [[ $have_send_due == 0 ]]; then
    echo "ngayle   skipped: this build has no 'send-due' command"
    fail+=("no send-due")
    break
  fi
  rm -f "$proj/var/ngayle.sqlite" "$proj/var/ngayle.sqlite-wal" "$proj/var/ngayle.sqlite-shm"
  read -r m0 b0 < <(sink_stats)
  t0=$(date +%s.%N)
  set +e
  (cd "$proj" && RUST_LOG=warn ${BENCH_MAIL_WRAP:-} timeout 600 "$ngayle" --config "$cfg" send-due --now "$now") \
    >"$work/send-due.out" 2>"$work/send-due.err"
  code=$?
  set -e
  t1=$(date +%s.%N)
  read -r m1 b1 < <(sink_stats)
  ngayle_got=$((m1 - m0))
  ngayle_size=$(( ngayle_got ? (b1 - b0) / ngayle_got : 0 ))
  ngayle_secs=$("$py" -c "print(round($t1 - $t0, 4))")
  ngayle_rate=$("$py" -c "print(round($ngayle_got / ($t1 - $t0), 1))")
  status=ok
  if [[ $code != 0 ]]; then
    status="exit $code"
    echo "send-due exited $code; stderr tail:" >&2; tail -20 "$work/send-due.err" >&2
    fail+=("round $round: send-due: $status")
  fi
  [[ $ngayle_got == "$n" ]] || fail+=("round $round: sink counted $ngayle_got ngayle messages, not $n")
  printf '%-8s %6s received  %8s s  %9s msg/s  (send-due --now %s: %s, %s bytes/message)\n' \
    ngayle "$ngayle_got" "$ngayle_secs" "$ngayle_rate" "$now" "$status" "$ngayle_size"
  ratio=$("$py" -c "print(round($ngayle_rate / $plain_rate, 3) if $plain_rate else 0)")
  ratios+=("$ratio")
  echo "round $round ratio ngayle/plain: $ratio"
done
[[ -s $work/send-due.out ]] && sed 's/^/  send-due: /' "$work/send-due.out" | tail -5

# --- report ------------------------------------------------------------------------------------
ratio=$("$py" -c 'import statistics,sys; print(statistics.median(map(float, sys.argv[1:])) if len(sys.argv) > 1 else 0)' "${ratios[@]}")
echo "ratio ngayle/plain: $ratio (median of ${#ratios[@]} round(s): ${ratios[*]}; target >= $target)"
"$py" -c "import sys; sys.exit(0 if $ratio >= $target else 1)" || fail+=("ratio $ratio < $target")
if ((${#fail[@]} == 0)); then
  echo "PASS"
else
  printf 'FAIL: %s\n' "$(IFS=';'; echo "${fail[*]}")"
  exit 1
fi
