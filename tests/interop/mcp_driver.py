"""Drive an MCP server with the official Python `mcp` SDK client, for tenet-mcp's interop tests.

Usage:
  mcp_driver.py --transport stdio --command BIN [--arg A]... [--env K=V]...
  mcp_driver.py --transport sse   --url http://127.0.0.1:PORT/sse [--header "Name: value"]...
  mcp_driver.py --transport http  --url http://127.0.0.1:PORT/mcp [--header "Name: value"]...

Reads a JSON array of steps on stdin and writes one JSON document on stdout:
  {"server_info": ..., "protocol_version": ..., "capabilities": ..., "steps": [...]}
Steps: {"op": "list_tools"}, {"op": "call_tool", "name": ..., "arguments": {...}, "progress": bool},
{"op": "sleep", "seconds": s}, {"op": "wait_list_changed", "timeout": s}.
A transport failure prints {"fatal": "..."} and exits 3. Nothing else is written to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anyio
import mcp
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


def dump(model: Any) -> Any:
    """A pydantic model as wire JSON (camelCase aliases, no nulls)."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


@asynccontextmanager
async def open_streams(args: argparse.Namespace) -> AsyncIterator[tuple[Any, Any]]:
    """The (read, write) streams of the chosen transport."""
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    if args.transport == "stdio":
        env = dict(os.environ)
        env.update(kv.split("=", 1) for kv in args.env)
        params = StdioServerParameters(command=args.command, args=args.arg, env=env)
        async with stdio_client(params) as (read, write):
            yield read, write
    elif args.transport == "sse":
        async with sse_client(args.url, headers=headers) as (read, write):
            yield read, write
    else:
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(args.url, http_client=http) as streams:
                yield streams[0], streams[1]


async def run(args: argparse.Namespace, steps: list[dict[str, Any]]) -> dict[str, Any]:
    list_changed = anyio.Event()

    async def on_message(message: Any) -> None:
        inner = getattr(message, "root", message)
        if isinstance(inner, types.ToolListChangedNotification):
            list_changed.set()

    out: dict[str, Any] = {"steps": []}
    async with open_streams(args) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            init = await session.initialize()
            out["server_info"] = dump(init.server_info)
            out["protocol_version"] = init.protocol_version
            out["capabilities"] = dump(init.capabilities)
            for step in steps:
                out["steps"].append(await run_step(session, step, list_changed))
    return out


async def run_step(session: ClientSession, step: dict[str, Any], list_changed: anyio.Event) -> dict[str, Any]:
    op = step["op"]
    if op == "list_tools":
        tools: list[Any] = []
        cursor = None
        pages = 0
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            pages += 1
            tools.extend(dump(t) for t in page.tools)
            cursor = page.next_cursor
            if not cursor:
                return {"tools": tools, "pages": pages}
    if op == "call_tool":
        progress: list[dict[str, Any]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append({"progress": value, "total": total, "message": message})

        callback = on_progress if step.get("progress") else None
        try:
            result = await session.call_tool(step["name"], step.get("arguments") or {}, progress_callback=callback)
        except mcp.MCPError as error:
            return {"error": {"code": error.error.code, "message": error.error.message}}
        entry: dict[str, Any] = {"result": dump(result)}
        if callback:
            entry["progress"] = progress
        return entry
    if op == "sleep":
        await anyio.sleep(float(step["seconds"]))
        return {}
    if op == "wait_list_changed":
        with anyio.move_on_after(float(step.get("timeout", 10))):
            await list_changed.wait()
        received = list_changed.is_set()
        list_changed.__init__()  # re-arm for the next wait
        return {"received": received}
    raise ValueError(f"unknown step op: {op}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["stdio", "sse", "http"], required=True)
    parser.add_argument("--command")
    parser.add_argument("--arg", action="append", default=[])
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--url")
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    steps = json.load(sys.stdin)
    try:
        out = anyio.run(run, args, steps)
    except Exception as error:  # noqa: BLE001 - report any transport failure as data
        print(json.dumps({"fatal": f"{type(error).__name__}: {error}"}))
        sys.exit(3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
