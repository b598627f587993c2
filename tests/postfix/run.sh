#!/usr/bin/env bash
# The reminders end to end through a real mail server: Debian's Postfix on 127.0.0.1, delivering
# every address of example.org into one Maildir, read back with Python's standard `mailbox` and
# `email` packages (check_maildir.py). What must arrive is what `ngayle upcoming` promised.
#
#   bash tests/postfix/run.sh [NGAYLE_BINARY]        # default target/debug/ngayle; as root
#
# Installs `postfix` (Local only, non-interactively) and `python3-yaml` when missing. Postfix runs
# as its own instance from a configuration folder in the temp folder (`postfix -c DIR`), with
# its own queue, listening only on 127.0.0.1 at a free port; it relays nothing (every transport
# but the Maildir one is `error:`). The default instance in /etc/postfix is neither changed nor
# started (if installing the package started it, it is stopped again). The trap stops our
# instance on every exit. Prints `PASS name` / `FAIL name: why` per check and ends with the line
# `postfix: N passed, N failed`; exits 1 if anything failed. Set NGAYLE_POSTFIX_KEEP=1 to keep
# the temp folder (it is kept anyway when a check failed).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${1:-target/debug/ngayle}
if [[ "$BIN" != /* ]]; then # relative: to the current folder, else to the repository root
  [[ -e "$BIN" ]] || BIN="$ROOT/$BIN"
  BIN="$(cd "$(dirname "$BIN")" 2>/dev/null && pwd || dirname "$BIN")/$(basename "$BIN")"
fi
# Debian's Python: the standard library's parser, and Debian's python3-yaml for the project files.
PY=/usr/bin/python3
unset NGAYLE_CONFIG NGAYLE_SMTP_URL NGAYLE_STATE NGAYLE_OUTBOX NGAYLE_PUBLIC_URL NGAYLE_FEED_TOKEN
export PYTHONDONTWRITEBYTECODE=1
START_TS=$(date +%s)

PASSED=0
FAILED=0
SUMMARY_DONE=0
PF_STARTED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ngayle-postfix.XXXXXX")
# Postfix's daemons (user postfix) and its Maildir delivery (user nobody) work below this folder.
chmod 755 "$WORK"
PFDIR="$WORK/postfix"       # main.cf, master.cf, the address map
SPOOL="$WORK/spool"         # queue_directory
MAILDIR="$WORK/mail/Maildir" # where every example.org address is delivered

pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1"; FAILED=$((FAILED + 1)); }

summary() {
  SUMMARY_DONE=1
  if [[ $FAILED != 0 || "${NGAYLE_POSTFIX_KEEP:-0}" == 1 ]]; then
    echo "postfix: $(($(date +%s) - START_TS)) s; Maildir, Postfix log and outputs kept in $WORK"
  else
    echo "postfix: $(($(date +%s) - START_TS)) s"
  fi
  echo "postfix: $PASSED passed, $FAILED failed"
}

master_pid() { # the pid of our instance's master, or nothing
  local pid
  pid=$(tr -d ' \n' <"$SPOOL/pid/master.pid" 2>/dev/null) || return 0
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

stop_postfix() {
  [[ $PF_STARTED == 1 ]] || return 0
  PF_STARTED=0
  local pid
  pid=$(master_pid)
  postfix -c "$PFDIR" stop >/dev/null 2>&1 || true
  if [[ -n $pid ]]; then
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    # Still there after 10 s: only our master, by its pid (its children follow it).
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

cleanup() {
  local rc=$?
  stop_postfix
  if [[ $SUMMARY_DONE == 0 ]]; then
    fail "harness aborted (exit $rc) before all checks ran"
    if [[ -s "$WORK/postfix.log" ]]; then
      echo "--- Postfix log (last 20 lines):"
      tail -n 20 "$WORK/postfix.log" | sed 's/^/    /'
    fi
    summary
    rc=1
  fi
  if [[ $FAILED == 0 && "${NGAYLE_POSTFIX_KEEP:-0}" != 1 ]]; then
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== postfix: $BIN"
if [[ $(id -u) != 0 ]]; then
  fail "run as root (installs postfix and starts an instance of it)"
  summary
  exit 1
fi
if [[ ! -x "$BIN" ]]; then
  fail "ngayle binary $BIN exists (cargo build first)"
  summary
  exit 1
fi

# ---- Debian's postfix, installed non-interactively when missing
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if ! installed postfix || ! installed python3-yaml; then
  echo "== installing postfix (Local only) and python3-yaml"
  default_was_running=0
  if installed postfix && postfix status >/dev/null 2>&1; then default_was_running=1; fi
  debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string ngayle-test.invalid
EOF
  DEBIAN_FRONTEND=noninteractive apt-get -qq update
  DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends \
    postfix python3-yaml >/dev/null
  # Where services may start on install (no policy-rc.d), the package starts the default
  # instance on port 25: this test changes nothing outside its temp folder, so stop it again.
  if [[ $default_was_running == 0 ]] && postfix status >/dev/null 2>&1; then
    postfix stop >/dev/null 2>&1 || true
  fi
fi

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# ---- our own Postfix instance, configured for this test only
mkdir -p "$PFDIR" "$SPOOL" "$WORK/data" "$WORK/mail"
chown nobody:nogroup "$WORK/mail"
chown postfix: "$WORK/data"
touch "$WORK/postfix.log"
# Every recipient of example.org (any local part) goes to the one Maildir ("…/" = Maildir format).
printf '%s\n' '/@example\.org$/ Maildir/' >"$PFDIR/vmailbox"
cat >"$PFDIR/main.cf" <<EOF
# ngayle tests/postfix: a throw-away instance (postfix -c $PFDIR).
compatibility_level = 3.6
queue_directory = $SPOOL
data_directory = $WORK/data
maillog_file = $WORK/postfix.log
maillog_file_prefixes = $WORK
myhostname = mx.ngayle-test.invalid
mydomain = ngayle-test.invalid
myorigin = \$myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
biff = no
# Nothing leaves the machine: no relay host, and every transport but the Maildir one refuses.
relayhost =
relay_domains =
default_transport = error:5.7.1 the ngayle test server delivers only to example.org
relay_transport = error:5.7.1 the ngayle test server delivers only to example.org
local_transport = error:5.7.1 the ngayle test server delivers only to example.org
virtual_mailbox_domains = example.org
virtual_mailbox_base = $WORK/mail
virtual_mailbox_maps = regexp:$PFDIR/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
EOF
# Debian's master.cf, with the SMTP listener moved from *:25 to 127.0.0.1:PORT and no chroot
# (a chroot would need copies of /etc files in the spool).
awk -v listen="127.0.0.1:$PORT" '
  $1 == "smtp" && $2 == "inet" { $1 = listen }
  { print }' /usr/share/postfix/master.cf.dist >"$PFDIR/master.cf"
postconf -c "$PFDIR" -F '*/*/chroot = n'
echo "== Postfix $(postconf -c "$PFDIR" -h mail_version), Python $("$PY" -c 'import sys; print(sys.version.split()[0])')"

inet_services=$(postconf -c "$PFDIR" -M | awk '$2 == "inet" { print $1 }' | tr '\n' ' ')
if [[ $inet_services == "127.0.0.1:$PORT " ]]; then
  pass "the instance has one network listener, 127.0.0.1:$PORT"
else
  fail "the instance has one network listener, 127.0.0.1:$PORT: master.cf has: $inet_services"
fi

PF_STARTED=1
if ! postfix -c "$PFDIR" start >"$WORK/postfix-start.out" 2>&1; then
  cat "$WORK/postfix-start.out" "$WORK/postfix.log" | tail -n 20 | sed 's/^/    /'
  fail "postfix -c $PFDIR start"
  summary
  exit 1
fi
up=0
for _ in $(seq 100); do # at most ~10 s
  if "$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$PORT" 2>/dev/null; then
    up=1
    break
  fi
  sleep 0.1
done
if [[ $up == 1 ]]; then pass "Postfix answers on 127.0.0.1:$PORT"; else
  fail "Postfix answers on 127.0.0.1:$PORT within 10 s"
  summary
  exit 1
fi

# What the master (and its children, which inherit its sockets) listens on, from /proc: only
# 127.0.0.1:PORT over TCP.
if listening=$("$PY" - "$(master_pid)" <<'EOF'
import os, sys
pids = [sys.argv[1]] + [p for p in os.listdir("/proc") if p.isdigit()
                        and open(f"/proc/{p}/stat").read().split()[3] == sys.argv[1]]
inodes = set()
for pid in pids:
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
found = []
for table in ("tcp", "tcp6"):
    for line in open(f"/proc/net/{table}").read().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A" and f[9] in inodes:  # LISTEN
            addr, port = f[1].split(":")
            ip = ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0)) if table == "tcp" else addr
            found.append(f"{ip}:{int(port, 16)}")
print(" ".join(sorted(set(found))))
EOF
); then
  if [[ $listening == "127.0.0.1:$PORT" ]]; then
    pass "Postfix listens on 127.0.0.1:$PORT and nowhere else"
  else
    fail "Postfix listens on 127.0.0.1:$PORT and nowhere else: it listens on: $listening"
  fi
else
  fail "the listening sockets of Postfix could be read from /proc"
fi

queue_empty() { postqueue -c "$PFDIR" -p 2>/dev/null | grep -q '^Mail queue is empty'; }
delivered() { find "$MAILDIR/new" "$MAILDIR/cur" -type f 2>/dev/null | wc -l; }
# wait_delivered: until the queue is empty, at most 60 s (mail that arrived over SMTP is in the
# queue until delivered, so an empty queue means every message is in the Maildir or refused).
wait_delivered() {
  for _ in $(seq 300); do
    if queue_empty; then return 0; fi
    sleep 0.2
  done
  return 1
}

# ---- a throw-away ngayle project: the shipped config and calendars, mail through Postfix
PROJECT="$WORK/project"
mkdir -p "$PROJECT"
cp -r "$ROOT/config" "$ROOT/calendars" "$PROJECT/"
CFG="$PROJECT/config/ngayle.yaml"
PUBLIC_URL="https://lich.hoaphuong.example.org"
sed -i -e "s|^  smtp: .*|  smtp: smtp://127.0.0.1:$PORT|" \
  -e "s|^state: .*|state: $WORK/ngayle.sqlite|" \
  -e "s|^  public_url: .*|  public_url: $PUBLIC_URL|" "$CFG"
# (At least 16 characters: `check` refuses a shorter one; $RANDOM$RANDOM alone was sometimes
# short.)
export NGAYLE_FEED_TOKEN="postfix-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
if "$BIN" --config "$CFG" check >"$WORK/check.out" 2>&1; then
  pass "ngayle check accepts the project with mail through 127.0.0.1:$PORT"
else
  cat "$WORK/check.out"
  fail "ngayle check accepts the project with mail through 127.0.0.1:$PORT"
fi

# The burst of the week before 30/4 and 1/5 (the in-process test's instant): reminders due at
# several times to all the staff, some of them late.
NOW="2024-04-29T07:30:00+07:00"
"$BIN" --config "$CFG" upcoming --from 2024-04-20 --days 10 --format tsv >"$WORK/upcoming.tsv"
# Each person's own feed URL, the link their emails must carry.
"$BIN" --config "$CFG" feeds --format tsv >"$WORK/feeds.tsv"
echo "   $(wc -l <"$WORK/upcoming.tsv") reminders in ngayle upcoming 2024-04-20 + 10 days"

rc=0
# The store begins a few days before (reminders due before a store began are not work).
"$BIN" --config "$CFG" send-due --now 2024-04-20T00:00:00+07:00 >"$WORK/send0.out" 2>&1 || true
"$BIN" --config "$CFG" send-due --now "$NOW" >"$WORK/send1.out" 2>"$WORK/send1.err" || rc=$?
sed 's/^/   /' "$WORK/send1.out"
if [[ $rc == 0 ]]; then pass "ngayle send-due --now $NOW exits 0"; else
  tail -n 20 "$WORK/send1.err" | sed 's/^/    /'
  fail "ngayle send-due --now $NOW exits 0: exit $rc"
fi
if wait_delivered; then pass "Postfix delivered everything within 60 s (queue empty)"; else
  postqueue -c "$PFDIR" -p | tail -n 20 | sed 's/^/    /'
  fail "Postfix delivered everything within 60 s: the queue is not empty"
fi
echo "   $(delivered) messages in the Maildir"

rc=0
"$PY" "$HERE/check_maildir.py" --maildir "$MAILDIR" --upcoming "$WORK/upcoming.tsv" \
  --now "$NOW" --project "$PROJECT" --public-url "$PUBLIC_URL" --token "$NGAYLE_FEED_TOKEN" --feeds "$WORK/feeds.tsv" \
  --send-output "$WORK/send1.out" >"$WORK/check_maildir.out" 2>"$WORK/check_maildir.err" || rc=$?
cat "$WORK/check_maildir.out"
p=$(grep -c '^PASS ' "$WORK/check_maildir.out" || true)
f=$(grep -c '^FAIL ' "$WORK/check_maildir.out" || true)
PASSED=$((PASSED + p))
FAILED=$((FAILED + f))
if [[ -s "$WORK/check_maildir.err" ]]; then
  tail -n 20 "$WORK/check_maildir.err" | sed 's/^/    /'
fi
if [[ $rc != 0 && $f == 0 ]]; then fail "check_maildir.py exited $rc without reporting a failed check"; fi

# ---- at most once across runs: the same instant again sends nothing
before=$(delivered)
rc=0
"$BIN" --config "$CFG" send-due --now "$NOW" >"$WORK/send2.out" 2>"$WORK/send2.err" || rc=$?
sed 's/^/   /' "$WORK/send2.out"
if [[ $rc == 0 ]] && grep -q '^Đã gửi 0 thư ' "$WORK/send2.out"; then
  pass "a second send-due --now $NOW exits 0 and says it sent 0 emails"
else
  fail "a second send-due --now $NOW exits 0 and says it sent 0 emails: exit $rc"
fi
wait_delivered || true
after=$(delivered)
if [[ $after == "$before" ]]; then
  pass "nothing more arrived after the second send-due ($after messages)"
else
  fail "nothing more arrived after the second send-due: $before messages before, $after after"
fi

if grep -Eq 'status=(bounced|deferred)|warning|fatal|panic' "$WORK/postfix.log"; then
  fail "the Postfix log has no bounce, deferral, warning or fatal error"
  grep -E 'status=(bounced|deferred)|warning|fatal|panic' "$WORK/postfix.log" | tail -n 10 | sed 's/^/    /'
else
  pass "the Postfix log has no bounce, deferral, warning or fatal error"
fi

stop_postfix
summary
[[ $FAILED == 0 ]]
