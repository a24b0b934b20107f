#!/usr/bin/env bash
# Creates the Python venv with the independent WebRTC peers the tests start (aiortc).
# Idempotent; the tests look for target/peers-venv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/peers-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import aiortc, aiohttp, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/peers/requirements.txt
fi
"$venv/bin/python" -c "import aiortc; print('aiortc', aiortc.__version__)"
