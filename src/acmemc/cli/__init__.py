"""The ``acmemc`` command line: a thin layer over the library.

Options read environment variables as cmemc's do: ``CMEMC_<OPTION>`` for the
top-level options and ``CMEMC_<GROUP>_<COMMAND>_<OPTION>`` for command
options, for example ``CMEMC_GRAPH_LIST_RAW=true``.

Exit status: 0 when every connection succeeded, 1 when any connection failed,
2 for usage and configuration errors (including an invalid connection in a run
over several connections).
"""

from __future__ import annotations

import os
import sys
import traceback

import asyncclick as click

from .._log import cli_logging
from .._version import __version__
from ._app import App, complete_connection_names
from .admin import admin_group
from .config import config_group
from .graph import graph_group
from .sandbox import sandbox_group
from .tls import tls_group

__all__ = ["cli", "main"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "CMEMC"}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option(
    "-c",
    "--connection",
    "connection_names",
    multiple=True,
    metavar="NAME",
    allow_from_autoenv=False,
    shell_complete=complete_connection_names,
    help="Use the connection NAME, a section of the config file. Repeat it to run on several "
    "connections at once. Default: CMEMC_CONNECTION, from the environment or [DEFAULT].",
)
@click.option(
    "-A",
    "--all-connections",
    is_flag=True,
    help="Run on every connection of the config file.",
)
@click.option(
    "-m",
    "--match",
    "match_patterns",
    multiple=True,
    metavar="PATTERN",
    allow_from_autoenv=False,
    shell_complete=complete_connection_names,
    help="Run on the connections whose names match the shell pattern PATTERN, e.g. 'prod-*'. Repeatable.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1, max=1000),
    default=20,
    show_default=True,
    help="How many connections run at the same time.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True, max=86400),
    callback=lambda ctx, param, value: _finite(value),
    default=10.0,
    show_default=True,
    help="Seconds a request may take, from sending it to reading the whole response.",
)
@click.option(
    "--config-file",
    type=click.Path(dir_okay=False),
    help="Read this config file instead of cmemc's default one (also CMEMC_CONFIG_FILE).",
)
@click.option("-d", "--debug", is_flag=True, help="Write debug lines to stderr: where every setting came from, and each request.")
@click.option("-q", "--quiet", is_flag=True, help="Hide hints and warnings; results and errors are still printed.")
@click.version_option(__version__, "--version", prog_name="acmemc")
@click.pass_context
async def cli(
    ctx: click.Context,
    connection_names: tuple[str, ...],
    all_connections: bool,
    match_patterns: tuple[str, ...],
    jobs: int,
    timeout: float,
    config_file: str | None,
    debug: bool,
    quiet: bool,
) -> None:
    """List graphs and check many eccenca Corporate Memory deployments at once.

    acmemc reads cmemc's config.ini: each section is a connection. Select
    connections with -c NAME (repeatable), --all-connections or --match PATTERN.

    \b
    Exit status: 0 when every connection succeeded, 1 when any failed,
    2 for usage and configuration errors, 130 when interrupted.

    \b
    Shell completion (connection names, commands, options and keys):
      bash: eval "$(_ACMEMC_COMPLETE=bash_source acmemc)"
      zsh:  eval "$(_ACMEMC_COMPLETE=zsh_source acmemc)"
      fish: _ACMEMC_COMPLETE=fish_source acmemc | source
    """
    ctx.obj = App(
        environ=dict(os.environ),
        config_file=config_file,
        connection_names=tuple(dict.fromkeys(connection_names)),
        all_connections=all_connections,
        match_patterns=match_patterns,
        jobs=jobs,
        timeout=timeout,
        debug=debug,
        quiet=quiet,
    )
    ctx.with_resource(cli_logging(sys.stderr, debug=debug, quiet=quiet, name_connections=ctx.obj.multiple))


cli.add_command(admin_group)
cli.add_command(config_group)
cli.add_command(graph_group)
cli.add_command(sandbox_group)
cli.add_command(tls_group)


def _finite(value: float) -> float:
    # FloatRange lets "nan" through, because every comparison with it is false.
    if value != value:
        raise click.BadParameter("nan is not a number of seconds.")
    return value


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


def main(args: list[str] | None = None) -> None:
    """Run the command line and exit; the entry point of the ``acmemc`` script.

    Errors acmemc expects are one line on stderr. Any other exception is a bug:
    one line too, and its traceback only with --debug.
    """
    arguments = args if args is not None else sys.argv[1:]
    try:
        result = cli(args=arguments, prog_name="acmemc", standalone_mode=False, _anyio_backend="asyncio")
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # noqa: BLE001 - the last resort for bugs, see the docstring
        click.echo(f"Error: unexpected {type(error).__name__}: {error}. Run with --debug for the traceback.", err=True)
        # The options are parsed by now unless parsing failed, so look at the raw arguments.
        if "-d" in arguments or "--debug" in arguments or os.environ.get("CMEMC_DEBUG", "").lower() in ("1", "true"):
            traceback.print_exc()
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
