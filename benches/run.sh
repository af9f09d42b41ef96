#!/usr/bin/env bash
# Runs every benchmark and prints the figures docs/BENCHMARKS.md reports:
#   1. in-process figures (criterion: benches/inprocess.rs)
#   2. whole-process figures (benches/whole_process.py): cold start, idle memory, time to
#      result against tenet-python, emulator decisions per second.
#   3. calls (benches/load.rs): time added per call over stdio and Streamable HTTP,
#      64-session throughput with CPU per call, memory per idle session.
# Installs its own pinned peers: the Python mcp SDK (tests/interop/setup.sh) and
# tenet-python (benches/requirements.txt) in .interop/bench-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/interop/setup.sh
venv=.interop/bench-venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s benches/requirements.txt "$venv/.requirements"; then
  rm -rf "$venv" && python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r benches/requirements.txt
  cp benches/requirements.txt "$venv/.requirements"
fi
cargo build --release --locked
echo "## In-process (criterion)"
cargo bench --locked --bench inprocess -- --noplot 2>/dev/null | grep -E "time:|^[a-z_]+/" || true
echo
echo "## Whole process"
.interop/venv/bin/python benches/whole_process.py target/release/tenet-mcp "$venv/bin/python"
echo
echo "## Calls: per-call time, throughput, memory per session"
cargo bench --locked --bench load 2>/dev/null
echo
echo "## The bridge's own cost (minimal Tenet stand-in), and HAProxy in front"
cargo bench --locked --bench bridge_cost 2>/dev/null
