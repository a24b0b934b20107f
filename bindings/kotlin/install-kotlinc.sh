#!/usr/bin/env bash
# Fetches the Kotlin compiler from npm (package kotlin-compiler, the JetBrains release
# with bin/kotlinc and lib/*.jar) into <target>/kotlin-compiler/package, where build.sh
# looks for it. Idempotent: does nothing when that version is already there.
#
#   bindings/kotlin/install-kotlinc.sh        (KOTLIN_VERSION=2.4.20 by default)
set -euo pipefail

version="${KOTLIN_VERSION:-2.4.20}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${CARGO_TARGET_DIR:-$root/target}/kotlin-compiler"

if [ -x "$dest/package/bin/kotlinc" ] &&
    grep -q "\"version\": \"$version\"" "$dest/package/package.json" 2>/dev/null; then
    echo "kotlinc $version: present in $dest/package"
    exit 0
fi

command -v npm >/dev/null || { echo "install-kotlinc.sh: npm is needed" >&2; exit 1; }
mkdir -p "$dest"
# Unpack beside the final place, then move it in: an interrupted run leaves no
# half-unpacked compiler that the check above would take for a good one.
work="$(mktemp -d "$dest/.unpack.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tarball="$(cd "$work" && npm pack --silent "kotlin-compiler@$version" | tail -n 1)"
tar -xzf "$work/$tarball" -C "$work"
chmod +x "$work"/package/bin/*
rm -rf "$dest/package"
mv "$work/package" "$dest/package"
echo "kotlinc $version: installed in $dest/package"
