"""Whole-process benchmarks of tenet-mcp over stdio, with the Python SDK server as the peer.

Measures, over repeated fresh processes, the time from spawn to the `initialize` answer and to
the `tools/list` answer (raw JSON-RPC on the pipes: no client SDK in the measurement), the
resident memory of an idle server, time to result against tenet-python, and the emulator's
decisions per second. Prints Markdown tables; run through benches/run.sh. (Per-call time and
HTTP load are in benches/load.rs: one Rust client for every path.)

`whole_process.py --compare BEFORE AFTER` instead compares the spawn → initialize time of two
builds with the shipped catalog, their runs interleaved.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
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


def idle_memory_kib(command: list[str], env: dict) -> dict[str, int]:
    """VmRSS, RssAnon (memory the process owns) and RssFile (mapped code and files) after
    initialize and a full tools/list, idle."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        send(proc, INIT)
        read(proc, 1)
        send(proc, INITIALIZED)
        list_all(proc)
        time.sleep(0.3)
        with open(f"/proc/{proc.pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        return {key: int(fields[key].split()[0]) for key in ("VmRSS", "RssAnon", "RssFile")}
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


def start_emulator(binary: str, env: dict, args: list[str]) -> tuple[subprocess.Popen, str, str]:
    """Starts `tenet-mcp emulator` on a free port; returns it, its host:port and its key."""
    proc = subprocess.Popen([binary, "emulator", "--bind", "127.0.0.1:0", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    for line in proc.stderr:
        found = re.search(r"listening on http://([0-9.:]+) \(API key (\S+)\)", line)
        if found:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, found.group(1), found.group(2)
    raise RuntimeError("the emulator did not start")


def start_bridge(binary: str, env: dict, hostport: str, key: str) -> subprocess.Popen:
    """Starts `tenet-mcp serve` (stdio) against the emulator at `hostport`, initialized."""
    bridge_env = dict(env, TENET_API_KEY=key, TENET_API_URL=f"http://{hostport}")
    proc = subprocess.Popen([binary, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=bridge_env)
    send(proc, INIT)
    read(proc, 1)
    send(proc, INITIALIZED)
    return proc


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def emulator_decisions(binary: str, env: dict, calls: int) -> None:
    print("\nEmulator decisions per second (sequential executes on one connection, ALLOW with a job)\n")
    print("| audit log | decisions/s | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for label, audit in [("off (in memory)", False), ("on (fsync per record, SQLite state)", True)]:
        with tempfile.TemporaryDirectory() as tmp:
            emulator, hostport, key = start_emulator(binary, env, ["--state", tmp] if audit else [])
            try:
                conn = http.client.HTTPConnection(hostport)
                headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
                times = []
                started = time.perf_counter()
                for i in range(calls):
                    body = json.dumps({"requestId": f"r{i}", "service": "github", "toolCall": {"toolName": "github.repos.get", "arguments": {"owner": "a", "repo": "b"}}, "agent": {"agentId": "default"}, "context": {}})
                    t = time.perf_counter()
                    conn.request("POST", "/v1/execute", body, headers)
                    conn.getresponse().read()
                    times.append((time.perf_counter() - t) * 1000)
                elapsed = time.perf_counter() - started
                print(f"| {label} | {calls / elapsed:.0f} | {percentile(times, 0.5):.3f} | {percentile(times, 0.99):.3f} |", flush=True)
            finally:
                emulator.kill()
                emulator.wait()


def time_to_result(binary: str, env: dict, sdk_python: str, calls: int) -> None:
    """Delay between a job's end and the result reaching the caller, for jobs of known length."""
    here = os.path.dirname(os.path.abspath(__file__))
    print(f"\nTime to result: jobs that take a known time; what each caller waits beyond it, {calls} calls each; milliseconds, median (max)\n")
    print("| job takes | tenet-mcp (adaptive polling) | tenet-python 0.1.0 (defaults: 0.75 s interval) |")
    print("|---|---|---|")
    for job_ms in (50, 200, 1000):
        with tempfile.TemporaryDirectory() as tmp:
            policy = os.path.join(tmp, "policy.toml")
            with open(policy, "w") as f:
                f.write(f"[faults]\njob_delay_ms = {job_ms}\n")
            emulator, hostport, key = start_emulator(binary, env, ["--policy", policy])
            try:
                sdk = subprocess.run([sdk_python, os.path.join(here, "sdk_time_to_result.py"), f"http://{hostport}", key, str(job_ms), str(calls)], capture_output=True, text=True, check=True)
                sdk_extra = [t * 1000 - job_ms for t in json.loads(sdk.stdout)]
                proc = start_bridge(binary, env, hostport, key)
                try:
                    bridge_extra = []
                    for i in range(calls):
                        t = time.perf_counter()
                        send(proc, {"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call", "params": {"name": "github_repos_get", "arguments": {"owner": "a", "repo": "b"}}})
                        read(proc, 100 + i)
                        bridge_extra.append((time.perf_counter() - t) * 1000 - job_ms)
                finally:
                    proc.kill()
                    proc.wait()
            finally:
                emulator.kill()
                emulator.wait()
        print(f"| {job_ms} ms | {statistics.median(bridge_extra):.1f} ({max(bridge_extra):.1f}) | {statistics.median(sdk_extra):.1f} ({max(sdk_extra):.1f}) |", flush=True)


def compare_cold_starts(before: str, after: str) -> None:
    """Spawn → initialize of two builds with the shipped catalog, runs interleaved (one of
    each in turn, so a slow spell of a shared machine touches both)."""
    env = dict(os.environ, TENET_API_KEY="tnt_bench", TENET_API_URL="http://127.0.0.1:9", TENET_MCP_LOG="warn")
    flags = [("(default toolset)", []), ("--toolsets all", ["--toolsets", "all"]),
             ("--tool-mode dynamic --toolsets all", ["--tool-mode", "dynamic", "--toolsets", "all"])]
    print(f"Spawn → initialize, shipped catalog, {RUNS} fresh processes per cell, interleaved; ms, median (p90, min, max)\n")
    print("| `serve` flags | before | after |")
    print("|---|---|---|")
    for name, extra in flags:
        runs: dict[str, list[float]] = {before: [], after: []}
        for _ in range(RUNS):
            for binary in (before, after):
                runs[binary].append(cold_start([binary, "serve", *extra], env)[0])
        print(f"| {name} | {summary(runs[before])} | {summary(runs[after])} |", flush=True)


def main() -> None:
    if sys.argv[1] == "--compare":
        return compare_cold_starts(sys.argv[2], sys.argv[3])
    binary, python = sys.argv[1], sys.executable
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, TENET_API_KEY="tnt_bench", TENET_API_URL="http://127.0.0.1:9", TENET_MCP_LOG="warn")
    with tempfile.TemporaryDirectory() as tmp:
        cat_1k, cat_10k = os.path.join(tmp, "1k.json"), os.path.join(tmp, "10k.json")
        generated_catalog(1000, cat_1k)
        generated_catalog(10000, cat_10k)
        cases = [
            ("tenet-mcp, shipped catalog (default toolset)", [binary, "serve"]),
            ("tenet-mcp, shipped catalog, every tool shown", [binary, "serve", "--toolsets", "all"]),
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
        print("| server | VmRSS | RssAnon (owned) | RssFile (mapped code) |")
        print("|---|---|---|---|")
        for name, command in cases:
            m = idle_memory_kib(command, env)
            print(f"| {name} | {m['VmRSS']:,} | {m['RssAnon']:,} | {m['RssFile']:,} |", flush=True)
    if len(sys.argv) > 2:
        time_to_result(binary, env, sys.argv[2], int(os.environ.get("BENCH_JOBS", "10")))
    emulator_decisions(binary, env, int(os.environ.get("BENCH_DECISIONS", "2000")))


if __name__ == "__main__":
    main()
