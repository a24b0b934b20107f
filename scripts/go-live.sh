#!/usr/bin/env bash
# The main job until `streamhub demo` exists: start a private nginx-rtmp on loopback,
# make a 10 s H.264/AAC clip, go live with `streamhub publish --realtime`, and check with
# ffprobe that the recording holds exactly the packets that were sent.
# Needs: nginx, libnginx-mod-rtmp, ffmpeg (apt-get install -y nginx libnginx-mod-rtmp ffmpeg).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

work=$(mktemp -d)
cleanup_on_exit "$work"

cargo build --release -q -p streamhub-cli
port=$(free_port)
start_nginx_rtmp "$work" "$port"
make_clip "$work/clip.flv" 10 2M
echo "nginx-rtmp on 127.0.0.1:$port; publishing a 10 s clip in real time..."
target/release/streamhub publish "$work/clip.flv" "rtmp://127.0.0.1:$port/live/demo" --realtime --json
# nginx finalises the recording when the publisher has gone.
for _ in $(seq 100); do grep -q "disconnect" "$work/logs/error.log" && break; sleep 0.1; done
if diff <(packets "$work/clip.flv") <(packets "$work/demo.flv") >/dev/null; then
  echo "OK: nginx recorded $(packets "$work/demo.flv" | wc -l) packets, identical to the source (pts, dts, flags, size, MD5)"
else
  echo "MISMATCH between the source and the recording" >&2
  exit 1
fi
