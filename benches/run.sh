#!/usr/bin/env bash
# Runs every benchmark and prints the figures docs/BENCHMARKS.md reports.
#   benches/run.sh            in-process (criterion) and whole-process figures
# Needs the interop venv (tests/interop/setup.sh installs it) for the Python peer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/interop/setup.sh
cargo build --release --locked
echo "## In-process (criterion)"
cargo bench --locked --bench inprocess -- --noplot 2>/dev/null | grep -E "^[a-z_/0-9]+ +time:|^[a-z_/0-9]+$|time:" || true
echo
echo "## Whole process"
.interop/venv/bin/python benches/whole_process.py target/release/tenet-mcp
