"""The peer for the cold-start benchmark: a Python MCP server (the `mcp` SDK's MCPServer,
formerly FastMCP) advertising N generated tools over stdio. Usage: peer_server.py N"""

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("peer")


def make_tool(i: int):
    def tool(id: str, limit: int = 10) -> str:
        """Reads one generated resource by id and returns it as JSON."""
        return f'{{"id": "{id}", "n": {i}}}'

    return tool


for i in range(int(sys.argv[1])):
    server.add_tool(make_tool(i), name=f"gen_resource_{i}_get", description="Reads one generated resource by id.")

server.run("stdio")
