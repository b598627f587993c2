#!/usr/bin/env bash
# Coverage-guided fuzzing of fuzz/ (cargo-fuzz + libFuzzer on stable Rust, no sanitizer):
# installs what is missing, builds the targets, runs each for SECONDS (default 60), one after
# the other, from the committed seeds (fuzz/seeds/TARGET) into fuzz/corpus/TARGET (not
# committed), and exits non-zero if any target crashed. README.md § Fuzzing.
#
#   bash scripts/fuzz.sh [SECONDS [TARGET...]]     (all targets: load http lunar)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
targets=(load http lunar)
if [ "$#" -gt 1 ]; then targets=("${@:2}"); fi
cargo_fuzz_version=0.13.2
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

# libfuzzer-sys compiles libFuzzer (C++) with the system compiler.
if ! command -v c++ >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get -qq update
  DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends g++ >/dev/null
fi
if ! cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $cargo_fuzz_version"; then
  cargo install --locked --quiet cargo-fuzz --version "$cargo_fuzz_version"
fi

# cargo-fuzz has no --locked: fetching with it first fails if fuzz/Cargo.lock is stale.
cargo fetch --locked --quiet --manifest-path fuzz/Cargo.toml
# `-s none`: no sanitizer, which is what lets stable rustc build it (the sanitizers are
# nightly-only flags; safe Rust does not need them). Debug assertions and overflow checks
# stay on (cargo-fuzz's default), so an overflow is a crash.
cargo fuzz build --fuzz-dir fuzz --sanitizer none --target-dir "$target_dir"
bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"

failed=0
summary=()
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  artifacts="fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  rm -f "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-* "$artifacts"/leak-*
  log="fuzz/artifacts/$t.log"
  echo "== fuzz $t for ${seconds} s (log: $log)"
  # New inputs go to the first folder only; the seeds are read, never written.
  set +e
  "$bin_dir/$t" "$corpus" "fuzz/seeds/$t" \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corp=$(grep -ao 'corp: [0-9]*/[0-9]*[bKM]*' "$log" | tail -1 | sed 's/corp: //')
  crashes=$(find "$artifacts" -maxdepth 1 \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  line="$t: ${execs:-?} executions in ${seconds} s, corpus ${corp:-?} (inputs/bytes), $crashes crashes"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    line="$line — FAILED (exit $rc; see $log and $artifacts/)"
    # The panic and its place, for CI's log.
    grep -a -m1 -A3 'panicked at' "$log" || tail -20 "$log"
  fi
  summary+=("$line")
done

echo "== fuzzing summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
