"""``acmemc sandbox``: local HTTPS stand-ins for Corporate Memory deployments, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncclick as click

if TYPE_CHECKING:
    from .._sandbox import Sandbox

__all__ = ["sandbox_group"]

DEFAULT_COMMAND = ("--all-connections", "graph", "list")
# Keep in line with MAX_CERTIFICATE_DAYS in acmemc._sandbox, which this module imports
# only when a command runs.
MAX_CERTIFICATE_DAYS = 3650

F = TypeVar("F", bound=Callable[..., Any])

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
    help="Seconds each response is delayed, to stand in for a real network.",
)
directory_option = click.option(
    "--directory",
    type=click.Path(file_okay=False),
    help="Where to write config.ini and ca.pem. Default: a new temporary directory.",
)


def deployment_options(function: F) -> F:
    """Add the options that make single deployments unhealthy, slow, expiring or outdated."""
    options = [
        click.option(
            "--unhealthy",
            multiple=True,
            metavar="NAME",
            help="Make the two health endpoints of deployment NAME return 503 with status DOWN. Repeatable.",
        ),
        click.option(
            "--slow",
            multiple=True,
            metavar="NAME",
            help="Delay every response of deployment NAME by --slow-seconds in addition to --latency. Repeatable.",
        ),
        click.option(
            "--slow-seconds",
            type=click.FloatRange(min=0),
            default=12.0,
            show_default=True,
            metavar="SECONDS",
            help="Extra delay of the --slow deployments, in seconds. The default is more than "
            "acmemc's default request timeout of 10 seconds.",
        ),
        click.option(
            "--expiring",
            multiple=True,
            metavar="NAME",
            help="Give deployment NAME its own server certificate that expires --expiring-days "
            "after the start. Repeatable.",
        ),
        click.option(
            "--expiring-days",
            type=click.IntRange(-MAX_CERTIFICATE_DAYS, MAX_CERTIFICATE_DAYS),
            default=7,
            show_default=True,
            metavar="DAYS",
            help="Days from the start until the certificates of the --expiring deployments expire. "
            "With 0 or less, clients see an expired certificate.",
        ),
        click.option(
            "--outdated",
            multiple=True,
            metavar="NAME",
            help="Make DataIntegration and Explore of deployment NAME report v24.1.0, older than "
            "its ShapeCatalog. Repeatable.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


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
@deployment_options
@directory_option
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
async def run_command(
    deployments: int,
    latency: float,
    directory: str | None,
    command: tuple[str, ...],
    **deployment_settings: Any,
) -> None:
    """Start the deployments, run one acmemc COMMAND against them, and stop.

    COMMAND defaults to `--all-connections graph list`. Put `--` before a
    command that starts with an option, for example:

    \b
        acmemc sandbox run -- --debug -c sandbox-01 graph list --raw
    """
    arguments = command or DEFAULT_COMMAND
    settings = _sandbox_settings(deployments, **deployment_settings)
    async with _started(deployments, latency, directory, settings) as sandbox:
        status = await _run_acmemc(sandbox.config_file, arguments)
    raise click.exceptions.Exit(status)


@sandbox_group.command(name="serve")
@deployments_option
@latency_option
@deployment_options
@directory_option
async def serve_command(deployments: int, latency: float, directory: str | None, **deployment_settings: Any) -> None:
    """Start the deployments and keep them running until Ctrl-C."""
    settings = _sandbox_settings(deployments, **deployment_settings)
    async with _started(deployments, latency, directory, settings) as sandbox:
        click.echo(f"{deployments} deployments on 127.0.0.1 are running. Stop them with Ctrl-C.", err=True)
        for line in _describe_settings(settings):
            click.echo(line, err=True)
        click.echo(f"export CMEMC_CONFIG_FILE={sandbox.config_file}")
        await _wait_for_signal()


def _sandbox_settings(
    deployments: int,
    *,
    unhealthy: tuple[str, ...],
    slow: tuple[str, ...],
    slow_seconds: float,
    expiring: tuple[str, ...],
    expiring_days: int,
    outdated: tuple[str, ...],
) -> dict[str, Any]:
    """Check the deployment names of the options and return the matching Sandbox keyword arguments.

    Raises click.BadParameter for the first option with an unknown name.
    """
    from .._sandbox import check_deployment_names

    named = {"--unhealthy": unhealthy, "--slow": slow, "--expiring": expiring, "--outdated": outdated}
    checked: dict[str, frozenset[str]] = {}
    for option, names in named.items():
        try:
            checked[option] = check_deployment_names(names, deployments)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint=f"'{option}'") from None
    return {
        "unhealthy": checked["--unhealthy"],
        "slow": dict.fromkeys(sorted(checked["--slow"]), slow_seconds),
        "expiring": dict.fromkeys(sorted(checked["--expiring"]), expiring_days),
        "outdated": checked["--outdated"],
    }


def _describe_settings(settings: dict[str, Any]) -> list[str]:
    """Return one line for each kind of changed deployment, naming them."""
    lines = []
    if settings["unhealthy"]:
        lines.append(f"Health DOWN (503): {', '.join(sorted(settings['unhealthy']))}")
    # The options give all --slow deployments one delay and all --expiring ones one date.
    if settings["slow"]:
        seconds = next(iter(settings["slow"].values()))
        lines.append(f"Slower by {seconds:g} s: {', '.join(settings['slow'])}")
    if settings["expiring"]:
        days = next(iter(settings["expiring"].values()))
        names = ", ".join(settings["expiring"])
        if days > 0:
            lines.append(f"Certificate expires {days} days after the start: {names}")
        elif days == 0:
            lines.append(f"Certificate expires at the start, so clients see it as expired: {names}")
        else:
            lines.append(f"Certificate expired {-days} days before the start: {names}")
    if settings["outdated"]:
        lines.append(f"Outdated (v24.1.0): {', '.join(sorted(settings['outdated']))}")
    return lines


@contextlib.asynccontextmanager
async def _started(
    deployments: int, latency: float, directory: str | None, settings: dict[str, Any]
) -> AsyncIterator[Sandbox]:
    from .._sandbox import Sandbox

    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="acmemc-sandbox-"))
        async with Sandbox(directory, deployments, latency=latency, **settings) as sandbox:
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
