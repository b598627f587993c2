#!/usr/bin/env bash
# The Debian package, installed for real: `cargo deb --locked` builds target/debian/ngayle_*.deb;
# this script installs it with dpkg, checks what a district IT person relies on, and purges it.
#
# 1. The package's files: /usr/bin/ngayle, the systemd unit (the same bytes as
#    deploy/ngayle.service, accepted by `systemd-analyze verify` where it is installed), the
#    shipped configuration under /etc/ngayle as conffiles, the docs under /usr/share/doc/ngayle.
# 2. `ngayle check` passes on the installed configuration.
# 3. The installed binary serves the installed configuration (with the unit's state paths under
#    a temporary directory): /healthz answers ok and /calendar.ics is a calendar.
# 4. Installing the package again keeps an edit the school made to a conffile.
# 5. Purging removes the binary, the unit and /etc/ngayle.
#
# Usage (as root, on a machine where ngayle is not installed otherwise — CI):
#   cargo deb --locked && bash scripts/check-deb.sh [PATH.deb]
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:-$(ls -t target/debian/ngayle_*.deb 2>/dev/null | head -n 1)}
[[ -n $deb && -f $deb ]] || { echo "no .deb: run cargo deb --locked first" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "run as root: dpkg installs the package" >&2; exit 1; }
if ! dpkg-query -W ngayle >/dev/null 2>&1 && { [[ -e /usr/bin/ngayle ]] || [[ -e /etc/ngayle ]]; }; then
  echo "/usr/bin/ngayle or /etc/ngayle exists and is not from the package: not touching it" >&2
  exit 1
fi
work=$(mktemp -d)
pid=
fail() { echo "FAIL $*" >&2; exit 1; }
ok() { echo "PASS $*"; }
cleanup() {
  [[ -n $pid ]] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  dpkg --purge ngayle >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

dpkg --purge ngayle >/dev/null 2>&1 || true
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i $deb"; }
[[ $(dpkg-query -W -f '${Status}' ngayle) == "install ok installed" ]] || fail "not installed"
ok "dpkg -i $(basename "$deb")"

# --- 1. files ------------------------------------------------------------------------------------
unit=/usr/lib/systemd/system/ngayle.service
for f in /usr/bin/ngayle "$unit" /etc/ngayle/config/ngayle.yaml /etc/ngayle/config/staff.yaml \
  /etc/ngayle/config/templates/reminder.html.j2 /etc/ngayle/calendars/national.yaml \
  /etc/ngayle/calendars/README.md /usr/share/doc/ngayle/deploy.md /usr/share/doc/ngayle/env.example \
  /usr/share/doc/ngayle/copyright; do
  [[ -f $f ]] || fail "missing $f"
done
[[ -x /usr/bin/ngayle ]] || fail "/usr/bin/ngayle is not executable"
/usr/bin/ngayle --version | grep -q '^ngayle ' || fail "ngayle --version"
cmp -s "$unit" deploy/ngayle.service || fail "$unit differs from deploy/ngayle.service"
diff <(cd config && find . -type f | sort) <(cd /etc/ngayle/config && find . -type f | sort) ||
  fail "/etc/ngayle/config is not config/"
diff <(cd calendars && find . -type f | sort) <(cd /etc/ngayle/calendars && find . -type f | sort) ||
  fail "/etc/ngayle/calendars is not calendars/"
conffiles=$(dpkg-query -W -f '${Conffiles}' ngayle)
for f in /etc/ngayle/config/ngayle.yaml /etc/ngayle/config/staff.yaml /etc/ngayle/calendars/national.yaml; do
  grep -q " $f " <<<"$conffiles" || fail "$f is not a conffile"
done
[[ $(systemctl is-enabled ngayle.service 2>/dev/null || true) == disabled ]] || fail "not 'disabled' after install"
ok "files: binary, unit (= deploy/ngayle.service), /etc/ngayle as conffiles, docs; not enabled"
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify --man=no "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
  [[ -z $out ]] || fail "systemd-analyze verify $unit printed: $out"
  ok "systemd-analyze verify $unit"
elif [[ ${NGAYLE_REQUIRE_SYSTEMD:-} == 1 ]]; then
  fail "systemd-analyze is missing"
fi

# --- 2. check --------------------------------------------------------------------------------------
/usr/bin/ngayle --config /etc/ngayle/config/ngayle.yaml check >"$work/check.txt" 2>&1 ||
  { cat "$work/check.txt" >&2; fail "ngayle check on /etc/ngayle"; }
ok "$(head -n 1 "$work/check.txt")"

# --- 3. serve --------------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/state/outbox"
NGAYLE_CONFIG=/etc/ngayle/config/ngayle.yaml NGAYLE_STATE="$work/state/ngayle.sqlite" \
  NGAYLE_OUTBOX="$work/state/outbox" RUST_LOG=warn \
  /usr/bin/ngayle serve --no-watch --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 200); do
  curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz" 2>/dev/null | grep -q '"status":"ok"' && break
  sleep 0.05
done
curl -fsS --max-time 5 "http://127.0.0.1:$port/healthz" | grep -q '"status":"ok"' ||
  { cat "$work/serve.log" >&2; fail "/healthz is not ok"; }
curl -fsS --max-time 5 -o "$work/calendar.ics" "http://127.0.0.1:$port/calendar.ics" ||
  fail "GET /calendar.ics"
head -n 1 "$work/calendar.ics" | grep -q $'^BEGIN:VCALENDAR\r$' || fail "/calendar.ics is not a calendar"
grep -q $'^END:VCALENDAR\r$' "$work/calendar.ics" || fail "/calendar.ics is cut short"
kill "$pid"; wait "$pid" || fail "serve did not stop cleanly"; pid=
ok "the installed binary serves /etc/ngayle: /healthz ok, /calendar.ics a calendar"

# --- 4. an edit survives installing again ------------------------------------------------------------
echo "# sửa của trường" >>/etc/ngayle/config/staff.yaml
dpkg -i "$deb" </dev/null >"$work/dpkg2.log" 2>&1 || { cat "$work/dpkg2.log" >&2; fail "dpkg -i again"; }
tail -n 1 /etc/ngayle/config/staff.yaml | grep -q '^# sửa của trường$' || fail "the edit to staff.yaml was lost"
ok "installing again keeps the school's edit to /etc/ngayle/config/staff.yaml"

# --- 5. purge --------------------------------------------------------------------------------------
dpkg --purge ngayle >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "dpkg --purge"; }
for f in /usr/bin/ngayle "$unit" /etc/ngayle; do [[ ! -e $f ]] || fail "$f is left after purge"; done
ok "dpkg --purge removes the binary, the unit and /etc/ngayle"
