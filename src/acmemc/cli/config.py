"""``acmemc config``: list connections and show resolved configuration keys."""

from __future__ import annotations

import re

import asyncclick as click

from .._config import KNOWN_KEYS, is_secret_key, ordered_keys
from ._app import EXIT_FAILED, App, CLIError

__all__ = ["config_group"]

SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@click.group(name="config")
def config_group() -> None:
    """List connections and show their resolved configuration."""


@config_group.command(name="list")
@click.pass_obj
async def list_command(app: App) -> None:
    """List the connections of the config file, sorted by name."""
    config = await app.config()
    if config.missing is not None:
        app.hint(f"No config file at {config.missing}; create it, or name one with --config-file.")
    for name in config.connection_names:
        click.echo(name)


@config_group.command(name="get")
@click.argument("key", type=click.Choice(KNOWN_KEYS), metavar="KEY")
@click.pass_obj
async def get_command(app: App, key: str) -> None:
    """Print the resolved value of KEY for the selected connection.

    KEY is one of the known keys, for example CMEM_BASE_URI or OAUTH_TOKEN_URI.
    The exit status is 1 when the key is not used. Secrets are never printed.
    """
    connection = await app.single(check_credentials=False)
    setting = connection.settings.get(key)
    if setting is None:
        raise CLIError(f"connection {connection.name!r}: {key} is not set.", EXIT_FAILED)
    if is_secret_key(key):
        raise CLIError(
            f"connection {connection.name!r}: {key} is set ({connection.describe_source(key)}) "
            "but is a secret, and acmemc never prints secrets.",
            EXIT_FAILED,
        )
    click.echo(setting.value)


@config_group.command(name="eval")
@click.option("--unset", is_flag=True, help="Print `unset` lines that remove the variables again.")
@click.pass_obj
async def eval_command(app: App, unset: bool) -> None:
    """Print shell commands that export the selected connection's keys.

    Use it as `eval "$(acmemc -c NAME config eval)"`. Values are quoted so that
    the output is safe to evaluate in a POSIX shell whatever they contain.
    Secrets are left out: a comment names each one that is skipped.
    """
    connection = await app.single(check_credentials=False)
    for key in ordered_keys(connection.settings):
        if not SHELL_NAME.match(key):
            click.echo(f"# {_comment(key)} skipped: not a valid shell variable name")
        elif is_secret_key(key):
            # Never exported, so never unset either: the shell may hold its own value.
            click.echo(f"# {key} skipped: acmemc never prints secrets")
        elif unset:
            click.echo(f"unset {key}")
        else:
            click.echo(f'export {key}="{_quote(connection.settings[key].value)}"')


def _quote(value: str) -> str:
    """Escape a value for a double-quoted POSIX shell word: \\, $, ` and " lose their meaning."""
    return re.sub(r'([\\$`"])', r"\\\1", value)


def _comment(key: str) -> str:
    return "".join(character if character.isprintable() else "?" for character in key)
