"""fetch_status with aioresponses: how each endpoint's response becomes health, versions and findings."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from aioresponses import aioresponses

from _helpers import connection_from
from acmemc import Client, DeploymentStatus, fetch_status
from acmemc._status import flatten

# Plain HTTP, so that fetch_status does not open a TLS connection to read a certificate.
BASE = "http://cmem.test"
TOKEN_URI = f"{BASE}/auth/realms/cmem/protocol/openid-connect/token"
DI = f"{BASE}/dataintegration"
DP = f"{BASE}/dataplatform"
CONFIG = f"[prod]\nCMEM_BASE_URI={BASE}\nOAUTH_CLIENT_SECRET=secret\n"


@pytest.fixture
def mocked(http_mock: aioresponses) -> aioresponses:
    """The shared aioresponses mock with a token endpoint that always succeeds."""
    http_mock.post(TOKEN_URI, payload={"access_token": "t", "expires_in": 300}, repeat=True)
    return http_mock


def healthy_deployment(
    mocked: aioresponses,
    *,
    version: str = "v25.3.0",
    shapes: str | None = "v25.3.0",
    info: dict[str, Any] | None = None,
) -> None:
    mocked.get(f"{DI}/version", body=version, content_type="text/plain")
    mocked.get(f"{DI}/health", payload={"status": "UP"})
    mocked.get(
        f"{DP}/actuator/info",
        payload=info or {"version": version, "store": {"type": "GRAPHDB", "version": "10.8.2"}},
    )
    mocked.get(f"{DP}/actuator/health", payload={"status": "UP"})
    bindings = [{"version": {"type": "literal", "value": shapes}}] if shapes else []
    mocked.post(f"{DP}/proxy/default/sparql", payload={"head": {"vars": ["version"]}, "results": {"bindings": bindings}})


async def status_of(config: str = CONFIG) -> DeploymentStatus:
    async with Client(connection_from(config, "prod")) as client:
        return await fetch_status(client)


async def test_healthy_deployment(mocked: aioresponses) -> None:
    healthy_deployment(mocked)

    status = await status_of()

    assert status.healthy
    assert status.data["build"] == {"version": "v25.3.0", "healthy": "UP"}
    assert status.data["explore"]["version"] == "v25.3.0"
    assert status.data["store"] == {"type": "GRAPHDB", "version": "10.8.2", "healthy": "UP"}
    assert status.data["shapes"] == {"version": "v25.3.0", "healthy": "UP"}
    assert status.data["overall"] == {"healthy": "UP"}
    assert status.findings == ()


async def test_one_token_for_all_calls(mocked: aioresponses) -> None:
    healthy_deployment(mocked)

    async with Client(connection_from(CONFIG, "prod")) as client:
        await fetch_status(client)
        token_requests = client.token_requests

    assert token_requests == 1


async def test_sparql_query_sent_as_form(mocked: aioresponses) -> None:
    healthy_deployment(mocked)

    await status_of()

    calls = [calls for (method, url), calls in mocked.requests.items() if method == "POST" and "sparql" in str(url)][0]
    assert "owl:versionInfo" in calls[0].kwargs["data"]["query"]
    assert calls[0].kwargs["headers"]["Accept"] == "application/sparql-results+json"


async def test_health_down_with_503(mocked: aioresponses) -> None:
    mocked.get(f"{DI}/version", body="v25.3.0")
    mocked.get(f"{DI}/health", status=503, payload={"status": "DOWN"})
    mocked.get(f"{DP}/actuator/info", payload={"version": "v25.3.0"})
    mocked.get(f"{DP}/actuator/health", status=503, payload={"status": "DOWN"})
    mocked.post(f"{DP}/proxy/default/sparql", payload={"results": {"bindings": []}})

    status = await status_of()

    assert status.data["build"]["healthy"] == "DOWN"
    assert status.data["explore"]["healthy"] == "DOWN"
    assert status.data["store"]["healthy"] == "DOWN"
    assert status.data["shapes"]["healthy"] == "DOWN"
    assert not status.healthy
    assert status.has_errors
    assert [finding.message for finding in status.findings] == [
        "DataIntegration health is DOWN",
        "Explore health is DOWN",
        "ShapeCatalog version is unknown",
    ]


async def test_actuator_error_recorded(mocked: aioresponses) -> None:
    mocked.get(f"{DI}/version", body="v25.3.0")
    mocked.get(f"{DI}/health", payload={"status": "UP"})
    mocked.get(f"{DP}/actuator/info", status=500, payload={"message": "store unavailable"})
    mocked.get(f"{DP}/actuator/health", payload={"status": "UP"})
    mocked.post(f"{DP}/proxy/default/sparql", payload={"results": {"bindings": []}})

    status = await status_of()

    assert status.data["explore"]["healthy"] == "DOWN"
    assert "HTTP 500" in status.data["explore"]["error"]
    assert "store unavailable" in status.data["explore"]["error"]
    assert status.data["store"]["version"] == "UNKNOWN"
    errors = [finding.message for finding in status.findings if finding.level == "error"]
    assert errors == ["ShapeCatalog version is unknown", "explore: HTTP 500"]


async def test_non_json_health_recorded(mocked: aioresponses) -> None:
    mocked.get(f"{DI}/version", body="v25.3.0")
    mocked.get(f"{DI}/health", body="<html>login</html>", content_type="text/html")
    mocked.get(f"{DP}/actuator/info", payload={"version": "v25.3.0"})
    mocked.get(f"{DP}/actuator/health", payload={"status": "UP"})
    mocked.post(f"{DP}/proxy/default/sparql", payload={"results": {"bindings": []}})

    status = await status_of()

    assert status.data["build"]["healthy"] == "DOWN"
    assert "not valid JSON" in status.data["build"]["error"]


async def test_token_rejected_everywhere(http_mock: aioresponses) -> None:
    http_mock.post(TOKEN_URI, status=401, payload={"error": "unauthorized_client"}, repeat=True)

    status = await status_of()

    assert status.data["overall"]["healthy"] == "DOWN"
    assert "unauthorized_client" in status.data["build"]["error"]
    assert "unauthorized_client" in status.data["explore"]["error"]
    assert [finding.message for finding in status.findings] == ["token rejected: unauthorized_client"]


async def test_older_backend_warns(mocked: aioresponses) -> None:
    healthy_deployment(mocked, version="v24.1.0", shapes="v24.1.0")

    status = await status_of()

    messages = [finding.message for finding in status.findings if finding.level == "warning"]
    assert any(message.startswith("DataIntegration v24.1.0 is older than v25.3.0") for message in messages)
    assert any(message.startswith("Explore v24.1.0 is older than v25.3.0") for message in messages)
    assert status.healthy


async def test_shapes_version_differs_warns(mocked: aioresponses) -> None:
    healthy_deployment(mocked, shapes="v24.3.0")

    status = await status_of()

    assert [finding.message for finding in status.findings][0].startswith("ShapeCatalog v24.3.0 differs from Explore v25.3.0")


async def test_license_grace_period_is_error(mocked: aioresponses) -> None:
    info = {"version": "v25.3.0", "store": {"type": "GRAPHDB", "version": "10.8.2"}, "license": {"inGracePeriod": True, "validDate": "2026-11-30"}}
    healthy_deployment(mocked, info=info)

    status = await status_of()

    assert status.findings[0].level == "error"
    assert "license expired on 2026-11-30" in status.findings[0].message
    assert status.has_errors


@pytest.mark.parametrize(("days", "warned"), [(10, True), (29, True), (40, False), (400, False)])
async def test_graphdb_license_expiry(mocked: aioresponses, days: int, warned: bool) -> None:
    expiration = (date.today() + timedelta(days=days)).isoformat()
    info = {"version": "v25.3.0", "store": {"type": "GRAPHDB", "version": "10.8.2", "licenseExpiration": expiration}}
    healthy_deployment(mocked, info=info)

    status = await status_of()

    assert (f"the GraphDB license expires on {expiration}." in [f.message for f in status.findings]) is warned


async def test_workspace_migration_warns(mocked: aioresponses) -> None:
    info = {"version": "v25.3.0", "workspaceConfiguration": {"workspacesToMigrate": ["default"]}}
    healthy_deployment(mocked, info=info)

    status = await status_of()

    assert any("migrate" in finding.message for finding in status.findings)


def test_flatten_dotted_keys() -> None:
    rows = flatten({"explore": {"info": {"store": {"type": "GRAPHDB"}}, "healthy": "UP"}, "list": [{"a": 1}, {"a": 2}]})

    assert rows == [("explore.info.store.type", "GRAPHDB"), ("explore.healthy", "UP"), ("list.a", "1"), ("list.a", "2")]
