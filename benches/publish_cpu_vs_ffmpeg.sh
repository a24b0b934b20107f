#!/usr/bin/env bash
# CPU cost of pushing the same 60 s, 8 Mbit/s H.264/AAC FLV as fast as possible to a
# local nginx-rtmp: `streamhub publish` versus `ffmpeg -i clip.flv -c copy -f flv URL`.
# Prints user+sys CPU seconds per run, the medians, and streamhub/ffmpeg.
# Usage: benches/publish_cpu_vs_ffmpeg.sh [RUNS]   (needs nginx, libnginx-mod-rtmp, ffmpeg)
# REALTIME=1: both send at the media's pace instead (`streamhub publish --realtime`, the
# live congestion policy with its TCP_INFO polling, against `ffmpeg -re`): 60 s a run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
runs=${1:-5}

assets=target/bench-assets
clip=$assets/clip-60s-8mbit.flv
mkdir -p "$assets"
if [ ! -s "$clip" ]; then
  echo "making $clip (once)..."
  make_clip "$clip" 60 8M
fi
cargo build --release -q -p streamhub-cli

work=$(mktemp -d)
cleanup_on_exit "$work"
port=$(free_port)
start_nginx_rtmp "$work" "$port"

# cpu CMD...: runs CMD, prints its user+sys CPU seconds (fails if CMD fails).
cpu() {
  python3 - "$@" <<'PY'
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
if status != 0:
    sys.exit(f"{sys.argv[1]} failed with status {status}")
print(f"{usage.ru_utime + usage.ru_stime:.3f}")
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "clip: $clip ($(du -h "$clip" | cut -f1)), nginx-rtmp on 127.0.0.1:$port, $runs runs each"
# REALTIME=1 adds a third column: streamhub paced with back-pressure instead of the
# live policy, which isolates what the policy itself costs.
printf '%-5s %-12s %-12s %s\n' run streamhub ffmpeg "$([ "${REALTIME:-0}" = 1 ] && echo streamhub-bp)"
: >"$work/s" && : >"$work/f" && : >"$work/b"
ours=() theirs=()
if [ "${REALTIME:-0}" = 1 ]; then ours=(--realtime) theirs=(-re); fi
for i in $(seq "$runs"); do
  s=$(cpu target/release/streamhub publish "${ours[@]}" "$clip" "rtmp://127.0.0.1:$port/live/bench-s$i")
  f=$(cpu ffmpeg -nostdin -v error "${theirs[@]}" -i "$clip" -c copy -f flv "rtmp://127.0.0.1:$port/live/bench-f$i")
  b=""
  if [ "${REALTIME:-0}" = 1 ]; then
    b=$(cpu target/release/streamhub publish --realtime --back-pressure "$clip" "rtmp://127.0.0.1:$port/live/bench-b$i")
    echo "$b" >>"$work/b"
  fi
  echo "$s" >>"$work/s" && echo "$f" >>"$work/f"
  printf '%-5s %-12s %-12s %s\n' "$i" "${s}s" "${f}s" "${b:+${b}s}"
done
ms=$(median <"$work/s")
mf=$(median <"$work/f")
echo "median CPU: streamhub ${ms}s, ffmpeg ${mf}s, ratio streamhub/ffmpeg = $(awk -v a="$ms" -v b="$mf" 'BEGIN {printf "%.3f", a/b}')"
if [ "${REALTIME:-0}" = 1 ]; then
  mb=$(median <"$work/b")
  echo "median CPU paced with back-pressure: ${mb}s; the live policy costs $(awk -v a="$ms" -v b="$mb" 'BEGIN {printf "%+.1f %%", (a/b-1)*100}')"
fi
