"""Many concurrent MCP clients (the official Python `mcp` SDK) through a load balancer.

For tests/replicas.rs. Usage:
  replica_load.py --transport http|sse --url URL --clients N --calls M [--pause S]

Each client opens a session and makes M sequential calls of `acme_items_get` with
`{"id": "<transport>-c<client>-<call>"}`, so the Tenet the replicas use can tell every call
apart. When a call fails (its replica died: the session is gone, the stream ended, a 404), the
client records the error, drops the session, opens a new one through the balancer and makes
the same call again, up to 3 attempts per call. Which replica served a session comes from the
`X-Served-By` header HAProxy adds. Writes one JSON document on stdout:
  {"clients": [{"client": c, "calls": [{"call": i, "status": ..., "attempts": n,
   "served": [replicas of the session that made it], "errors": [{"error": "...",
   "served": [...]}]}]}]}
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, AsyncIterator

import anyio
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

# How long one call may take before it counts as failed (a hang is never an answer).
CALL_TIMEOUT_S = 15
ATTEMPTS = 3


@asynccontextmanager
async def open_session(args: argparse.Namespace, served: set[str]) -> AsyncIterator[ClientSession]:
    """A new initialized session through the balancer; `served` collects the replicas that
    answered its HTTP requests (HAProxy's `X-Served-By` header)."""

    async def note(response: Any) -> None:
        replica = response.headers.get("x-served-by")
        if replica:
            served.add(replica)

    def client_factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> Any:
        http = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
        http.event_hooks["response"].append(note)
        return http

    async with AsyncExitStack() as stack:
        if args.transport == "sse":
            streams = await stack.enter_async_context(
                sse_client(args.url, httpx_client_factory=client_factory)
            )
        else:
            http = await stack.enter_async_context(client_factory())
            streams = await stack.enter_async_context(streamable_http_client(args.url, http_client=http))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        with anyio.fail_after(CALL_TIMEOUT_S):
            await session.initialize()
        yield session


def describe(error: BaseException) -> str:
    """One line for an error, the first leaf of an exception group."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"[:300]


async def client(index: int, args: argparse.Namespace, out: list[dict[str, Any]]) -> None:
    calls: list[dict[str, Any]] = [{"call": i, "errors": [], "attempts": 0} for i in range(args.calls)]
    current = 0
    while current < args.calls:
        served: set[str] = set()
        try:
            async with open_session(args, served) as session:
                while current < args.calls:
                    entry = calls[current]
                    entry["attempts"] += 1
                    with anyio.fail_after(CALL_TIMEOUT_S):
                        result = await session.call_tool(
                            "acme_items_get", {"id": f"{args.transport}-c{index}-{current}"}
                        )
                    entry["status"] = (result.structured_content or {}).get("status")
                    entry["is_error"] = bool(result.is_error)
                    entry["served"] = sorted(served)
                    current += 1
                    if args.pause:
                        await anyio.sleep(args.pause)
        except Exception as error:  # noqa: BLE001 - every failure is data for the test
            entry = calls[current]
            if entry["attempts"] == 0:
                entry["attempts"] = 1  # the session failed to open for this call
            entry["errors"].append({"error": describe(error), "served": sorted(served)})
            if entry["attempts"] >= ATTEMPTS:
                current += 1
    out.append({"client": index, "calls": calls})


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    async with anyio.create_task_group() as group:
        for index in range(args.clients):
            group.start_soon(client, index, args, out)
    out.sort(key=lambda entry: entry["client"])
    return {"clients": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["sse", "http"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args()
    print(json.dumps(anyio.run(run, args)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
