#!/usr/bin/env bash
# Runs the Swift package's XCTest tests on macOS against a local hub:
#
#   bindings/swift/scripts/test-macos.sh [swift test arguments, e.g. --filter Chat]
#
# Builds libstreamhub_ffi (release) and the hub, starts `streamhub hub` on free loopback
# ports with a secret of this run, signs chat tokens for alice and bob with it
# (`streamhub token`: the hub's guest tokens are for one existing room only), exports the
# STREAMHUB_* variables the tests read, runs `swift test`, and stops the hub by its PID
# however the script ends.
# Needs: Xcode (Swift 5.10 or later, for the generated bindings), a Rust toolchain,
# cmake (the hub's Opus encoder is built from source).
set -euo pipefail

if [ "$(uname -s)" != "Darwin" ]; then
  echo "test-macos.sh: runs on macOS only (this is $(uname -s)): it needs Swift and XCTest." >&2
  echo "Elsewhere, check the Swift syntax: cargo test -p streamhub-ffi --test swift_syntax" >&2
  exit 1
fi

package="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$package/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"

echo "== building libstreamhub_ffi (release) and the hub"
cargo build -p streamhub-ffi --release
cargo build -p streamhub-cli

# Package.swift links `streamhub_ffi` by name: give the linker a directory holding only
# the static library (next to the .dylib it would take the .dylib).
lib_dir="$target/swift-ffi"
mkdir -p "$lib_dir"
cp "$target/release/libstreamhub_ffi.a" "$lib_dir/"

work="$(mktemp -d)"
hub_pid=
cleanup() {
  local status=$?
  if [ -n "$hub_pid" ]; then
    kill "$hub_pid" 2>/dev/null || true
    wait "$hub_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -s "$work/hub.err" ]; then
    echo "== the hub's last log lines" >&2
    tail -n 30 "$work/hub.err" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== starting the hub"
# Port 0: the hub picks free ports and prints its endpoints. `cargo run` execs the
# program on Unix, so $! is the hub's own PID.
secret="swift-test-$RANDOM-$RANDOM-$$"
cargo run -q -p streamhub-cli -- hub --http 127.0.0.1:0 --rtmp 127.0.0.1:0 \
  --secret "$secret" >"$work/hub.out" 2>"$work/hub.err" &
hub_pid=$!
for _ in $(seq 300); do
  if grep -q '^page: ' "$work/hub.out"; then
    break
  fi
  if ! kill -0 "$hub_pid" 2>/dev/null; then
    hub_pid=
    echo "the hub exited before printing its endpoints" >&2
    exit 1
  fi
  sleep 0.1
done
if ! grep -q '^page: ' "$work/hub.out"; then
  echo "the hub did not print its endpoints within 30 s" >&2
  exit 1
fi

# endpoint NAME: the hub's line "NAME: URL".
endpoint() {
  sed -n "s/^$1: //p" "$work/hub.out" | head -n 1
}
whep=$(endpoint whep) # http://127.0.0.1:P/whep/{name}

# token USER: a viewer token for every room, signed with the hub's secret.
token() {
  "$target/debug/streamhub" token --secret "$secret" --user "$1"
}

STREAMHUB_RTMP_URL=$(endpoint rtmp) # rtmp://127.0.0.1:Q/live (the tests append the key)
STREAMHUB_WHEP_URL=${whep%/*}       # http://127.0.0.1:P/whep (the tests append the name)
STREAMHUB_CHAT_URL=$(endpoint chat) # ws://127.0.0.1:P/chat
STREAMHUB_TOKEN_ALICE=$(token alice)
STREAMHUB_TOKEN_BOB=$(token bob)
STREAMHUB_DEMO_FLV="$root/assets/demo.flv"
export STREAMHUB_RTMP_URL STREAMHUB_WHEP_URL STREAMHUB_CHAT_URL STREAMHUB_TOKEN_ALICE \
  STREAMHUB_TOKEN_BOB STREAMHUB_DEMO_FLV
echo "   rtmp $STREAMHUB_RTMP_URL, whep $STREAMHUB_WHEP_URL, chat $STREAMHUB_CHAT_URL"

echo "== swift test"
cd "$package"
swift test -Xlinker -L"$lib_dir" "$@"
