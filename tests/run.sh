#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
#
# 1. Installs the pinned third-party MCP clients the interop tests drive (the Python
#    `mcp` SDK in .interop/venv, the MCP Inspector CLI in tests/interop/node_modules)
#    and Chromium for the approval page test; the authorization server the OAuth tests
#    run (oidc-provider, tests/interop/oidc/setup.sh).
# 2. Runs every Rust test: unit tests, the stdio/HTTP/emulator integration tests
#    and the interop tests. A missing client fails its tests; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/interop/setup.sh
bash tests/interop/oidc/setup.sh
bash catalog/generate.sh --install

if ! command -v chromium >/dev/null 2>&1; then
  echo "tests/run.sh: installing Chromium (Debian package) for the approval page test" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

cargo test --locked
