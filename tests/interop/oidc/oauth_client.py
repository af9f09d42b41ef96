"""Connect to an MCP server as an OAuth client, for tenet-mcp's OAuth tests.

The Python MCP SDK's ClientCredentialsOAuthProvider does the whole flow of the MCP
authorization specification: the server's 401 names its protected resource metadata,
which names the authorization server; the SDK discovers that server's token endpoint
and gets a token by client credentials with a resource indicator (RFC 8707), then
retries with it.

Usage: oauth_client.py URL ISSUER CLIENT_ID CLIENT_SECRET SCOPE
Reads a JSON array of calls on stdin, each {"name": ..., "arguments": {...}}, and
writes one JSON document on stdout: {"tools": [names], "calls": [results]}. A call the
server refuses over HTTP is reported as {"http_error": status}. Any other failure
prints {"fatal": "..."} and exits 3.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.auth import TokenStorage
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


class Memory(TokenStorage):
    """Tokens and client information kept in memory for one run."""

    def __init__(self) -> None:
        self.tokens = None
        self.info = None

    async def get_tokens(self):  # noqa: ANN201 - the protocol's types
        return self.tokens

    async def set_tokens(self, tokens) -> None:  # noqa: ANN001
        self.tokens = tokens

    async def get_client_info(self):  # noqa: ANN201
        return self.info

    async def set_client_info(self, client_info) -> None:  # noqa: ANN001
        self.info = client_info


async def run(url: str, issuer: str, client_id: str, secret: str, scope: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    auth = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=Memory(),
        client_id=client_id,
        client_secret=secret,
        scope=scope,
        issuer=issuer,
    )
    out: dict[str, Any] = {"calls": []}
    async with create_mcp_http_client(auth=auth) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                listed = await session.list_tools()
                out["tools"] = [tool.name for tool in listed.tools]
                for call in calls:
                    try:
                        result = await session.call_tool(call["name"], call.get("arguments") or {})
                        out["calls"].append(result.model_dump(by_alias=True, exclude_none=True, mode="json"))
                    except httpx2.HTTPStatusError as error:
                        out["calls"].append({"http_error": error.response.status_code})
                    except Exception as error:  # noqa: BLE001 - reported as data
                        out["calls"].append({"error": f"{type(error).__name__}: {error}"})
    return out


def describe(error: BaseException) -> str:
    """An error and, for a task group's, the errors inside it."""
    inner = getattr(error, "exceptions", None)
    if inner:
        return "; ".join(describe(e) for e in inner)
    return f"{type(error).__name__}: {error}"


def main() -> None:
    url, issuer, client_id, secret, scope = sys.argv[1:6]
    calls = json.load(sys.stdin)
    try:
        out = anyio.run(run, url, issuer, client_id, secret, scope, calls)
    except Exception as error:  # noqa: BLE001 - report any failure as data
        print(json.dumps({"fatal": describe(error)}))
        sys.exit(3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
