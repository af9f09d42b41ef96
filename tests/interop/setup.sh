#!/usr/bin/env bash
# Installs the pinned third-party MCP clients the interop tests drive:
#   - the Python `mcp` SDK (tests/interop/requirements.txt) in <repo>/.interop/venv
#   - the MCP Inspector CLI (tests/interop/package-lock.json) in tests/interop/node_modules
# Idempotent: each step is skipped while its lock file is unchanged. Fails loudly.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.interop/venv"

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup.sh: $1 is required but not installed ($2)" >&2; exit 1; }; }
need python3 "install Python 3.10 or newer"
need npm "install Node.js 18 or newer with npm"

req_hash="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$req_hash" ]; then
  echo "setup.sh: installing the Python mcp SDK into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$req_hash" > "$venv/.requirements.sha256"
fi

lock_hash="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$here/node_modules/.lock.sha256" 2>/dev/null)" != "$lock_hash" ]; then
  echo "setup.sh: installing the MCP Inspector CLI into $here/node_modules" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_hash" > "$here/node_modules/.lock.sha256"
fi
