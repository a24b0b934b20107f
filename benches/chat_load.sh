#!/usr/bin/env bash
# Chat load: one room, one sender at RATE messages/s for SECONDS, N WebSocket receivers
# on 127.0.0.1, against `streamhub hub` run as a separate process. For N = 1000 and 5000
# (or the counts given) prints deliveries/s, delivery ratio, send-to-receive latency
# p50/p99/max, the hub's VmRSS per connection and the time to connect every receiver.
# Multi-node mode (NODES=3): the hubs share the room through a redis-server of the
# script's own (`streamhub hub --chat-engine`); receivers are spread over the nodes, the
# senders are on the first, and the report adds the latency at receivers on other nodes,
# send->ack, Redis's CPU and sends per Redis core-second.
# Usage: benches/chat_load.sh [N...]
#   (env: RATE=50 SECONDS_EACH=20 JSON=1 NODES=1 SENDERS=1)
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${RATE:-50}
seconds=${SECONDS_EACH:-20}
nodes=${NODES:-1}
senders=${SENDERS:-1}
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
engine=()
redis_port=
if ((nodes > 1)); then
  command -v redis-server >/dev/null || {
    echo "NODES=$nodes needs redis-server: run scripts/install-test-deps.sh" >&2
    exit 1
  }
  redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis_dir=$(mktemp -d)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$redis_dir" --daemonize no >/dev/null &
  redis_pid=$!
  trap 'kill "$redis_pid" 2>/dev/null; rm -rf "$redis_dir"' EXIT
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" PING >/dev/null 2>&1 && break
    sleep 0.05
  done
  engine=(--nodes "$nodes" --chat-engine "redis://127.0.0.1:$redis_port" --redis-pid "$redis_pid")
fi
status=0
for n in "${counts[@]}"; do
  echo "=== $n receivers on $nodes node(s), $rate messages/s from $senders sender(s), $seconds s ==="
  [[ -n $redis_port ]] && redis-cli -p "$redis_port" FLUSHALL >/dev/null
  target/release/chat_load --hub target/release/streamhub --receivers "$n" \
    --rate "$rate" --seconds "$seconds" --senders "$senders" "${engine[@]}" "${json[@]}" || {
    code=$?
    echo "chat_load exited with status $code for $n receivers" >&2
    status=1
  }
  echo
done
exit "$status"
