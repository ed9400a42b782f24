"""The state of one CLI invocation: options, environment, config file and selected connections."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
import traceback
from pathlib import Path
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import asyncclick as click

from .._config import (
    ConfigFile,
    misspelt_keys,
    Connection,
    read_config,
    resolve_connection,
    selected_connection_name,
)
from .._errors import AcmemcError, ConfigurationError

if TYPE_CHECKING:
    from .._client import Client
    from .._fleet import ConnectionResult

T = TypeVar("T")

logger = logging.getLogger("acmemc.cli")

__all__ = ["EXIT_CONFIGURATION", "EXIT_FAILED", "EXIT_OK", "App", "Selection"]

EXIT_OK = 0
#: At least one connection failed.
EXIT_FAILED = 1
#: Usage or configuration error (also the exit status click uses for usage errors).
EXIT_CONFIGURATION = 2

SSL_VERIFY_WARNING = "SSL verification is disabled (SSL_VERIFY=False)."


class CLIError(click.ClickException):
    """A one-line error that ends the command with ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        # click reads the exit status from this attribute, a class attribute of ClickException.
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: object = None) -> None:
        click.echo(f"Error: {self.message}", err=True)


@dataclass
class Selection:
    """The connections a command runs on, and the ones whose configuration is invalid.

    ``multiple`` is true when the user asked for several connections (``-c``
    twice, ``--all-connections`` or ``--match``), even if only one matched: the
    output format then names the connection in every record.
    """

    connections: list[Connection]
    errors: list[ConfigurationError]
    multiple: bool


@dataclass
class App:
    """Options of the top-level command, shared by every subcommand."""

    environ: Mapping[str, str]
    config_file: str | None
    connection_names: tuple[str, ...]
    all_connections: bool
    match_patterns: tuple[str, ...]
    jobs: int
    timeout: float
    debug: bool
    quiet: bool
    _config: ConfigFile | None = field(default=None, repr=False)

    @property
    def multiple(self) -> bool:
        return self.all_connections or bool(self.match_patterns) or len(set(self.connection_names)) > 1

    async def config(self) -> ConfigFile:
        if self._config is None:
            try:
                self._config = await read_config(self.config_file)
            except ConfigurationError as error:
                raise CLIError(str(error), EXIT_CONFIGURATION) from None
            logger.debug("Config file: %s", self._config.describe())
            for key, suggestion in misspelt_keys(self._config.defaults):
                logger.warning(
                    "%s in [DEFAULT] of %s is not a known key; did you mean %s?", key, self._config.describe(), suggestion
                )
        return self._config

    async def selected_names(self) -> list[str | None]:
        """Return the selected section names in order, or ``[None]`` for the unnamed connection."""
        config = await self.config()
        names: list[str] = []
        for name in self.connection_names:
            if name not in config.sections:
                raise CLIError(
                    str(resolve_error(config, name)),
                    EXIT_CONFIGURATION,
                )
            names.append(name)
        if self.all_connections:
            names.extend(config.connection_names)
        for pattern in self.match_patterns:
            matched = [name for name in config.connection_names if fnmatch.fnmatchcase(name, pattern)]
            if not matched:
                raise CLIError(
                    f"no connection in {config.describe()} matches {pattern!r}. "
                    "Fix: check the pattern (shell wildcards * ? [...]) against `acmemc config list`.",
                    EXIT_CONFIGURATION,
                )
            names.extend(matched)
        if self.multiple:
            if not names and config.missing is not None:
                raise CLIError(
                    f"there is no config file at {config.missing}, so there are no connections to run on. "
                    "Fix: create it, or name one with --config-file or CMEMC_CONFIG_FILE.",
                    EXIT_CONFIGURATION,
                )
            if not names:
                raise CLIError(
                    f"{config.describe()} has no connections. Fix: add a [NAME] section for each deployment.",
                    EXIT_CONFIGURATION,
                )
            return list[str | None](dict.fromkeys(names))
        if names:
            return [names[0]]

        default_name = selected_connection_name(config, self.environ)
        if default_name is not None and default_name not in config.sections:
            message = str(resolve_error(config, default_name)).replace(
                f"connection {default_name!r} not found", f"connection {default_name!r}, selected by CMEMC_CONNECTION, not found", 1
            )
            raise CLIError(message, EXIT_CONFIGURATION)
        return [default_name]

    async def select(self, *, check_credentials: bool = True) -> Selection:
        """Resolve the selected connections; invalid ones become errors of a run over several.

        ``check_credentials=False`` accepts a missing secret, for commands that
        need no token.
        """
        config = await self.config()
        connections: list[Connection] = []
        errors: list[ConfigurationError] = []
        for name in await self.selected_names():
            try:
                connections.append(
                    resolve_connection(config, name, self.environ, check_credentials=check_credentials)
                )
            except ConfigurationError as error:
                if self.multiple:
                    errors.append(error)
                elif name is None and config.sections:
                    raise CLIError(_no_connection_selected(config, error), EXIT_CONFIGURATION) from None
                elif name is None and config.missing is not None:
                    cause = error.message.split(" Fix: ", 1)[0].rstrip(".")
                    raise CLIError(
                        f"there is no config file at {config.missing}, and the environment describes no usable "
                        f"connection ({cause}). Fix: create the file with a section per deployment, name one with "
                        "--config-file or CMEMC_CONFIG_FILE, or set the connection keys in the environment.",
                        EXIT_CONFIGURATION,
                    ) from None
                else:
                    raise CLIError(str(error), EXIT_CONFIGURATION) from None
        return Selection(connections, errors, self.multiple)

    async def single(self, *, check_credentials: bool = True) -> Connection:
        """Resolve the one connection that a single-connection command uses."""
        if self.multiple:
            raise CLIError(
                "this command works on one connection; select it with -c NAME. "
                "Fix: drop --all-connections, --match and extra -c options.",
                EXIT_CONFIGURATION,
            )
        selection = await self.select(check_credentials=check_credentials)
        return selection.connections[0]

    def warn_ssl_verify_disabled(self, connections: list[Connection]) -> None:
        """Print cmemc's warning once for the connections that do not verify certificates."""
        unverified = [connection.name for connection in connections if not connection.ssl_verify]
        if not unverified:
            return
        if self.multiple:
            click.echo(f"{SSL_VERIFY_WARNING} Connections: {', '.join(unverified)}", err=True)
        else:
            click.echo(SSL_VERIFY_WARNING, err=True)

    def console_width(self) -> int:
        """Table width: ``CMEMC_CONSOLE_WIDTH``, else the terminal's width, else 80 as in cmemc."""
        value = self.environ.get("CMEMC_CONSOLE_WIDTH")
        if value and value.strip().isdigit() and int(value) > 0:
            return int(value)
        if sys.stdout.isatty():
            return shutil.get_terminal_size().columns
        return 80

    async def run_fleet(
        self,
        selection: Selection,
        operation: Callable[[Client], Awaitable[T]],
        on_result: Callable[[ConnectionResult[T]], None] | None = None,
    ) -> list[ConnectionResult[T]]:
        """Run ``operation`` on the selected connections; return the results sorted by connection.

        ``on_result`` receives each result as soon as it is there (for streamed
        output). On a terminal, a progress line on stderr counts finished,
        failed and pending connections. When the run is interrupted, one line
        names the connections that did not finish.
        """
        from .._fleet import run_each

        names = [connection.name for connection in selection.connections]
        progress = Progress(len(names)) if self.show_progress(len(names)) else None
        results: list[ConnectionResult[T]] = []
        try:
            async for result in run_each(selection.connections, operation, concurrency=self.jobs, timeout=self.timeout):
                results.append(result)
                if progress is not None:
                    progress.update(results)
                if on_result is not None:
                    on_result(result)
        except (asyncio.CancelledError, KeyboardInterrupt):
            finished = {result.connection for result in results}
            unfinished = [name for name in names if name not in finished]
            if progress is not None:
                progress.clear()
            click.echo(
                f"{len(unfinished)} of {len(names)} connections did not finish: {', '.join(unfinished)}",
                err=True,
            )
            raise
        if progress is not None:
            progress.clear()
        return sorted(results, key=lambda result: result.connection.casefold())

    def show_progress(self, count: int) -> bool:
        return self.multiple and count > 1 and not self.quiet and not self.debug and sys.stderr.isatty()

    @property
    def color(self) -> bool | None:
        """``False`` when NO_COLOR is set (https://no-color.org), else ``None``: colour on terminals only."""
        return False if self.environ.get("NO_COLOR") else None

    def echo(self, text: str, *, err: bool = False) -> None:
        click.echo(text, err=err, color=self.color)

    def hint(self, message: str) -> None:
        if not self.quiet:
            click.echo(message, err=True)

    def warning(self, message: str) -> None:
        if not self.quiet:
            click.echo(click.style("Warning:", fg="yellow") + f" {message}", err=True, color=self.color)

    def error(self, message: str) -> None:
        click.echo(click.style("Error:", fg="red") + f" {message}", err=True, color=self.color)

    def report_failures(self, results: Sequence[ConnectionResult[Any]], errors: list[ConfigurationError]) -> int:
        """Print one line per failed connection on stderr; return the exit status for the run."""
        status = EXIT_OK
        for error in errors:
            self.error(str(error))
            status = EXIT_CONFIGURATION
        for result in results:
            if result.error is None:
                continue
            if isinstance(result.error, AcmemcError):
                self.error(str(result.error))
            else:
                self.error(
                    f"connection {result.connection!r}: unexpected {type(result.error).__name__}: {result.error}. "
                    "Run with --debug to see the traceback, and please report it."
                )
                if self.debug:
                    traceback.print_exception(result.error, file=sys.stderr)
            if isinstance(result.error, ConfigurationError):
                status = EXIT_CONFIGURATION
            elif status == EXIT_OK:
                status = EXIT_FAILED
        return status


class Progress:
    """A progress line on stderr, rewritten in place: done, failed and pending connections."""

    def __init__(self, total: int) -> None:
        self.total = total

    def update(self, results: list[ConnectionResult[T]]) -> None:
        failed = sum(1 for result in results if not result.ok)
        pending = self.total - len(results)
        # color=True keeps the erase-line code, which click would strip like a colour;
        # the progress line is only drawn on a terminal.
        line = f"\r{len(results)}/{self.total} done, {failed} failed, {pending} pending\x1b[K"
        click.echo(line, err=True, nl=False, color=True)

    def clear(self) -> None:
        click.echo("\r\x1b[K", err=True, nl=False, color=True)


def _no_connection_selected(config: ConfigFile, error: ConfigurationError) -> str:
    """Explain a failed unnamed connection when the config file has sections the user could have named."""
    names = config.connection_names
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    cause = error.message.split(" Fix: ", 1)[0].rstrip(".")
    return (
        f"no connection selected, and the environment and [DEFAULT] describe no usable one ({cause}). "
        f"Fix: select a connection of {config.describe()} with -c NAME ({shown}), "
        "all of them with --all-connections, or one with CMEMC_CONNECTION."
    )


def resolve_error(config: ConfigFile, name: str) -> AcmemcError:
    try:
        resolve_connection(config, name, {})
    except ConfigurationError as error:
        return error
    raise AssertionError(f"{name!r} resolved")  # pragma: no cover - callers check that it is unknown


output_option = click.option(
    "--output",
    type=click.Choice(["table", "json", "ndjson", "csv"]),
    default="table",
    show_default=True,
    help="Output format. ndjson prints one JSON object a line as each connection completes.",
)


def complete_connection_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Complete connection names from the config file that the command line or CMEMC_CONFIG_FILE names.

    Runs while the shell completes a word, so it reads the file without the
    event loop and returns nothing when the file cannot be read.
    """
    from .._config import default_config_path, parse_config

    path = ctx.find_root().params.get("config_file") or os.environ.get("CMEMC_CONFIG_FILE")
    config_path = Path(os.path.expanduser(path)) if path else default_config_path()
    try:
        config = parse_config(config_path.read_text(encoding="utf-8"), config_path)
    except (OSError, UnicodeDecodeError, ConfigurationError):
        return []
    return [name for name in config.connection_names if name.startswith(incomplete)]


def error_record(error: Exception) -> dict[str, str]:
    """Describe an error for machine-readable output."""
    return {"type": type(error).__name__, "message": str(error)}
