#!/usr/bin/env bash
# Chat load: one room, one sender at RATE messages/s for SECONDS, N WebSocket receivers
# on 127.0.0.1, against `streamhub hub` run as a separate process. For N = 1000 and 5000
# (or the counts given) prints deliveries/s, delivery ratio, send-to-receive latency
# p50/p99/max, the hub's VmRSS per connection and the time to connect every receiver.
# Usage: benches/chat_load.sh [N...]    (env: RATE=50 SECONDS_EACH=20 JSON=1)
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${RATE:-50}
seconds=${SECONDS_EACH:-20}
counts=("$@")
((${#counts[@]})) || counts=(1000 5000)

cargo build --release -q -p streamhub-cli
cargo build --release -q -p streamhub-benches --bin chat_load

# Each receiver needs one descriptor here and one in the hub (which inherits the limit).
max=0
for n in "${counts[@]}"; do ((n > max)) && max=$n; done
need=$((max + 64))
if (($(ulimit -n) < need)); then
  ulimit -n "$need" 2>/dev/null || {
    echo "open-file limit $(ulimit -n) < $need and cannot be raised (hard limit $(ulimit -Hn))" >&2
    exit 1
  }
fi

json=()
[[ -n ${JSON:-} ]] && json=(--json)
status=0
for n in "${counts[@]}"; do
  echo "=== $n receivers, $rate messages/s, $seconds s ==="
  target/release/chat_load --hub target/release/streamhub --receivers "$n" \
    --rate "$rate" --seconds "$seconds" "${json[@]}" || {
    code=$?
    echo "chat_load exited with status $code for $n receivers" >&2
    status=1
  }
  echo
done
exit "$status"
