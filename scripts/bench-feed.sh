#!/usr/bin/env bash
# Feed serving: `ngayle serve` beside nginx serving the very same bytes, same wrk, same run.
#
# 1. ngayle serves the shipped config (a copy; its own SQLite file) on 127.0.0.1. Its idle RSS
#    is read once the start-up tick is done (/healthz shows a last tick) and 2 s have passed.
# 2. The full feed is fetched from ngayle plain and gzipped; those bytes become nginx's
#    calendar.ics and calendar.ics.gz (gzip_static), and are compared with what nginx sends.
#    nginx: as many workers as ngayle has runtime threads (one per core), access log off,
#    sendfile, keep-alive without a request limit (hyper has none).
# 3. For each number of connections in $BENCH_FEED_CONNECTIONS (default "16 60 1000") and each
#    case — full body, full gzip, 304 (If-None-Match with each server's own ETag), 304 gzip —
#    wrk runs against both, one after the other, alternating which goes first,
#    $BENCH_FEED_ROUNDS times (default 5): req/s and p99 side by side, the ratios per round and
#    their medians. Bounded: wrk -t$BENCH_FEED_THREADS (1) -c<connections> -d$BENCH_FEED_SECONDS
#    (5) s. ngayle runs with NGAYLE_MAX_CONNECTIONS=2000 (the shipped cap, 512, would shed wrk's
#    1,000 connections) and both under `ulimit -n 8192`. With BENCH_FEED_ROUTED=1, three more
#    cases send ngayle's requests with a 1-byte body, which takes them past the shortcut in
#    `http::App` to the plain axum router (nginx gets the same requests without the body):
#    what ngayle would do without the shortcut.
# 4. ngayle's RSS 6 s after the load (once it has trimmed its heap), then the cold start to the first feed byte of both (process
#    spawn to the first byte of GET /calendar.ics; scripts/bench_feed_cold.py,
#    $BENCH_FEED_COLD_RUNS runs each, default 11, medians), on the database the runs above left
#    (existing) and on an empty one (deleted before each ngayle run). Judged: the plain GET, on
#    both databases. The same asking for gzip is printed, not judged: ngayle compresses the
#    feed once then, nginx serves a .gz made beforehand.
# Targets (issues 6 and 14): req/s ≥ 0.9 × nginx for every case at every connection count;
# idle RSS ≤ 12 MB and ≤ 2 × that after the load; cold start ≤ 3 × nginx's on an existing and
# on an empty database. p99 is reported beside req/s (median ratio to nginx's), not judged.
# Exit 0 when all pass, 1 otherwise.
#
# Time: about (4 cases [+3 routed]) × 3 connection counts × rounds × 2 × (seconds + ~1) plus a
# minute for the build check and the cold starts — BENCH_FEED_ROUNDS=3: ~8 min (~13 routed).
#
# Usage: scripts/bench-feed.sh      (needs wrk and nginx: apt-get install wrk nginx-light)
# BIN=path uses that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
rounds=${BENCH_FEED_ROUNDS:-5}
secs=${BENCH_FEED_SECONDS:-5}
conns_list=${BENCH_FEED_CONNECTIONS:-16 60 1000}
threads=${BENCH_FEED_THREADS:-1}
cold_runs=${BENCH_FEED_COLD_RUNS:-11}
routed=${BENCH_FEED_ROUTED:-0}
for v in "$rounds" "$secs" "$threads" "$cold_runs"; do
  [[ $v =~ ^[1-9][0-9]{0,2}$ ]] || { echo "BENCH_FEED_* values must be 1..999" >&2; exit 1; }
done
for v in $conns_list; do
  [[ $v =~ ^[1-9][0-9]{0,3}$ && $v -ge $threads ]] || { echo "BENCH_FEED_CONNECTIONS: numbers 1..9999, at least BENCH_FEED_THREADS" >&2; exit 1; }
done
[[ $routed == 0 || $routed == 1 ]] || { echo "BENCH_FEED_ROUTED must be 0 or 1" >&2; exit 1; }
ulimit -n 8192 2>/dev/null || echo "bench-feed: could not raise ulimit -n (now $(ulimit -n)): 1,000 connections may fail" >&2
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install wrk nginx-light curl" >&2; exit 1; }
done

if [[ -z ${BIN:-} ]]; then
  timeout 1800 cargo build --release --quiet
  BIN=$repo/target/release/ngayle
fi
ngayle=$(realpath "$BIN")
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
  (cd "$work" && RUST_LOG=warn NGAYLE_MAX_CONNECTIONS=2000 exec "$ngayle" serve --listen "127.0.0.1:$ng_port" >>"$work/ngayle.log" 2>&1) &
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
# A 1-byte body takes a request past the shortcut to the router (BENCH_FEED_ROUTED).
printf 'wrk.body = "x"\n' >"$work/body.lua"
wrk_run() { # connections, url, extra args... → "REQ_PER_S P99_MS ERRORS"
  local c=$1 url=$2; shift 2
  local out
  out=$(timeout $((secs + 60)) wrk -t"$threads" -c"$c" -d"${secs}s" --latency "$@" "$url")
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { r = $2 }
    $1 == "99%" { p = ms($2) }
    /Socket errors/ { gsub(",", ""); e += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx/ { e += $NF }
    END { printf "%s %.2f %d\n", r, p, e }' <<<"$out"
}
echo "bench-feed: $(nproc) cores; full feed $size bytes, gzip $gz_size bytes; wrk -t$threads -c{$conns_list} -d${secs}s; $rounds round(s); nginx $workers workers"
printf '%-5s %-15s %-5s %12s %9s   %12s %9s   %6s %6s\n' conns case round "nginx req/s" "p99 ms" "ngayle req/s" "p99 ms" ratio "p99 ×"
declare -A ratios p99s
cases=(full gzip 304 304-gzip)
(( routed )) && cases+=(full-routed gzip-routed 304-routed)
nx_gz_etag=$(etag "$nx_url" -H 'Accept-Encoding: gzip')
for conns in $conns_list; do
  for round in $(seq "$rounds"); do
    for c in "${cases[@]}"; do
      case $c in
        full|full-routed) ng_args=(); nx_args=() ;;
        gzip|gzip-routed) ng_args=(-H 'Accept-Encoding: gzip'); nx_args=(-H 'Accept-Encoding: gzip') ;;
        304|304-routed) ng_args=(-H "If-None-Match: $ng_etag"); nx_args=(-H "If-None-Match: $nx_etag") ;;
        304-gzip) ng_args=(-H 'Accept-Encoding: gzip' -H "If-None-Match: ${ng_etag%\"}-gz\"")
                  nx_args=(-H 'Accept-Encoding: gzip' -H "If-None-Match: $nx_gz_etag") ;;
      esac
      [[ $c == *-routed ]] && ng_args+=(-s "$work/body.lua")
      if (( round % 2 )); then
        read -r nx_r nx_p nx_e < <(wrk_run "$conns" "$nx_url" "${nx_args[@]}")
        read -r ng_r ng_p ng_e < <(wrk_run "$conns" "$ng_url" "${ng_args[@]}")
      else
        read -r ng_r ng_p ng_e < <(wrk_run "$conns" "$ng_url" "${ng_args[@]}")
        read -r nx_r nx_p nx_e < <(wrk_run "$conns" "$nx_url" "${nx_args[@]}")
      fi
      ratio=$(awk -v a="$ng_r" -v b="$nx_r" 'BEGIN{printf "%.3f", (b>0)?a/b:0}')
      p99=$(awk -v a="$ng_p" -v b="$nx_p" 'BEGIN{printf "%.2f", (b>0)?a/b:0}')
      ratios[$conns/$c]="${ratios[$conns/$c]:-} $ratio"
      p99s[$conns/$c]="${p99s[$conns/$c]:-} $p99"
      errors=
      (( nx_e + ng_e > 0 )) && errors="  (errors: nginx $nx_e, ngayle $ng_e)"
      printf '%-5s %-15s %-5s %12s %9s   %12s %9s   %6s %6s%s\n' "$conns" "$c" "$round" "$nx_r" "$nx_p" "$ng_r" "$ng_p" "$ratio" "$p99" "$errors"
    done
  done
done
# After a burst of connections ngayle gives its free heap back once none has been open for 1 s
# (at most every 5 s, `http::serve`): read the RSS after that.
sleep 6
loaded_kb=$(rss_kb "$ng_pid")

# --- cold start -----------------------------------------------------------------------------------
kill "$ng_pid"; wait "$ng_pid" 2>/dev/null || true; ng_pid=
kill "$nx_pid"; wait "$nx_pid" 2>/dev/null || true; nx_pid=
cold() { # BENCH_COLD_GZIP value, empty database (0/1) → "NGINX_MS NGAYLE_MS"
  local out db=
  (( $2 )) && db="$work/var/ngayle.sqlite"
  out=$(BENCH_COLD_GZIP=$1 BENCH_COLD_EMPTY_DB=$db BENCH_COLD_CWD="$work" RUST_LOG=warn timeout 600 python3 scripts/bench_feed_cold.py \
    "$cold_runs" /calendar.ics -- "$nx_port" "${nginx_cmd[@]}" -- "$ng_port" "$ngayle" serve --listen "127.0.0.1:$ng_port")
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("%.1f %.1f" % (d["nginx_ms"], d["ngayle_ms"]))' "$out"
}
[[ -f $work/var/ngayle.sqlite ]] || { echo "no database at $work/var/ngayle.sqlite: the config's state moved?" >&2; exit 1; }
read -r cold_nx cold_ng < <(cold 0 0)
# With gzip asked for: ngayle's first gzip answer includes compressing the feed once.
read -r cold_gz_nx cold_gz_ng < <(cold 1 0)
read -r cold_empty_nx cold_empty_ng < <(cold 0 1)
read -r cold_empty_gz_nx cold_empty_gz_ng < <(cold 1 1)

# --- verdict --------------------------------------------------------------------------------------
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
fail=0
verdict() { # name, value, op, target
  if awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN{exit !((op==">=")?(v>=t):(v<=t))}'; then
    printf '%-44s %10s  %s %-8s PASS\n' "$1" "$2" "$3" "$4"
  else
    printf '%-44s %10s  %s %-8s FAIL\n' "$1" "$2" "$3" "$4"; fail=1
  fi
}
echo
for conns in $conns_list; do
  for c in "${cases[@]}"; do
    verdict "req/s ratio, $c @$conns (median)" "$(median "${ratios[$conns/$c]}")" ">=" 0.9
    echo "    p99 ngayle/nginx, median: $(median "${p99s[$conns/$c]}")"
  done
done
verdict "idle RSS, MB" "$(mb "$idle_kb")" "<=" 12
verdict "RSS after load, MB" "$(mb "$loaded_kb")" "<=" "$(awk -v k="$idle_kb" 'BEGIN{printf "%.1f", 2*k/1024}')"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo "cold start to the first feed byte, plain GET (medians of $cold_runs):"
echo "  existing database: nginx $cold_nx ms, ngayle $cold_ng ms"
verdict "cold start ratio, existing database" "$(ratio "$cold_ng" "$cold_nx")" "<=" 3
echo "  empty database: nginx $cold_empty_nx ms, ngayle $cold_empty_ng ms"
verdict "cold start ratio, empty database" "$(ratio "$cold_empty_ng" "$cold_empty_nx")" "<=" 3
echo "  asking for gzip (not judged: includes the one compression): existing database nginx $cold_gz_nx ms," \
  "ngayle $cold_gz_ng ms, $(ratio "$cold_gz_ng" "$cold_gz_nx") ×; empty database nginx $cold_empty_gz_nx ms," \
  "ngayle $cold_empty_gz_ng ms, $(ratio "$cold_empty_gz_ng" "$cold_empty_gz_nx") ×"
exit "$fail"
