"""HTTP-level and OAuth behaviour of Client, with aioresponses in place of the network."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time

import pytest
from aioresponses import aioresponses

from _helpers import connection_from
from acmemc import (
    AuthenticationError,
    Client,
    HTTPStatusError,
    InvalidResponseError,
    RequestError,
    RequestTimeoutError,
    decode_jwt_payload,
)
from acmemc._client import USER_AGENT, _bypasses_proxy

BASE = "https://cmem.test"
TOKEN_URI = f"{BASE}/auth/realms/cmem/protocol/openid-connect/token"
GRAPHS_URI = f"{BASE}/dataplatform/graphs/list"
SECRET = "s3cr3t-value-never-shown"
GRAPHS = [{"iri": "https://ex.test/a/", "label": {"title": "A"}, "assignedClasses": [], "writeable": True}]

CONFIG = f"""
[prod]
CMEM_BASE_URI={BASE}
OAUTH_CLIENT_SECRET={SECRET}
"""


def jwt(payload: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(payload)}.signature"


def token_answer(token: str = "token-1", expires_in: int = 300) -> dict[str, object]:
    return {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}


@pytest.fixture
def mocked(http_mock: aioresponses) -> aioresponses:
    return http_mock


def requests_to(mocked: aioresponses, method: str, url: str) -> list[object]:
    for (request_method, request_url), calls in mocked.requests.items():
        if request_method == method and str(request_url) == url:
            return calls
    return []




async def test_client_credentials_form(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URI, payload=token_answer())
    mocked.get(GRAPHS_URI, payload=GRAPHS)

    async with Client(connection_from(CONFIG, "prod")) as client:
        graphs = await client.graph_list()

    assert graphs == GRAPHS
    form = requests_to(mocked, "POST", TOKEN_URI)[0].kwargs["data"]
    assert form == {"grant_type": "client_credentials", "client_id": "cmem-service-account", "client_secret": SECRET}


async def test_bearer_token_and_user_agent_sent(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URI, payload=token_answer("abc"))
    mocked.get(GRAPHS_URI, payload=GRAPHS)

    async with Client(connection_from(CONFIG, "prod")) as client:
        await client.graph_list()
        session_headers = client._session.headers  # type: ignore[union-attr]

    request = requests_to(mocked, "GET", GRAPHS_URI)[0]
    assert request.kwargs["headers"]["Authorization"] == "Bearer abc"
    assert session_headers["User-Agent"] == USER_AGENT


async def test_password_grant_form(mocked: aioresponses) -> None:
    config = f"""
[prod]
CMEM_BASE_URI={BASE}
OAUTH_GRANT_TYPE=password
OAUTH_USER=alice
OAUTH_PASSWORD={SECRET}
OAUTH_CLIENT_ID=cmemc
"""
    mocked.post(TOKEN_URI, payload=token_answer())
    mocked.get(GRAPHS_URI, payload=GRAPHS)

    async with Client(connection_from(config, "prod")) as client:
        await client.graph_list()

    form = requests_to(mocked, "POST", TOKEN_URI)[0].kwargs["data"]
    assert form == {"grant_type": "password", "client_id": "cmemc", "username": "alice", "password": SECRET}


async def test_prefetched_token_sends_no_token_request(mocked: aioresponses) -> None:
    token = jwt({"exp": time.time() + 3600})
    config = f"""
[prod]
CMEM_BASE_URI={BASE}
OAUTH_GRANT_TYPE=prefetched_token
OAUTH_ACCESS_TOKEN={token}
"""
    mocked.get(GRAPHS_URI, payload=GRAPHS)

    async with Client(connection_from(config, "prod")) as client:
        await client.graph_list()

    assert requests_to(mocked, "POST", TOKEN_URI) == []
    assert requests_to(mocked, "GET", GRAPHS_URI)[0].kwargs["headers"]["Authorization"] == f"Bearer {token}"


async def test_custom_token_uri_and_realm(mocked: aioresponses) -> None:
    config = f"""
[prod]
CMEM_BASE_URI={BASE}
KEYCLOAK_BASE_URI=https://sso.test/
KEYCLOAK_REALM_ID=other
OAUTH_CLIENT_SECRET={SECRET}
"""
    token_uri = "https://sso.test/realms/other/protocol/openid-connect/token"
    mocked.post(token_uri, payload=token_answer())
    mocked.get(GRAPHS_URI, payload=GRAPHS)

    async with Client(connection_from(config, "prod")) as client:
        await client.graph_list()

    assert len(requests_to(mocked, "POST", token_uri)) == 1


async def test_token_reused_across_requests(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URI, payload=token_answer())
    mocked.get(GRAPHS_URI, payload=GRAPHS, repeat=True)

    async with Client(connection_from(CONFIG, "prod")) as client:
        for _ in range(3):
            await client.graph_list()
        token_requests = client.token_requests

    assert token_requests == 1
    assert len(requests_to(mocked, "GET", GRAPHS_URI)) == 3


async def test_concurrent_callers_share_one_token_fetch(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URI, payload=token_answer())
    mocked.get(GRAPHS_URI, payload=GRAPHS, repeat=True)

    async with Client(connection_from(CONFIG, "prod")) as client:
        await asyncio.gather(*(client.graph_list() for _ in range(10)))

    assert len(requests_to(mocked, "POST", TOKEN_URI)) == 1


async def test_token_about_to_expire_is_renewed(mocked: aioresponses) -> None:
    # expires_in below the renewal margin: every use fetches a new token.
    mocked.post(TOKEN_URI, payload=token_answer("first", expires_in=5))
    mocked.post(TOKEN_URI, payload=token_answer("second", expires_in=300))
    mocked.get(GRAPHS_URI, payload=GRAPHS, repeat=True)

    async with Client(connection_from(CONFIG, "prod")) as client:
        await client.graph_list()
        await client.graph_list()

    calls = requests_to(mocked, "GET", GRAPHS_URI)
    assert calls[1].kwargs["headers"]["Authorization"] == "Bearer second"


async def test_401_refreshes_token_once(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URI, payload=token_answer("old"))
    mocked.post(TOKEN_URI, payload=token_answer("new"))
    mocked.get(GRAPHS_URI, status=401)
    mocked.get(GRAPHS_URI, payload=GRAPHS)

    async with Client(connection_from(CONFIG, "prod")) as client:
        graphs = await client.graph_list()

    assert graphs == GRAPHS
    calls = requests_to(mocked, "GET", GRAPHS_URI)
    assert [call.kwargs["headers"]["Authorization"] for call in calls] == ["Bearer old", "Bearer new"]


async def test_second_401_is_authentication_error(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URI, payload=token_answer(), repeat=True)
    mocked.get(GRAPHS_URI, status=401, repeat=True)

    async with Client(connection_from(CONFIG, "prod")) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.graph_list()

    assert len(requests_to(mocked, "GET", GRAPHS_URI)) == 2
    assert "connection 'prod'" in str(caught.value)
    assert "401" in str(caught.value)


async def test_token_endpoint_oauth_error_shown(mocked: aioresponses) -> None:
    mocked.post(
        TOKEN_URI,
        status=401,
        payload={"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"},
    )

    async with Client(connection_from(CONFIG, "prod")) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.graph_list()

    message = str(caught.value)
    assert caught.value.error == "unauthorized_client"
    assert "Invalid client or Invalid client credentials" in message
    assert "OAUTH_CLIENT_SECRET" in message
    assert SECRET not in message
    assert "\n" not in message


async def test_token_endpoint_html_error(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URI, status=502, body="<html>Bad gateway</html>", content_type="text/html")

    async with Client(connection_from(CONFIG, "prod")) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.graph_list()

    assert "HTTP status 502" in str(caught.value)


async def test_token_answer_without_access_token(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URI, payload={"token_type": "Bearer"})

    async with Client(connection_from(CONFIG, "prod")) as client:
        with pytest.raises(InvalidResponseError) as caught:
            await client.graph_list()

    assert "access_token" in str(caught.value)


async def test_prefetched_token_rejected_has_fix(mocked: aioresponses) -> None:
    config = f"""
[prod]
CMEM_BASE_URI={BASE}
OAUTH_GRANT_TYPE=prefetched_token
OAUTH_ACCESS_TOKEN=not-a-jwt
"""
    mocked.get(GRAPHS_URI, status=401, repeat=True)

    async with Client(connection_from(config, "prod")) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.graph_list()

    assert len(requests_to(mocked, "GET", GRAPHS_URI)) == 1
    assert "OAUTH_ACCESS_TOKEN" in str(caught.value)
    assert "not-a-jwt" not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "fix"),
    [(403, "access"), (404, "DP_API_ENDPOINT"), (500, "server-side"), (503, "server-side")],
)
async def test_error_status_has_fix(mocked: aioresponses, status: int, fix: str) -> None:
    mocked.post(TOKEN_URI, payload=token_answer())
    mocked.get(GRAPHS_URI, status=status, payload={"message": "went wrong"})

    async with Client(connection_from(CONFIG, "prod")) as client:
        with pytest.raises(HTTPStatusError) as caught:
            await client.graph_list()

    assert caught.value.status == status
    assert fix in str(caught.value)
    assert "(went wrong)" in str(caught.value)


async def test_non_json_answer(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URI, payload=token_answer())
    mocked.get(GRAPHS_URI, body="<!DOCTYPE html><html></html>", content_type="text/html")

    async with Client(connection_from(CONFIG, "prod")) as client:
        with pytest.raises(InvalidResponseError) as caught:
            await client.graph_list()

    assert "text/html" in str(caught.value)
    assert "not valid JSON" in str(caught.value)


@pytest.mark.parametrize("answer", [{"iri": "x"}, [1, 2], [{"label": "no iri"}], "text"])
async def test_graph_list_wrong_shape(mocked: aioresponses, answer: object) -> None:
    mocked.post(TOKEN_URI, payload=token_answer())
    mocked.get(GRAPHS_URI, payload=answer)

    async with Client(connection_from(CONFIG, "prod")) as client:
        with pytest.raises(InvalidResponseError) as caught:
            await client.graph_list()

    assert "not a list of graphs" in str(caught.value)


async def test_timeout_is_request_timeout_error(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URI, payload=token_answer())
    mocked.get(GRAPHS_URI, exception=asyncio.TimeoutError())

    async with Client(connection_from(CONFIG, "prod"), timeout=2.5) as client:
        with pytest.raises(RequestTimeoutError) as caught:
            await client.graph_list()

    assert "timed out after 2.5 s" in str(caught.value)


async def test_custom_headers_sent(mocked: aioresponses) -> None:
    config = CONFIG + "CMEMC_CUSTOM_HEADER_CF_ACCESS_CLIENT_ID=client-42\n"
    mocked.post(TOKEN_URI, payload=token_answer())
    mocked.get(GRAPHS_URI, payload=GRAPHS)

    async with Client(connection_from(config, "prod")) as client:
        await client.graph_list()
        session_headers = client._session.headers  # type: ignore[union-attr]

    assert session_headers["CF-ACCESS-CLIENT-ID"] == "client-42"


async def test_proxy_from_environment(mocked: aioresponses) -> None:
    environ = {"https_proxy": "http://127.0.0.1:3128"}
    mocked.post(TOKEN_URI, payload=token_answer())
    mocked.get(GRAPHS_URI, payload=GRAPHS)

    async with Client(connection_from(CONFIG, "prod", environ=environ)) as client:
        await client.graph_list()

    assert requests_to(mocked, "GET", GRAPHS_URI)[0].kwargs["proxy"] == "http://127.0.0.1:3128"


async def test_no_proxy_bypasses_proxy(mocked: aioresponses) -> None:
    environ = {"HTTPS_PROXY": "http://127.0.0.1:3128", "NO_PROXY": "cmem.test"}
    mocked.post(TOKEN_URI, payload=token_answer())
    mocked.get(GRAPHS_URI, payload=GRAPHS)

    async with Client(connection_from(CONFIG, "prod", environ=environ)) as client:
        await client.graph_list()

    assert requests_to(mocked, "GET", GRAPHS_URI)[0].kwargs["proxy"] is None


async def test_debug_log_names_requests_not_secrets(mocked: aioresponses, caplog: pytest.LogCaptureFixture) -> None:
    mocked.post(TOKEN_URI, payload=token_answer("tok-XYZ"))
    mocked.get(GRAPHS_URI, payload=GRAPHS)
    caplog.set_level(logging.DEBUG, logger="acmemc")

    async with Client(connection_from(CONFIG, "prod")) as client:
        await client.graph_list()

    messages = [record.getMessage() for record in caplog.records]
    assert any(re.match(rf"GET {GRAPHS_URI} -> 200 .*\(\d+ ms\)", message) for message in messages)
    assert any(message.startswith("Fetching access token from") for message in messages)
    assert all(record.connection == "prod" for record in caplog.records if record.name != "acmemc.config")
    assert not any(SECRET in message or "tok-XYZ" in message for message in messages)


async def test_client_not_open_raises() -> None:
    client = Client(connection_from(CONFIG, "prod"))

    with pytest.raises(RuntimeError):
        await client.graph_list()


async def test_connection_refused_is_request_error() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    config = "[prod]\nCMEM_BASE_URI=http://127.0.0.1:1\nOAUTH_CLIENT_SECRET=x\n"

    async with Client(connection_from(config, "prod")) as client:
        with pytest.raises(RequestError) as caught:
            await client.graph_list()

    assert "connection refused" in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


def test_decode_jwt_payload() -> None:
    assert decode_jwt_payload(jwt({"exp": 5, "sub": "x"})) == {"exp": 5, "sub": "x"}
    assert decode_jwt_payload("not-a-jwt") is None
    assert decode_jwt_payload("a.!!!.c") is None


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypassed"),
    [
        ("cmem.test", "cmem.test", True),
        ("api.cmem.test", ".cmem.test", True),
        ("api.cmem.test", "cmem.test", True),
        ("notcmem.test", "cmem.test", False),
        ("cmem.test:8443", "cmem.test", True),
        ("cmem.test:8443", "cmem.test:443", False),
        ("cmem.test:443", "cmem.test:443", True),
        ("other.test", "*", True),
        ("other.test", " , cmem.test", False),
    ],
)
def test_no_proxy_matching(host: str, no_proxy: str, bypassed: bool) -> None:
    assert _bypasses_proxy(host, no_proxy) is bypassed


async def test_failed_token_fetch_shared_by_waiters(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URI, exception=asyncio.TimeoutError(), repeat=True)

    async with Client(connection_from(CONFIG, "prod"), timeout=1) as client:
        results = await asyncio.gather(*(client.graph_list() for _ in range(5)), return_exceptions=True)

    assert all(isinstance(result, RequestTimeoutError) for result in results)
    assert len(requests_to(mocked, "POST", TOKEN_URI)) == 1
