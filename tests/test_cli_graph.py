"""``acmemc graph list`` through asyncclick's runner, against the HTTPS sandbox."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asyncclick.testing import CliRunner, Result

from acmemc._sandbox import Sandbox
from acmemc.cli import cli
from acmemc.cli.graph import graph_type

TIMESTAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00\]"


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(tmp_path / "sandbox", 3) as running:
        yield running


async def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return await CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def config_args(sandbox: Sandbox) -> list[str]:
    return ["--config-file", str(sandbox.config_file)]


def add_section(sandbox: Sandbox, text: str) -> None:
    with sandbox.config_file.open("a", encoding="utf-8") as file:
        file.write("\n" + text)


async def test_single_connection_table(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "-c", "sandbox-01", "graph", "list", env={"CMEMC_CONSOLE_WIDTH": "200"})

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert re.match(r"┃ Graph IRI +┃ Type +┃ Label +┃", lines[1])
    labels = [line.split("┃")[3].strip() for line in lines[3:-1] if line.split("┃")[3].strip()]
    assert labels == sorted(labels, key=str.lower)
    assert "shui:ShapeCatalog" in result.stdout


async def test_single_connection_id_only(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "-c", "sandbox-02", "graph", "list", "--id-only")

    expected = sorted(sandbox.deployments[1].graph_iris, key=str.lower)
    assert result.stdout.splitlines() == expected


async def test_single_connection_raw(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "-c", "sandbox-01", "graph", "list", "--raw")

    graphs = json.loads(result.stdout)
    assert [graph["iri"] for graph in graphs] == list(sandbox.deployments[0].graph_iris)


async def test_raw_from_command_environment_variable(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "-c", "sandbox-01", "graph", "list", env={"CMEMC_GRAPH_LIST_RAW": "true"})

    assert isinstance(json.loads(result.stdout), list)


@pytest.mark.parametrize("access", ["readonly", "writeable"])
async def test_filter_access(sandbox: Sandbox, access: str) -> None:
    raw = await run(*config_args(sandbox), "-c", "sandbox-01", "graph", "list", "--raw")
    filtered = await run(*config_args(sandbox), "-c", "sandbox-01", "graph", "list", "--raw", "--filter", "access", access)

    expected = [graph for graph in json.loads(raw.stdout) if graph["writeable"] is (access == "writeable")]
    assert json.loads(filtered.stdout) == expected
    assert expected


async def test_all_connections_id_only(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "--all-connections", "graph", "list", "--id-only")

    expected = [
        f"{deployment.name}\t{iri}"
        for deployment in sandbox.deployments
        for iri in sorted(deployment.graph_iris, key=str.lower)
    ]
    assert result.exit_code == 0
    assert result.stdout.splitlines() == expected


async def test_one_token_request_per_connection(sandbox: Sandbox) -> None:
    await run(*config_args(sandbox), "--all-connections", "graph", "list")

    assert sandbox.token_requests == {deployment.name: 1 for deployment in sandbox.deployments}


async def test_match_pattern_selects_connections(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "--match", "sandbox-0[13]", "graph", "list", "--id-only")

    names = {line.split("\t")[0] for line in result.stdout.splitlines()}
    assert names == {"sandbox-01", "sandbox-03"}


async def test_repeated_connection_option(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "-c", "sandbox-02", "-c", "sandbox-01", "graph", "list", "--raw")

    records = json.loads(result.stdout)
    assert [record["connection"] for record in records] == ["sandbox-01", "sandbox-02"]


async def test_multiple_table_has_connection_column(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "-A", "graph", "list", env={"CMEMC_CONSOLE_WIDTH": "200"})

    lines = result.stdout.splitlines()
    assert re.match(r"┃ Connection +┃ Graph IRI +┃ Type +┃ Label +┃", lines[1])
    assert sum(1 for line in lines if line.startswith("┃ sandbox-02 ")) == len(sandbox.deployments[1].graph_iris)


async def test_failed_connection_does_not_stop_others(sandbox: Sandbox) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused.
    add_section(sandbox, "[down]\nCMEM_BASE_URI=https://127.0.0.1:1\nOAUTH_CLIENT_SECRET=x\n")

    result = await run(*config_args(sandbox), "-A", "graph", "list", "--id-only")

    assert result.exit_code == 1
    assert {line.split("\t")[0] for line in result.stdout.splitlines()} == {"sandbox-01", "sandbox-02", "sandbox-03"}
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert "connection 'down'" in errors[0]
    assert "connection refused" in errors[0]


async def test_failed_connection_in_raw_output(sandbox: Sandbox) -> None:
    deployment = sandbox.deployments[0]
    add_section(
        sandbox,
        f"[wrong-secret]\nCMEM_BASE_URI={deployment.base_uri}\nOAUTH_CLIENT_ID={deployment.client_id}\n"
        f"OAUTH_CLIENT_SECRET=wrong\nREQUESTS_CA_BUNDLE={sandbox.ca_bundle}\n",
    )

    result = await run(*config_args(sandbox), "-A", "graph", "list", "--raw")

    records = {record["connection"]: record for record in json.loads(result.stdout)}
    assert result.exit_code == 1
    assert records["wrong-secret"]["error"]["type"] == "AuthenticationError"
    assert "unauthorized_client" in records["wrong-secret"]["error"]["message"]
    assert "graphs" in records["sandbox-01"]


async def test_invalid_connection_config_exits_2(sandbox: Sandbox) -> None:
    add_section(sandbox, "[broken]\nSSL_VERIFY=maybe\nOAUTH_CLIENT_SECRET=x\n")

    result = await run(*config_args(sandbox), "-A", "graph", "list", "--id-only")

    assert result.exit_code == 2
    assert len(result.stdout.splitlines()) == sum(len(d.graph_iris) for d in sandbox.deployments)
    assert "connection 'broken': SSL_VERIFY 'maybe'" in result.stderr


async def test_unknown_connection_exits_2(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "-c", "nope", "graph", "list")

    assert result.exit_code == 2
    assert result.stderr.startswith("Error: connection 'nope' not found")
    assert sandbox.token_requests == {deployment.name: 0 for deployment in sandbox.deployments}


async def test_match_without_hits_exits_2(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "--match", "prod-*", "graph", "list")

    assert result.exit_code == 2
    assert "prod-*" in result.stderr


async def test_ssl_verify_false_warning_single(sandbox: Sandbox) -> None:
    add_section(sandbox, f"[insecure]\nCMEM_BASE_URI={sandbox.deployments[0].base_uri}\nSSL_VERIFY=false\n"
                f"OAUTH_CLIENT_ID={sandbox.deployments[0].client_id}\nOAUTH_CLIENT_SECRET={sandbox.deployments[0].client_secret}\n")

    result = await run(*config_args(sandbox), "-c", "insecure", "graph", "list", "--id-only")

    assert result.exit_code == 0
    assert result.stderr.splitlines() == ["SSL verification is disabled (SSL_VERIFY=False)."]


async def test_ssl_verify_false_warning_once_for_many(sandbox: Sandbox) -> None:
    for name in ("insecure-a", "insecure-b"):
        add_section(sandbox, f"[{name}]\nCMEM_BASE_URI={sandbox.deployments[0].base_uri}\nSSL_VERIFY=False\n"
                    f"OAUTH_CLIENT_ID={sandbox.deployments[0].client_id}\nOAUTH_CLIENT_SECRET={sandbox.deployments[0].client_secret}\n")

    result = await run(*config_args(sandbox), "-A", "graph", "list", "--id-only")

    warnings = [line for line in result.stderr.splitlines() if "SSL verification is disabled" in line]
    assert warnings == ["SSL verification is disabled (SSL_VERIFY=False). Connections: insecure-a, insecure-b"]


async def test_debug_lines_name_connection(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "--debug", "-A", "graph", "list", "--id-only")

    lines = result.stderr.splitlines()
    assert all(re.match(TIMESTAMP + " ", line) for line in lines)
    per_connection = [line for line in lines if "Config file:" not in line]
    assert all(re.match(TIMESTAMP + r" sandbox-0\d: ", line) for line in per_connection)
    assert any(line.endswith(f"sandbox-02: CA bundle loaded from {sandbox.ca_bundle}") for line in lines)
    assert any(line.endswith("sandbox-01: OAUTH_CLIENT_SECRET set by config") for line in lines)
    assert any(re.search(r"sandbox-03: GET \S+/dataplatform/graphs/list -> 200 OK \(\d+ ms\)", line) for line in lines)


async def test_debug_single_connection_matches_cmemc_format(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "--debug", "-c", "sandbox-01", "graph", "list", "--id-only")

    base_uri = sandbox.deployments[0].base_uri
    assert re.search(TIMESTAMP + f" CMEM_BASE_URI set by config to {re.escape(base_uri)}\n", result.stderr)
    assert re.search(TIMESTAMP + f" CA bundle loaded from {re.escape(str(sandbox.ca_bundle))}\n", result.stderr)


async def test_no_secret_in_any_output(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "--debug", "-A", "graph", "list", "--raw")

    for deployment in sandbox.deployments:
        assert deployment.client_secret not in result.output
    assert not re.search(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", result.output)


async def test_default_connection_from_environment(sandbox: Sandbox) -> None:
    env = {"CMEMC_CONFIG_FILE": str(sandbox.config_file), "CMEMC_CONNECTION": "sandbox-03"}

    result = await run("graph", "list", "--id-only", env=env)

    assert result.stdout.splitlines() == sorted(sandbox.deployments[2].graph_iris, key=str.lower)


def test_graph_type_prefixes() -> None:
    assert graph_type({"assignedClasses": ["https://vocab.eccenca.com/shui/ShapeCatalog"]}) == "shui:ShapeCatalog"
    assert graph_type({"assignedClasses": ["http://www.w3.org/2002/07/owl#Ontology", "http://rdfs.org/ns/void#Dataset"]}) == "void:Dataset"
    assert graph_type({"assignedClasses": ["https://other.test/C"]}) == "https://other.test/C"
    assert graph_type({"assignedClasses": []}) == ""


def test_sandbox_run_command_lists_all(tmp_path: Path) -> None:
    """The README's first command, as a user runs it: a child process, real TLS, real HTTP."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CMEMC_")}

    completed = subprocess.run(
        [sys.executable, "-m", "acmemc", "sandbox", "run", "--deployments", "2", "--directory", str(tmp_path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert "┃ Connection" in completed.stdout
    assert "sandbox-02" in completed.stdout


async def test_output_ndjson_one_graph_a_line(sandbox: Sandbox) -> None:
    add_section(sandbox, "[down]\nCMEM_BASE_URI=https://127.0.0.1:1\nOAUTH_CLIENT_SECRET=x\n")

    result = await run(*config_args(sandbox), "-A", "graph", "list", "--output", "ndjson")

    records = [json.loads(line) for line in result.stdout.splitlines()]
    graphs = [record for record in records if "iri" in record]
    errors = [record for record in records if "error" in record]
    assert len(graphs) == sum(len(deployment.graph_iris) for deployment in sandbox.deployments)
    assert {record["connection"] for record in graphs} == {"sandbox-01", "sandbox-02", "sandbox-03"}
    assert set(graphs[0]) == {"connection", "iri", "type", "label", "writeable"}
    assert [record["connection"] for record in errors] == ["down"]
    assert result.exit_code == 1


async def test_output_csv_multiple(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "-A", "graph", "list", "--output", "csv")

    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["connection", "iri", "type", "label", "writeable"]
    assert len(rows) - 1 == sum(len(deployment.graph_iris) for deployment in sandbox.deployments)
    assert {row[0] for row in rows[1:]} == {"sandbox-01", "sandbox-02", "sandbox-03"}


async def test_output_csv_single_has_no_connection_column(sandbox: Sandbox) -> None:
    result = await run(*config_args(sandbox), "-c", "sandbox-01", "graph", "list", "--output", "csv")

    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["iri", "type", "label", "writeable"]
    assert sorted(row[0] for row in rows[1:]) == sorted(sandbox.deployments[0].graph_iris)


async def test_output_json_equals_raw(sandbox: Sandbox) -> None:
    raw = await run(*config_args(sandbox), "-c", "sandbox-01", "graph", "list", "--raw")
    output = await run(*config_args(sandbox), "-c", "sandbox-01", "graph", "list", "--output", "json")

    assert json.loads(output.stdout) == json.loads(raw.stdout)


async def test_colour_codes_only_when_asked(sandbox: Sandbox) -> None:
    add_section(sandbox, "[down]\nCMEM_BASE_URI=https://127.0.0.1:1\nOAUTH_CLIENT_SECRET=x\n")
    arguments = [*config_args(sandbox), "-A", "graph", "list", "--id-only"]

    coloured = await CliRunner().invoke(cli, arguments, color=True)
    no_color = await CliRunner().invoke(cli, arguments, color=True, env={"NO_COLOR": "1"})
    plain = await CliRunner().invoke(cli, arguments)

    assert "\x1b[31mError:" in coloured.stderr
    assert "\x1b[" not in no_color.stderr
    assert "\x1b[" not in plain.stderr


@pytest.mark.parametrize("extra", [["--raw"], ["--output", "json"], ["--output", "csv"]])
async def test_id_only_conflicts_exit_2(sandbox: Sandbox, extra: list[str]) -> None:
    result = await CliRunner().invoke(cli, [*config_args(sandbox), "-c", "sandbox-01", "graph", "list", "--id-only", *extra])

    assert result.exit_code == 2
    assert "--id-only" in result.stderr
    assert sandbox.token_requests["sandbox-01"] == 0


def test_progress_line_counts(capsys: pytest.CaptureFixture[str]) -> None:
    from acmemc import ConnectionResult
    from acmemc.cli._app import Progress

    progress = Progress(4)
    progress.update([ConnectionResult("a", [], None, 0.1), ConnectionResult("b", None, RuntimeError("x"), 0.1)])
    progress.clear()

    written = capsys.readouterr().err
    assert "\r2/4 done, 1 failed, 2 pending" in written
    assert written.endswith("\r\x1b[K")


async def test_no_progress_when_not_a_terminal(sandbox: Sandbox) -> None:
    # CliRunner's stderr is not a terminal, so no carriage returns may appear.
    result = await run(*config_args(sandbox), "-A", "graph", "list", "--id-only")

    assert "\r" not in result.stderr
