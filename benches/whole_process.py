"""Whole-process benchmarks of tenet-mcp over stdio, with the Python SDK server as the peer.

Measures, over repeated fresh processes, the time from spawn to the `initialize` answer and to
the `tools/list` answer (raw JSON-RPC on the pipes: no client SDK in the measurement), and the
resident memory of an idle server. Prints a Markdown table; run through benches/run.sh.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def list_all(proc: subprocess.Popen) -> int:
    """Sends tools/list until there is no nextCursor; returns the number of tools."""
    cursor, total, next_id = None, 0, 2
    while True:
        params = {"cursor": cursor} if cursor else {}
        send(proc, {"jsonrpc": "2.0", "id": next_id, "method": "tools/list", "params": params})
        answer = read(proc, next_id)
        total += len(answer["result"]["tools"])
        cursor = answer["result"].get("nextCursor")
        next_id += 1
        if not cursor:
            return total


def send(proc: subprocess.Popen, message: dict) -> None:
    proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()


def read(proc: subprocess.Popen, want_id: int) -> dict:
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the server closed stdout")
        message = json.loads(line)
        if message.get("id") == want_id:
            return message


def cold_start(command: list[str], env: dict) -> tuple[float, float, int]:
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        send(proc, INIT)
        read(proc, 1)
        t_init = time.perf_counter() - started
        send(proc, INITIALIZED)
        tools = list_all(proc)
        t_list = time.perf_counter() - started
        return t_init * 1000, t_list * 1000, tools
    finally:
        proc.kill()
        proc.wait()


def idle_rss_kib(command: list[str], env: dict) -> int:
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        send(proc, INIT)
        read(proc, 1)
        send(proc, INITIALIZED)
        list_all(proc)
        time.sleep(0.3)
        with open(f"/proc/{proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1
    finally:
        proc.kill()
        proc.wait()


def summary(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[int(0.9 * (len(values) - 1))]
    return f"{statistics.median(values):.1f} (p90 {p90:.1f}, min {values[0]:.1f}, max {values[-1]:.1f})"


def generated_catalog(n: int, path: str) -> None:
    tools = [
        {
            "name": f"gen.resource_{i}.get",
            "description": "Reads one generated resource by id.",
            "method": "GET",
            "path": "/resources/{id}",
            "input_schema": {"type": "object", "properties": {"id": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["id"]},
        }
        for i in range(n)
    ]
    with open(path, "w") as f:
        json.dump({"service": "gen", "tools": tools}, f)


def main() -> None:
    binary, python = sys.argv[1], sys.executable
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, TENET_API_KEY="tnt_bench", TENET_API_URL="http://127.0.0.1:9", TENET_MCP_LOG="warn")
    with tempfile.TemporaryDirectory() as tmp:
        cat_1k, cat_10k = os.path.join(tmp, "1k.json"), os.path.join(tmp, "10k.json")
        generated_catalog(1000, cat_1k)
        generated_catalog(10000, cat_10k)
        cases = [
            ("tenet-mcp, shipped catalog", [binary, "serve"]),
            ("tenet-mcp, 1,000 tools", [binary, "serve", "--catalog", cat_1k]),
            ("Python SDK MCPServer, 1,000 tools", [python, os.path.join(here, "peer_server.py"), "1000"]),
            ("tenet-mcp, 10,000 tools", [binary, "serve", "--catalog", cat_10k]),
        ]
        print(f"Cold start over stdio, {RUNS} fresh processes each; milliseconds, median (p90, min, max)\n")
        print("| server | tools | spawn → initialize answered | spawn → all tools/list pages answered |")
        print("|---|---|---|---|")
        for name, command in cases:
            runs = [cold_start(command, env) for _ in range(RUNS)]
            print(f"| {name} | {runs[0][2]} | {summary([r[0] for r in runs])} | {summary([r[1] for r in runs])} |", flush=True)
        print("\nResident memory after initialize + tools/list, idle (KiB)\n")
        print("| server | VmRSS KiB |")
        print("|---|---|")
        for name, command in cases:
            print(f"| {name} | {idle_rss_kib(command, env)} |", flush=True)


if __name__ == "__main__":
    main()
