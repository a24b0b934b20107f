#!/usr/bin/env bash
# CPU cost of watching the same WHEP stream for N seconds (default 60) with
# `streamhub play` and with an aiortc viewer, neither decoding; and time to first frame.
# The stream comes from the aiortc WHEP server of tests/peers (H.264 by default).
# Usage: benches/play_cpu_vs_aiortc.sh [SECONDS] [h264|vp8]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
seconds=${1:-60}
codec=${2:-h264}
bash scripts/setup-peers.sh >/dev/null
cargo build --release -q -p streamhub-cli
python=target/peers-venv/bin/python

port=$(free_port)
"$python" tests/peers/aiortc_whep_sender.py --port "$port" --codec "$codec" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
wait_listen "$port" 20
url="http://127.0.0.1:$port/whep/bench"

# cpu CMD...: runs CMD; prints "<user+sys seconds> <its stdout>".
cpu() {
  python3 - "$@" <<'PY'
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)
out = proc.stdout.read().strip()
_, status, usage = os.wait4(proc.pid, 0)
if status != 0:
    sys.exit(f"{sys.argv[1]} failed with status {status}")
print(f"{usage.ru_utime + usage.ru_stime:.2f} {out}")
PY
}

# The server's first session pays its encoder start-up; keep that out of both figures.
target/release/streamhub play "$url" --duration 1 >/dev/null
echo "watching $codec for ${seconds}s from aiortc on 127.0.0.1:$port"
read -r s_cpu s_json < <(cpu target/release/streamhub play "$url" --duration "$seconds" --json)
read -r a_cpu a_json < <(cpu "$python" tests/peers/aiortc_whep_receiver.py "$url" --duration "$seconds")
echo "streamhub play: ${s_cpu}s CPU  $s_json"
echo "aiortc viewer:  ${a_cpu}s CPU  $a_json"
echo "CPU ratio streamhub/aiortc = $(awk -v a="$s_cpu" -v b="$a_cpu" 'BEGIN {printf "%.3f", a/b}')"
