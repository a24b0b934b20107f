#!/usr/bin/env bash
# Builds bindings/swift/StreamHubFFI.xcframework on macOS: the static library
# libstreamhub_ffi.a for iOS devices (arm64), the iOS simulator (arm64 + x86_64) and
# macOS (arm64 + x86_64), each with the generated header and module map
# (Sources/streamhubFFI/include), so that `import streamhubFFI` works wherever it is used.
#
#   bindings/swift/scripts/build-xcframework.sh
#
# Builds with the ffi-size profile (the library as apps ship it); PROFILE=release (or
# another profile) overrides it. Needs Xcode, rustup and a Rust toolchain; adds the five
# Rust targets if they are missing.
set -euo pipefail

if [ "$(uname -s)" != "Darwin" ]; then
  echo "build-xcframework.sh: runs on macOS only (this is $(uname -s)): it needs Xcode's" \
    "SDKs, lipo and xcodebuild." >&2
  exit 1
fi
for tool in xcodebuild lipo rustup cargo; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-xcframework.sh: $tool not found (needs Xcode, rustup and cargo)" >&2
    exit 1
  fi
done

package="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$package/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
profile="${PROFILE:-ffi-size}"
profile_dir="$profile"
if [ "$profile" = dev ]; then
  profile_dir=debug
fi
headers="$package/Sources/streamhubFFI/include"
out="$package/StreamHubFFI.xcframework"
cd "$root"

# The oldest OS versions Package.swift supports; rustc and cc read these.
export IPHONEOS_DEPLOYMENT_TARGET=15.0
export MACOSX_DEPLOYMENT_TARGET=12.0

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
for triple in "${targets[@]}"; do
  echo "== $triple ($profile)"
  cargo build -p streamhub-ffi --lib --profile "$profile" --target "$triple"
done

# lib TRIPLE: the static library built for TRIPLE.
lib() {
  echo "$target/$1/$profile_dir/libstreamhub_ffi.a"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ios-simulator" "$work/macos"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" \
  -output "$work/ios-simulator/libstreamhub_ffi.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" \
  -output "$work/macos/libstreamhub_ffi.a"

# xcodebuild refuses to write over an existing framework.
rm -rf "$out"
xcodebuild -create-xcframework \
  -library "$(lib aarch64-apple-ios)" -headers "$headers" \
  -library "$work/ios-simulator/libstreamhub_ffi.a" -headers "$headers" \
  -library "$work/macos/libstreamhub_ffi.a" -headers "$headers" \
  -output "$out"
echo "wrote $out"
