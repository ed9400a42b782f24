"""Tests of credential processes: the *_PROCESS keys that name a command printing a secret.

Every process here is a small shell script written into tmp_path. The client
tests talk to a token endpoint served by aiohttp on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from _helpers import connection_from
from acmemc import Client, ConfigurationError, Connection, CredentialProcessError
from acmemc._credentials import run_credential_process

SECRET = "process-secret-do-not-print"
TOKEN_PATH = "/auth/realms/cmem/protocol/openid-connect/token"


def write_script(directory: Path, name: str, body: str) -> Path:
    """Write an executable /bin/sh script and return its path."""
    path = directory / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


def process_connection(argv: list[str], extra: str = "", environ: dict[str, str] | None = None) -> Connection:
    """Resolve the connection [prod] whose client secret comes from ``argv``."""
    text = (
        "[prod]\n"
        "CMEM_BASE_URI = https://prod.example\n"
        f"OAUTH_CLIENT_SECRET_PROCESS = {json.dumps(argv)}\n"
        f"{extra}"
    )
    return connection_from(text, "prod", environ=environ)


async def run_secret_process(connection: Connection, timeout: float = 10.0) -> str:
    argv = connection.secret_processes["OAUTH_CLIENT_SECRET"]
    return await run_credential_process(connection, "OAUTH_CLIENT_SECRET_PROCESS", argv, timeout=timeout)


def is_running(pid: int) -> bool:
    """Tell whether ``pid`` is a live process. A zombie counts as ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    # The state follows the command name, which is in brackets and may contain spaces.
    state = stat.rsplit(")", 1)[1].split()[0]
    return state != "Z"


async def wait_until_ended(pid: int, seconds: float = 5.0) -> bool:
    """Wait up to ``seconds`` for ``pid`` to end and tell whether it did, because init reaps an orphan with a delay."""
    deadline = time.monotonic() + seconds
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def read_pid(path: Path, seconds: float = 5.0) -> int:
    """Wait until a script has written its pid into ``path``, and return it."""
    deadline = time.monotonic() + seconds
    while True:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if text.endswith("\n"):
            return int(text)
        if time.monotonic() > deadline:
            raise AssertionError(f"no pid written to {path}")
        await asyncio.sleep(0.02)


@pytest.fixture
def slow_script(tmp_path: Path) -> Path:
    """A script that records its pid and the pid of a child `sleep 30`, then waits."""
    return write_script(
        tmp_path,
        "slow.sh",
        'echo $$ > "$1"\nsleep 30 &\necho $! > "$2"\nwait\n',
    )


# Resolving *_PROCESS keys


def test_process_list_literal(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", 'echo "$1"\n')

    connection = process_connection([str(script), "arg1"])

    assert connection.secret_processes["OAUTH_CLIENT_SECRET"] == (str(script), "arg1")


def test_process_found_in_path(tmp_path: Path) -> None:
    script = write_script(tmp_path, "getsecret.sh", f"echo {SECRET}\n")
    environ = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    text = "[prod]\nOAUTH_CLIENT_SECRET_PROCESS = getsecret.sh\n"

    connection = connection_from(text, "prod", environ=environ)

    assert connection.secret_processes["OAUTH_CLIENT_SECRET"] == (str(script),)


def test_process_from_default_section(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", f"echo {SECRET}\n")
    text = f"[DEFAULT]\nOAUTH_CLIENT_SECRET_PROCESS = {json.dumps([str(script)])}\n[prod]\n"

    connection = connection_from(text, "prod")

    assert connection.secret_processes["OAUTH_CLIENT_SECRET"] == (str(script),)


@pytest.mark.parametrize(
    "value",
    [
        "no-such-command-acmemc",
        '["no-such-command-acmemc", "arg1"]',
        '["unclosed',
        "[]",
        "[1, 2]",
    ],
)
def test_process_invalid_command(value: str, tmp_path: Path) -> None:
    environ = {"PATH": str(tmp_path)}
    text = f"[prod]\nOAUTH_PASSWORD_PROCESS = {value}\nOAUTH_GRANT_TYPE = password\nOAUTH_USER = alice\n"

    with pytest.raises(ConfigurationError) as caught:
        connection_from(text, "prod", environ=environ)

    message = str(caught.value)
    assert "OAUTH_PASSWORD_PROCESS" in message
    assert "\n" not in message
    assert "Fix:" in message


def test_process_unnamed_not_run(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", f"echo {SECRET}\n")
    environ = {"OAUTH_CLIENT_SECRET_PROCESS": json.dumps([str(script)]), "OAUTH_CLIENT_SECRET": "plain"}

    connection = connection_from("", environ=environ)

    assert dict(connection.secret_processes) == {}
    assert connection.secrets["OAUTH_CLIENT_SECRET"] == "plain"


def test_process_unnamed_hint(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", f"echo {SECRET}\n")
    text = f"[DEFAULT]\nOAUTH_CLIENT_SECRET_PROCESS = {json.dumps([str(script)])}\n"

    with pytest.raises(ConfigurationError) as caught:
        connection_from(text)

    assert "OAUTH_CLIENT_SECRET is missing" in str(caught.value)
    assert "-c NAME" in str(caught.value)


def test_header_process_resolved(tmp_path: Path) -> None:
    script = write_script(tmp_path, "header.sh", "echo value\n")
    text = f"CMEMC_CUSTOM_HEADER_X_API_KEY_PROCESS = {json.dumps([str(script)])}\n"

    connection = process_connection([str(script)], extra=text)

    assert [(header.name, header.process) for header in connection.custom_headers] == [("X-API-KEY", (str(script),))]


# Running a process


async def test_run_uses_first_line(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", f"printf '%s\\n' {SECRET} 'second line'\n")
    connection = process_connection([str(script)])

    assert await run_secret_process(connection) == SECRET


async def test_run_passes_arguments(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", 'printf "%s|%s\\n" "$1" "$2"\n')
    connection = process_connection([str(script), "first arg", "$HOME"])

    assert await run_secret_process(connection) == "first arg|$HOME"


async def test_run_without_trailing_newline(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", f"printf %s {SECRET}\n")
    connection = process_connection([str(script)])

    assert await run_secret_process(connection) == SECRET


async def test_run_environment_has_connection(tmp_path: Path) -> None:
    env_file = tmp_path / "env.txt"
    script = write_script(tmp_path, "get.sh", f'env > "$1"\necho {SECRET}\n')
    environ = {"PATH": os.environ["PATH"], "CMEM_BASE_URI": "https://shell.example"}
    connection = process_connection([str(script), str(env_file)], environ=environ)

    await run_secret_process(connection)

    lines = env_file.read_text(encoding="utf-8").splitlines()
    assert "CMEM_BASE_URI=https://prod.example" in lines
    assert "DP_API_ENDPOINT=https://prod.example/dataplatform" in lines
    assert "CMEM_BASE_URI=https://shell.example" not in lines


async def test_run_environment_no_config_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / "env.txt"
    script = write_script(tmp_path, "get.sh", f'env > "$1"\necho {SECRET}\n')
    extra = "OAUTH_PASSWORD = config-password-secret\nCMEMC_CUSTOM_HEADER_X_API_KEY = header-value-secret\n"
    connection = process_connection([str(script), str(env_file)], extra=extra)

    await run_secret_process(connection)

    text = env_file.read_text(encoding="utf-8")
    assert "config-password-secret" not in text
    assert "header-value-secret" not in text


async def test_run_environment_no_shell_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / "env.txt"
    script = write_script(tmp_path, "get.sh", f'env > "$1"\necho {SECRET}\n')
    environ = {
        "PATH": os.environ["PATH"],
        "OAUTH_CLIENT_SECRET": "shell-client-secret",
        "OAUTH_ACCESS_TOKEN": "shell-token-secret",
    }
    connection = process_connection([str(script), str(env_file)], environ=environ)

    await run_secret_process(connection)

    text = env_file.read_text(encoding="utf-8")
    assert "shell-client-secret" not in text
    assert "shell-token-secret" not in text


async def test_run_nonzero_exit(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", f"echo {SECRET}\nexit 3\n")
    connection = process_connection([str(script)])

    with pytest.raises(CredentialProcessError) as caught:
        await run_secret_process(connection)

    message = str(caught.value)
    assert "OAUTH_CLIENT_SECRET_PROCESS" in message
    assert "status 3" in message
    assert SECRET not in message
    assert caught.value.connection == "prod"


async def test_run_no_output(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", "exit 0\n")
    connection = process_connection([str(script)])

    with pytest.raises(CredentialProcessError) as caught:
        await run_secret_process(connection)

    assert "OAUTH_CLIENT_SECRET_PROCESS" in str(caught.value)


async def test_run_empty_first_line(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", f"printf '\\n%s\\n' {SECRET}\n")
    connection = process_connection([str(script)])

    with pytest.raises(CredentialProcessError) as caught:
        await run_secret_process(connection)

    assert "OAUTH_CLIENT_SECRET_PROCESS" in str(caught.value)
    assert SECRET not in str(caught.value)


async def test_run_not_executable(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", f"echo {SECRET}\n")
    connection = process_connection([str(script)])
    script.chmod(0o644)

    with pytest.raises(CredentialProcessError) as caught:
        await run_secret_process(connection)

    assert "could not start" in str(caught.value)


async def test_run_timeout_kills_process(tmp_path: Path, slow_script: Path) -> None:
    shell_pid_file, child_pid_file = tmp_path / "shell.pid", tmp_path / "child.pid"
    connection = process_connection([str(slow_script), str(shell_pid_file), str(child_pid_file)])

    started = time.monotonic()
    with pytest.raises(CredentialProcessError) as caught:
        await run_secret_process(connection, timeout=0.5)
    elapsed = time.monotonic() - started

    assert "timed out" in str(caught.value)
    assert "OAUTH_CLIENT_SECRET_PROCESS" in str(caught.value)
    assert elapsed < 10
    assert await wait_until_ended(await read_pid(shell_pid_file))
    assert await wait_until_ended(await read_pid(child_pid_file))


async def test_run_cancel_kills_process(tmp_path: Path, slow_script: Path) -> None:
    shell_pid_file, child_pid_file = tmp_path / "shell.pid", tmp_path / "child.pid"
    connection = process_connection([str(slow_script), str(shell_pid_file), str(child_pid_file)])
    task = asyncio.create_task(run_secret_process(connection, timeout=60))
    shell_pid = await read_pid(shell_pid_file)
    child_pid = await read_pid(child_pid_file)

    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    elapsed = time.monotonic() - started

    assert elapsed < 10
    assert await wait_until_ended(shell_pid)
    assert await wait_until_ended(child_pid)


# Warning and logs


async def test_run_logs_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="acmemc.credentials")
    script = write_script(tmp_path, "get.sh", f"echo {SECRET}\n")
    connection = process_connection([str(script)])

    await run_secret_process(connection)

    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name == "acmemc.credentials"
    assert "OAUTH_CLIENT_SECRET_PROCESS" in warnings[0].getMessage()
    assert "CMEMC_CREDENTIAL_PROCESS_NO_WARNING" in warnings[0].getMessage()
    assert getattr(warnings[0], "connection", None) == "prod"


@pytest.mark.parametrize(
    ("extra", "environ"),
    [
        ("CMEMC_CREDENTIAL_PROCESS_NO_WARNING = true\n", None),
        ("CMEMC_CREDENTIAL_PROCESS_NO_WARNING = TRUE\n", None),
        ("", {"CMEMC_CREDENTIAL_PROCESS_NO_WARNING": "true"}),
    ],
)
async def test_run_warning_suppressed(
    extra: str, environ: dict[str, str] | None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="acmemc.credentials")
    script = write_script(tmp_path, "get.sh", f"echo {SECRET}\n")
    connection = process_connection([str(script)], extra=extra, environ=environ)

    await run_secret_process(connection)

    assert connection.credential_process_warning is False
    assert caplog.records == []


async def test_run_warning_kept_for_false(tmp_path: Path) -> None:
    script = write_script(tmp_path, "get.sh", f"echo {SECRET}\n")

    connection = process_connection([str(script)], extra="CMEMC_CREDENTIAL_PROCESS_NO_WARNING = false\n")

    assert connection.credential_process_warning is True


async def test_run_secret_not_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="acmemc")
    script = write_script(tmp_path, "get.sh", f"echo {SECRET}\n")
    connection = process_connection([str(script)])

    await run_secret_process(connection)

    assert "OAUTH_CLIENT_SECRET set by credential process" in caplog.messages
    assert SECRET not in caplog.text
    assert all(SECRET not in str(record.args) for record in caplog.records)


# Client.open runs every process


@pytest_asyncio.fixture
async def token_server() -> AsyncIterator[tuple[TestServer, list[web.Request], list[dict[str, str]]]]:
    """A token endpoint on 127.0.0.1 that records each request and its form."""
    requests: list[web.Request] = []
    forms: list[dict[str, str]] = []

    async def token(request: web.Request) -> web.Response:
        requests.append(request)
        forms.append(dict(await request.post()))
        return web.json_response({"access_token": "access-token", "expires_in": 300})

    app = web.Application()
    app.router.add_post(TOKEN_PATH, token)
    async with TestServer(app, host="127.0.0.1") as server:
        yield server, requests, forms


async def test_client_open_runs_processes(
    tmp_path: Path,
    token_server: tuple[TestServer, list[web.Request], list[dict[str, str]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="acmemc")
    server, requests, forms = token_server
    secret_script = write_script(tmp_path, "secret.sh", f"echo {SECRET}\n")
    header_script = write_script(tmp_path, "header.sh", "echo header-value-from-process\n")
    text = (
        "[prod]\n"
        f"CMEM_BASE_URI = http://127.0.0.1:{server.port}\n"
        f"OAUTH_CLIENT_SECRET_PROCESS = {json.dumps([str(secret_script)])}\n"
        f"CMEMC_CUSTOM_HEADER_X_API_KEY_PROCESS = {json.dumps([str(header_script)])}\n"
    )
    connection = connection_from(text, "prod")

    async with Client(connection) as client:
        await client.token()

    assert forms[0]["client_secret"] == SECRET
    assert requests[0].headers["X-API-KEY"] == "header-value-from-process"
    assert SECRET not in caplog.text
    assert "header-value-from-process" not in caplog.text


async def test_client_open_process_fails(
    tmp_path: Path, token_server: tuple[TestServer, list[web.Request], list[dict[str, str]]]
) -> None:
    server, requests, _ = token_server
    script = write_script(tmp_path, "secret.sh", f"echo {SECRET}\nexit 1\n")
    text = (
        "[prod]\n"
        f"CMEM_BASE_URI = http://127.0.0.1:{server.port}\n"
        f"OAUTH_CLIENT_SECRET_PROCESS = {json.dumps([str(script)])}\n"
    )
    client = Client(connection_from(text, "prod"))

    with pytest.raises(CredentialProcessError) as caught:
        await client.open()
    await client.close()

    assert "status 1" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert requests == []
