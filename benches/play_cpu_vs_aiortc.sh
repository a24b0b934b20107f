#!/usr/bin/env bash
# CPU cost of watching the same WHEP stream for N seconds (default 60) with
# `streamhub play` and with an aiortc viewer, neither decoding; and time to first frame.
# The sender is aiortc (default), GStreamer's webrtcbin or Chromium's libwebrtc, all
# from tests/peers, and everything runs in a network namespace of the script's own with
# only loopback (Chromium gathers no loopback candidate elsewhere). Needs root.
# Usage: SENDER=aiortc|gstreamer|chromium benches/play_cpu_vs_aiortc.sh [SECONDS] [CODEC]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
codec=${2:-h264}
sender=${SENDER:-aiortc}
bash scripts/setup-peers.sh >/dev/null
cargo build --release -q -p streamhub-cli
python=$PWD/target/peers-venv/bin/python

ns=shbench-$$
tmp=$(mktemp -d)
ip netns add "$ns"
ip -n "$ns" link set lo up
cleanup() {
  # Every process in the namespace, by PID (the sender runs under a subshell, so $!
  # is not its PID), then the namespace. Nothing here may stop the teardown early.
  local pids
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] && kill $pids 2>/dev/null || true
  sleep 0.5
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
in_ns() { ip netns exec "$ns" "$@"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
case "$sender" in
  aiortc) in_ns "$python" tests/peers/aiortc_whep_sender.py --port "$port" --codec "$codec" >/dev/null 2>&1 & ;;
  gstreamer) in_ns /usr/bin/python3 tests/peers/gst_whep_sender.py --port "$port" --codec "$codec" >/dev/null 2>&1 & ;;
  chromium) TMPDIR=$tmp in_ns node tests/peers/chromium_whep_sender.mjs --port "$port" --codec "$codec" >/dev/null 2>&1 & ;;
  *) echo "SENDER must be aiortc, gstreamer or chromium" >&2; exit 2 ;;
esac
deadline=$((SECONDS + 30))
until in_ns ss -Hltn "sport = :$port" | grep -q "127.0.0.1:$port"; do
  if ((SECONDS >= deadline)); then echo "the $sender sender did not start" >&2; exit 1; fi
  sleep 0.1
done
url="http://127.0.0.1:$port/whep/bench"

# cpu CMD...: runs CMD in the namespace; prints "<user+sys seconds> <its stdout>".
cpu() {
  python3 - ip netns exec "$ns" "$@" <<'PY'
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
in_ns target/release/streamhub play "$url" --duration 1 >/dev/null
echo "watching $codec for ${seconds}s from $sender on 127.0.0.1:$port (namespace $ns)"
read -r s_cpu s_json < <(cpu target/release/streamhub play "$url" --duration "$seconds" --json)
read -r a_cpu a_json < <(cpu "$python" tests/peers/aiortc_whep_receiver.py "$url" --duration "$seconds")
echo "streamhub play: ${s_cpu}s CPU  $s_json"
echo "aiortc viewer:  ${a_cpu}s CPU  $a_json"
echo "CPU ratio streamhub/aiortc = $(awk -v a="$s_cpu" -v b="$a_cpu" 'BEGIN {printf "%.3f", a/b}')"
