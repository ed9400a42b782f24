"""Helpers shared by test modules."""

from __future__ import annotations

from pathlib import Path

from acmemc import ConfigFile, Connection, parse_config, resolve_connection


def connection_from(text: str, name: str | None = None, environ: dict[str, str] | None = None, path: Path | None = None) -> Connection:
    """Resolve a connection from config file text."""
    config: ConfigFile = parse_config(text, path)
    return resolve_connection(config, name, environ or {})
