#!/usr/bin/env bash
# The loss sweep of issue 14, as root (network namespaces, nftables): an aiortc WHEP
# sender and, side by side, `streamhub play` and aiortc's own receiver, with 0, 1, 2, 5
# and 10 % of every UDP packet dropped. Prints the table; writes
# target/bench-results/loss_sweep.{json,png}. SECONDS_PER_RATE (default 20) per rate.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p streamhub-cli -p streamhub-benches --bin streamhub --bin loss_sweep
mkdir -p target/bench-results
target/release/loss_sweep --streamhub target/release/streamhub \
  --python target/peers-venv/bin/python --seconds "${SECONDS_PER_RATE:-20}" \
  --out target/bench-results
