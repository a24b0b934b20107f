#!/usr/bin/env bash
# What scripts/test.sh runs beside the shared tests (at nice 19): the builds the steps
# after the tests use (the release builds of the soak and the README's demo command,
# the fuzz targets, the bindings generator), then the core crate's lints and no-feature
# unit tests for each feature alone. Safe to run on its own.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "=== release builds ($(date +%T))"
# The CLI as `cargo run --release -p streamhub-cli -- demo` builds it (the same
# features, so that command finds it built); the soak's load generator resolves other
# features (plotters), so it is a build of its own.
cargo build --release -p streamhub-cli
cargo build --release -p streamhub-benches --bin soak

echo "=== the fuzz targets, one build for all ($(date +%T))"
bash scripts/fuzz.sh build

echo "=== the bindings generator (.ci/run checks the generated files with it) ($(date +%T))"
cargo build -p streamhub-bindgen

echo "=== each feature alone: streamhub with none (publish only), whep, chat, transcode, server; streamhub-ffi with small-logs ($(date +%T))"
cargo clippy -p streamhub --no-default-features --lib -- -D warnings
cargo test -p streamhub --no-default-features --lib
cargo clippy -p streamhub --no-default-features --features whep --lib -- -D warnings
cargo clippy -p streamhub --no-default-features --features chat --lib -- -D warnings
cargo clippy -p streamhub --no-default-features --features transcode --lib -- -D warnings
cargo clippy -p streamhub --no-default-features --features server --lib -- -D warnings
cargo clippy -p streamhub-ffi --features small-logs --lib -- -D warnings
echo "=== done ($(date +%T))"
