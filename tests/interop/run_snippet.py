"""Runs a README Python snippet as a reader would paste it into an async context.

Usage: run_snippet.py TOKEN < snippet.py

The snippet comes in on stdin exactly as the README has it (the caller substitutes the
server URL, nothing else); it may use top-level `await`/`async with`, as the README's
snippets do. `token` is defined for it, as the README assumes. Its own output is this
script's output; an exception exits non-zero with the traceback on stderr.
"""

import ast
import asyncio
import sys


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: run_snippet.py TOKEN < snippet.py")
    source = sys.stdin.read()
    code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace = {"__name__": "__main__", "token": sys.argv[1]}
    pending = eval(code, namespace)  # a coroutine when the snippet awaits at top level
    if asyncio.iscoroutine(pending):
        asyncio.run(pending)


if __name__ == "__main__":
    main()
