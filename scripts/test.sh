#!/usr/bin/env bash
# The README's test command: installs what the tests need (scripts/install-test-deps.sh,
# idempotent), then runs every test of the workspace, then every fuzz target for 20 s
# from its seeds (scripts/fuzz.sh smoke). Extra arguments go to cargo test (e.g.
# `scripts/test.sh -p streamhub`); a run with arguments is a subset and skips the fuzz
# smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
echo; echo "=== cargo test --workspace ($(date +%T))"
cargo test --workspace "$@"
if [ $# -eq 0 ]; then
  echo; echo "=== fuzz smoke run: scripts/fuzz.sh smoke ($(date +%T))"
  bash scripts/fuzz.sh smoke
  echo; echo "=== soak, 60 s after a 60 s warm-up: CHECK=1 benches/soak.sh 60 ($(date +%T))"
  CHECK=1 bash benches/soak.sh 60
fi
