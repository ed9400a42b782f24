"""``acmemc admin status`` and ``admin token`` through asyncclick's runner, against the HTTPS sandbox."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asyncclick.testing import CliRunner, Result

from acmemc import decode_jwt_payload
from acmemc._sandbox import Sandbox
from acmemc.cli import cli
from acmemc.cli.admin import describe_duration

WIDE = {"CMEMC_CONSOLE_WIDTH": "250"}


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(tmp_path / "sandbox", 3) as running:
        yield running


async def run(sandbox: Sandbox, *args: str, env: dict[str, str] | None = None) -> Result:
    arguments = ["--config-file", str(sandbox.config_file), *args]
    return await CliRunner().invoke(cli, arguments, env={**WIDE, **(env or {})}, catch_exceptions=False)


def add_section(sandbox: Sandbox, text: str) -> None:
    with sandbox.config_file.open("a", encoding="utf-8") as file:
        file.write("\n" + text)


def table_rows(output: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("┃")[1:-1]] for line in output.splitlines() if line.startswith("┃")]


async def test_status_single_table(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "status")

    rows = table_rows(result.stdout)
    assert result.exit_code == 0
    assert rows[0] == ["Component", "Version", "Status"]
    assert rows[1:] == [
        ["BUILD", "v25.3.0", "UP"],
        ["EXPLORE", "v25.3.0", "UP"],
        ["SHAPES", "v25.3.0", "UP"],
        ["STORE", "10.8.2", "UP"],
    ]
    assert result.stdout.splitlines()[-1].strip() == f"Status of {sandbox.deployments[0].base_uri}"


async def test_status_key_single_value(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "status", "--key", "overall.healthy")

    assert result.stdout == "UP\n"


async def test_status_key_prefix_table(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "status", "--key", "store")

    rows = table_rows(result.stdout)
    assert rows[0] == ["Key", "Value"]
    assert ["store.type", "GRAPHDB"] in rows
    assert all(row[0].startswith("store") for row in rows[1:])


async def test_status_key_enforce_table(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "status", "--key", "overall.healthy", "--enforce-table")

    assert table_rows(result.stdout) == [["Key", "Value"], ["overall.healthy", "UP"]]


async def test_status_key_all_lists_every_key(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "status", "--key", "all")

    keys = [row[0] for row in table_rows(result.stdout)[1:]]
    assert {"build.version", "explore.info.version", "shapes.version", "store.type", "overall.healthy"} <= set(keys)
    assert keys == sorted(keys, key=str.lower)


async def test_status_unknown_key_exits_1(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "status", "--key", "nope")

    assert result.exit_code == 1
    assert "'nope'" in result.stderr
    assert "--key all" in result.stderr


async def test_status_raw_has_cmemc_shape(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "status", "--raw")

    data = json.loads(result.stdout)
    assert set(data) == {"build", "explore", "shapes", "store", "overall"}
    assert data["explore"]["info"]["store"]["type"] == "GRAPHDB"


async def test_status_multiple_rows(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-A", "admin", "status")

    rows = table_rows(result.stdout)
    assert rows[0] == ["Connection", "Status", "Explore", "Build", "Shapes", "Store", "Time", "Certificate", "Reason"]
    assert [row[0] for row in rows[1:]] == ["sandbox-01", "sandbox-02", "sandbox-03"]
    assert all(row[1] == "UP" for row in rows[1:])
    assert all(re.fullmatch(r"\d+ ms", row[6]) for row in rows[1:])
    assert all(re.fullmatch(r"\d+ days, trustme .*", row[7]) for row in rows[1:])


async def test_status_multiple_key_lines(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-A", "admin", "status", "--key", "overall.healthy")

    assert result.stdout.splitlines() == ["sandbox-01\tUP", "sandbox-02\tUP", "sandbox-03\tUP"]


async def test_status_multiple_json_records(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-A", "admin", "status", "--output", "json")

    records = json.loads(result.stdout)
    assert [record["connection"] for record in records] == ["sandbox-01", "sandbox-02", "sandbox-03"]
    record = records[0]
    assert record["healthy"] is True
    assert record["base_uri"] == sandbox.deployments[0].base_uri
    assert record["response_time_ms"] > 0
    assert record["certificate"]["days_left"] > 30
    assert "O=trustme" in record["certificate"]["issuer"]
    assert record["findings"] == []
    assert record["status"]["overall"]["healthy"] == "UP"


async def test_status_ndjson_streams_records(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-A", "admin", "status", "--output", "ndjson")

    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(record["connection"] for record in records) == ["sandbox-01", "sandbox-02", "sandbox-03"]


async def test_status_unreachable_connection_row(sandbox: Sandbox) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused.
    add_section(sandbox, "[down]\nCMEM_BASE_URI=https://127.0.0.1:1\nOAUTH_CLIENT_SECRET=x\n")

    result = await run(sandbox, "-A", "admin", "status")

    rows = {row[0]: row for row in table_rows(result.stdout)[1:]}
    assert rows["down"][1] == "DOWN"
    assert "connection refused" in rows["down"][8]
    assert rows["sandbox-01"][1] == "UP"
    assert result.exit_code == 0


@pytest.mark.parametrize(("exit_1", "status"), [("never", 0), ("error", 1), ("always", 1)])
async def test_status_exit_1_with_error(sandbox: Sandbox, exit_1: str, status: int) -> None:
    add_section(sandbox, "[down]\nCMEM_BASE_URI=https://127.0.0.1:1\nOAUTH_CLIENT_SECRET=x\n")

    result = await run(sandbox, "-A", "admin", "status", "--exit-1", exit_1)

    assert result.exit_code == status


@pytest.mark.parametrize("exit_1", ["never", "error", "always"])
async def test_status_exit_1_all_healthy(sandbox: Sandbox, exit_1: str) -> None:
    result = await run(sandbox, "-A", "admin", "status", "--exit-1", exit_1)

    assert result.exit_code == 0


async def test_status_wrong_secret_row(sandbox: Sandbox) -> None:
    deployment = sandbox.deployments[0]
    add_section(
        sandbox,
        f"[wrong-secret]\nCMEM_BASE_URI={deployment.base_uri}\nOAUTH_CLIENT_ID={deployment.client_id}\n"
        f"OAUTH_CLIENT_SECRET=wrong\nREQUESTS_CA_BUNDLE={sandbox.ca_bundle}\n",
    )

    result = await run(sandbox, "-c", "wrong-secret", "-c", "sandbox-01", "admin", "status")

    rows = {row[0]: row for row in table_rows(result.stdout)[1:]}
    assert rows["wrong-secret"][1] == "DOWN"
    assert "unauthorized_client" in rows["wrong-secret"][8]


async def test_status_certificate_expiry_threshold(sandbox: Sandbox) -> None:
    # The sandbox certificate is valid for 397 days, so a larger threshold makes it a warning.
    result = await run(sandbox, "-c", "sandbox-01", "admin", "status", "--expiry-warning", "1000000", "--exit-1", "always")

    assert result.exit_code == 1
    assert "Warning: the server certificate expires in" in result.stderr


async def test_status_invalid_connection_exits_2(sandbox: Sandbox) -> None:
    add_section(sandbox, "[broken]\nSSL_VERIFY=maybe\nOAUTH_CLIENT_SECRET=x\n")

    result = await run(sandbox, "-A", "admin", "status")

    assert result.exit_code == 2
    assert "connection 'broken': SSL_VERIFY 'maybe'" in result.stderr
    names = [row[0] for row in table_rows(result.stdout)[1:] if row[0]]
    assert names == ["broken", "sandbox-01", "sandbox-02", "sandbox-03"]


async def test_token_single(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-02", "admin", "token")

    payload = decode_jwt_payload(result.stdout.strip())
    assert payload is not None
    assert payload["azp"] == sandbox.deployments[1].client_id


async def test_token_decode_raw(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "token", "--decode", "--raw")

    assert json.loads(result.stdout)["azp"] == sandbox.deployments[0].client_id


async def test_token_raw_is_endpoint_response(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "token", "--raw")

    response = json.loads(result.stdout)
    assert response["token_type"] == "Bearer"
    assert response["expires_in"] == 300


async def test_token_ttl_words(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "token", "--ttl")

    assert re.fullmatch(r"The access token expires in 4 minutes 5\d seconds \(29\d s\)\.\n", result.stdout)


async def test_token_ttl_raw_seconds(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "token", "--ttl", "--raw")

    assert 290 <= json.loads(result.stdout) <= 300


async def test_token_multiple_lines(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-A", "admin", "token")

    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [name for name, _ in lines] == ["sandbox-01", "sandbox-02", "sandbox-03"]
    assert all(decode_jwt_payload(token) for _, token in lines)
    assert sandbox.token_requests == {deployment.name: 1 for deployment in sandbox.deployments}


async def test_token_raw_prefetched_exits_2(sandbox: Sandbox) -> None:
    add_section(sandbox, "[fixed]\nOAUTH_GRANT_TYPE=prefetched_token\nOAUTH_ACCESS_TOKEN=a.b.c\n")

    result = await run(sandbox, "-c", "fixed", "admin", "token", "--raw")

    assert result.exit_code == 2
    assert "prefetched" in result.stderr
    assert "a.b.c" not in result.output


async def test_token_prefetched_printed(sandbox: Sandbox) -> None:
    add_section(sandbox, "[fixed]\nOAUTH_GRANT_TYPE=prefetched_token\nOAUTH_ACCESS_TOKEN=a.b.c\n")

    result = await run(sandbox, "-c", "fixed", "admin", "token")

    assert result.stdout == "a.b.c\n"


async def test_token_help_warns_secret() -> None:
    result = await CliRunner().invoke(cli, ["admin", "token", "--help"])

    assert "The output is a secret" in result.stdout


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 seconds"), (1, "1 second"), (299, "4 minutes 59 seconds"), (3600, "1 hour"), (90061, "1 day 1 hour")],
)
def test_describe_duration(seconds: int, words: str) -> None:
    assert describe_duration(seconds) == words


async def test_status_mixed_fleet(tmp_path: Path) -> None:
    """Each failure kind is one row with its reason, and the others stay UP."""
    async with Sandbox(
        tmp_path,
        6,
        unhealthy=["sandbox-02"],
        slow={"sandbox-03": 3.0},
        expiring={"sandbox-04": 5, "sandbox-05": -2},
        outdated=["sandbox-06"],
    ) as sandbox:
        result = await run(
            sandbox, "--timeout", "1", "-A", "admin", "status", "--exit-1", "error", env={"CMEMC_CONSOLE_WIDTH": "1000"}
        )

    rows = {row[0]: row for row in table_rows(result.stdout)[1:]}
    assert rows["sandbox-01"][1] == "UP"
    assert rows["sandbox-02"][1] == "DOWN"
    assert rows["sandbox-02"][3] == "v25.3.0 DOWN"
    assert rows["sandbox-02"][8] == "DataIntegration health is DOWN; Explore health is DOWN"
    assert rows["sandbox-03"][1] == "DOWN"
    assert "timed out after 1 s" in rows["sandbox-03"][8]
    assert rows["sandbox-04"][1] == "UP"
    assert re.match(r"[45] days, ", rows["sandbox-04"][7])
    assert "expires in" in rows["sandbox-04"][8]
    assert rows["sandbox-05"][1] == "DOWN"
    assert "certificate has expired" in rows["sandbox-05"][8]
    assert rows["sandbox-06"][2] == "v24.1.0"
    assert "older than v25.3.0" in rows["sandbox-06"][8]
    assert result.exit_code == 1
    assert "Warning: connection 'sandbox-04': the server certificate expires in" in result.stderr


async def test_status_outdated_single_warnings(tmp_path: Path) -> None:
    async with Sandbox(tmp_path, 1, outdated=["sandbox-01"]) as sandbox:
        never = await run(sandbox, "-c", "sandbox-01", "admin", "status")
        always = await run(sandbox, "-c", "sandbox-01", "admin", "status", "--exit-1", "always")

    assert never.exit_code == 0
    assert "Warning: Explore v24.1.0 is older than v25.3.0" in never.stderr
    assert "Warning: ShapeCatalog v25.3.0 differs from Explore v24.1.0" in never.stderr
    assert always.exit_code == 1


async def test_status_invalid_connection_in_every_format(sandbox: Sandbox) -> None:
    add_section(sandbox, "[broken]\nSSL_VERIFY=maybe\nOAUTH_CLIENT_SECRET=x\n")
    add_section(sandbox, "[no-bundle]\nREQUESTS_CA_BUNDLE=/nonexistent/ca.pem\nOAUTH_CLIENT_SECRET=x\n")

    table = await run(sandbox, "-A", "admin", "status")
    key = await run(sandbox, "-A", "admin", "status", "--key", "overall.healthy")
    csv_output = await run(sandbox, "-A", "admin", "status", "--output", "csv")
    ndjson = await run(sandbox, "-A", "admin", "status", "--output", "ndjson")

    rows = {row[0]: row for row in table_rows(table.stdout)[1:]}
    assert rows["broken"][1] == "DOWN"
    assert rows["no-bundle"][1] == "DOWN"
    assert "broken\tDOWN" in key.stdout.splitlines()
    assert "no-bundle\tDOWN" in key.stdout.splitlines()
    assert len(key.stdout.splitlines()) == 5
    assert len(csv_output.stdout.splitlines()) == 6
    assert len(ndjson.stdout.splitlines()) == 5
    assert table.stderr.count("connection 'broken'") == 1
    assert table.exit_code == 2


async def test_status_csv_columns(sandbox: Sandbox) -> None:
    result = await run(sandbox, "-c", "sandbox-01", "admin", "status", "--output", "csv")

    header, row = result.stdout.splitlines()
    assert header.split(",")[:4] == ["connection", "status", "explore_version", "explore_status"]
    assert row.split(",")[:4] == ["sandbox-01", "UP", "v25.3.0", "UP"]


async def test_token_decode_and_ttl_exit_2(sandbox: Sandbox) -> None:
    result = await CliRunner().invoke(cli, ["--config-file", str(sandbox.config_file), "-c", "sandbox-01", "admin", "token", "--decode", "--ttl"])

    assert result.exit_code == 2
    assert sandbox.token_requests["sandbox-01"] == 0


async def test_token_ttl_bad_token_spares_others(sandbox: Sandbox) -> None:
    add_section(sandbox, "[fixed]\nCMEM_BASE_URI=https://127.0.0.1:1\nOAUTH_GRANT_TYPE=prefetched_token\nOAUTH_ACCESS_TOKEN=not-a-jwt\n")

    result = await run(sandbox, "-A", "admin", "token", "--ttl")

    names = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert names == ["sandbox-01", "sandbox-02", "sandbox-03"]
    assert "Error: connection 'fixed': the access token is not a JWT" in result.stderr
    assert result.exit_code == 1


async def test_debug_logs_failed_request(sandbox: Sandbox) -> None:
    add_section(sandbox, "[down]\nCMEM_BASE_URI=https://127.0.0.1:1\nOAUTH_CLIENT_SECRET=x\n")

    result = await run(sandbox, "--debug", "-c", "down", "admin", "token")

    assert re.search(r"POST https://127\.0\.0\.1:1/\S+ failed \(\d+ ms\): connection refused", result.stderr)
