"""Fixtures shared by the whole suite.

Every test runs with an environment cleaned of the variables acmemc, cmemc,
OpenSSL and proxies read, so that the machine's settings (for example a
REQUESTS_CA_BUNDLE set system-wide) can neither help nor break a test.
"""

from __future__ import annotations

import inspect
import os
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import aioresponses.core as aioresponses_core
import pytest
import trustme
from aiohttp import ClientResponse
from aioresponses import aioresponses

from tls_servers import ServerCertificate, StartServer, TLSServer, server_context

CLEARED_PREFIXES = ("CMEMC_", "CMEM_", "OAUTH_", "KEYCLOAK_", "DP_API", "DI_API")
CLEARED_NAMES = (
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "SSL_VERIFY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES) or name in CLEARED_NAMES:
            monkeypatch.delenv(name, raising=False)
    # cmemc's default config file lives under XDG_CONFIG_HOME: point it at an empty folder.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def other_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def client_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """Yield a function that starts an HTTPS server on loopback; every server is closed after the test.

    The function takes a certificate (a trustme leaf or a ServerCertificate) and
    optionally ``host``, a ready server ``context``, ``with_intermediates=False``
    to send the leaf alone, and ``client_ca`` to require client certificates
    that this CA issued.
    """
    servers: list[TLSServer] = []

    async def start(
        certificate: ServerCertificate | trustme.LeafCert,
        *,
        host: str = "127.0.0.1",
        context: ssl.SSLContext | None = None,
        with_intermediates: bool = True,
        client_ca: trustme.CA | None = None,
    ) -> TLSServer:
        if isinstance(certificate, trustme.LeafCert):
            certificate = ServerCertificate.from_trustme(certificate, with_intermediates=with_intermediates)
        if context is None:
            directory = tmp_path / f"server-{len(servers)}"
            directory.mkdir()
            context = server_context(certificate, directory)
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            client_ca.configure_trust(context)
        server = TLSServer(host)
        servers.append(server)
        await server.start(context)
        return server

    yield start
    for server in servers:
        await server.close()


class _ResponseWithStreamWriter(ClientResponse):
    """A ClientResponse that aioresponses can build on aiohttp 3.14.

    aiohttp 3.14 made ``stream_writer`` a required argument of ClientResponse,
    and aioresponses 0.7.9 does not pass it (pnuckowski/aioresponses#289, open).
    Drop this class once an aioresponses release passes the argument.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "stream_writer" in inspect.signature(ClientResponse.__init__).parameters:
            kwargs.setdefault("stream_writer", Mock(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture
def http_mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """aioresponses in place of the network, for HTTP-level tests."""
    monkeypatch.setattr(aioresponses_core, "ClientResponse", _ResponseWithStreamWriter)
    with aioresponses() as mock:
        yield mock
