"""Ctrl-C during a run: exit status 130, unfinished connections named, nothing left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from acmemc._sandbox import Sandbox


async def start_acmemc(config_file: Path, *args: str) -> asyncio.subprocess.Process:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CMEMC_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acmemc",
        "--config-file",
        str(config_file),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )


async def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_interrupt_names_unfinished_connections(tmp_path: Path) -> None:
    async with Sandbox(tmp_path, 4, latency=30) as sandbox:
        process = await start_acmemc(sandbox.config_file, "--all-connections", "--jobs", "2", "graph", "list")
        try:
            # Every response takes 30 s, so after start-up all four connections are still running.
            await asyncio.sleep(3)
            process.send_signal(signal.SIGINT)
            async with asyncio.timeout(15):
                stdout, stderr = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    lines = stderr.decode().splitlines()
    assert process.returncode == 130
    assert "4 of 4 connections did not finish: sandbox-01, sandbox-02, sandbox-03, sandbox-04" in lines
    assert lines[-1] == "Interrupted."
    assert "Traceback" not in stderr.decode()
    assert stdout == b""


async def test_interrupt_kills_credential_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "secret.pid"
    script = tmp_path / "slow-secret.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n", encoding="utf-8")
    script.chmod(0o755)
    config_file = tmp_path / "config.ini"
    config_file.write_text(
        f"[slow]\nCMEM_BASE_URI=https://127.0.0.1:1\nOAUTH_CLIENT_SECRET_PROCESS=[\"{script}\"]\n"
        "CMEMC_CREDENTIAL_PROCESS_NO_WARNING=true\n",
        encoding="utf-8",
    )

    process = await start_acmemc(config_file, "-c", "slow", "graph", "list")
    try:
        await wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
        credential_pid = int(pid_file.read_text())
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 130
    assert "Traceback" not in stderr.decode()
    assert not Path(f"/proc/{credential_pid}").exists()
