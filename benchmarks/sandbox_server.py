"""Run an acmemc sandbox in its own process for the benchmark, and report its request counters.

The benchmark starts this script as a child process, so the CPU time of the servers
is never counted against a contender. The protocol is one JSON object per line:

- When the deployments listen, the script prints ``{"event": "ready", ...}`` on stdout
  with the config file, the CA bundle and each deployment's name and graph IRIs.
- Each line ``counters`` on stdin makes it print ``{"event": "counters", ...}`` with
  the token and graph list requests per deployment and the CPU time in seconds of
  the server process since the start.
- End of stdin, SIGTERM or SIGINT stops the servers. The final counters then go to
  ``--counters-file`` if it is given, and the script exits with status 0.

Usage::

    python benchmarks/sandbox_server.py --deployments 20 --latency 0.05 --directory DIR
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

from acmemc._sandbox import MAX_DEPLOYMENTS, Sandbox


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, required=True, help=f"number of deployments, 1 to {MAX_DEPLOYMENTS}")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds each response is delayed (default 0.05)")
    parser.add_argument("--directory", type=Path, required=True, help="where the sandbox writes config.ini and ca.pem")
    parser.add_argument("--counters-file", type=Path, help="write the final request counters to this JSON file")
    return parser.parse_args(argv)


def raise_open_file_limit(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE to ``needed``, up to the hard limit, and warn if that is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        print(
            f"sandbox_server: warning: open file limit is {target} (the hard limit), "
            f"but {needed} are needed for this many deployments and their connections.",
            file=sys.stderr,
        )


def counters_record(sandbox: Sandbox, event: str) -> dict[str, Any]:
    return {
        "event": event,
        "token_requests": dict(sandbox.token_requests),
        "graph_list_requests": dict(sandbox.graph_list_requests),
        "cpu_seconds": time.process_time(),
    }


def write_line(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


async def read_commands(sandbox: Sandbox) -> None:
    """Reply to each ``counters`` line on stdin with the request counters, until stdin ends."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        command = line.decode("utf-8", errors="replace").strip()
        if command == "counters":
            write_line(counters_record(sandbox, "counters"))
        elif command:
            write_line({"event": "error", "message": f"unknown command {command!r}; the only command is 'counters'"})


async def serve(arguments: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)

    async with Sandbox(arguments.directory, arguments.deployments, latency=arguments.latency) as sandbox:
        write_line(
            {
                "event": "ready",
                "pid": os.getpid(),
                "config_file": str(sandbox.config_file),
                "ca_bundle": str(sandbox.ca_bundle),
                "latency": arguments.latency,
                "deployments": [
                    {"name": deployment.name, "base_uri": deployment.base_uri, "graph_iris": list(deployment.graph_iris)}
                    for deployment in sandbox.deployments
                ],
            }
        )
        commands = asyncio.create_task(read_commands(sandbox))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({commands, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (commands, stopped):
            task.cancel()
        await asyncio.gather(commands, stopped, return_exceptions=True)

    if arguments.counters_file is not None:
        arguments.counters_file.write_text(json.dumps(counters_record(sandbox, "final")) + "\n", encoding="utf-8")


def main() -> None:
    arguments = parse_arguments()
    # One listening socket per deployment, plus the server side of every open
    # client connection. A client that keeps its connections open uses one per
    # deployment until it exits.
    raise_open_file_limit(3 * arguments.deployments + 256)
    asyncio.run(serve(arguments))


if __name__ == "__main__":
    main()
