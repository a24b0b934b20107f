#!/usr/bin/env bash
# The throttle scenario of issue 13 as a benchmark, as root (network namespaces): a
# 40 s 4 Mbit/s clip (1280x720 30 fps, B-frames, GOP 2 s, AAC) pushed in real time over a
# link capped at 1.5 Mbit/s for 20 s, then 20 Mbit/s, to `streamhub hub`, once by
# `streamhub publish --realtime` and once by `ffmpeg -re -c copy`. Prints the delay over
# time and the publishers' CPU; writes target/bench-results/throttle.{json,png}.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p streamhub-cli -p streamhub-benches --bin streamhub --bin throttle_lab
mkdir -p target/bench-results
clip=target/bench-results/throttle-clip.flv
if [ ! -s "$clip" ]; then
  ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100" -t 40 \
    -c:v libx264 -preset veryfast -profile:v main -bf 2 -g 60 -keyint_min 60 -sc_threshold 0 \
    -b:v 4M -minrate 4M -maxrate 4M -bufsize 2M -x264-params nal-hrd=cbr \
    -c:a aac -b:a 128k -f flv "$clip"
fi
target/release/throttle_lab --clip "$clip" --streamhub target/release/streamhub --out target/bench-results
