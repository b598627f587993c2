#!/usr/bin/env bash
# Requests per second of `ngayle serve` for the full feed (plain and gzip) and the 304 path,
# measured with wrk on 127.0.0.1. Bounded: 2 threads, 32 connections, DURATION seconds each.
# Usage: scripts/bench-feed.sh [DURATION]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }

cargo build --release --quiet
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r config calendars "$work/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn ./target/release/ngayle --config "$work/config/ngayle.yaml" serve --listen "127.0.0.1:$port" &
pid=$!
url="http://127.0.0.1:$port/calendar.ics"
for _ in $(seq 100); do curl -fsS -o /dev/null "$url" 2>/dev/null && break; sleep 0.1; done
etag=$(curl -fsS -D - -o /dev/null "$url" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')
size=$(curl -fsS "$url" | wc -c)
gz_etag=$(curl -fsS -H 'Accept-Encoding: gzip' -D - -o /dev/null "$url" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')

run() { # name, extra wrk args...
  local name=$1; shift
  local out
  out=$(wrk -t2 -c32 -d"${duration}s" --latency "$@" "$url")
  local rps p99
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  printf '%-16s %12s req/s   p99 %s\n' "$name" "$rps" "$p99"
}
echo "ngayle serve, full feed $size bytes, wrk -t2 -c32 -d${duration}s, $(nproc) cores"
run "full"
run "full gzip" -H 'Accept-Encoding: gzip'
run "304" -H "If-None-Match: $etag"
run "304 gzip" -H 'Accept-Encoding: gzip' -H "If-None-Match: $gz_etag"
echo "rss after load: $(awk '/VmRSS/{print $2, $3}' /proc/$pid/status)"
