"""Tests of the local Corporate Memory sandbox, through real HTTPS requests on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import configparser
import hashlib
import hmac
import json
import logging
import os
import pathlib
import ssl
import stat
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from cryptography import x509

from acmemc._inspect import fetch_presented_chain
from acmemc._sandbox import (
    MAX_CERTIFICATE_DAYS,
    SANDBOX_USERNAME,
    Sandbox,
    SandboxDeployment,
    check_deployment_names,
    deployment_names,
)

TOKEN_PATH = "/auth/realms/cmem/protocol/openid-connect/token"
GRAPH_LIST_PATH = "/dataplatform/graphs/list"
SPARQL_PATH = "/dataplatform/proxy/default/sparql"
DI_VERSION_PATH = "/dataintegration/version"
DI_HEALTH_PATH = "/dataintegration/health"
DP_INFO_PATH = "/dataplatform/actuator/info"
DP_HEALTH_PATH = "/dataplatform/actuator/health"
CONFIG_KEYS = [
    "CMEM_BASE_URI",
    "OAUTH_GRANT_TYPE",
    "OAUTH_CLIENT_ID",
    "OAUTH_CLIENT_SECRET",
    "REQUESTS_CA_BUNDLE",
]


@pytest_asyncio.fixture
async def sandbox(tmp_path: pathlib.Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(tmp_path / "sandbox", deployments=3) as running:
        yield running


@pytest.fixture
def client_ssl(sandbox: Sandbox) -> ssl.SSLContext:
    return _client_context(sandbox)


@pytest_asyncio.fixture
async def session(sandbox: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    # Depending on the sandbox makes pytest close the session before the servers stop.
    async with aiohttp.ClientSession() as client:
        yield client


def _client_context(sandbox: Sandbox) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(sandbox.ca_bundle))
    assert context.check_hostname
    return context


def _client_credentials(deployment: SandboxDeployment) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": deployment.client_id,
        "client_secret": deployment.client_secret,
    }


async def _request_token(
    session: aiohttp.ClientSession,
    context: ssl.SSLContext,
    deployment: SandboxDeployment,
    form: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    data = _client_credentials(deployment) if form is None else form
    async with session.post(deployment.base_uri + TOKEN_PATH, data=data, ssl=context) as response:
        return response.status, await response.json()


async def _fetch_token(
    session: aiohttp.ClientSession, context: ssl.SSLContext, deployment: SandboxDeployment
) -> str:
    status, body = await _request_token(session, context, deployment)
    assert status == 200, body
    return body["access_token"]


async def _get_graph_list(
    session: aiohttp.ClientSession,
    context: ssl.SSLContext,
    deployment: SandboxDeployment,
    headers: dict[str, str],
) -> tuple[int, Any]:
    async with session.get(deployment.base_uri + GRAPH_LIST_PATH, headers=headers, ssl=context) as response:
        body = await response.read()
        return response.status, json.loads(body) if body else None


def _decode_segment(segment: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _encode_segment(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _open_file_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


needs_proc_fd = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")


# Construction and config.ini


@pytest.mark.parametrize("count", [0, -1, 5001])
def test_deployment_count_out_of_range(tmp_path: pathlib.Path, count: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 5000"):
        Sandbox(tmp_path, count)


def test_invalid_latency_and_lifetime(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="latency"):
        Sandbox(tmp_path, latency=-0.1)
    with pytest.raises(ValueError, match="token_lifetime"):
        Sandbox(tmp_path, token_lifetime=-1)
    with pytest.raises(TypeError, match="deployments"):
        Sandbox(tmp_path, "3")  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_set_latency_rejects_invalid(tmp_path: pathlib.Path, seconds: float) -> None:
    with pytest.raises(ValueError, match="latency"):
        Sandbox(tmp_path).set_latency(seconds)


@pytest.mark.asyncio
async def test_config_ini_sections_and_keys(sandbox: Sandbox) -> None:
    text = sandbox.config_file.read_text(encoding="utf-8")
    first_line = text.splitlines()[0]
    assert first_line.startswith("# Written by the acmemc sandbox")
    assert "throwaway" in text.split("\n\n")[0]

    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    assert parser.sections() == ["sandbox-01", "sandbox-02", "sandbox-03"]
    assert [d.name for d in sandbox.deployments] == parser.sections()

    for deployment in sandbox.deployments:
        section = parser[deployment.name]
        assert list(section.keys()) == CONFIG_KEYS
        assert section["CMEM_BASE_URI"] == deployment.base_uri
        assert section["CMEM_BASE_URI"] == f"https://127.0.0.1:{deployment.port}"
        assert section["OAUTH_GRANT_TYPE"] == "client_credentials"
        assert section["OAUTH_CLIENT_ID"] == deployment.client_id
        assert section["OAUTH_CLIENT_SECRET"] == deployment.client_secret
        ca_path = pathlib.Path(section["REQUESTS_CA_BUNDLE"])
        assert ca_path.is_absolute()
        assert ca_path == sandbox.ca_bundle


@pytest.mark.asyncio
async def test_directory_contains_only_outputs(sandbox: Sandbox) -> None:
    directory = sandbox.config_file.parent
    assert sorted(path.name for path in directory.iterdir()) == ["ca.pem", "config.ini"]
    assert sandbox.ca_bundle.read_text(encoding="ascii").startswith("-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE(sandbox.config_file.stat().st_mode) == 0o600


@pytest.mark.asyncio
async def test_secrets_ports_and_clients_differ(sandbox: Sandbox) -> None:
    assert len({d.port for d in sandbox.deployments}) == 3
    assert len({d.client_id for d in sandbox.deployments}) == 3
    assert len({d.client_secret for d in sandbox.deployments}) == 3
    assert all(d.client_secret not in repr(d) for d in sandbox.deployments)


@pytest.mark.asyncio
async def test_relative_directory_gives_absolute_paths(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with Sandbox("relative/dir", 1) as sandbox:
        assert sandbox.ca_bundle == tmp_path / "relative" / "dir" / "ca.pem"
        assert f"REQUESTS_CA_BUNDLE = {tmp_path}/relative/dir/ca.pem" in sandbox.config_file.read_text()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("count", "first", "last"),
    [(1, "sandbox-01", "sandbox-01"), (12, "sandbox-01", "sandbox-12"), (100, "sandbox-001", "sandbox-100")],
)
async def test_section_names_padded(tmp_path: pathlib.Path, count: int, first: str, last: str) -> None:
    async with Sandbox(tmp_path, count) as sandbox:
        names = [d.name for d in sandbox.deployments]
        assert names[0] == first
        assert names[-1] == last
        assert len(names) == count


# Token endpoint


@pytest.mark.asyncio
async def test_token_response_and_claims(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    deployment = sandbox.deployments[1]
    status, body = await _request_token(session, client_ssl, deployment)
    assert status == 200
    assert body["expires_in"] == 300
    assert body["refresh_expires_in"] == 0
    assert body["token_type"] == "Bearer"
    assert body["not-before-policy"] == 0
    assert body["scope"] == "profile email"

    header_part, claims_part, signature_part = body["access_token"].split(".")
    assert _decode_segment(header_part) == {"alg": "HS256", "typ": "JWT"}
    claims = _decode_segment(claims_part)
    assert claims["exp"] == claims["iat"] + 300
    assert abs(claims["iat"] - time.time()) < 60
    assert claims["iss"] == deployment.base_uri + "/auth/realms/cmem"
    assert claims["azp"] == deployment.client_id
    assert claims["preferred_username"] == f"service-account-{deployment.client_id}"
    assert claims["sub"]
    assert signature_part


@pytest.mark.asyncio
async def test_wrong_secret_is_unauthorized(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    deployment = sandbox.deployments[0]
    form = _client_credentials(deployment) | {"client_secret": "wrong"}
    status, body = await _request_token(session, client_ssl, deployment, form)
    assert status == 401
    assert body == {
        "error": "unauthorized_client",
        "error_description": "Invalid client or Invalid client credentials",
    }


@pytest.mark.asyncio
async def test_secret_of_other_deployment_rejected(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    first, second = sandbox.deployments[:2]
    form = _client_credentials(first) | {"client_secret": second.client_secret}
    status, body = await _request_token(session, client_ssl, first, form)
    assert status == 401
    assert body["error"] == "unauthorized_client"


TOKEN_ERROR_CASES: list[tuple[str, Callable[[SandboxDeployment], dict[str, str]], int, str]] = [
    ("unknown grant", lambda d: _client_credentials(d) | {"grant_type": "implicit"}, 400, "unsupported_grant_type"),
    ("no grant type", lambda d: {"client_id": d.client_id, "client_secret": d.client_secret}, 400, "invalid_request"),
    ("no client id", lambda d: {"grant_type": "client_credentials", "client_secret": d.client_secret}, 400, "invalid_request"),
    ("no secret", lambda d: {"grant_type": "client_credentials", "client_id": d.client_id}, 400, "invalid_request"),
    ("empty form", lambda d: {}, 400, "invalid_request"),
    ("unknown client", lambda d: _client_credentials(d) | {"client_id": "someone-else"}, 401, "invalid_client"),
    (
        "wrong password",
        lambda d: {"grant_type": "password", "client_id": d.client_id, "username": SANDBOX_USERNAME, "password": "x"},
        401,
        "invalid_grant",
    ),
    (
        "wrong username",
        lambda d: {"grant_type": "password", "client_id": d.client_id, "username": "admin", "password": d.client_secret},
        401,
        "invalid_grant",
    ),
    (
        "no password",
        lambda d: {"grant_type": "password", "client_id": d.client_id, "username": SANDBOX_USERNAME},
        400,
        "invalid_request",
    ),
    (
        "password grant wrong secret",
        lambda d: {
            "grant_type": "password",
            "client_id": d.client_id,
            "client_secret": "wrong",
            "username": SANDBOX_USERNAME,
            "password": d.client_secret,
        },
        401,
        "unauthorized_client",
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("build_form", "status", "error"),
    [case[1:] for case in TOKEN_ERROR_CASES],
    ids=[case[0] for case in TOKEN_ERROR_CASES],
)
async def test_token_request_errors(
    sandbox: Sandbox,
    session: aiohttp.ClientSession,
    client_ssl: ssl.SSLContext,
    build_form: Callable[[SandboxDeployment], dict[str, str]],
    status: int,
    error: str,
) -> None:
    deployment = sandbox.deployments[0]
    actual_status, body = await _request_token(session, client_ssl, deployment, build_form(deployment))
    assert actual_status == status
    assert body["error"] == error
    assert body["error_description"]


@pytest.mark.asyncio
async def test_password_grant_issues_user_token(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    deployment = sandbox.deployments[2]
    form = {
        "grant_type": "password",
        "client_id": deployment.client_id,
        "username": SANDBOX_USERNAME,
        "password": deployment.client_secret,
    }
    status, body = await _request_token(session, client_ssl, deployment, form)
    assert status == 200
    claims = _decode_segment(body["access_token"].split(".")[1])
    assert claims["preferred_username"] == SANDBOX_USERNAME

    token_header = {"Authorization": f"Bearer {body['access_token']}"}
    list_status, graphs = await _get_graph_list(session, client_ssl, deployment, token_header)
    assert list_status == 200
    assert [graph["iri"] for graph in graphs] == list(deployment.graph_iris)


@pytest.mark.asyncio
async def test_token_endpoint_rejects_get(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    deployment = sandbox.deployments[0]
    async with session.get(deployment.base_uri + TOKEN_PATH, ssl=client_ssl) as response:
        assert response.status == 405


# Graph list


@pytest.mark.asyncio
async def test_graph_lists_of_two_deployments(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    lists = []
    for deployment in sandbox.deployments[:2]:
        token = await _fetch_token(session, client_ssl, deployment)
        status, graphs = await _get_graph_list(
            session, client_ssl, deployment, {"Authorization": f"Bearer {token}"}
        )
        assert status == 200
        iris = [graph["iri"] for graph in graphs]
        assert iris == list(deployment.graph_iris)
        lists.append(iris)

    assert lists[0] != lists[1]
    assert "https://vocab.eccenca.com/shacl/" in lists[0]
    assert "https://vocab.eccenca.com/shacl/" in lists[1]
    assert "https://sandbox.example/sandbox-01/data/" in lists[0]
    assert "https://sandbox.example/sandbox-02/data/" in lists[1]


@pytest.mark.asyncio
async def test_graph_descriptions_shape(tmp_path: pathlib.Path) -> None:
    async with Sandbox(tmp_path, 4) as sandbox, aiohttp.ClientSession() as session:
        context = _client_context(sandbox)
        sizes = []
        for deployment in sandbox.deployments:
            token = await _fetch_token(session, context, deployment)
            status, graphs = await _get_graph_list(session, context, deployment, {"Authorization": f"Bearer {token}"})
            assert status == 200
            sizes.append(len(graphs))

            for graph in graphs:
                assert set(graph) == {"iri", "label", "comment", "assignedClasses", "writeable", "imports", "importedBy"}
                assert graph["label"]["lang"] == "en"
                assert graph["label"]["fromIri"] is False
                assert graph["label"]["title"]
                assert graph["comment"]["title"]
                assert isinstance(graph["assignedClasses"], list)
                assert isinstance(graph["writeable"], bool)
                assert graph["imports"] == []
                assert graph["importedBy"] == []

            assert {graph["writeable"] for graph in graphs} == {True, False}
            assert any(graph["assignedClasses"] == [] for graph in graphs)
            shapes = next(graph for graph in graphs if graph["iri"] == "https://vocab.eccenca.com/shacl/")
            assert shapes["assignedClasses"] == ["https://vocab.eccenca.com/shui/ShapeCatalog"]

    assert sizes == [5, 6, 7, 8]


@pytest.mark.asyncio
async def test_graph_list_rejects_bad_tokens(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    first, second = sandbox.deployments[:2]
    token = await _fetch_token(session, client_ssl, first)
    header_part, claims_part, signature_part = token.split(".")

    claims = _decode_segment(claims_part)
    tampered = f"{header_part}.{_encode_segment(claims | {'exp': claims['exp'] + 3600})}.{signature_part}"
    foreign_key_input = f"{header_part}.{claims_part}".encode()
    foreign_signature = hmac.new(b"not the sandbox key", foreign_key_input, hashlib.sha256).digest()
    foreign = f"{header_part}.{claims_part}.{base64.urlsafe_b64encode(foreign_signature).rstrip(b'=').decode()}"
    unsigned = f"{_encode_segment({'alg': 'none', 'typ': 'JWT'})}.{claims_part}."

    cases = {
        "no header": {},
        "empty bearer": {"Authorization": "Bearer "},
        "basic scheme": {"Authorization": f"Basic {token}"},
        "garbage": {"Authorization": "Bearer not-a-token"},
        "non-ascii": {"Authorization": "Bearer a.b.\u00e9"},
        "tampered claims": {"Authorization": f"Bearer {tampered}"},
        "foreign key": {"Authorization": f"Bearer {foreign}"},
        "alg none": {"Authorization": f"Bearer {unsigned}"},
    }
    for case, headers in cases.items():
        status, body = await _get_graph_list(session, client_ssl, first, headers)
        assert status == 401, case
        assert body is None or "error" in body, case

    # A valid token of one deployment is not valid on another.
    status, body = await _get_graph_list(session, client_ssl, second, {"Authorization": f"Bearer {token}"})
    assert status == 401
    assert body["error"] == "invalid_token"


@pytest.mark.asyncio
async def test_graph_list_rejects_expired_token(tmp_path: pathlib.Path) -> None:
    # A lifetime of 0 seconds issues tokens that are expired when they arrive.
    async with Sandbox(tmp_path, 1, token_lifetime=0) as sandbox, aiohttp.ClientSession() as session:
        context = _client_context(sandbox)
        deployment = sandbox.deployments[0]
        status, body = await _request_token(session, context, deployment)
        assert status == 200
        assert body["expires_in"] == 0

        headers = {"Authorization": f"Bearer {body['access_token']}"}
        list_status, error = await _get_graph_list(session, context, deployment, headers)
        assert list_status == 401
        assert error["error"] == "invalid_token"
        assert "expired" in error["error_description"]


# Counters and latency


@pytest.mark.asyncio
async def test_request_counters(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    first, second, third = sandbox.deployments
    assert sandbox.token_requests == {"sandbox-01": 0, "sandbox-02": 0, "sandbox-03": 0}
    assert sandbox.graph_list_requests == {"sandbox-01": 0, "sandbox-02": 0, "sandbox-03": 0}

    token = await _fetch_token(session, client_ssl, first)
    await _request_token(session, client_ssl, first, _client_credentials(first) | {"client_secret": "wrong"})
    await _fetch_token(session, client_ssl, second)
    for _ in range(3):
        await _get_graph_list(session, client_ssl, first, {"Authorization": f"Bearer {token}"})
    await _get_graph_list(session, client_ssl, second, {})

    assert sandbox.token_requests == {"sandbox-01": 2, "sandbox-02": 1, "sandbox-03": 0}
    assert sandbox.graph_list_requests == {"sandbox-01": 3, "sandbox-02": 1, "sandbox-03": 0}
    assert third.name == "sandbox-03"


@pytest.mark.asyncio
async def test_latency_delays_responses(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    health = sandbox.deployments[0].base_uri + "/dataintegration/health"
    sandbox.set_latency(0.2)
    started = time.perf_counter()
    async with session.get(health, ssl=client_ssl) as response:
        assert response.status == 200
    assert time.perf_counter() - started >= 0.2

    started = time.perf_counter()
    await _fetch_token(session, client_ssl, sandbox.deployments[1])
    assert time.perf_counter() - started >= 0.2

    sandbox.set_latency(0)
    async with session.get(health, ssl=client_ssl) as response:
        assert response.status == 200


@pytest.mark.asyncio
async def test_latency_from_constructor(tmp_path: pathlib.Path) -> None:
    async with Sandbox(tmp_path, 1, latency=0.2) as sandbox, aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.get(
            sandbox.deployments[0].base_uri + "/no/such/path", ssl=_client_context(sandbox)
        ) as response:
            assert response.status == 404
        assert time.perf_counter() - started >= 0.2


# Status endpoints


@pytest.mark.asyncio
async def test_status_endpoints_answer(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    deployment = sandbox.deployments[0]
    base = deployment.base_uri
    headers = {"Authorization": f"Bearer {await _fetch_token(session, client_ssl, deployment)}"}

    async with session.get(base + "/dataintegration/version", headers=headers, ssl=client_ssl) as response:
        assert response.status == 200
        assert await response.text() == "v25.3.0"
    async with session.get(base + "/dataintegration/health", ssl=client_ssl) as response:
        assert response.status == 200
        assert await response.json() == {"status": "UP"}
    async with session.get(base + "/dataplatform/actuator/health", ssl=client_ssl) as response:
        assert response.status == 200
        assert await response.json() == {"status": "UP"}
    async with session.get(base + "/dataplatform/actuator/info", headers=headers, ssl=client_ssl) as response:
        assert response.status == 200
        info = await response.json()
        assert info["version"] == "v25.3.0"
        assert info["store"]["type"] == "GRAPHDB"
        assert info["store"]["version"] == "10.8.2"

    query = {"query": "SELECT ?version WHERE { }"}
    async with session.post(base + SPARQL_PATH, data=query, headers=headers, ssl=client_ssl) as response:
        assert response.status == 200
        assert response.content_type == "application/sparql-results+json"
        result = await response.json(content_type=None)
        assert result["head"]["vars"] == ["version"]
        assert result["results"]["bindings"] == [{"version": {"type": "literal", "value": "v25.3.0"}}]


@pytest.mark.asyncio
async def test_status_endpoints_need_token(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    base = sandbox.deployments[0].base_uri
    for path in ["/dataintegration/version", "/dataplatform/actuator/info"]:
        async with session.get(base + path, ssl=client_ssl) as response:
            assert response.status == 401, path
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with session.post(base + SPARQL_PATH, data={"query": "ASK {}"}, ssl=client_ssl) as response:
        assert response.status == 401


@pytest.mark.asyncio
async def test_sparql_query_forms(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    deployment = sandbox.deployments[0]
    url = deployment.base_uri + SPARQL_PATH
    token = await _fetch_token(session, client_ssl, deployment)
    headers = {"Authorization": f"Bearer {token}"}

    direct_headers = headers | {"Content-Type": "application/sparql-query"}
    async with session.post(url, data="SELECT * {}", headers=direct_headers, ssl=client_ssl) as response:
        assert response.status == 200
    async with session.post(url, params={"query": "SELECT * {}"}, headers=headers, ssl=client_ssl) as response:
        assert response.status == 200
    async with session.post(url, data={"format": "json"}, headers=headers, ssl=client_ssl) as response:
        assert response.status == 400
        assert "Missing SPARQL query" in await response.text()


@pytest.mark.asyncio
async def test_unknown_path_not_found(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    base = sandbox.deployments[0].base_uri
    for path in ["/", "/dataplatform/graphs", "/dataplatform/graphs/list/extra", "/auth/realms/other/token"]:
        async with session.get(base + path, ssl=client_ssl) as response:
            assert response.status == 404, path


# TLS


async def _presented_certificates(deployment: SandboxDeployment) -> list[x509.Certificate]:
    """Return the chain that ``deployment`` sends in the TLS handshake, leaf first, without verifying it."""
    handshake = await fetch_presented_chain(deployment.base_uri)
    return [x509.load_der_x509_certificate(certificate.der) for certificate in handshake.chain]


def _is_ca(certificate: x509.Certificate) -> bool:
    return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.mark.asyncio
async def test_ca_bundle_contains_root_only(sandbox: Sandbox) -> None:
    certificates = x509.load_pem_x509_certificates(sandbox.ca_bundle.read_bytes())
    assert len(certificates) == 1
    root = certificates[0]
    assert _is_ca(root)
    assert root.subject == root.issuer
    root.verify_directly_issued_by(root)


@pytest.mark.asyncio
async def test_servers_send_leaf_and_intermediate(tmp_path: pathlib.Path) -> None:
    async with Sandbox(tmp_path, 2, expiring={"sandbox-02": 30}) as sandbox:
        (root,) = x509.load_pem_x509_certificates(sandbox.ca_bundle.read_bytes())
        for deployment in sandbox.deployments:
            chain = await _presented_certificates(deployment)
            assert len(chain) == 2, deployment.name
            leaf, intermediate = chain

            assert not _is_ca(leaf)
            assert leaf.issuer == intermediate.subject
            leaf.verify_directly_issued_by(intermediate)

            assert _is_ca(intermediate)
            assert intermediate.subject != intermediate.issuer
            assert intermediate.issuer == root.subject
            intermediate.verify_directly_issued_by(root)


@pytest.mark.asyncio
async def test_deployments_share_intermediate(tmp_path: pathlib.Path) -> None:
    # The expiring deployment has its own server certificate from the same intermediate CA.
    async with Sandbox(tmp_path, 3, expiring={"sandbox-03": 30}) as sandbox:
        chains = [await _presented_certificates(deployment) for deployment in sandbox.deployments]
    assert chains[0][0] == chains[1][0]
    assert chains[0][0] != chains[2][0]
    assert chains[0][1] == chains[1][1] == chains[2][1]


@pytest.mark.asyncio
async def test_root_only_bundle_verifies_chain(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    # client_ssl trusts only the root in ca.pem, which does not issue the server certificates.
    (root,) = x509.load_pem_x509_certificates(sandbox.ca_bundle.read_bytes())
    for deployment in sandbox.deployments:
        leaf = (await _presented_certificates(deployment))[0]
        assert leaf.issuer != root.subject
        async with session.get(deployment.base_uri + DI_HEALTH_PATH, ssl=client_ssl) as response:
            assert response.status == 200, deployment.name


@pytest.mark.asyncio
async def test_server_certificate_lifetime(tmp_path: pathlib.Path) -> None:
    before_start = datetime.now(timezone.utc).replace(microsecond=0)
    async with Sandbox(tmp_path, 2) as sandbox:
        after_start = datetime.now(timezone.utc)
        context = _client_context(sandbox)
        for deployment in sandbox.deployments:
            leaf = (await _presented_certificates(deployment))[0]
            assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=397)
            assert before_start <= leaf.not_valid_before_utc <= after_start
            assert leaf.not_valid_after_utc == deployment.certificate_not_after
            assert await _peer_not_after(context, deployment) == deployment.certificate_not_after


@pytest.mark.asyncio
async def test_client_without_ca_fails_verification(sandbox: Sandbox, session: aiohttp.ClientSession) -> None:
    system_trust = ssl.create_default_context()
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        async with session.get(sandbox.deployments[0].base_uri + "/dataintegration/health", ssl=system_trust):
            pass


@pytest.mark.asyncio
async def test_certificate_valid_for_localhost(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    url = sandbox.deployments[0].base_uri + "/dataintegration/health"
    async with session.get(url, ssl=client_ssl, server_hostname="localhost") as response:
        assert response.status == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        async with session.get(url, ssl=client_ssl, server_hostname="sandbox.example"):
            pass


# Unhealthy, slow, expiring and outdated deployments


async def _get_json(
    session: aiohttp.ClientSession, context: ssl.SSLContext, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with session.get(url, headers=headers, ssl=context) as response:
        return response.status, await response.json(content_type=None)


async def _sparql_version(
    session: aiohttp.ClientSession, context: ssl.SSLContext, deployment: SandboxDeployment, headers: dict[str, str]
) -> str:
    url = deployment.base_uri + SPARQL_PATH
    async with session.post(url, data={"query": "SELECT ?version {}"}, headers=headers, ssl=context) as response:
        assert response.status == 200
        result = await response.json(content_type=None)
    return str(result["results"]["bindings"][0]["version"]["value"])


async def _peer_not_after(context: ssl.SSLContext, deployment: SandboxDeployment) -> datetime:
    """Return the notAfter of the certificate that ``deployment`` presents in the TLS handshake."""
    reader, writer = await asyncio.open_connection("127.0.0.1", deployment.port, ssl=context)
    try:
        certificate = writer.get_extra_info("ssl_object").getpeercert()
    finally:
        writer.close()
        await writer.wait_closed()
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(certificate["notAfter"]), timezone.utc)


async def _time_health_request(
    session: aiohttp.ClientSession, context: ssl.SSLContext, deployment: SandboxDeployment
) -> float:
    started = time.perf_counter()
    async with session.get(deployment.base_uri + DI_HEALTH_PATH, ssl=context) as response:
        assert response.status == 200
    return time.perf_counter() - started


@pytest.mark.asyncio
async def test_unhealthy_deployment_reports_down(tmp_path: pathlib.Path) -> None:
    async with Sandbox(tmp_path, 3, unhealthy=["sandbox-02"]) as sandbox, aiohttp.ClientSession() as session:
        context = _client_context(sandbox)
        first, second, _ = sandbox.deployments
        assert [d.healthy for d in sandbox.deployments] == [True, False, True]

        status, body = await _get_json(session, context, second.base_uri + DI_HEALTH_PATH)
        assert status == 503
        assert body == {"status": "DOWN"}
        status, body = await _get_json(session, context, second.base_uri + DP_HEALTH_PATH)
        assert status == 503
        assert body["status"] == "DOWN"
        assert isinstance(body["components"], dict)
        assert "DOWN" in {component["status"] for component in body["components"].values()}

        for deployment in (first, sandbox.deployments[2]):
            assert await _get_json(session, context, deployment.base_uri + DI_HEALTH_PATH) == (200, {"status": "UP"})
            assert await _get_json(session, context, deployment.base_uri + DP_HEALTH_PATH) == (200, {"status": "UP"})


@pytest.mark.asyncio
async def test_unhealthy_deployment_serves_other_requests(tmp_path: pathlib.Path) -> None:
    async with Sandbox(tmp_path, 2, unhealthy=["sandbox-02"]) as sandbox, aiohttp.ClientSession() as session:
        context = _client_context(sandbox)
        deployment = sandbox.deployments[1]
        token = await _fetch_token(session, context, deployment)
        headers = {"Authorization": f"Bearer {token}"}

        status, graphs = await _get_graph_list(session, context, deployment, headers)
        assert status == 200
        assert [graph["iri"] for graph in graphs] == list(deployment.graph_iris)
        async with session.get(deployment.base_uri + DI_VERSION_PATH, headers=headers, ssl=context) as response:
            assert response.status == 200
        status, info = await _get_json(session, context, deployment.base_uri + DP_INFO_PATH, headers)
        assert status == 200
        assert info["version"] == "v25.3.0"
        assert await _sparql_version(session, context, deployment, headers) == "v25.3.0"


@pytest.mark.asyncio
async def test_slow_delays_only_its_deployment(tmp_path: pathlib.Path) -> None:
    async with Sandbox(tmp_path, 2, slow={"sandbox-02": 0.6}) as sandbox, aiohttp.ClientSession() as session:
        context = _client_context(sandbox)
        fast, slow = sandbox.deployments
        assert fast.extra_latency == 0.0
        assert slow.extra_latency == 0.6

        assert await _time_health_request(session, context, slow) >= 0.6
        assert await _time_health_request(session, context, fast) < 0.6

        # The extra delay adds to the latency of the whole sandbox.
        sandbox.set_latency(0.2)
        assert await _time_health_request(session, context, slow) >= 0.8
        fast_seconds = await _time_health_request(session, context, fast)
        assert 0.2 <= fast_seconds < 0.6


@pytest.mark.asyncio
async def test_slow_deployment_times_out_client(tmp_path: pathlib.Path) -> None:
    async with Sandbox(tmp_path, 1, slow={"sandbox-01": 5}) as sandbox, aiohttp.ClientSession() as session:
        context = _client_context(sandbox)
        deployment = sandbox.deployments[0]
        # A POST, because aiohttp retries a GET once when the server closes the connection.
        request = session.post(
            deployment.base_uri + TOKEN_PATH,
            data=_client_credentials(deployment),
            ssl=context,
            timeout=aiohttp.ClientTimeout(total=0.3),
        )
        with pytest.raises(asyncio.TimeoutError):
            async with request:
                pass


@pytest.mark.asyncio
@pytest.mark.parametrize("days", [1, 7, MAX_CERTIFICATE_DAYS])
async def test_expiring_certificate_not_after(tmp_path: pathlib.Path, days: int) -> None:
    before_start = datetime.now(timezone.utc).replace(microsecond=0)
    async with Sandbox(tmp_path, 2, expiring={"sandbox-01": days}) as sandbox:
        after_start = datetime.now(timezone.utc)
        context = _client_context(sandbox)
        expiring, shared = sandbox.deployments

        not_after = await _peer_not_after(context, expiring)
        assert not_after == expiring.certificate_not_after
        assert before_start + timedelta(days=days) <= not_after <= after_start + timedelta(days=days)

        # The deployment that is not expiring keeps the usual lifetime.
        shared_not_after = await _peer_not_after(context, shared)
        assert shared_not_after == shared.certificate_not_after
        assert before_start + timedelta(days=397) <= shared_not_after <= after_start + timedelta(days=397)


@pytest.mark.asyncio
@pytest.mark.parametrize("days", [0, -1, -MAX_CERTIFICATE_DAYS])
async def test_expired_certificate_fails_verification(tmp_path: pathlib.Path, days: int) -> None:
    async with Sandbox(tmp_path, 2, expiring={"sandbox-02": days}) as sandbox, aiohttp.ClientSession() as session:
        context = _client_context(sandbox)
        valid, expired = sandbox.deployments
        assert expired.certificate_not_after <= datetime.now(timezone.utc)

        with pytest.raises(aiohttp.ClientConnectorCertificateError) as caught:
            async with session.get(expired.base_uri + DI_HEALTH_PATH, ssl=context):
                pass
        certificate_error = caught.value.certificate_error
        assert isinstance(certificate_error, ssl.SSLCertVerificationError)
        assert certificate_error.verify_message == "certificate has expired"

        assert await _get_json(session, context, valid.base_uri + DI_HEALTH_PATH) == (200, {"status": "UP"})


@pytest.mark.asyncio
async def test_expiring_certificate_from_sandbox_ca(tmp_path: pathlib.Path) -> None:
    async with Sandbox(tmp_path, 1, expiring={"sandbox-01": 30}) as sandbox, aiohttp.ClientSession() as session:
        url = sandbox.deployments[0].base_uri + DI_HEALTH_PATH
        async with session.get(url, ssl=_client_context(sandbox), server_hostname="localhost") as response:
            assert response.status == 200
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with session.get(url, ssl=ssl.create_default_context()):
                pass


@pytest.mark.asyncio
async def test_outdated_versions(tmp_path: pathlib.Path) -> None:
    async with Sandbox(tmp_path, 2, outdated=["sandbox-01"]) as sandbox, aiohttp.ClientSession() as session:
        context = _client_context(sandbox)
        expected = {"sandbox-01": "v24.1.0", "sandbox-02": "v25.3.0"}
        for deployment in sandbox.deployments:
            assert deployment.backend_version == expected[deployment.name]
            headers = {"Authorization": f"Bearer {await _fetch_token(session, context, deployment)}"}

            async with session.get(deployment.base_uri + DI_VERSION_PATH, headers=headers, ssl=context) as response:
                assert response.status == 200
                assert await response.text() == expected[deployment.name]
            status, info = await _get_json(session, context, deployment.base_uri + DP_INFO_PATH, headers)
            assert status == 200
            assert info["version"] == expected[deployment.name]
            # The ShapeCatalog keeps the current version, so it differs from an outdated Explore.
            assert await _sparql_version(session, context, deployment, headers) == "v25.3.0"


@pytest.mark.asyncio
async def test_actuator_info_license_dates(
    sandbox: Sandbox, session: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    deployment = sandbox.deployments[0]
    headers = {"Authorization": f"Bearer {await _fetch_token(session, client_ssl, deployment)}"}
    status, info = await _get_json(session, client_ssl, deployment.base_uri + DP_INFO_PATH, headers)
    assert status == 200

    # The sandbox started shortly before this test, possibly on the day before.
    today = datetime.now(timezone.utc).date()
    expected_dates = {(today + timedelta(days=365 - offset)).isoformat() for offset in (0, 1)}
    assert info["store"] == {
        "type": "GRAPHDB",
        "version": "10.8.2",
        "licenseExpiration": info["store"]["licenseExpiration"],
    }
    assert info["store"]["licenseExpiration"] in expected_dates
    assert info["license"] == {"inGracePeriod": False, "validDate": info["store"]["licenseExpiration"]}


@pytest.mark.asyncio
async def test_one_deployment_in_every_mode(tmp_path: pathlib.Path) -> None:
    sandbox = Sandbox(
        tmp_path,
        1,
        unhealthy=["sandbox-01"],
        slow={"sandbox-01": 0.1},
        expiring={"sandbox-01": 3},
        outdated=["sandbox-01"],
    )
    async with sandbox, aiohttp.ClientSession() as session:
        context = _client_context(sandbox)
        deployment = sandbox.deployments[0]
        assert deployment.healthy is False
        assert deployment.extra_latency == 0.1
        assert deployment.backend_version == "v24.1.0"
        assert deployment.certificate_not_after - datetime.now(timezone.utc) <= timedelta(days=3)

        started = time.perf_counter()
        status, body = await _get_json(session, context, deployment.base_uri + DP_HEALTH_PATH)
        assert time.perf_counter() - started >= 0.1
        assert status == 503
        assert body["status"] == "DOWN"


@pytest.mark.parametrize(
    "arguments",
    [
        {"unhealthy": ["sandbox-04"]},
        {"slow": {"sandbox-04": 1.0}},
        {"expiring": {"sandbox-04": 7}},
        {"outdated": ["sandbox-01", "sandbox-04"]},
    ],
    ids=["unhealthy", "slow", "expiring", "outdated"],
)
def test_unknown_deployment_name_rejected(tmp_path: pathlib.Path, arguments: dict[str, Any]) -> None:
    argument = next(iter(arguments))
    expected = f"{argument}: unknown deployment 'sandbox-04'. Valid names are sandbox-01 … sandbox-03."
    with pytest.raises(ValueError) as caught:
        Sandbox(tmp_path, 3, **arguments)
    assert str(caught.value) == expected


def test_unknown_name_message_by_count(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match=r"^unhealthy: unknown deployment 'sandbox-02'\. The only valid name is sandbox-01\.$"):
        Sandbox(tmp_path, 1, unhealthy=["sandbox-02"])
    with pytest.raises(ValueError, match="Valid names are sandbox-001 … sandbox-100"):
        Sandbox(tmp_path, 100, outdated=["sandbox-01"])
    with pytest.raises(ValueError, match="unknown deployment 7"):
        Sandbox(tmp_path, 3, unhealthy=[7])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"slow": {"sandbox-01": -1}}, ValueError, r"slow\['sandbox-01'\] must be a finite number of seconds >= 0"),
        ({"slow": {"sandbox-01": float("nan")}}, ValueError, r"slow\['sandbox-01'\]"),
        ({"slow": {"sandbox-01": float("inf")}}, ValueError, r"slow\['sandbox-01'\]"),
        ({"slow": ["sandbox-01"]}, TypeError, "slow must be a mapping"),
        ({"expiring": {"sandbox-01": 1.5}}, TypeError, r"expiring\['sandbox-01'\] must be an int"),
        ({"expiring": {"sandbox-01": True}}, TypeError, r"expiring\['sandbox-01'\] must be an int"),
        ({"expiring": {"sandbox-01": 3651}}, ValueError, "between -3650 and 3650 days, got 3651"),
        ({"expiring": {"sandbox-01": -3651}}, ValueError, "between -3650 and 3650 days, got -3651"),
        ({"expiring": "sandbox-01"}, TypeError, "expiring must be a mapping"),
        ({"unhealthy": "sandbox-01"}, TypeError, "got the string 'sandbox-01'"),
        ({"outdated": "sandbox-01"}, TypeError, "got the string 'sandbox-01'"),
    ],
)
def test_invalid_mode_values(
    tmp_path: pathlib.Path, arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Sandbox(tmp_path, 3, **arguments)


@pytest.mark.asyncio
async def test_mode_names_from_generator(tmp_path: pathlib.Path) -> None:
    names = (name for name in ["sandbox-01", "sandbox-03"])
    async with Sandbox(tmp_path, 3, unhealthy=names) as sandbox:
        assert [d.healthy for d in sandbox.deployments] == [False, True, False]


def test_deployment_names_and_check() -> None:
    assert deployment_names(3) == ["sandbox-01", "sandbox-02", "sandbox-03"]
    assert deployment_names(100)[0] == "sandbox-001"
    assert deployment_names(1000)[-1] == "sandbox-1000"
    assert check_deployment_names(["sandbox-02", "sandbox-02"], 3) == frozenset({"sandbox-02"})
    assert check_deployment_names([], 1) == frozenset()
    with pytest.raises(ValueError, match=r"^unknown deployment 'sandbox-4'\. Valid names are sandbox-01 … sandbox-12\.$"):
        check_deployment_names(["sandbox-4"], 12)


@pytest.mark.asyncio
async def test_restart_keeps_modes_and_renews_certificate(tmp_path: pathlib.Path) -> None:
    sandbox = Sandbox(tmp_path, 2, unhealthy=["sandbox-02"], expiring={"sandbox-01": 5})
    async with sandbox:
        first_ca = sandbox.ca_bundle.read_bytes()
    async with sandbox, aiohttp.ClientSession() as session:
        assert sandbox.ca_bundle.read_bytes() != first_ca
        context = _client_context(sandbox)
        expiring, unhealthy = sandbox.deployments
        assert await _peer_not_after(context, expiring) == expiring.certificate_not_after
        status, _ = await _get_json(session, context, unhealthy.base_uri + DI_HEALTH_PATH)
        assert status == 503


@needs_proc_fd
@pytest.mark.asyncio
async def test_expiring_certificates_leave_no_descriptors(tmp_path: pathlib.Path) -> None:
    baseline = _open_file_descriptors()
    expiring = {name: index - 5 for index, name in enumerate(deployment_names(20))}
    async with Sandbox(tmp_path, 20, expiring=expiring) as sandbox:
        last = sandbox.deployments[-1]
        assert await _peer_not_after(_client_context(sandbox), last) == last.certificate_not_after
    assert _open_file_descriptors() == baseline


# Lifecycle and resources


@pytest.mark.asyncio
async def test_second_start_while_running_fails(sandbox: Sandbox) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        await sandbox.__aenter__()
    assert len(sandbox.deployments) == 3


@pytest.mark.asyncio
async def test_restart_issues_new_credentials(tmp_path: pathlib.Path) -> None:
    sandbox = Sandbox(tmp_path, 2)
    async with sandbox:
        first_run = list(sandbox.deployments)
    async with sandbox, aiohttp.ClientSession() as session:
        second_run = list(sandbox.deployments)
        assert len(second_run) == 2
        assert {d.client_secret for d in first_run}.isdisjoint(d.client_secret for d in second_run)
        assert sandbox.token_requests == {"sandbox-01": 0, "sandbox-02": 0}
        await _fetch_token(session, _client_context(sandbox), second_run[0])


@needs_proc_fd
@pytest.mark.asyncio
async def test_exit_closes_all_descriptors(tmp_path: pathlib.Path) -> None:
    baseline = _open_file_descriptors()
    async with Sandbox(tmp_path, 50) as sandbox:
        assert _open_file_descriptors() >= baseline + 50
        async with aiohttp.ClientSession() as session:
            await _fetch_token(session, _client_context(sandbox), sandbox.deployments[-1])
    assert _open_file_descriptors() == baseline

    with pytest.raises(KeyError):
        async with Sandbox(tmp_path, 50):
            raise KeyError("raised inside the block")
    assert _open_file_descriptors() == baseline


@needs_proc_fd
@pytest.mark.asyncio
@pytest.mark.parametrize("steps_before_cancel", [0, 1, 5, 50, 400])
async def test_cancel_during_start_closes_all(tmp_path: pathlib.Path, steps_before_cancel: int) -> None:
    baseline = _open_file_descriptors()

    async def run_sandbox() -> None:
        async with Sandbox(tmp_path, 200):
            await asyncio.sleep(3600)

    task = asyncio.create_task(run_sandbox())
    for _ in range(steps_before_cancel):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _open_file_descriptors() == baseline


@pytest.mark.asyncio
async def test_stop_cancels_slow_request(tmp_path: pathlib.Path) -> None:
    async with aiohttp.ClientSession() as session:
        async with Sandbox(tmp_path, 1, latency=30) as sandbox:
            deployment = sandbox.deployments[0]
            # aiohttp 3.14 retries idempotent methods such as GET once when the server
            # closes the connection, which would reach the closed port. It does not retry a POST.
            request = asyncio.create_task(
                session.post(
                    deployment.base_uri + TOKEN_PATH,
                    data=_client_credentials(deployment),
                    ssl=_client_context(sandbox),
                )
            )
            await asyncio.sleep(0.2)
            stop_started = time.perf_counter()
        stop_seconds = time.perf_counter() - stop_started
        with pytest.raises(aiohttp.ServerDisconnectedError):
            response = await request
            response.release()
    assert stop_seconds < 10
    assert sandbox.token_requests == {"sandbox-01": 0}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sets RLIMIT_NOFILE with the resource module")
@pytest.mark.asyncio
async def test_too_few_descriptors_clear_error(tmp_path: pathlib.Path) -> None:
    script = (
        "import asyncio, resource, sys\n"
        "from acmemc._sandbox import Sandbox\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))\n"
        "async def main():\n"
        "    try:\n"
        f"        async with Sandbox({str(tmp_path)!r}, 200):\n"
        "            pass\n"
        "    except OSError as error:\n"
        "        print(error.errno, error)\n"
        "        return\n"
        "    sys.exit('started despite the limit')\n"
        "asyncio.run(main())\n"
    )
    source_root = pathlib.Path(__file__).resolve().parents[1] / "src"
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source_root), environment.get("PYTHONPATH")]))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error::ResourceWarning",
        "-c",
        script,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().startswith("24 ")
    assert "ulimit -n" in stdout.decode()
    assert "of 200 sandbox sockets" in stdout.decode()
    assert b"ResourceWarning" not in stderr


@pytest.mark.asyncio
async def test_start_and_stop_300(tmp_path: pathlib.Path, record_property: Callable[[str, Any], None]) -> None:
    started = time.perf_counter()
    async with Sandbox(tmp_path, 300) as sandbox:
        start_seconds = time.perf_counter() - started
        assert len({d.port for d in sandbox.deployments}) == 300
        assert sandbox.deployments[-1].name == "sandbox-300"
        async with aiohttp.ClientSession() as session:
            await _fetch_token(session, _client_context(sandbox), sandbox.deployments[-1])
        stopping = time.perf_counter()
    record_property("start_seconds_300", round(start_seconds, 3))
    record_property("stop_seconds_300", round(time.perf_counter() - stopping, 3))


@pytest.mark.asyncio
async def test_logs_without_secrets(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="acmemc.sandbox")
    async with Sandbox(tmp_path, 1) as sandbox, aiohttp.ClientSession() as session:
        context = _client_context(sandbox)
        deployment = sandbox.deployments[0]
        token = await _fetch_token(session, context, deployment)
        await _request_token(session, context, deployment, _client_credentials(deployment) | {"client_secret": "wrong"})
        await _get_graph_list(session, context, deployment, {"Authorization": f"Bearer {token}x"})

    messages = [record.getMessage() for record in caplog.records if record.name == "acmemc.sandbox"]
    assert any(message.startswith(f"Started 1 sandbox deployments in {tmp_path}") for message in messages)
    assert any(message.startswith(f"Stopped 1 sandbox deployments in {tmp_path}") for message in messages)
    assert any("Rejected token request on sandbox-01: 401" in message for message in messages)
    assert any("Rejected bearer token on sandbox-01" in message for message in messages)
    for message in messages:
        assert deployment.client_secret not in message
        assert token not in message
