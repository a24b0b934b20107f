#!/usr/bin/env bash
# Builds the native library as apps ship it (Linux x86_64 here): profile `ffi-size`
# (opt-level z, fat LTO, one codegen unit, stripped, panic=unwind; debug/trace logs
# compiled out by the feature small-logs), linked by lld with
# identical-code folding when lld is installed (apt-get install lld; the Android NDK links
# with lld too). Prints the size. Output: target/ffi-size/libstreamhub_ffi.so
set -euo pipefail
cd "$(dirname "$0")/.."
link=()
if command -v ld.lld >/dev/null; then
  link=(-- -C link-arg=-fuse-ld=lld -C link-arg=-Wl,--icf=all)
else
  echo "ld.lld not found (apt-get install lld): linking with the default linker, about 1.5 MiB larger" >&2
fi
cargo rustc -p streamhub-ffi --profile ffi-size --features small-logs --lib --crate-type cdylib "${link[@]}"
lib=target/ffi-size/libstreamhub_ffi.so
bytes=$(stat -c %s "$lib")
echo "$lib: $bytes bytes ($(awk "BEGIN { printf \"%.2f\", $bytes / 1048576 }") MiB)"
