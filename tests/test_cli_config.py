"""Tests of `acmemc config list|get|eval` and of configuration errors on the command line."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from asyncclick.testing import CliRunner, Result

from acmemc import parse_config
from acmemc.cli import cli

SECRET = "hunter2-do-not-print"
PROD = f"""\
[DEFAULT]
OAUTH_CLIENT_ID = from-default

[prod]
CMEM_BASE_URI = https://prod.example
OAUTH_CLIENT_SECRET = {SECRET}

[test]
CMEM_BASE_URI = https://test.example
OAUTH_CLIENT_SECRET = {SECRET}
OAUTH_CLIENT_ID = test-client
"""


async def invoke(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    return await CliRunner().invoke(cli, list(args), env=env)


def write_config(directory: Path, text: str, name: str = "config.ini") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path, PROD)


def assert_one_line_error(result: Result) -> None:
    """Check that stderr is exactly one line starting with "Error: ", with no traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output


# config list


async def test_list_sorted_casefold(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[DEFAULT]\nA = 1\n[beta]\n[Alpha]\n[gamma]\n[BETA2]\n")

    result = await invoke(["--config-file", str(path), "config", "list"])

    assert result.exit_code == 0
    assert result.stdout == "Alpha\nbeta\nBETA2\ngamma\n"


async def test_list_default_location() -> None:
    write_config(Path(os.environ["XDG_CONFIG_HOME"]) / "cmemc", "[xdg-connection]\n")

    result = await invoke(["config", "list"])

    assert result.exit_code == 0
    assert result.stdout == "xdg-connection\n"


async def test_list_default_missing_empty() -> None:
    result = await invoke(["config", "list"])

    assert result.exit_code == 0
    assert result.stdout == ""


async def test_list_config_file_env(config_path: Path) -> None:
    result = await invoke(["config", "list"], env={"CMEMC_CONFIG_FILE": str(config_path)})

    assert result.exit_code == 0
    assert result.stdout == "prod\ntest\n"


async def test_list_option_wins_over_env(config_path: Path, tmp_path: Path) -> None:
    other = write_config(tmp_path, "[other]\n", name="other.ini")

    result = await invoke(["--config-file", str(other), "config", "list"], env={"CMEMC_CONFIG_FILE": str(config_path)})

    assert result.stdout == "other\n"


async def test_list_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.ini"

    result = await invoke(["--config-file", str(path), "config", "list"])

    assert result.exit_code == 2
    assert_one_line_error(result)
    assert str(path) in result.stderr


async def test_list_missing_file_env(tmp_path: Path) -> None:
    path = tmp_path / "missing.ini"

    result = await invoke(["config", "list"], env={"CMEMC_CONFIG_FILE": str(path)})

    assert result.exit_code == 2
    assert_one_line_error(result)


# config get


async def test_get_named(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "-c", "test", "config", "get", "CMEM_BASE_URI"])

    assert result.exit_code == 0
    assert result.stdout == "https://test.example\n"


async def test_get_derived(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "-c", "prod", "config", "get", "DP_API_ENDPOINT"])

    assert result.stdout == "https://prod.example/dataplatform\n"


async def test_get_named_uses_default_section(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "-c", "prod", "config", "get", "OAUTH_CLIENT_ID"])

    assert result.stdout == "from-default\n"


async def test_get_named_ignores_environment(config_path: Path) -> None:
    env = {"CMEM_BASE_URI": "https://env.example", "OAUTH_CLIENT_ID": "from-env"}

    base_uri = await invoke(["--config-file", str(config_path), "-c", "prod", "config", "get", "CMEM_BASE_URI"], env=env)
    client_id = await invoke(["--config-file", str(config_path), "-c", "prod", "config", "get", "OAUTH_CLIENT_ID"], env=env)

    assert base_uri.stdout == "https://prod.example\n"
    assert client_id.stdout == "from-default\n"


async def test_get_connection_from_env(config_path: Path) -> None:
    env = {"CMEMC_CONNECTION": "test", "CMEM_BASE_URI": "https://env.example"}

    result = await invoke(["--config-file", str(config_path), "config", "get", "CMEM_BASE_URI"], env=env)

    assert result.exit_code == 0
    assert result.stdout == "https://test.example\n"


async def test_get_connection_from_default_section(tmp_path: Path) -> None:
    path = write_config(tmp_path, PROD.replace("[DEFAULT]\n", "[DEFAULT]\nCMEMC_CONNECTION = test\n"))

    result = await invoke(["--config-file", str(path), "config", "get", "OAUTH_CLIENT_ID"])

    assert result.exit_code == 0
    assert result.stdout == "test-client\n"


async def test_get_connection_env_wins_over_default(tmp_path: Path) -> None:
    path = write_config(tmp_path, PROD.replace("[DEFAULT]\n", "[DEFAULT]\nCMEMC_CONNECTION = test\n"))

    result = await invoke(["--config-file", str(path), "config", "get", "CMEM_BASE_URI"], env={"CMEMC_CONNECTION": "prod"})

    assert result.stdout == "https://prod.example\n"


async def test_get_option_wins_over_connection_env(config_path: Path) -> None:
    args = ["--config-file", str(config_path), "-c", "prod", "config", "get", "CMEM_BASE_URI"]

    result = await invoke(args, env={"CMEMC_CONNECTION": "test"})

    assert result.stdout == "https://prod.example\n"


async def test_get_unnamed_env_wins_over_default(tmp_path: Path) -> None:
    """Check a [DEFAULT] key that is also set in the environment, on which cmemc 25.6.2 crashes."""
    path = write_config(tmp_path, f"[DEFAULT]\nCMEM_BASE_URI = https://default.example\nOAUTH_CLIENT_SECRET = {SECRET}\n")

    result = await invoke(["--config-file", str(path), "config", "get", "CMEM_BASE_URI"], env={"CMEM_BASE_URI": "https://env.example"})

    assert result.exit_code == 0
    assert result.stdout == "https://env.example\n"


async def test_get_unset_key(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "-c", "prod", "config", "get", "OAUTH_USER"])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert_one_line_error(result)
    assert "OAUTH_USER" in result.stderr


async def test_get_secret_refused(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "-c", "prod", "config", "get", "OAUTH_CLIENT_SECRET"])

    assert result.exit_code == 1
    assert_one_line_error(result)
    assert "OAUTH_CLIENT_SECRET" in result.stderr
    assert SECRET not in result.output


async def test_get_unknown_connection(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "-c", "staging", "config", "get", "CMEM_BASE_URI"])

    assert result.exit_code == 2
    assert_one_line_error(result)
    assert "'staging'" in result.stderr


async def test_get_unknown_connection_env(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "config", "get", "CMEM_BASE_URI"], env={"CMEMC_CONNECTION": "staging"})

    assert result.exit_code == 2
    assert_one_line_error(result)
    assert "CMEMC_CONNECTION" in result.stderr


async def test_get_unknown_key(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "-c", "prod", "config", "get", "NOT_A_KEY"])

    assert result.exit_code == 2
    assert result.stdout == ""


async def test_get_two_connections(config_path: Path) -> None:
    args = ["--config-file", str(config_path), "-c", "prod", "-c", "test", "config", "get", "CMEM_BASE_URI"]

    result = await invoke(args)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert_one_line_error(result)


async def test_get_all_connections(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "--all-connections", "config", "get", "CMEM_BASE_URI"])

    assert result.exit_code == 2
    assert_one_line_error(result)


async def test_get_debug_log(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "-d", "-c", "prod", "config", "get", "OAUTH_CLIENT_ID"])

    assert result.exit_code == 0
    assert result.stdout == "from-default\n"
    assert "CMEM_BASE_URI set by config to https://prod.example" in result.stderr
    assert "OAUTH_CLIENT_ID set by config [DEFAULT] to from-default" in result.stderr
    assert "OAUTH_CLIENT_SECRET set by config\n" in result.stderr
    assert SECRET not in result.output


# config eval


async def test_eval_lines(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "-c", "prod", "config", "eval"])

    lines = result.stdout.splitlines()
    assert result.exit_code == 0
    assert 'export CMEM_BASE_URI="https://prod.example"' in lines
    assert 'export DP_API_ENDPOINT="https://prod.example/dataplatform"' in lines
    assert 'export OAUTH_CLIENT_ID="from-default"' in lines
    assert "# OAUTH_CLIENT_SECRET skipped: acmemc never prints secrets" in lines
    assert SECRET not in result.output


async def test_eval_skips_header_value(tmp_path: Path) -> None:
    path = write_config(tmp_path, PROD.replace("[test]", "CMEMC_CUSTOM_HEADER_X_API_KEY = header-value-secret\n[test]"))

    result = await invoke(["--config-file", str(path), "-c", "prod", "config", "eval"])

    assert result.exit_code == 0
    assert "CMEMC_CUSTOM_HEADER_X_API_KEY" in result.stdout
    assert "header-value-secret" not in result.output


async def test_eval_unset(config_path: Path) -> None:
    exported = await invoke(["--config-file", str(config_path), "-c", "prod", "config", "eval"])
    result = await invoke(["--config-file", str(config_path), "-c", "prod", "config", "eval", "--unset"])

    exported_keys = [line.split()[1].split("=")[0] for line in exported.stdout.splitlines() if line.startswith("export ")]
    unset_keys = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("unset ")]
    assert result.exit_code == 0
    assert set(exported_keys) <= set(unset_keys)
    assert "export" not in result.stdout
    assert SECRET not in result.output


async def test_eval_unset_leaves_secrets(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "-c", "prod", "config", "eval", "--unset"])

    assert "unset OAUTH_CLIENT_SECRET" not in result.stdout
    assert "# OAUTH_CLIENT_SECRET skipped" in result.stdout


# Each value must survive `eval` in a POSIX shell byte for byte and run nothing.
UNSAFE_VALUES = {
    "OAUTH_CLIENT_ID": "$(touch PWNED)",
    "OAUTH_USER": "`touch PWNED`",
    "X_DOUBLE_QUOTES": 'say "hi" "$(touch PWNED)"',
    "X_SINGLE_QUOTES": "it's '$(touch PWNED)'",
    "X_BACKSLASH": "C:\\dir\\ \\\\ \\n and \\",
    "X_BACKSLASH_QUOTE": '\\" touch PWNED \\"',
    "X_MULTILINE": "first line\nsecond $(touch PWNED) line\n`touch PWNED`",
    "X_SEMICOLON": "a; touch PWNED; b",
    "X_HOME": "$HOME/${HOME} ~",
    "X_MIXED": "\"$(touch PWNED)\" '`touch PWNED`' \\\" \\$HOME ; \\` \\",
}


def unsafe_config() -> str:
    lines = ["[prod]", f"OAUTH_CLIENT_SECRET = {SECRET}"]
    for key, value in UNSAFE_VALUES.items():
        # configparser reads indented lines as the continuation of the value above.
        lines.append(f"{key} = " + value.replace("\n", "\n  "))
    return "\n".join(lines) + "\n"


async def shell_value(script: Path, key: str, cwd: Path) -> tuple[int, bytes]:
    """Evaluate ``script`` in sh and return its exit status and the value of ``key``."""
    process = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        f'eval "$(cat {script.name})"; printf %s "${key}"',
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd / "home")},
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout


async def test_eval_safe_in_shell(tmp_path: Path) -> None:
    path = write_config(tmp_path, unsafe_config())
    assert dict(parse_config(unsafe_config(), None).sections["prod"]) == {"OAUTH_CLIENT_SECRET": SECRET, **UNSAFE_VALUES}

    result = await invoke(["--config-file", str(path), "-c", "prod", "config", "eval"])
    script = tmp_path / "exports.sh"
    script.write_text(result.stdout, encoding="utf-8")

    assert result.exit_code == 0
    for key, value in UNSAFE_VALUES.items():
        status, output = await shell_value(script, key, tmp_path)
        assert status == 0, key
        assert output == value.encode("utf-8"), key
    assert not (tmp_path / "PWNED").exists()


async def test_eval_unset_in_shell(tmp_path: Path) -> None:
    path = write_config(tmp_path, unsafe_config())
    exported = await invoke(["--config-file", str(path), "-c", "prod", "config", "eval"])
    removed = await invoke(["--config-file", str(path), "-c", "prod", "config", "eval", "--unset"])
    script = tmp_path / "both.sh"
    script.write_text(exported.stdout + removed.stdout + 'X_HOME="${X_HOME-was unset}"\n', encoding="utf-8")

    status, output = await shell_value(script, "X_HOME", tmp_path)

    assert status == 0
    assert output == b"was unset"
    assert not (tmp_path / "PWNED").exists()


async def test_eval_two_connections(config_path: Path) -> None:
    result = await invoke(["--config-file", str(config_path), "-c", "prod", "-c", "test", "config", "eval"])

    assert result.exit_code == 2
    assert result.stdout == ""


# Configuration errors


BASE = f"[prod]\nOAUTH_CLIENT_SECRET = {SECRET}\n"


@pytest.mark.parametrize(
    ("text", "args", "env"),
    [
        pytest.param("[prod]\nthis is not a key\n", ["-c", "prod"], None, id="syntax-error"),
        pytest.param("[prod\nA = 1\n", ["-c", "prod"], None, id="bad-section-header"),
        pytest.param("[prod]\n[test]\n[prod]\n", ["-c", "prod"], None, id="duplicate-section"),
        pytest.param("[prod]\nA = 1\nA = 2\n", ["-c", "prod"], None, id="duplicate-key"),
        pytest.param(BASE, ["-c", "staging"], None, id="unknown-connection"),
        pytest.param(BASE, [], {"CMEMC_CONNECTION": "staging"}, id="unknown-connection-env"),
        pytest.param("[DEFAULT]\nCMEMC_CONNECTION = staging\n" + BASE, [], None, id="unknown-connection-default"),
        pytest.param("[prod]\n", ["-c", "prod"], None, id="missing-secret"),
        pytest.param("[prod]\nOAUTH_GRANT_TYPE = password\nOAUTH_PASSWORD = pw\n", ["-c", "prod"], None, id="missing-user"),
        pytest.param(BASE + "OAUTH_GRANT_TYPE = implicit\n", ["-c", "prod"], None, id="unknown-grant-type"),
        pytest.param(BASE + "CMEM_BASE_URI = prod.example\n", ["-c", "prod"], None, id="url-no-scheme"),
        pytest.param(BASE + "CMEM_BASE_URI = ftp://prod.example\n", ["-c", "prod"], None, id="url-ftp"),
        pytest.param(BASE + "CMEM_BASE_URI = https://\n", ["-c", "prod"], None, id="url-no-host"),
        pytest.param(BASE + "CMEM_BASE_URI = https://prod.example:99999\n", ["-c", "prod"], None, id="url-bad-port"),
        pytest.param(BASE + "SSL_VERIFY = yes\n", ["-c", "prod"], None, id="ssl-verify"),
        pytest.param(BASE + "OAUTH_CLIENT_SECRET_PROCESS = no-such-command-acmemc\n", ["-c", "prod"], None, id="process-not-found"),
        pytest.param("[prod]\n", [], {"CMEM_BASE_URI": "prod.example", "OAUTH_CLIENT_SECRET": SECRET}, id="env-invalid-url"),
        pytest.param(BASE + f"CMEMC_CUSTOM_HEADER_AUTHORIZATION = Bearer {SECRET}\n", ["-c", "prod"], None, id="protected-header"),
        pytest.param(f"[prod]\nCMEM_BASE_URI = https://alice:{SECRET}@prod.example\n", ["-c", "prod"], None, id="url-password"),
        pytest.param(f"OAUTH_CLIENT_SECRET = {SECRET}\n[prod]\n", ["-c", "prod"], None, id="secret-outside-section"),
        pytest.param(f"[prod]\nOAUTH_CLIENT_SECRET {SECRET}\n", ["-c", "prod"], None, id="secret-line-without-equals"),
    ],
)
async def test_bad_config_exit(text: str, args: list[str], env: dict[str, str] | None, tmp_path: Path) -> None:
    path = write_config(tmp_path, text)

    # graph list checks the credentials too; every config here fails before any request.
    result = await invoke(["--config-file", str(path), *args, "graph", "list"], env=env)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert_one_line_error(result)
    assert "Fix:" in result.stderr
    assert SECRET not in result.output


async def test_get_without_secret(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[prod]\nCMEM_BASE_URI = https://127.0.0.1:1\n")

    result = await invoke(["--config-file", str(path), "-c", "prod", "config", "get", "DP_API_ENDPOINT"])

    assert result.exit_code == 0
    assert result.stdout == "https://127.0.0.1:1/dataplatform\n"


async def test_environment_secret_ignored_hint(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[prod]\nCMEM_BASE_URI = https://127.0.0.1:1\n")

    result = await invoke(["--config-file", str(path), "-c", "prod", "graph", "list"], env={"OAUTH_CLIENT_SECRET": SECRET})

    assert result.exit_code == 2
    assert "OAUTH_CLIENT_SECRET in the environment does not apply to a named connection" in result.stderr
    assert SECRET not in result.output


async def test_no_connection_selected_names_sections(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[prod]\n[test]\n")

    result = await invoke(["--config-file", str(path), "graph", "list"])

    assert result.exit_code == 2
    assert "no connection selected" in result.stderr
    assert "-c NAME (prod, test)" in result.stderr


async def test_missing_default_file_named(tmp_path: Path) -> None:
    result = await invoke(["-c", "prod", "graph", "list"], env={"XDG_CONFIG_HOME": str(tmp_path)})

    assert result.exit_code == 2
    assert f"there is no config file at {tmp_path / 'cmemc' / 'config.ini'}" in result.stderr


async def test_misspelt_key_warns(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[prod]\nCMEM_BASE_URL = https://127.0.0.1:1\n")

    result = await invoke(["--config-file", str(path), "-c", "prod", "config", "get", "CMEM_BASE_URI"])

    assert "CMEM_BASE_URL" in result.stderr
    assert "did you mean CMEM_BASE_URI?" in result.stderr


@pytest.mark.parametrize("timeout", ["inf", "nan", "0", "-1"])
async def test_invalid_timeout_exits_2(timeout: str) -> None:
    result = await invoke(["--timeout", timeout, "config", "list"])

    assert result.exit_code == 2


async def test_missing_default_file_unnamed(tmp_path: Path) -> None:
    result = await invoke(["graph", "list"], env={"XDG_CONFIG_HOME": str(tmp_path)})

    assert result.exit_code == 2
    assert f"there is no config file at {tmp_path / 'cmemc' / 'config.ini'}" in result.stderr
    assert "OAUTH_CLIENT_SECRET is missing" in result.stderr


async def test_misspelt_default_key_warns_once(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[DEFAULT]\nCMEM_BASE_URL = https://127.0.0.1:1\n[a]\n[b]\n[c]\n")

    result = await invoke(["--config-file", str(path), "-A", "config", "list"])

    assert result.stderr.count("did you mean CMEM_BASE_URI?") == 1
    assert "[DEFAULT]" in result.stderr
