"""``acmemc sandbox run`` and ``acmemc sandbox serve`` options, through asyncclick's runner and a child process."""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import json
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from asyncclick.testing import CliRunner, Result
from cryptography import x509

from acmemc import _sandbox
from acmemc.cli import cli
from acmemc.cli import sandbox as sandbox_cli


async def run(*args: str) -> Result:
    return await CliRunner().invoke(cli, list(args), catch_exceptions=False)


def option_default(command: object, name: str) -> object:
    return next(param.default for param in command.params if param.name == name)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["run", "serve"])
@pytest.mark.parametrize("option", ["--unhealthy", "--slow", "--expiring", "--outdated"])
async def test_unknown_name_is_usage_error(tmp_path: Path, command: str, option: str) -> None:
    directory = tmp_path / "sandbox"
    result = await run("sandbox", command, "--directory", str(directory), option, "sandbox-01", option, "sandbox-07")

    assert result.exit_code == 2
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert error_lines == [
        f"Error: Invalid value for '{option}': unknown deployment 'sandbox-07'. "
        "Valid names are sandbox-01 … sandbox-03."
    ]
    # The check runs before the sandbox starts.
    assert not directory.exists()


async def test_unknown_name_uses_deployment_count() -> None:
    result = await run("sandbox", "serve", "-n", "1", "--outdated", "sandbox-02")
    assert result.exit_code == 2
    assert "Invalid value for '--outdated': unknown deployment 'sandbox-02'. The only valid name is sandbox-01." in result.output

    result = await run("sandbox", "serve", "-n", "100", "--slow", "sandbox-01")
    assert result.exit_code == 2
    assert "Valid names are sandbox-001 … sandbox-100." in result.output


@pytest.mark.parametrize(
    ("option", "value"),
    [("--expiring-days", "3651"), ("--expiring-days", "-3651"), ("--expiring-days", "1.5"), ("--slow-seconds", "-1")],
)
async def test_invalid_option_values(option: str, value: str) -> None:
    result = await run("sandbox", "serve", option, value)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.output


def test_option_defaults() -> None:
    serve = sandbox_cli.serve_command
    # --slow must outlast a request with acmemc's default timeout.
    assert option_default(serve, "slow_seconds") == 12.0
    assert option_default(serve, "slow_seconds") > option_default(cli, "timeout")  # type: ignore[operator]
    assert option_default(serve, "expiring_days") == 7
    assert sandbox_cli.MAX_CERTIFICATE_DAYS == _sandbox.MAX_CERTIFICATE_DAYS
    assert option_default(sandbox_cli.run_command, "slow_seconds") == 12.0


async def test_run_with_healthy_modes_succeeds(tmp_path: Path) -> None:
    # Graph list reads neither health nor versions, and a certificate that expires in 7 days is valid.
    result = await run(
        "sandbox", "run", "--directory", str(tmp_path),
        "--unhealthy", "sandbox-02", "--outdated", "sandbox-03", "--expiring", "sandbox-01",
        "--", "--all-connections", "graph", "list", "--id-only",
    )  # fmt: skip
    assert result.exit_code == 0


async def test_run_with_expired_certificate_fails(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    result = await run(
        "sandbox", "run", "--directory", str(tmp_path), "--expiring", "sandbox-01", "--expiring-days", "-1",
        "--", "--all-connections", "graph", "list", "--id-only",
    )  # fmt: skip
    assert result.exit_code == 1
    errors = capfd.readouterr().err
    assert "sandbox-01" in errors
    assert "expired" in errors


async def test_run_with_slow_deployment_times_out(tmp_path: Path) -> None:
    result = await run(
        "sandbox", "run", "--directory", str(tmp_path), "--slow", "sandbox-02", "--slow-seconds", "3",
        "--", "--timeout", "0.5", "--all-connections", "graph", "list", "--id-only",
    )  # fmt: skip
    assert result.exit_code == 1


async def test_run_default_command_with_modes(capfd: pytest.CaptureFixture[str]) -> None:
    result = await run("sandbox", "run", "--unhealthy", "sandbox-01", "--outdated", "sandbox-02")
    assert result.exit_code == 0
    # The child process writes the graph table straight to file descriptor 1.
    assert "sandbox-03" in capfd.readouterr().out


async def test_serve_applies_modes(tmp_path: Path) -> None:
    directory = tmp_path / "served"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acmemc",
        "sandbox",
        "serve",
        "--directory",
        str(directory),
        "--unhealthy",
        "sandbox-02",
        "--slow",
        "sandbox-03",
        "--slow-seconds",
        "0.5",
        "--outdated",
        "sandbox-01",
        "--expiring",
        "sandbox-01",
        "--expiring-days",
        "30",
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        assert line.decode().strip() == f"export CMEMC_CONFIG_FILE={directory / 'config.ini'}"

        parser = configparser.ConfigParser(interpolation=None)
        parser.read(directory / "config.ini", encoding="utf-8")
        context = ssl.create_default_context(cafile=str(directory / "ca.pem"))
        async with aiohttp.ClientSession() as session:
            statuses = {}
            for name in parser.sections():
                url = parser[name]["CMEM_BASE_URI"] + "/dataplatform/actuator/health"
                async with session.get(url, ssl=context) as response:
                    statuses[name] = response.status
        assert statuses == {"sandbox-01": 200, "sandbox-02": 503, "sandbox-03": 200}

        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, stderr.decode()
        messages = stderr.decode().splitlines()
        assert "Health DOWN (503): sandbox-02" in messages
        assert "Slower by 0.5 s: sandbox-03" in messages
        assert "Outdated (v24.1.0): sandbox-01" in messages
        assert "Certificate expires 30 days after the start: sandbox-01" in messages
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.communicate()


async def test_run_admin_status_shows_certificate_days(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CMEMC_CONSOLE_WIDTH", "250")
    result = await run("sandbox", "run", "-n", "2", "--", "-A", "admin", "status")

    assert result.exit_code == 0
    rows = [line for line in capfd.readouterr().out.splitlines() if "sandbox-0" in line]
    assert len(rows) == 2
    for row in rows:
        # The server certificates are valid for 397 days from the start of the sandbox.
        assert "397 days" in row, row


async def test_run_tls_inspect_shows_intermediate(capfd: pytest.CaptureFixture[str]) -> None:
    result = await run("sandbox", "run", "-n", "1", "--", "-c", "sandbox-01", "tls", "inspect", "--raw")

    assert result.exit_code == 0
    record = json.loads(capfd.readouterr().out)
    (endpoint,) = record["endpoints"]
    assert endpoint["verification"]["status"] == "verified"
    leaf, intermediate = endpoint["chain"]
    assert not leaf["is_ca"]
    assert leaf["issuer"] == intermediate["subject"]
    assert intermediate["is_ca"]
    assert not intermediate["self_issued"]


@contextlib.asynccontextmanager
async def serve_sandbox(directory: Path, *options: str) -> AsyncIterator[configparser.ConfigParser]:
    """Run ``acmemc sandbox serve`` in a child process and yield its config.ini once it is written."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "acmemc", "sandbox", "serve", "--directory", str(directory), *options,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        assert line.decode().strip() == f"export CMEMC_CONFIG_FILE={directory / 'config.ini'}"
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(directory / "config.ini", encoding="utf-8")
        yield parser

        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, stderr.decode()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.communicate()


async def test_tls_bundle_from_serve_writes_intermediate(tmp_path: Path) -> None:
    directory = tmp_path / "served"
    async with serve_sandbox(directory, "-n", "1") as config:
        url = config["sandbox-01"]["CMEM_BASE_URI"]
        result = await CliRunner().invoke(cli, ["tls", "bundle", "--url", url, "--yes"], env={"CMEMC_CONSOLE_WIDTH": "200"})

    assert result.exit_code == 0, result.output
    assert "Chosen: certificate 2, the highest CA certificate the server sent" in result.stderr
    (root,) = x509.load_pem_x509_certificates((directory / "ca.pem").read_bytes())
    # The bundle is printed to stdout and contains only the intermediate CA, which the root issued.
    (chosen,) = x509.load_pem_x509_certificates(result.stdout.encode())
    assert chosen.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert chosen.subject != chosen.issuer
    assert chosen.issuer == root.subject
    chosen.verify_directly_issued_by(root)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (7, "Certificate expires 7 days after the start: sandbox-01, sandbox-02"),
        (0, "Certificate expires at the start, so clients see it as expired: sandbox-01, sandbox-02"),
        (-3, "Certificate expired 3 days before the start: sandbox-01, sandbox-02"),
    ],
)
def test_serve_describes_expiring_days(days: int, expected: str) -> None:
    settings = sandbox_cli._sandbox_settings(
        3,
        unhealthy=(),
        slow=(),
        slow_seconds=12.0,
        expiring=("sandbox-02", "sandbox-01"),
        expiring_days=days,
        outdated=(),
    )
    assert sandbox_cli._describe_settings(settings) == [expected]
