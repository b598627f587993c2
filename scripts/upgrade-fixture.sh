#!/usr/bin/env bash
# Makes tests/fixtures/state-before-leads.sqlite: the state database of the release before
# reminders had leads (migration 0004), as that release leaves it after a real tick on its own
# shipped files. tests/it/upgrade.rs upgrades a copy with this build and checks that no
# recorded reminder is sent again.
#
#   git worktree add /tmp/parent c0d45e4 && (cd /tmp/parent && cargo build --release --locked)
#   bash scripts/upgrade-fixture.sh /tmp/parent/target/release/ngayle c0d45e4
set -euo pipefail
bin=$(realpath "$1")
commit=${2:-c0d45e4}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" archive "$commit" config calendars | tar -x -C "$work"
cd "$work"
# The outbox, so that no mail server is needed; the same instant as the test's first run.
NGAYLE_STATE="$work/state.sqlite" "$bin" send-due --config config/ngayle.yaml \
  --now 2024-04-29T07:30:00+07:00
# One file, no WAL beside it.
python3 - "$work/state.sqlite" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.execute("PRAGMA journal_mode=DELETE")
c.close()
PY
cp "$work/state.sqlite" "$root/tests/fixtures/state-before-leads.sqlite"
echo "tests/fixtures/state-before-leads.sqlite from $commit ($("$bin" --version))"
