#!/usr/bin/env bash
# Installs everything the tests need on Debian 12, idempotently: a machine that has it
# all installs nothing (each step checks first). Needs root for apt-get (CI runs as
# root). Called by scripts/test.sh; safe to run on its own.
#
#   Debian:  nginx + RTMP and stream modules, ffmpeg/ffprobe, openssl, iproute2 (ss), nftables,
#            python3-venv, curl, chromium, JNA and JUnit (Kotlin tests), nodejs/npm
#            when the machine has no Node, GStreamer webrtcbin with python3-gi,
#            redis-server and PostgreSQL (the chat engine's tests start their own, on
#            free ports).
#   PyPI:    aiortc, aiohttp, tree-sitter(-swift) in target/peers-venv (setup-peers.sh).
#   npm:     playwright-core (tests/browser, drives /usr/bin/chromium; never downloads
#            a browser) and the Kotlin compiler (bindings/kotlin/install-kotlinc.sh).
#   crates.io: cargo-fuzz (scripts/fuzz.sh; with g++ from Debian, for libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/steps.sh
steps_trap
export DEBIAN_FRONTEND=noninteractive

step "install: system packages (Debian)"
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd nginx || need+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
{ have_cmd ffmpeg && have_cmd ffprobe; } || need+=(ffmpeg)
have_cmd openssl || need+=(openssl)
have_cmd ss || need+=(iproute2)
have_cmd nft || need+=(nftables)
have_cmd curl || need+=(curl ca-certificates)
have_cmd make || need+=(make)
have_cmd g++ || need+=(g++)
{ have_cmd redis-server && have_cmd redis-cli; } || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
have_cmd chromium || need+=(chromium)
# The soak's and throttle benchmark's PNG plots draw text with DejaVu Sans.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
have_cmd npm || need+=(nodejs npm)
have_cmd java || need+=(default-jre-headless)
[ -e /usr/share/java/jna.jar ] || need+=(libjna-java)
[ -e /usr/share/java/junit4.jar ] || need+=(junit4)
# GStreamer's webrtcbin, a WHEP sender that signals no SSRCs (tests/peers/gst_whep_sender.py).
/usr/bin/python3 -c "import gi; gi.require_version('GstWebRTC', '1.0')" 2>/dev/null \
  && gst-inspect-1.0 webrtcbin >/dev/null 2>&1 && gst-inspect-1.0 x264enc >/dev/null 2>&1 \
  || need+=(python3-gi gir1.2-gst-plugins-bad-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-nice-0.1
            gstreamer1.0-plugins-bad gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
            gstreamer1.0-nice gstreamer1.0-tools)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "all present"
fi
# Debian may start a system nginx on port 80; the tests run their own on free ports.
nginx -v 2>&1
ffmpeg -version | head -1
chromium --version
java -version 2>&1 | head -1
redis-server --version
ls /usr/lib/postgresql/*/bin/postgres

step "install: WebRTC test peers and the Swift parser (Python venv)"
bash scripts/setup-peers.sh

step "install: browser driver (playwright-core, npm)"
want=$(node -p "require('./tests/browser/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "require('./tests/browser/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund
else
  echo "playwright-core $have: present"
fi

step "install: Kotlin compiler (npm)"
bash bindings/kotlin/install-kotlinc.sh

step "install: cargo-fuzz (crates.io)"
# The fuzz smoke run (scripts/fuzz.sh smoke, from scripts/test.sh) builds with it.
CARGO_FUZZ_VERSION=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
else
  echo "cargo-fuzz $CARGO_FUZZ_VERSION: present"
fi
step_end
