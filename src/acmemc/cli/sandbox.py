"""``acmemc sandbox``: local HTTPS stand-ins for Corporate Memory deployments, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncclick as click

if TYPE_CHECKING:
    from .._sandbox import Sandbox

__all__ = ["sandbox_group"]

DEFAULT_COMMAND = ("--all-connections", "graph", "list")

deployments_option = click.option(
    "-n",
    "--deployments",
    type=click.IntRange(1, 5000),
    default=3,
    show_default=True,
    help="How many deployments to start.",
)
latency_option = click.option(
    "--latency",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds each answer is delayed, to stand in for a real network.",
)
directory_option = click.option(
    "--directory",
    type=click.Path(file_okay=False),
    help="Where to write config.ini and ca.pem. Default: a new temporary directory.",
)


@click.group(name="sandbox")
def sandbox_group() -> None:
    """Start local HTTPS deployments to try acmemc without a Corporate Memory.

    Each deployment listens on 127.0.0.1 with a certificate from a throwaway
    private CA and serves the token endpoint, the graph list and the status
    endpoints. The sandbox writes a config.ini and the CA bundle for them.
    """


@sandbox_group.command(name="run", context_settings={"ignore_unknown_options": True})
@deployments_option
@latency_option
@directory_option
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
async def run_command(deployments: int, latency: float, directory: str | None, command: tuple[str, ...]) -> None:
    """Start the deployments, run one acmemc COMMAND against them, and stop.

    COMMAND defaults to `--all-connections graph list`. Put `--` before a
    command that starts with an option, for example:

    \b
        acmemc sandbox run -- --debug -c sandbox-01 graph list --raw
    """
    arguments = command or DEFAULT_COMMAND
    async with _started(deployments, latency, directory) as sandbox:
        status = await _run_acmemc(sandbox.config_file, arguments)
    raise click.exceptions.Exit(status)


@sandbox_group.command(name="serve")
@deployments_option
@latency_option
@directory_option
async def serve_command(deployments: int, latency: float, directory: str | None) -> None:
    """Start the deployments and keep them running until Ctrl-C."""
    async with _started(deployments, latency, directory) as sandbox:
        click.echo(f"{deployments} deployments on 127.0.0.1 are running. Stop them with Ctrl-C.", err=True)
        click.echo(f"export CMEMC_CONFIG_FILE={sandbox.config_file}")
        await _wait_for_signal()


@contextlib.asynccontextmanager
async def _started(deployments: int, latency: float, directory: str | None) -> AsyncIterator[Sandbox]:
    from .._sandbox import Sandbox

    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="acmemc-sandbox-"))
        async with Sandbox(directory, deployments, latency=latency) as sandbox:
            yield sandbox


async def _run_acmemc(config_file: Path, arguments: tuple[str, ...]) -> int:
    """Run acmemc in a child process on the sandbox's config file; return its exit status."""
    environment = dict(os.environ)
    # The sandbox's config file replaces the user's, and so must the connection choice.
    environment.pop("CMEMC_CONNECTION", None)
    environment["CMEMC_CONFIG_FILE"] = str(config_file)
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "acmemc", *arguments, env=environment)
    try:
        return await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.shield(process.wait())


async def _wait_for_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        await stop.wait()
    finally:
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signal_number)
