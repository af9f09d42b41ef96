#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
#
# 1. Installs the pinned third-party MCP clients the interop tests drive (the Python
#    `mcp` SDK in .interop/venv, the MCP Inspector CLI in tests/interop/node_modules)
#    and the Debian packages the tests start: Chromium (approval page) and HAProxy (replicas);
#    the authorization server the OAuth tests run (oidc-provider, tests/interop/oidc/setup.sh).
# 2. Runs every Rust test: unit tests, the stdio/HTTP/emulator integration tests
#    and the interop tests. A missing client fails its tests; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# setup.sh also installs, from npm, the MCP conformance suite (tests/conformance.rs), Claude
# Code, Codex and Gemini CLI (tests/clients.rs) and the Node 22 they run on.
bash tests/interop/setup.sh
bash tests/interop/oidc/setup.sh
bash catalog/generate.sh --install

# Debian packages the tests start for real: Chromium (the approval page test) and
# HAProxy (tests/replicas.rs, with docs/deploy/haproxy.cfg).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# No incremental cache: CI builds once from a clean clone, and the cache would add
# gigabytes of disk for nothing.
export CARGO_INCREMENTAL=0

cargo test --locked

# The bridge-only build (no `emulator` feature) compiles, links no SQLite, and its
# emulator commands say how to get a build with the emulator.
cargo check --no-default-features --locked --bins
cargo test --no-default-features --locked --lib cli::
if cargo tree --no-default-features -e normal --locked | grep -q rusqlite; then
  echo "tests/run.sh: the bridge-only build (--no-default-features) depends on rusqlite" >&2
  exit 1
fi
