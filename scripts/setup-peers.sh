#!/usr/bin/env bash
# Creates the Python venv with the independent WebRTC peers the tests start (aiortc),
# and the Swift syntax check's parser (tree-sitter + tree-sitter-swift, for
# bindings/swift/check_syntax.py: no Swift compiler runs on Linux).
# Idempotent; the tests look for target/peers-venv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/peers-venv
syntax=(tree-sitter==0.26.1 tree-sitter-swift==0.7.4)
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import aiortc, aiohttp, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/peers/requirements.txt
fi
# Pinned: a satisfied pin installs nothing; a changed pin upgrades an existing venv.
"$venv/bin/pip" install -q --disable-pip-version-check "${syntax[@]}"
"$venv/bin/python" -c "import aiortc; print('aiortc', aiortc.__version__)"
"$venv/bin/python" -c "import importlib.metadata as m; print(*(f'{p} {m.version(p)}' for p in ('tree-sitter', 'tree-sitter-swift')))"
