#!/usr/bin/env bash
# The README's test command: installs what the tests need (scripts/install-test-deps.sh,
# idempotent), builds every test binary, runs every test with cargo-nextest (each test
# in a process of its own, two at a time; the `alone` binaries with nothing beside them:
# .config/nextest.toml), then the doc tests, every fuzz target for 20 s from its seeds
# (scripts/fuzz.sh smoke) and the 60 s soak (benches/soak.sh).
#
# Extra arguments go to `cargo nextest run` (e.g. `scripts/test.sh -p streamhub-cli` or
# `scripts/test.sh -E 'test(throttle)'`); a run with arguments is a subset and skips the
# doc tests, the fuzz smoke run and the soak. Each step's wall time goes to the table
# .ci/run prints at its end (scripts/steps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/steps.sh
steps_trap

step "install the test peers (scripts/install-test-deps.sh)"
bash scripts/install-test-deps.sh

step "build the tests (cargo nextest run --workspace --no-run)"
cargo nextest run --workspace --no-run "$@"

step "run the tests (cargo nextest run --workspace)"
cargo nextest run --workspace "$@"

if [ $# -eq 0 ]; then
  step "doc tests (cargo test --workspace --doc)"
  cargo test --workspace --doc

  step "fuzz smoke run: every target for 20 s (scripts/fuzz.sh smoke)"
  bash scripts/fuzz.sh smoke

  # The CLI's release build is the one the README's demo command runs next in .ci/run;
  # the soak's load generator resolves other features (plotters), so it is a second one.
  step "soak: release builds (streamhub-cli; streamhub-benches --bin soak)"
  cargo build --release -p streamhub-cli
  cargo build --release -p streamhub-benches --bin soak

  step "soak: 60 s warm-up, 60 s load (CHECK=1 benches/soak.sh 60)"
  CHECK=1 bash benches/soak.sh 60
fi
step_end
