#!/usr/bin/env bash
# Mail throughput: `ngayle send-due` against a plain client, same sink, same run, with the sink's
# own capacity measured beside them.
#
# One local SMTP sink (Python, standard library, on 127.0.0.1; counts by envelope sender and
# discards: scripts/bench_mail_sink.py) receives, in each round:
#   0. sink alone: 5 × N messages (2,000 to 20,000) of the plain client's kind, written as ONE
#      pipelined session on one connection with no command waiting for its reply
#      (scripts/bench_mail_flood.py): what the sink takes when nothing else limits it;
#   1. plain: Python smtplib sending N reminder-like messages (multipart/alternative, Vietnamese,
#      ~4 KB) over ONE connection, prebuilt, timed (scripts/bench_mail_plain.py);
#   2. ngayle: `ngayle send-due --now 2026-06-01T08:00:00+07:00` on a temporary project
#      (scripts/bench_mail_project.py) with N people in groups of $BENCH_MAIL_GROUP (default 2),
#      one task per group, all due at 08:00 on 1/6/2026 for one event: N reminders, one email
#      each, timed as a whole (start, load, store, render, send). Small groups keep the emails
#      reminder-sized, as each email names the others on its task (BENCH_MAIL_GROUP=N puts
#      everyone in one group and one task instead);
#   3. with BENCH_MAIL_BASELINE=/path/to/another/ngayle (e.g. a release build of the parent
#      commit): the same send-due with that binary, on the same project, from an empty database
#      too. ngayle and the baseline take turns going first, round by round.
# The sink must count exactly N (the sink-alone run: its own count) from each client's envelope
# sender and nothing else. The rounds ($BENCH_MAIL_ROUNDS, default 3; every send-due starts
# from an empty database) put all of them on the same machine: this one is shared and its speed
# drifts by ±30 % from minute to minute. Each line also gives how busy the sink was (its CPU time
# over the client's time: the sink's share of each message's time, as both clients wait for
# every reply); a send-due line also when its first message arrived and its pace from first to
# last message (its sending without start-up and loading). Takes ~25 s after the build for
# N = 2000, 3 rounds, with a baseline.
#
# Prints every rate and the ratios per round, then their medians, and PASS/FAIL for:
#   - the sink is not the bottleneck: in every round, sink alone ≥ 3 × the fastest client;
#   - ngayle ≥ 0.8 × plain (median of the rounds' ratios; issues 4 and 6);
#   - with a baseline: ngayle ≥ 0.9 × baseline (median of the rounds' ratios; issue 14).
# Exit 0 on PASS, 1 on FAIL or error.
#
# Usage: scripts/bench-mail.sh [N]     (default 2000; BENCH_MAIL_KEEP=1 keeps the temporary
#        project, the sink's log and send-due's output for a look afterwards;
#        BENCH_MAIL_WRAP="/usr/bin/time -v" runs send-due under that command, its report going
#        to send-due's stderr in the kept folder)
# Needs python3 (standard library only). Builds the release binary first (not timed). Only
# 127.0.0.1; every step has a time limit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
n=${1:-2000}
[[ $n =~ ^[1-9][0-9]{0,3}$ ]] || { echo "N must be 1..9999" >&2; exit 1; }
target=0.8
baseline_target=0.9
sink_factor=3
now=2026-06-01T08:00:00+07:00
group=${BENCH_MAIL_GROUP:-2}
rounds=${BENCH_MAIL_ROUNDS:-3}
baseline=${BENCH_MAIL_BASELINE:-}
[[ $rounds =~ ^[1-9]$ ]] || { echo "BENCH_MAIL_ROUNDS must be 1..9" >&2; exit 1; }
[[ $group =~ ^[1-9][0-9]{0,3}$ ]] || { echo "BENCH_MAIL_GROUP must be 1..9999" >&2; exit 1; }
flood_n=$((n * 5 < 2000 ? 2000 : n * 5 > 20000 ? 20000 : n * 5))
py=python3
command -v "$py" >/dev/null || { echo "needs python3" >&2; exit 1; }

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
if [[ -n $baseline ]]; then
  [[ -x $baseline ]] || { echo "BENCH_MAIL_BASELINE=$baseline is not an executable" >&2; exit 1; }
  baseline=$(realpath "$baseline")
  "$baseline" send-due --help >/dev/null 2>&1 ||
    { echo "BENCH_MAIL_BASELINE=$baseline has no 'send-due' command" >&2; exit 1; }
fi

# --- the sink ----------------------------------------------------------------------------------
"$py" scripts/bench_mail_sink.py serve "$work/sink.json" --max-seconds 1800 2>"$work/sink.log" &
sink_pid=$!
for _ in $(seq 100); do [[ -s $work/sink.json ]] && break; sleep 0.1; done
[[ -s $work/sink.json ]] || { echo "the sink did not start:" >&2; cat "$work/sink.log" >&2; exit 1; }
smtp_port=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["smtp"])' "$work/sink.json")
ctl_port=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$work/sink.json")

# snap FILE: the sink's counts so far, into FILE.
snap() { timeout 10 "$py" scripts/bench_mail_sink.py stats "$ctl_port" >"$1"; }
# received BEFORE AFTER EXPECTED SECONDS [T0]: "GOT BYTES_PER_MESSAGE SINK_BUSY_% PACE FIRST
# VERDICT" for what the sink took between two snapshots: PACE is the msg/s from the first message
# to the last one on the connections opened in between (the client's sending alone, without its
# start-up), FIRST how long after T0 (a `date +%s.%N`) the first message arrived ("-" without
# T0); VERDICT is "ok" when the sink counted exactly EXPECTED messages, all from one envelope
# sender, and otherwise says what it counted.
received() {
  "$py" - "$@" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
expected, seconds = int(sys.argv[3]), float(sys.argv[4])
got = b["messages"] - a["messages"]
senders = {s: c - a["by_sender"].get(s, 0) for s, c in b["by_sender"].items()}
senders = {s: c for s, c in senders.items() if c}
size = (b["bytes"] - a["bytes"]) // got if got else 0
busy = round(100 * (b["cpu_seconds"] - a["cpu_seconds"]) / seconds) if seconds > 0 else 0
seen = max((c["id"] for c in a["connections"]), default=0)
new = [c for c in b["connections"] if c["id"] > seen and c["messages"]]
pace, first = "-", "-"
if new:
    t_first, t_last = min(c["first"] for c in new), max(c["last"] for c in new)
    count = sum(c["messages"] for c in new)
    if count > 1 and t_last > t_first:
        pace = round((count - 1) / (t_last - t_first), 1)
    if len(sys.argv) > 5:
        first = round(t_first - float(sys.argv[5]), 3)
verdict = "ok" if got == expected and len(senders) == 1 else (
    f"the sink counted {got}, not {expected}: " + ", ".join(f"{c} from {s}" for s, c in senders.items()))
print(got, size, busy, pace, first, verdict)
EOF
}
calc() { "$py" -c "print($1)"; }
median() { "$py" -c 'import statistics,sys; print(round(statistics.median(map(float, sys.argv[1:])), 3) if len(sys.argv) > 1 else 0)' "$@"; }
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

# send_due LABEL BINARY ROUND: one timed send-due from an empty database; sets $rate.
send_due() {
  local label=$1 bin=$2 round=$3 code t0 t1 secs got size busy pace first verdict status=ok
  rm -f "$proj/var/ngayle.sqlite" "$proj/var/ngayle.sqlite-wal" "$proj/var/ngayle.sqlite-shm"
  snap "$work/s0.json"
  t0=$(date +%s.%N)
  set +e
  (cd "$proj" && RUST_LOG=warn ${BENCH_MAIL_WRAP:-} timeout 600 "$bin" --config "$cfg" send-due --now "$now") \
    >"$work/send-due.$label.out" 2>"$work/send-due.$label.err"
  code=$?
  set -e
  t1=$(date +%s.%N)
  snap "$work/s1.json"
  secs=$(calc "round($t1 - $t0, 4)")
  read -r got size busy pace first verdict < <(received "$work/s0.json" "$work/s1.json" "$n" "$secs" "$t0")
  rate=$(calc "round($got / $secs, 1)")
  if [[ $code != 0 ]]; then
    status="exit $code"
    echo "$label: send-due exited $code; stderr tail:" >&2; tail -20 "$work/send-due.$label.err" >&2
    fail+=("round $round: $label send-due: $status")
  fi
  [[ $verdict == ok ]] || fail+=("round $round: $label: $verdict")
  printf '  %-10s %6s received  %8s s  %9s msg/s  (send-due: %s, %s bytes/message; first after %s s, then %s msg/s; sink busy %s %%)\n' \
    "$label" "$got" "$secs" "$rate" "$status" "$size" "$first" "$pace" "$busy"
}

# --- rounds: sink alone, plain, ngayle (and the baseline), side by side -------------------------
echo "bench-mail: $n messages each to one sink on 127.0.0.1 (sink alone: $flood_n), $(nproc) cores," \
  "$rounds round(s) (ngayle: groups of $group)${baseline:+; baseline $baseline}"
[[ $have_send_due == 1 ]] || { echo "this build has no 'send-due' command" >&2; exit 1; }
fail=()
ratios=()
baseline_ratios=()
versus=()
sink_margins=()
for round in $(seq "$rounds"); do
  echo "round $round"
  # 0. the sink alone
  snap "$work/s0.json"
  flood_json=$(timeout 300 "$py" scripts/bench_mail_flood.py "$smtp_port" "$flood_n")
  snap "$work/s1.json"
  sink_rate=$(field "$flood_json" rate)
  read -r got size busy _ _ verdict < <(received "$work/s0.json" "$work/s1.json" "$flood_n" "$(field "$flood_json" seconds)")
  [[ $verdict == ok ]] || fail+=("round $round: sink alone: $verdict")
  printf '  %-10s %6s received  %8s s  %9s msg/s  (pipelined, one connection, %s bytes/message; sink busy %s %%)\n' \
    "sink alone" "$got" "$(field "$flood_json" seconds)" "$sink_rate" "$size" "$busy"

  # 1. plain client
  snap "$work/s0.json"
  plain_json=$(timeout 600 "$py" scripts/bench_mail_plain.py "$smtp_port" "$n")
  snap "$work/s1.json"
  plain_rate=$(field "$plain_json" rate)
  plain_secs=$(field "$plain_json" seconds)
  read -r got size busy _ _ verdict < <(received "$work/s0.json" "$work/s1.json" "$n" "$plain_secs")
  [[ $verdict == ok ]] || fail+=("round $round: plain: $verdict")
  printf '  %-10s %6s received  %8s s  %9s msg/s  (smtplib, one connection, %s bytes/message; sink busy %s %%)\n' \
    "plain" "$got" "$plain_secs" "$plain_rate" "$size" "$busy"

  # 2, 3. ngayle and the baseline, taking turns to go first; every reminder due, none recorded
  if [[ -z $baseline ]]; then
    send_due ngayle "$ngayle" "$round"; ngayle_rate=$rate; baseline_rate=0
  elif ((round % 2)); then
    send_due ngayle "$ngayle" "$round"; ngayle_rate=$rate
    send_due baseline "$baseline" "$round"; baseline_rate=$rate
  else
    send_due baseline "$baseline" "$round"; baseline_rate=$rate
    send_due ngayle "$ngayle" "$round"; ngayle_rate=$rate
  fi

  fastest=$(calc "max($plain_rate, $ngayle_rate, $baseline_rate)")
  margin=$(calc "round($sink_rate / $fastest, 2) if $fastest else 0")
  sink_margins+=("$margin")
  if ! calc "$margin >= $sink_factor" | grep -qx True; then
    fail+=("round $round: the sink is the bottleneck (alone $sink_rate msg/s < $sink_factor × $fastest)")
  fi
  ratio=$(calc "round($ngayle_rate / $plain_rate, 3) if $plain_rate else 0")
  ratios+=("$ratio")
  line="ngayle/plain $ratio"
  if [[ -n $baseline ]]; then
    b_ratio=$(calc "round($baseline_rate / $plain_rate, 3) if $plain_rate else 0")
    vs=$(calc "round($ngayle_rate / $baseline_rate, 3) if $baseline_rate else 0")
    baseline_ratios+=("$b_ratio")
    versus+=("$vs")
    line+="  baseline/plain $b_ratio  ngayle/baseline $vs"
  fi
  echo "  round $round: $line  sink alone/fastest ${margin}× (target >= $sink_factor)"
done
for f in "$work"/send-due.*.out; do
  [[ -s $f ]] && sed "s/^/  $(basename "$f" .out): /" "$f" | tail -5
done

# --- report ------------------------------------------------------------------------------------
echo "sink alone/fastest client: ${sink_margins[*]} (every round >= $sink_factor, or the sink is the bottleneck)"
ratio=$(median "${ratios[@]}")
echo "ratio ngayle/plain: $ratio (median of ${#ratios[@]} round(s): ${ratios[*]}; target >= $target)"
calc "$ratio >= $target" | grep -qx True || fail+=("ratio $ratio < $target")
if [[ -n $baseline ]]; then
  echo "ratio baseline/plain: $(median "${baseline_ratios[@]}") (median of: ${baseline_ratios[*]})"
  vs=$(median "${versus[@]}")
  echo "ratio ngayle/baseline: $vs (median of: ${versus[*]}; target >= $baseline_target)"
  calc "$vs >= $baseline_target" | grep -qx True || fail+=("ngayle/baseline $vs < $baseline_target")
fi
if ((${#fail[@]} == 0)); then
  echo "PASS"
else
  printf 'FAIL: %s\n' "$(IFS=';'; echo "${fail[*]}")"
  exit 1
fi
