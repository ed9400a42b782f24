"""HTTPS test servers on loopback that respond like a small Corporate Memory deployment.

A :class:`TLSServer` issues a token at Keycloak's token endpoint for the client
credentials grant, returns the graph list at ``GET /dataplatform/graphs/list``
to requests with that token, and records every request it receives. A
:class:`BlockingHTTPSServer` runs in a thread, so that TLS alerts reach the
client. Certificates come from
trustme, or from :func:`self_signed_certificate` for a server certificate
without a CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TOKEN_PATH = "/auth/realms/cmem/protocol/openid-connect/token"
GRAPHS_PATH = "/dataplatform/graphs/list"
ACCESS_TOKEN = "a.b.c"
GRAPHS = [{"iri": "https://ex.test/g/", "label": {"title": "G"}, "assignedClasses": [], "writeable": True}]


@dataclass(frozen=True)
class ServerCertificate:
    """A private key and the certificate chain a server sends, leaf first, as PEM."""

    key_pem: bytes
    chain_pem: bytes

    @classmethod
    def from_trustme(cls, leaf: trustme.LeafCert, *, with_intermediates: bool = True) -> ServerCertificate:
        """Take the key and chain of a trustme leaf, or the leaf alone without ``with_intermediates``."""
        blobs = leaf.cert_chain_pems if with_intermediates else leaf.cert_chain_pems[:1]
        return cls(key_pem=leaf.private_key_pem.bytes(), chain_pem=b"".join(blob.bytes() for blob in blobs))

    @property
    def leaf_pem(self) -> bytes:
        end = b"-----END CERTIFICATE-----\n"
        return self.chain_pem[: self.chain_pem.index(end) + len(end)]


def self_signed_certificate(*hosts: str) -> ServerCertificate:
    """Make a self-signed server certificate whose subject alternative names are ``hosts``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acmemc self-signed test server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alternative_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alternative_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alternative_names.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ServerCertificate(key_pem=key_pem, chain_pem=certificate.public_bytes(serialization.Encoding.PEM))


def server_context(certificate: ServerCertificate, directory: Path) -> ssl.SSLContext:
    """Build a TLS server context that presents ``certificate``.

    ``load_cert_chain`` reads files only, so the key and chain are written to
    ``directory`` first.
    """
    key_file = directory / "server-key.pem"
    chain_file = directory / "server-chain.pem"
    key_file.write_bytes(certificate.key_pem)
    chain_file.write_bytes(certificate.chain_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file, key_file)
    return context


@dataclass
class TLSServer:
    """A running HTTPS server. ``requests`` lists each request it received as ``"METHOD /path"``."""

    host: str
    port: int = 0
    requests: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def base_uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    async def start(self, context: ssl.SSLContext) -> None:
        app = web.Application()
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_get(GRAPHS_PATH, self._graphs)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, 0, ssl_context=context)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _token(self, request: web.Request) -> web.Response:
        self.requests.append(f"POST {request.path}")
        form = await request.post()
        if form.get("grant_type") != "client_credentials" or form.get("client_secret") != "secret":
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"access_token": ACCESS_TOKEN, "expires_in": 300, "token_type": "Bearer"})

    async def _graphs(self, request: web.Request) -> web.Response:
        self.requests.append(f"GET {request.path}")
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(GRAPHS)


# Starts an HTTPS server on loopback; see the start_server fixture in conftest.py.
StartServer = Callable[..., Awaitable[TLSServer]]


class BlockingHTTPSServer:
    """An HTTPS server on loopback in a thread, for cases where TLS alerts must reach the client.

    Each connection gets a handshake and, if it succeeds, a ``204 No Content``
    response to the first request. A failed handshake (for example a missing
    client certificate) is followed by a lingering close: the server reads until
    the client closes, so the alert OpenSSL sent is not lost to a connection
    reset. asyncio's server in Python 3.11 closes the socket on a failed handshake
    without sending OpenSSL's alert (asyncio/sslproto.py, ``_on_handshake_complete``),
    so its client would see a reset where a real server sends, for example, a
    protocol version alert. ``handshake_errors`` lists the server-side errors.
    """

    def __init__(self, context: ssl.SSLContext, host: str = "127.0.0.1") -> None:
        self._context = context
        self.host = host
        self._listener = socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._listener.settimeout(0.05)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="blocking-https-server", daemon=True)
        self.port: int = self._listener.getsockname()[1]
        self.handshake_errors: list[str] = []
        self.requests: list[str] = []

    @property
    def base_uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def __enter__(self) -> BlockingHTTPSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(5)
            # A second descriptor keeps the TCP connection open after the TLS socket closes on an error.
            raw = connection.dup()
            try:
                self._answer(connection)
            except (ssl.SSLError, OSError) as error:
                self.handshake_errors.append(str(error))
                _drain(raw)
            finally:
                connection.close()
                raw.close()

    def _answer(self, connection: socket.socket) -> None:
        with self._context.wrap_socket(connection, server_side=True) as tls:
            request = b""
            while b"\r\n\r\n" not in request:
                data = tls.recv(4096)
                if not data:
                    return
                request += data
            self.requests.append(request.split(b"\r\n", 1)[0].decode("ascii", errors="replace"))
            tls.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def _drain(raw: socket.socket) -> None:
    raw.settimeout(2)
    try:
        while raw.recv(4096):
            pass
    except OSError:
        pass
