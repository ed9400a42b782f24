"""Shell completion as bash requests it: connection names, keys and options."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def complete(words: str, env: dict[str, str] | None = None) -> list[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CMEMC_")}
    environment.update(env or {})
    # COMP_CWORD is the index of the word being completed: a new one after a trailing space.
    word_index = len(words.split()) - (0 if words.endswith(" ") else 1)
    environment.update(_ACMEMC_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(word_index))
    completed = subprocess.run(
        [sys.executable, "-c", "from acmemc.cli import main; main()"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=30,
        check=False,
    )
    return [line.split(",", 1)[1] for line in completed.stdout.splitlines() if line]


def test_connection_names_from_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.ini"
    config.write_text("[prod-a]\n[prod-b]\n[test]\n", encoding="utf-8")

    assert complete(f"acmemc --config-file {config} -c pr") == ["prod-a", "prod-b"]


def test_connection_names_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.ini"
    config.write_text("[prod-a]\n[test]\n", encoding="utf-8")

    assert complete("acmemc --match ", env={"CMEMC_CONFIG_FILE": str(config)}) == ["prod-a", "test"]


def test_unreadable_config_completes_nothing(tmp_path: Path) -> None:
    assert complete(f"acmemc --config-file {tmp_path / 'missing.ini'} -c ") == []


def test_config_keys() -> None:
    assert complete("acmemc config get OAUTH_CLIENT_S") == ["OAUTH_CLIENT_SECRET", "OAUTH_CLIENT_SECRET_PROCESS"]


def test_options() -> None:
    assert "--all-connections" in complete("acmemc --all")
