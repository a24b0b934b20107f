#!/usr/bin/env bash
# The chat rooms' decide step on Redis (issue 15): sends/s, send-to-reply p50/p99, and
# sends per Redis core (sends divided by the CPU seconds Redis spent, from INFO cpu),
# against a redis-server this script starts on a free loopback port and stops.
# Usage: benches/redis_sends.sh [SENDS] [SENDERS...]   (defaults: 200000; 1 16 64 256)
set -euo pipefail
cd "$(dirname "$0")/.."
sends=${1:-200000}
shift || true
senders=("$@")
((${#senders[@]})) || senders=(1 16 64 256)
cargo build --release -q -p streamhub-benches --bin redis_sends

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
  --daemonize no >/dev/null 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.05; done

cpu() { redis-cli -p "$port" INFO cpu | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.3f", s}'; }
for n in "${senders[@]}"; do
  redis-cli -p "$port" FLUSHALL >/dev/null
  before=$(cpu)
  report=$(target/release/redis_sends --url "redis://127.0.0.1:$port" --senders "$n" --sends "$sends")
  after=$(cpu)
  python3 - "$report" "$before" "$after" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); cpu = float(sys.argv[3]) - float(sys.argv[2])
r["redis_cpu_s"] = round(cpu, 3)
r["sends_per_redis_core_s"] = round(r["sends"] / cpu) if cpu > 0 else None
print(f'{r["senders"]:>4} senders: {r["sends_per_s"]:>9.0f} sends/s, ack p50 {r["ack_p50_ms"]:.3f} ms, '
      f'p99 {r["ack_p99_ms"]:.3f} ms, max {r["ack_max_ms"]:.1f} ms; Redis {r["redis_cpu_s"]} CPU s '
      f'= {r["sends_per_redis_core_s"]} sends per Redis core-second')
PY
done
