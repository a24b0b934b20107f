#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer): the targets in fuzz/fuzz_targets/, one per parser,
# each starting from its checked-in seeds (fuzz/seeds/<target>/). Runs on STABLE Rust:
# without a sanitizer (`--sanitizer none`), cargo-fuzz needs no nightly flag; libFuzzer's
# coverage instrumentation (SanitizerCoverage) is stable, and a panic is a crash.
#
#   scripts/fuzz.sh smoke [SECONDS]          every target for SECONDS (default 20), FUZZ_JOBS
#                                            (default: one per core) at a time; fails on any
#                                            crash, timeout or out-of-memory (the CI runs it)
#   scripts/fuzz.sh long [RUNS] [TARGET...]  each target (or the ones named) for RUNS executions
#                                            (default 10000000), one at a time, then a table:
#                                            executions, exec/s, cov, ft, corpus, result;
#                                            FUZZ_MAX_TIME=SECONDS stops each one earlier
#   scripts/fuzz.sh build                    builds the targets
#   scripts/fuzz.sh list                     lists the targets
#
# New inputs go to a temporary corpus (removed at the end; FUZZ_WORK=DIR keeps them
# there), so the seeds stay small. A crash's input is left in fuzz/artifacts/<target>/.
# A new target: fuzz/fuzz_targets/NAME.rs, its [[bin]] in fuzz/Cargo.toml (what
# `cargo fuzz add NAME` writes) and seeds in fuzz/seeds/NAME/ (examples/seeds.rs makes
# them); this script finds it by itself.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`; scripts/install-test-deps.sh) and
# a C++ compiler (libfuzzer-sys builds libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ=(cargo fuzz)
BUILD_FLAGS=(--fuzz-dir fuzz --sanitizer none)
# Each input may take at most this long (a hang is a failure too).
TIMEOUT_SECS=${FUZZ_TIMEOUT_SECS:-10}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 1
fi

targets() { "${FUZZ[@]}" list --fuzz-dir fuzz; }

build() {
  local start=$SECONDS
  echo "=== building the fuzz targets ($(date +%T))"
  "${FUZZ[@]}" build "${BUILD_FLAGS[@]}"
  echo "built in $((SECONDS - start)) s"
}

# run TARGET LOG LIBFUZZER-ARGS...: one target from its seeds into a fresh corpus.
run() {
  local target=$1 log=$2
  shift 2
  local corpus="$work/corpus/$target"
  mkdir -p "$corpus" "fuzz/seeds/$target"
  # The first corpus directory gets the new inputs; the seeds are only read.
  "${FUZZ[@]}" run "${BUILD_FLAGS[@]}" "$target" "$corpus" "fuzz/seeds/$target" -- \
    -timeout="$TIMEOUT_SECS" -print_final_stats=1 "$@" >"$log" 2>&1
}

# stat LOG NAME: a libFuzzer final statistic.
stat() { sed -n "s/^stat::$2: *//p" "$1" | tail -1; }
# coverage LOG FIELD: cov, ft or corp (inputs in the corpus) from the last status line.
coverage() { grep -E '^#[0-9]+' "$1" | tail -1 | sed -n "s/.* $2: \([0-9]*\).*/\1/p"; }

report_crash() {
  local target=$1 log=$2
  echo "--- $target failed:"
  grep -E -A2 "panicked at|^==[0-9]+== ERROR|^SUMMARY" "$log" | head -20 || true
  mkdir -p "fuzz/artifacts/$target"
  cp "$log" "fuzz/artifacts/$target/fuzz.log"
  ls -1 "fuzz/artifacts/$target" 2>/dev/null | sed "s|^|    fuzz/artifacts/$target/|" || true
}

mode=${1:-}
[ -n "$mode" ] || usage
shift

case "$mode" in
  list) targets; exit 0 ;;
  build) build; exit 0 ;;
  smoke|long) ;;
  *) usage ;;
esac

if [ -n "${FUZZ_WORK:-}" ]; then
  work=$FUZZ_WORK
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/streamhub-fuzz.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/logs"

build
failed=()
case "$mode" in
  smoke)
    seconds=${1:-20}
    # Targets run side by side, one per core (libFuzzer is single-threaded): each
    # still gets its full time.
    jobs=${FUZZ_JOBS:-$(nproc)}
    declare -A pid_of
    for target in $(targets); do
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
      run "$target" "$work/logs/$target.log" -max_total_time="$seconds" &
      pid_of[$target]=$!
    done
    for target in $(targets); do
      log="$work/logs/$target.log"
      if wait "${pid_of[$target]}"; then
        printf '%-12s ok  %10s runs  cov %6s  ft %7s\n' "$target" \
          "$(stat "$log" number_of_executed_units)" "$(coverage "$log" cov)" "$(coverage "$log" ft)"
      else
        failed+=("$target")
        report_crash "$target" "$log"
      fi
    done
    ;;
  long)
    runs=${1:-10000000}
    shift || true
    selected=("$@")
    [ ${#selected[@]} -gt 0 ] || mapfile -t selected < <(targets)
    rows=()
    for target in "${selected[@]}"; do
      log="$work/logs/$target.log"
      echo "=== $target: $runs runs ($(date +%T))"
      start=$SECONDS
      result=ok
      run "$target" "$log" -runs="$runs" -max_total_time="${FUZZ_MAX_TIME:-0}" || { result=FAILED; failed+=("$target"); report_crash "$target" "$log"; }
      rows+=("$(printf '%-12s %11s %8s %6s %7s %7s %7s  %s' "$target" \
        "$(stat "$log" number_of_executed_units)" "$(stat "$log" average_exec_per_sec)" \
        "$(coverage "$log" cov)" "$(coverage "$log" ft)" \
        "$(coverage "$log" corp)" "$((SECONDS - start))s" "$result")")
      echo "${rows[-1]}"
    done
    echo
    printf '%-12s %11s %8s %6s %7s %7s %7s  %s\n' target executions exec/s cov ft corpus time result
    printf '%s\n' "${rows[@]}"
    ;;
esac

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "no crash"
