#!/usr/bin/env bash
# The README's test command: installs what the tests need (scripts/install-test-deps.sh,
# idempotent), then runs every test of the workspace. Extra arguments go to cargo test
# (e.g. `scripts/test.sh -p streamhub`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
echo; echo "=== cargo test --workspace ($(date +%T))"
cargo test --workspace "$@"
