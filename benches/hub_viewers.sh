#!/usr/bin/env bash
# The hub's cost per WHEP viewer: one 2 Mbit/s stream (720p30 H.264 Constrained Baseline
# + AAC, published by `streamhub publish --realtime --latency-stamps`), watched by N
# viewers in one `whep_load` process, for N = 1, 10, 50 (or the counts given). For each
# N: the hub's CPU (utime+stime from /proc over the measuring window, as % of one core),
# the same with no viewer (the ingest and transcode baseline), time to first frame for a
# viewer joining the running stream, frame rate per viewer, and publish→view latency
# from the SEI stamps.
# Usage: benches/hub_viewers.sh [N...]    (env: SECONDS_EACH=20)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_EACH:-20}
counts=("$@")
((${#counts[@]})) || counts=(1 10 50)

cargo build --release -q -p streamhub-cli
cargo build --release -q -p streamhub-benches --bin whep_load
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

clip_seconds=$(( (seconds + 15) * (${#counts[@]} + 1) + 30 ))
echo "making a ${clip_seconds} s 720p30 2 Mbit/s clip..." >&2
ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=44100" -t "$clip_seconds" \
  -c:v libx264 -preset ultrafast -tune zerolatency -profile:v baseline -pix_fmt yuv420p \
  -g 60 -b:v 2M -maxrate 2M -bufsize 1M -c:a aac -b:a 96k -f flv "$work/clip.flv"

"$bin/streamhub" hub --http 127.0.0.1:0 --rtmp 127.0.0.1:0 --secret bench >"$work/hub.out" 2>"$work/hub.err" &
hub=$!
pids+=("$hub")
for _ in $(seq 100); do [[ $(wc -l <"$work/hub.out") -ge 4 ]] && break; sleep 0.1; done
rtmp=$(sed -n 's/^rtmp: //p' "$work/hub.out")
http=$(sed -n 's/^page: //p' "$work/hub.out")
"$bin/streamhub" publish "$work/clip.flv" "$rtmp/bench" --realtime --latency-stamps >/dev/null 2>"$work/publish.err" &
pids+=("$!")
for _ in $(seq 100); do curl -s "${http}api/streams" | grep -q '"bench"' && break; sleep 0.1; done
sleep 3

ticks() { awk '{print $14 + $15}' "/proc/$hub/stat"; }
hz=$(getconf CLK_TCK)
cpu_over() { # seconds -> % of one core used by the hub
  local t0 t1
  t0=$(ticks); sleep "$1"; t1=$(ticks)
  echo "scale=1; ($t1 - $t0) * 100 / $hz / $1" | bc
}

base=$(cpu_over "$seconds")
echo "no viewer: hub CPU ${base} % of one core (RTMP ingest, AAC→Opus)"
for n in "${counts[@]}"; do
  "$bin/whep_load" --url "${http}whep/bench" --viewers "$n" --seconds "$((seconds + 4))" >"$work/load.json" &
  load=$!
  # Wait for every viewer to join, then measure inside the window.
  for _ in $(seq 600); do
    v=$(curl -s "${http}api/streams" | sed -n 's/.*"whep_viewers":\([0-9]*\).*/\1/p')
    [[ ${v:-0} -ge $n ]] && break
    sleep 0.1
  done
  sleep 2
  cpu=$(cpu_over "$seconds")
  wait "$load" || true
  per=$(echo "scale=2; ($cpu - $base) / $n" | bc)
  echo "$n viewers: hub CPU ${cpu} % of one core, ${per} % per viewer above the baseline"
  echo "  $(cat "$work/load.json")"
  sleep 2
done
