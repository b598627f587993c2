#!/usr/bin/env bash
# Feed serving: `ngayle serve` beside nginx serving the very same bytes, same wrk, same run.
#
# 1. ngayle serves the shipped config (a copy; its own SQLite file) on 127.0.0.1. Its idle RSS
#    is read once the start-up tick is done (/healthz shows a last tick) and 2 s have passed.
# 2. The full feed is fetched from ngayle plain and gzipped; those bytes become nginx's
#    calendar.ics and calendar.ics.gz (gzip_static), and are compared with what nginx sends.
#    nginx: as many workers as ngayle has runtime threads (one per core), access log off,
#    sendfile, keep-alive without a request limit (hyper has none).
# 3. For each case — full body, full gzip, 304 (If-None-Match with each server's own ETag) —
#    wrk runs against both, one after the other, alternating which goes first,
#    $BENCH_FEED_ROUNDS times (default 5): req/s and p99 side by side, the ratio per round and
#    its median. Bounded: wrk -t$BENCH_FEED_THREADS (1) -c$BENCH_FEED_CONNECTIONS (16)
#    -d$BENCH_FEED_SECONDS (5) s.
# 4. ngayle's RSS after the load, then the cold start to the first feed byte of both (process
#    spawn to the first byte of GET /calendar.ics, existing state; scripts/bench_feed_cold.py,
#    $BENCH_FEED_COLD_RUNS runs each, default 11, medians), judged on a plain GET; the same with
#    gzip asked for is printed too (ngayle compresses the feed once then; nginx has the .gz).
# Targets (issue 6): req/s ≥ 0.9 × nginx for the full body and for 304; idle RSS ≤ 12 MB and
# ≤ 2 × that after the load; cold start ≤ 3 × nginx's. Exit 0 when all pass, 1 otherwise.
#
# Usage: scripts/bench-feed.sh      (needs wrk and nginx: apt-get install wrk nginx-light)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
rounds=${BENCH_FEED_ROUNDS:-5}
secs=${BENCH_FEED_SECONDS:-5}
conns=${BENCH_FEED_CONNECTIONS:-16}
threads=${BENCH_FEED_THREADS:-1}
cold_runs=${BENCH_FEED_COLD_RUNS:-11}
for v in "$rounds" "$secs" "$conns" "$threads" "$cold_runs"; do
  [[ $v =~ ^[1-9][0-9]{0,2}$ ]] || { echo "BENCH_FEED_* values must be 1..999" >&2; exit 1; }
done
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install wrk nginx-light curl" >&2; exit 1; }
done

timeout 1800 cargo build --release --quiet
ngayle="$repo/target/release/ngayle"
work=$(mktemp -d)
ng_pid=
nx_pid=
cleanup() {
  for p in $ng_pid $nx_pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

# --- ngayle -------------------------------------------------------------------------------------
cp -r config calendars "$work/"
ng_port=$(free_port)
start_ngayle() {
  (cd "$work" && RUST_LOG=warn exec "$ngayle" serve --listen "127.0.0.1:$ng_port" >>"$work/ngayle.log" 2>&1) &
  ng_pid=$!
}
start_ngayle
ng_url="http://127.0.0.1:$ng_port/calendar.ics"
for _ in $(seq 200); do
  curl -fsS --max-time 2 "http://127.0.0.1:$ng_port/healthz" 2>/dev/null | grep -q '"last_tick":"' && break
  sleep 0.05
done
sleep 2
idle_kb=$(rss_kb "$ng_pid")

# --- nginx with the same bytes -------------------------------------------------------------------
mkdir -p "$work/nginx/root" "$work/nginx/tmp"
curl -fsS --max-time 10 -o "$work/nginx/root/calendar.ics" "$ng_url"
curl -fsS --max-time 10 -H 'Accept-Encoding: gzip' -o "$work/nginx/root/calendar.ics.gz" "$ng_url"
# nginx's workers drop root (www-data / nobody): they must be able to read the files.
chmod 755 "$work"
chmod -R a+rX "$work/nginx"
nx_port=$(free_port)
workers=$(nproc)
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  types { text/calendar ics; }
  charset utf-8; charset_types text/calendar;
  sendfile on; tcp_nopush on;
  keepalive_requests 1000000000; keepalive_timeout 60s;
  gzip_static on;
  server { listen 127.0.0.1:$nx_port; root $work/nginx/root; }
}
EOF
nginx_cmd=(nginx -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf")
"${nginx_cmd[@]}" &
nx_pid=$!
nx_url="http://127.0.0.1:$nx_port/calendar.ics"
for _ in $(seq 100); do curl -fsS --max-time 2 -o /dev/null "$nx_url" 2>/dev/null && break; sleep 0.05; done
same() { cmp -s <(curl -fsS --max-time 10 "${@:2}" "$ng_url") <(curl -fsS --max-time 10 "${@:2}" "$nx_url") || { echo "nginx and ngayle differ: $1" >&2; exit 1; }; }
same "full body"
same "gzip body" -H 'Accept-Encoding: gzip'
etag() { curl -fsS --max-time 10 -D - -o /dev/null "${@:2}" "$1" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r'; }
ng_etag=$(etag "$ng_url"); nx_etag=$(etag "$nx_url")
size=$(wc -c <"$work/nginx/root/calendar.ics"); gz_size=$(wc -c <"$work/nginx/root/calendar.ics.gz")
for url_etag in "$ng_url $ng_etag" "$nx_url $nx_etag"; do
  read -r u e <<<"$url_etag"
  code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H "If-None-Match: $e" "$u")
  [[ $code == 304 ]] || { echo "$u answered $code, not 304, to If-None-Match: $e" >&2; exit 1; }
done

# --- wrk, side by side ----------------------------------------------------------------------------
wrk_run() { # url, extra header args... → "REQ_PER_S P99"
  local url=$1; shift
  local out
  out=$(timeout $((secs + 30)) wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$@" "$url")
  awk '/Requests\/sec/{r=$2} $1=="99%"{p=$2} END{print r, p}' <<<"$out"
}
echo "bench-feed: $(nproc) cores; full feed $size bytes, gzip $gz_size bytes; wrk -t$threads -c$conns -d${secs}s; $rounds round(s); nginx $workers workers"
printf '%-10s %-5s %12s %9s   %12s %9s   %6s\n' case round "nginx req/s" p99 "ngayle req/s" p99 ratio
declare -A ratios
cases=(full gzip 304 304-gzip)
for round in $(seq "$rounds"); do
  for c in "${cases[@]}"; do
    case $c in
      full) ng_args=(); nx_args=() ;;
      gzip) ng_args=(-H 'Accept-Encoding: gzip'); nx_args=(-H 'Accept-Encoding: gzip') ;;
      304) ng_args=(-H "If-None-Match: $ng_etag"); nx_args=(-H "If-None-Match: $nx_etag") ;;
      304-gzip) ng_args=(-H 'Accept-Encoding: gzip' -H "If-None-Match: ${ng_etag%\"}-gz\"")
                nx_args=(-H 'Accept-Encoding: gzip' -H "If-None-Match: $(etag "$nx_url" -H 'Accept-Encoding: gzip')") ;;
    esac
    if (( round % 2 )); then
      read -r nx_r nx_p < <(wrk_run "$nx_url" "${nx_args[@]}")
      read -r ng_r ng_p < <(wrk_run "$ng_url" "${ng_args[@]}")
    else
      read -r ng_r ng_p < <(wrk_run "$ng_url" "${ng_args[@]}")
      read -r nx_r nx_p < <(wrk_run "$nx_url" "${nx_args[@]}")
    fi
    ratio=$(awk -v a="$ng_r" -v b="$nx_r" 'BEGIN{printf "%.3f", (b>0)?a/b:0}')
    ratios[$c]="${ratios[$c]:-} $ratio"
    printf '%-10s %-5s %12s %9s   %12s %9s   %6s\n' "$c" "$round" "$nx_r" "$nx_p" "$ng_r" "$ng_p" "$ratio"
  done
done
loaded_kb=$(rss_kb "$ng_pid")

# --- cold start -----------------------------------------------------------------------------------
kill "$ng_pid"; wait "$ng_pid" 2>/dev/null || true; ng_pid=
kill "$nx_pid"; wait "$nx_pid" 2>/dev/null || true; nx_pid=
cold() { # BENCH_COLD_GZIP value → "NGINX_MS NGAYLE_MS"
  local out
  out=$(BENCH_COLD_GZIP=$1 BENCH_COLD_CWD="$work" RUST_LOG=warn timeout 600 python3 scripts/bench_feed_cold.py \
    "$cold_runs" /calendar.ics -- "$nx_port" "${nginx_cmd[@]}" -- "$ng_port" "$ngayle" serve --listen "127.0.0.1:$ng_port")
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("%.1f %.1f" % (d["nginx_ms"], d["ngayle_ms"]))' "$out"
}
read -r cold_nx cold_ng < <(cold 0)
# With gzip asked for: ngayle's first gzip answer includes compressing the feed once.
read -r cold_gz_nx cold_gz_ng < <(cold 1)

# --- verdict --------------------------------------------------------------------------------------
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
fail=0
verdict() { # name, value, op, target
  if awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN{exit !((op==">=")?(v>=t):(v<=t))}'; then
    printf '%-34s %10s  %s %-8s PASS\n' "$1" "$2" "$3" "$4"
  else
    printf '%-34s %10s  %s %-8s FAIL\n' "$1" "$2" "$3" "$4"; fail=1
  fi
}
echo
for c in "${cases[@]}"; do verdict "req/s ratio, $c (median)" "$(median "${ratios[$c]}")" ">=" 0.9; done
verdict "idle RSS, MB" "$(mb "$idle_kb")" "<=" 12
verdict "RSS after load, MB" "$(mb "$loaded_kb")" "<=" "$(awk -v k="$idle_kb" 'BEGIN{printf "%.1f", 2*k/1024}')"
echo "cold start to the first feed byte: nginx $cold_nx ms, ngayle $cold_ng ms (medians of $cold_runs)"
verdict "cold start ratio" "$(awk -v a="$cold_ng" -v b="$cold_nx" 'BEGIN{printf "%.2f", a/b}')" "<=" 3
echo "  the same asking for gzip: nginx $cold_gz_nx ms, ngayle $cold_gz_ng ms," \
  "ratio $(awk -v a="$cold_gz_ng" -v b="$cold_gz_nx" 'BEGIN{printf "%.2f", a/b}') (not judged: includes the one compression)"
exit "$fail"
