"""The debug logger: one handler on the ``acmemc`` logger tree, installed by the CLI.

Library modules log through ``logging.getLogger("acmemc.<concern>")`` and pass
the connection name as ``extra={"connection": name}``. The CLI installs one
handler that writes cmemc's debug format to stderr, ``[<UTC timestamp>]
<message>``, and in a run over several connections puts the connection name in
front of each message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TextIO

__all__ = ["CLIFormatter", "cli_logging"]


class CLIFormatter(logging.Formatter):
    """Formats records as cmemc does: ``[2026-08-21 16:50:59.135898+00:00] message``.

    With ``debug`` off, only warnings and errors reach the handler, and they are
    written as ``Warning: message`` without a timestamp.
    """

    def __init__(self, *, debug: bool, name_connections: bool) -> None:
        super().__init__()
        self.debug = debug
        self.name_connections = name_connections

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        connection = getattr(record, "connection", None)
        # A warning that already names its connection (for library users) gets no second name.
        if self.name_connections and connection and not message.startswith(f"connection {connection!r}"):
            message = f"{connection}: {message}"
        if not self.debug:
            return f"{record.levelname.capitalize()}: {message}"
        # str() of an aware datetime is the format cmemc prints, e.g. "2026-08-21 16:50:59.135898+00:00".
        timestamp = datetime.fromtimestamp(record.created, timezone.utc)
        return f"[{timestamp}] {message}"


@contextmanager
def cli_logging(stream: TextIO, *, debug: bool, quiet: bool, name_connections: bool) -> Iterator[CLIFormatter]:
    """Install the CLI's handler on the ``acmemc`` logger for the duration of a command.

    ``quiet`` hides warnings; errors are reported by the CLI itself.
    """
    logger = logging.getLogger("acmemc")
    handler = logging.StreamHandler(stream)
    formatter = CLIFormatter(debug=debug, name_connections=name_connections)
    handler.setFormatter(formatter)
    if debug:
        level = logging.DEBUG
    elif quiet:
        level = logging.ERROR
    else:
        level = logging.WARNING
    handler.setLevel(level)
    previous_level, previous_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield formatter
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        logger.propagate = previous_propagate
