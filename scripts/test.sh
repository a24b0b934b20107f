#!/usr/bin/env bash
# The README's test command: installs what the tests need (scripts/install-test-deps.sh,
# idempotent), builds every test binary, runs every test with cargo-nextest (each test
# in a process of its own, two at a time: .config/nextest.toml), then the tests that
# need the machine whole (the `alone` binary) with nothing beside them, the doc tests,
# every fuzz target for 20 s from its seeds (scripts/fuzz.sh smoke) and the 60 s soak
# (benches/soak.sh).
#
# The shared tests mostly wait on real time (clips played at their pace, peers'
# timers), so while they run, the builds the later steps need (release builds for the
# soak and the README's demo, the fuzz targets, the bindings generator) and the core's
# per-feature lints run beside them at the lowest CPU priority (nice 19 in a scheduling
# group of their own: scripts/lowest-priority.sh, scripts/beside-tests.sh): they take
# what the tests leave idle. They finish before the `alone` tests start.
#
# Extra arguments go to `cargo nextest run` (e.g. `scripts/test.sh -p streamhub-cli` or
# `scripts/test.sh -E 'test(throttle)'`); a run with arguments is a subset: it runs only
# those tests, nothing beside them, and no doc tests, fuzz smoke run or soak. Each
# step's wall time goes to the table .ci/run prints at its end (scripts/steps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/steps.sh
steps_trap

step "install the test peers (scripts/install-test-deps.sh)"
bash scripts/install-test-deps.sh

step "build the tests (cargo nextest run --workspace --no-run)"
cargo nextest run --workspace --no-run "$@"

if [ $# -gt 0 ]; then
  step "run the tests selected (cargo nextest run --workspace $*)"
  cargo nextest run --workspace "$@"
  step_end
  exit 0
fi

# The job beside the tests starts once nextest has checked its build (it holds cargo's
# lock on target/ until then): nextest says "Starting" when it runs the first test.
started=$(mktemp -u "${TMPDIR:-/tmp}/streamhub-tests-started.XXXXXX")
step_beside "beside the tests, nice 19: release, fuzz and bindgen builds; per-feature lints" \
  bash -c 'while [ ! -e "$0" ]; do sleep 0.5; done; exec scripts/lowest-priority.sh bash scripts/beside-tests.sh' "$started"

step "run the tests (cargo nextest run --workspace -E 'not binary(alone)')"
status=0
cargo nextest run --workspace -E 'not binary(alone)' 2>&1 | while IFS= read -r line; do
  printf '%s\n' "$line"
  case $line in *Starting*) touch "$started" ;; esac
done || status=$?
touch "$started"
[ "$status" -eq 0 ] || { step_wait || true; exit "$status"; }

step "wait for the job beside the tests"
step_wait

step "run the tests that need the machine whole (cargo nextest run -E 'binary(alone)')"
cargo nextest run --workspace -E 'binary(alone)'

step "doc tests (cargo test --workspace --doc)"
cargo test --workspace --doc

step "fuzz smoke run: every target for 20 s, two at a time (scripts/fuzz.sh smoke)"
bash scripts/fuzz.sh smoke

step "soak: 60 s warm-up, 60 s load (CHECK=1 benches/soak.sh 60)"
CHECK=1 bash benches/soak.sh 60
step_end
