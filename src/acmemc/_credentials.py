"""Credential processes: external commands that print a secret.

``OAUTH_CLIENT_SECRET_PROCESS``, ``OAUTH_PASSWORD_PROCESS``,
``OAUTH_ACCESS_TOKEN_PROCESS`` and ``CMEMC_CUSTOM_HEADER_<NAME>_PROCESS`` name a
command whose first line on stdout is the value. The command runs with the
connection's keys in its environment, without a shell, and with a timeout. It
must exit with status 0 and print at least one line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping

from ._config import NO_WARNING_KEY, Connection
from ._errors import CredentialProcessError

__all__ = ["CREDENTIAL_PROCESS_TIMEOUT", "run_credential_process"]

logger = logging.getLogger("acmemc.credentials")

#: Seconds a credential process may take before it is killed.
CREDENTIAL_PROCESS_TIMEOUT = 30.0


async def run_credential_process(
    connection: Connection,
    key: str,
    argv: tuple[str, ...],
    *,
    timeout: float = CREDENTIAL_PROCESS_TIMEOUT,
) -> str:
    """Run the command of ``key`` and return the first line it prints.

    The process is killed when it times out or when the calling task is
    cancelled, so no process outlives the call.
    """
    extra = {"connection": connection.name}
    if connection.credential_process_warning:
        logger.warning(
            "connection %r runs the credential process %s for %s; it can read the connection's settings "
            "and its output is trusted as a secret. Set %s=true to hide this warning.",
            connection.name,
            _show(argv),
            key,
            NO_WARNING_KEY,
            extra=extra,
        )
    logger.debug("%s: starting credential process %s", key, _show(argv), extra=extra)

    environment: Mapping[str, str] = connection.process_environment
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=dict(environment),
            start_new_session=True,
        )
    except OSError as error:
        raise CredentialProcessError(
            f"credential process {_show(argv)} for {key} could not start ({error.strerror}). "
            "Fix: check that the command exists and is executable.",
            connection=connection.name,
        ) from None

    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        _kill(process)
        await process.wait()
        raise CredentialProcessError(
            f"credential process {_show(argv)} for {key} timed out after {timeout:g} s. "
            "Fix: make the command print the secret without waiting for input.",
            connection=connection.name,
        ) from None
    except BaseException:
        # Cancelled (Ctrl-C) or interrupted: never leave the process behind.
        _kill(process)
        await asyncio.shield(process.wait())
        raise

    if process.returncode != 0:
        raise CredentialProcessError(
            f"credential process {_show(argv)} for {key} exited with status {process.returncode}. "
            "Fix: run the command by hand to see its error.",
            connection=connection.name,
        )
    lines = stdout.decode("utf-8", errors="replace").splitlines()
    if not lines or not lines[0]:
        raise CredentialProcessError(
            f"credential process {_show(argv)} for {key} printed nothing on its first line. "
            "Fix: make the command print the secret as the first line of stdout.",
            connection=connection.name,
        )
    logger.debug("%s set by credential process", key.removesuffix("_PROCESS"), extra=extra)
    return lines[0]


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    try:
        # The process runs in a session of its own, so this also ends its children.
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _show(argv: tuple[str, ...]) -> str:
    """Show a command as a list, the way the configuration writes it."""
    return "[" + ", ".join(repr(item) for item in argv) + "]"
