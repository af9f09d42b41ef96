#!/usr/bin/env bash
# Installs the authorization server the OAuth tests run (oidc-provider, exactly as
# package-lock.json records it) in tests/interop/oidc/node_modules. Idempotent: skipped
# while the lock file's hash matches the stamp of the last successful install.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
say() { echo "oidc/setup.sh: $*" >&2; }
command -v npm >/dev/null 2>&1 || { say "FAILED: npm is required (install Node.js 20 or newer with npm)"; exit 1; }
stamp="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$here/node_modules/.lock.sha256" 2>/dev/null)" = "$stamp" ] && [ -d "$here/node_modules/oidc-provider" ]; then
  say "oidc-provider: up to date in tests/interop/oidc/node_modules"
  exit 0
fi
say "oidc-provider: npm ci in tests/interop/oidc"
if ! (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
  say "FAILED: npm ci in tests/interop/oidc"
  sed 's/^/  | /' "$log" >&2
  exit 1
fi
echo "$stamp" >"$here/node_modules/.lock.sha256"
