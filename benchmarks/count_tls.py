"""Count the SSLContexts and TLS connections that acmemc creates, in-process.

The benchmark runs this script in a child process, so that the memory of a run over
many connections does not stay in the benchmark process. It counts every
``ssl.SSLContext`` created and every TLS connection that asyncio opens, by wrapping
``ssl.SSLContext.__new__`` and ``asyncio.sslproto.SSLProtocol.__init__``. Both
counts start after the imports, because aiohttp creates two SSLContexts of its own
when it is imported. Each mode prints one JSON object on stdout:

- ``api CONFIG_FILE [CONCURRENCY]`` lists the graphs of every connection through
  ``acmemc.run_each`` with one shared ``acmemc.SSLContextCache``. The output
  contains the cache's ``contexts_built``, both counts, each connection's graph IRIs
  and the first few errors.
- ``cli ARGUMENT...`` runs the acmemc command line with these arguments, discards
  its output and prints its exit status and both counts.

Usage::

    python benchmarks/count_tls.py api CONFIG_FILE 20
    python benchmarks/count_tls.py cli --config-file CONFIG_FILE --all-connections admin status
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import io
import json
import ssl
import sys
from typing import Any

import acmemc
import acmemc.cli
# Imported before the counting starts: aiohttp 3.14 creates two SSLContexts on import,
# and acmemc imports it only on first use.
import aiohttp  # noqa: F401


class TLSCounter:
    """Counts of the SSLContexts created and the TLS connections opened since :meth:`install`."""

    def __init__(self) -> None:
        self.contexts_created = 0
        self.connections_opened = 0

    def install(self) -> None:
        original_new = ssl.SSLContext.__new__
        original_init = asyncio.sslproto.SSLProtocol.__init__
        counter = self

        def counting_new(cls: type[ssl.SSLContext], *args: Any, **kwargs: Any) -> ssl.SSLContext:
            counter.contexts_created += 1
            return original_new(cls, *args, **kwargs)

        def counting_init(protocol: asyncio.sslproto.SSLProtocol, *args: Any, **kwargs: Any) -> None:
            counter.connections_opened += 1
            original_init(protocol, *args, **kwargs)

        ssl.SSLContext.__new__ = staticmethod(counting_new)  # type: ignore[assignment]
        asyncio.sslproto.SSLProtocol.__init__ = counting_init  # type: ignore[method-assign,assignment]

    def record(self) -> dict[str, int]:
        return {"ssl_contexts_created": self.contexts_created, "tls_connections": self.connections_opened}


async def list_graphs(config_file: str, concurrency: int, counter: TLSCounter) -> dict[str, Any]:
    config = await acmemc.read_config(config_file)
    connections = [acmemc.resolve_connection(config, name) for name in config.connection_names]
    cache = acmemc.SSLContextCache()
    graphs: dict[str, list[str]] = {}
    errors: list[str] = []

    async def graph_list(client: acmemc.Client) -> list[dict[str, Any]]:
        return await client.graph_list()

    counter.install()
    async for result in acmemc.run_each(connections, graph_list, concurrency=concurrency, ssl_contexts=cache):
        if result.ok and result.value is not None:
            graphs[result.connection] = sorted(graph["iri"] for graph in result.value)
        else:
            errors.append(f"{result.connection}: {result.error}")
    return {
        "contexts_built": cache.contexts_built,
        **counter.record(),
        "connections": len(connections),
        "succeeded": len(graphs),
        "failed": len(errors),
        "errors": errors[:5],
        "graphs": graphs,
    }


def run_cli(arguments: list[str], counter: TLSCounter) -> dict[str, Any]:
    counter.install()
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            acmemc.cli.main(arguments)
        exit_code = 0
    except SystemExit as exit_request:
        exit_code = exit_request.code if isinstance(exit_request.code, int) else 1
    return {"exit_code": exit_code, **counter.record(), "output_lines": len(output.getvalue().splitlines())}


def main() -> None:
    counter = TLSCounter()
    mode, arguments = sys.argv[1], sys.argv[2:]
    if mode == "api":
        concurrency = int(arguments[1]) if len(arguments) > 1 else 20
        report = asyncio.run(list_graphs(arguments[0], concurrency, counter))
    elif mode == "cli":
        report = run_cli(arguments, counter)
    else:
        sys.exit(f"unknown mode {mode!r}: use 'api CONFIG_FILE [CONCURRENCY]' or 'cli ARGUMENT...'")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
