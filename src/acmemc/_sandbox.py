"""Local stand-in for eccenca Corporate Memory deployments, for tests and demos only.

A :class:`Sandbox` serves N fake deployments over HTTPS. Each deployment gets its own
port, an OAuth 2.0 token endpoint shaped like Keycloak's, the graph list of the
DataPlatform and the status endpoints that a health check reads. All deployments share
one aiohttp application and one runner, and the handlers identify the deployment by the
local port that the connection came in on. This keeps a thousand deployments cheap.
Single deployments can be made unhealthy, slow, outdated or given a certificate that
expires soon, so that a check over many deployments gets mixed results.

The servers listen on 127.0.0.1 only, on ephemeral ports, and the host cannot be
changed. The TLS setup is that of a small private PKI. On every start ``trustme``
creates a root CA and an intermediate CA below it, and the intermediate issues the
server certificates. Each server presents its certificate and the intermediate, and
``ca.pem`` contains only the root, so clients verify through the intermediate that
the server sends. The private keys exist only in memory, so ``ca.pem`` is throwaway
and no client should trust it for anything else. The sandbox implements only the
requests listed in :class:`Sandbox` and does not evaluate SPARQL queries.
"""

from __future__ import annotations

import asyncio
import base64
import configparser
import errno
import hashlib
import hmac
import io
import json
import logging
import math
import os
import pathlib
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType, TracebackType
from typing import Any

import trustme
from aiohttp import web
from aiohttp.typedefs import Handler

from ._files import write_atomically

__all__ = ["Sandbox", "SandboxDeployment", "check_deployment_names", "deployment_names"]

logger = logging.getLogger("acmemc.sandbox")

MAX_DEPLOYMENTS = 5000
SANDBOX_USERNAME = "sandbox-user"
"""User name for the ``password`` grant. The password is the deployment's client secret."""

_HOST = "127.0.0.1"
_PRODUCT_VERSION = "v25.3.0"
_OUTDATED_VERSION = "v24.1.0"
_STORE_TYPE = "GRAPHDB"
_STORE_VERSION = "10.8.2"
# The store and Corporate Memory licenses in the actuator info expire this long after the start.
_LICENSE_VALIDITY = timedelta(days=365)

MAX_CERTIFICATE_DAYS = 3650
"""Limit of ``expiring`` days in either direction. cryptography 50 rejects certificate
dates before 1950, and ten years stay far from that."""
SERVER_CERTIFICATE_LIFETIME = timedelta(days=397)
"""Time from notBefore to notAfter of the server certificates of deployments that are
not ``expiring``. notBefore is the start of the sandbox.

The value only has to look like a real server certificate in ``admin status``: 397
days is a lifetime that public TLS certificates commonly have had. No rule binds the
sandbox's private CA."""
_EMPTY_MAPPING: Mapping[str, Any] = MappingProxyType({})

_REALM_PATH = "/auth/realms/cmem"
_TOKEN_PATH = _REALM_PATH + "/protocol/openid-connect/token"
_GRAPH_LIST_PATH = "/dataplatform/graphs/list"
_DI_VERSION_PATH = "/dataintegration/version"
_DI_HEALTH_PATH = "/dataintegration/health"
_DP_INFO_PATH = "/dataplatform/actuator/info"
_DP_HEALTH_PATH = "/dataplatform/actuator/health"
_SPARQL_PATH = "/dataplatform/proxy/default/sparql"

# Seconds that aiohttp (3.14) waits for running handlers when the sandbox stops. It
# waits twice, once before and once after cancelling the request payload, and then
# cancels the handler, so a stop with requests in flight takes about 1 s. It is short
# because a stopping test fixture should not wait out a long simulated latency.
_SHUTDOWN_TIMEOUT = 0.5

_SHAPE_CATALOG = "https://vocab.eccenca.com/shui/ShapeCatalog"
_DI_PROJECT = "https://vocab.eccenca.com/di/Project"
_VOID_DATASET = "http://rdfs.org/ns/void#Dataset"
_OWL_ONTOLOGY = "http://www.w3.org/2002/07/owl#Ontology"


@dataclass(frozen=True)
class SandboxDeployment:
    """One fake Corporate Memory deployment served by a :class:`Sandbox`."""

    name: str
    base_uri: str
    port: int
    client_id: str
    client_secret: str = field(repr=False)
    graph_iris: tuple[str, ...]
    certificate_not_after: datetime
    """Expiry (notAfter, UTC) of the server certificate that this deployment presents."""
    healthy: bool = True
    """Whether the health endpoints report UP. If False, both return 503 with status DOWN."""
    extra_latency: float = 0.0
    """Seconds that every response waits in addition to the sandbox's latency."""
    backend_version: str = _PRODUCT_VERSION
    """Version that DataIntegration and Explore report. The ShapeCatalog always reports v25.3.0."""


def _text(title: str) -> dict[str, Any]:
    return {"title": title, "lang": "en", "fromIri": False}


def _graph(iri: str, title: str, comment: str, classes: list[str], writeable: bool) -> dict[str, Any]:
    return {
        "iri": iri,
        "label": _text(title),
        "comment": _text(comment),
        "assignedClasses": classes,
        "writeable": writeable,
        "imports": [],
        "importedBy": [],
    }


def _graph_descriptions(name: str, index: int) -> list[dict[str, Any]]:
    """Build the graph list of deployment number ``index`` (0-based) called ``name``.

    The result is deterministic. Every deployment serves three shared graphs and two
    graphs of its own, plus ``index % 4`` further graphs of its own, so the lists
    contain 5 to 8 graphs and differ between deployments.
    """
    prefix = f"https://sandbox.example/{name}"
    graphs = [
        _graph(
            "https://vocab.eccenca.com/shacl/",
            "CMEM Shapes Catalog",
            "Shapes that configure the user interface.",
            [_SHAPE_CATALOG],
            True,
        ),
        _graph(
            "http://www.w3.org/2004/02/skos/core",
            "SKOS Vocabulary",
            "Simple Knowledge Organization System, as published by the W3C.",
            [_OWL_ONTOLOGY],
            False,
        ),
        _graph(
            "http://www.w3.org/2000/01/rdf-schema#",
            "RDF Schema",
            "The RDF Schema vocabulary, as published by the W3C.",
            [_OWL_ONTOLOGY],
            False,
        ),
        _graph(f"{prefix}/data/", f"Data of {name}", f"Instance data of {name}.", [_VOID_DATASET], True),
        _graph(f"{prefix}/scratch/", f"Scratch graph of {name}", "A graph without assigned classes.", [], True),
    ]
    optional_graphs = [
        _graph(f"{prefix}/vocab/", f"Vocabulary of {name}", f"Terms used by {name}.", [_OWL_ONTOLOGY], False),
        _graph(f"{prefix}/project/", f"Project of {name}", f"Build project of {name}.", [_DI_PROJECT], True),
        _graph(f"{prefix}/archive/", f"Archive of {name}", f"Old data of {name}, read only.", [_VOID_DATASET], False),
    ]
    graphs.extend(optional_graphs[: index % 4])
    return graphs


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url. Raises ValueError on invalid input."""
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)


def _encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class _TokenSigner:
    """Issuer and verifier of HS256 JSON Web Tokens with one secret key."""

    _HEADER = _b64url_encode(_encode_json({"alg": "HS256", "typ": "JWT"}))

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest()

    def issue(self, claims: Mapping[str, Any]) -> str:
        signing_input = f"{self._HEADER}.{_b64url_encode(_encode_json(claims))}"
        return f"{signing_input}.{_b64url_encode(self._sign(signing_input))}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """Return the claims of ``token``, or None if it is malformed or its signature is invalid.

        Expiry and audience are left to the caller.
        """
        parts = token.split(".")
        if len(parts) != 3:
            return None
        header_part, claims_part, signature_part = parts
        try:
            signature = _b64url_decode(signature_part)
            expected = self._sign(f"{header_part}.{claims_part}")
            if not hmac.compare_digest(signature, expected):
                return None
            header = json.loads(_b64url_decode(header_part))
            claims = json.loads(_b64url_decode(claims_part))
        except ValueError:
            # binascii.Error, UnicodeError and json.JSONDecodeError are all ValueErrors.
            return None
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            return None
        if not isinstance(claims, dict):
            return None
        return claims


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response(
        {"error": error, "error_description": description},
        status=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _bearer_error(description: str | None) -> web.Response:
    """Build a 401 response as RFC 6750 describes it.

    A request without credentials gets no error code, and a rejected token gets ``invalid_token``.
    """
    if description is None:
        challenge = 'Bearer realm="cmem"'
        body = {"error": "unauthorized", "error_description": "Missing bearer token"}
    else:
        challenge = f'Bearer realm="cmem", error="invalid_token", error_description="{description}"'
        body = {"error": "invalid_token", "error_description": description}
    return web.json_response(body, status=401, headers={"WWW-Authenticate": challenge})


def _form_value(form: Mapping[str, Any], key: str) -> str | None:
    """Return the non-empty text value of ``key``, or None. File uploads count as missing."""
    value = form.get(key)
    if isinstance(value, str) and value:
        return value
    return None


def _secrets_equal(supplied: str, expected: str) -> bool:
    return hmac.compare_digest(supplied.encode("utf-8"), expected.encode("utf-8"))


def _issue_server_certificate(
    authority: trustme.CA, *, not_before: datetime, not_after: datetime
) -> _ServerCertificate:
    """Issue a certificate for 127.0.0.1 and localhost and load it into a new server context.

    The context presents the certificate followed by ``authority`` and its parent CAs
    except the root, so the sandbox's servers send the leaf and the intermediate.
    """
    certificate = authority.issue_cert(_HOST, "localhost", not_before=not_before, not_after=not_after)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # trustme 1.2 writes the private key and cert_chain_pems (the certificate, then the
    # intermediate) to one temporary file for SSLContext.load_cert_chain, so every
    # handshake sends both certificates.
    certificate.configure_cert(context)
    return _ServerCertificate(context, not_after)


def _write_atomically(path: pathlib.Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, with mode 0600 because config.ini contains client secrets."""
    write_atomically(path, data, mode=0o600)


def _render_config(deployments: list[SandboxDeployment], ca_bundle: pathlib.Path) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    for deployment in deployments:
        parser[deployment.name] = {
            "CMEM_BASE_URI": deployment.base_uri,
            "OAUTH_GRANT_TYPE": "client_credentials",
            "OAUTH_CLIENT_ID": deployment.client_id,
            "OAUTH_CLIENT_SECRET": deployment.client_secret,
            "REQUESTS_CA_BUNDLE": str(ca_bundle),
        }
    body = io.StringIO()
    parser.write(body)
    header = (
        "# Written by the acmemc sandbox. This file is throwaway: the deployments,\n"
        "# client secrets and the CA in ca.pem work only while that sandbox runs.\n\n"
    )
    return header + body.getvalue()


def _validate_latency(seconds: float, argument: str = "latency") -> float:
    value = float(seconds)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{argument} must be a finite number of seconds >= 0, got {seconds!r}")
    return value


def _validate_days(days: int, argument: str) -> int:
    if isinstance(days, bool) or not isinstance(days, int):
        raise TypeError(f"{argument} must be an int number of days, got {type(days).__name__}")
    if not -MAX_CERTIFICATE_DAYS <= days <= MAX_CERTIFICATE_DAYS:
        raise ValueError(
            f"{argument} must be between {-MAX_CERTIFICATE_DAYS} and {MAX_CERTIFICATE_DAYS} days, got {days}"
        )
    return days


def deployment_names(deployments: int) -> list[str]:
    """Return the names of the deployments of a sandbox with ``deployments`` deployments, in order.

    The numbers are padded to at least two digits and to the width of the largest one.
    """
    width = max(2, len(str(deployments)))
    return [f"sandbox-{number:0{width}d}" for number in range(1, deployments + 1)]


def check_deployment_names(names: Iterable[str], deployments: int) -> frozenset[str]:
    """Check that a sandbox of ``deployments`` deployments has each of ``names``, and return them as a set.

    Raises TypeError if ``names`` is a single string, and ValueError with the first
    unknown name and the valid names.
    """
    if isinstance(names, str):
        raise TypeError(f"expected a collection of deployment names, got the string {names!r}")
    requested = list(names)
    valid = deployment_names(deployments)
    known = set(valid)
    for name in requested:
        if name not in known:
            if len(valid) == 1:
                choices = f"The only valid name is {valid[0]}."
            else:
                choices = f"Valid names are {valid[0]} … {valid[-1]}."
            raise ValueError(f"unknown deployment {name!r}. {choices}")
    return frozenset(requested)


def _check_argument_names(argument: str, names: Iterable[str], deployments: int) -> frozenset[str]:
    """Check the names of a constructor argument and put the argument name in the ValueError."""
    try:
        return check_deployment_names(names, deployments)
    except ValueError as error:
        raise ValueError(f"{argument}: {error}") from None


def _check_mapping(argument: str, values: Mapping[str, Any], deployments: int) -> None:
    if not isinstance(values, Mapping):
        raise TypeError(f"{argument} must be a mapping of deployment name to value, got {type(values).__name__}")
    _check_argument_names(argument, values.keys(), deployments)


@dataclass(frozen=True)
class _ServerCertificate:
    context: ssl.SSLContext
    not_after: datetime


class Sandbox:
    """HTTPS servers on 127.0.0.1 that each act as one Corporate Memory deployment.

    Usage::

        async with Sandbox(tmp_path, deployments=3) as sandbox:
            # sandbox.config_file names one section per deployment, with the
            # base URI, OAuth client credentials and the CA bundle to trust.
            first = sandbox.deployments[0]
            ...

    Starting writes ``ca.pem`` and ``config.ini`` into ``directory``, creating it if
    needed, and leaves both files there after the sandbox stops. The deployments and
    the request counters also stay readable after the stop. A sandbox cannot be
    entered while it runs but may be started again after it stopped. Every start
    creates a new root and intermediate CA, new ports, new client secrets and new
    counters.

    Each deployment presents a server certificate for 127.0.0.1 and localhost, issued
    by the intermediate CA, together with the intermediate. ``ca.pem`` contains only
    the root CA. Unless the deployment is ``expiring``, the certificate is valid from
    the start for :data:`SERVER_CERTIFICATE_LIFETIME` (397 days).

    Each deployment serves these requests below its base URI, each after waiting for
    the current latency:

    - ``POST /auth/realms/cmem/protocol/openid-connect/token`` with the grant types
      ``client_credentials``, and ``password`` for the user ``sandbox-user`` whose
      password is the client secret. It returns HS256 JWTs that are valid for
      ``token_lifetime`` seconds, so a lifetime of 0 issues tokens that are already expired.
    - ``GET /dataplatform/graphs/list``, which returns the graphs in ``graph_iris``.
    - ``GET /dataintegration/version``, ``GET /dataintegration/health``,
      ``GET /dataplatform/actuator/info``, ``GET /dataplatform/actuator/health`` and
      ``POST /dataplatform/proxy/default/sparql``. The actuator info reports a GraphDB
      store and a Corporate Memory license that both expire one year after the start.
      The SPARQL endpoint returns the same result, a ShapeCatalog version, for every query.

    All requests except the token request and the two health requests need a bearer
    token from the same deployment. Unknown paths return 404, and known paths with
    another method return 405.

    The following keyword arguments change only the deployments that they name, with
    the section names of ``config.ini`` (``sandbox-01`` and so on, see
    :func:`deployment_names`). An unknown name raises ValueError, and one deployment
    may be named in several arguments.

    - ``unhealthy``: both health endpoints return 503 with ``"status": "DOWN"``, as a
      Spring Boot actuator does. All other requests still succeed.
    - ``slow``: name to seconds that every response of that deployment waits in
      addition to the latency.
    - ``expiring``: name to days from the start until the deployment's server
      certificate expires. The deployment gets its own certificate from the same
      intermediate CA.
      A value of 0 or less gives a certificate that has expired when a client connects.
    - ``outdated``: DataIntegration and Explore report v24.1.0, while the ShapeCatalog
      still reports v25.3.0.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        deployments: int = 3,
        *,
        latency: float = 0.0,
        token_lifetime: int = 300,
        unhealthy: Iterable[str] = (),
        slow: Mapping[str, float] = _EMPTY_MAPPING,
        expiring: Mapping[str, int] = _EMPTY_MAPPING,
        outdated: Iterable[str] = (),
    ) -> None:
        if isinstance(deployments, bool) or not isinstance(deployments, int):
            raise TypeError(f"deployments must be an int, got {type(deployments).__name__}")
        if not 1 <= deployments <= MAX_DEPLOYMENTS:
            raise ValueError(f"deployments must be between 1 and {MAX_DEPLOYMENTS}, got {deployments}")
        if isinstance(token_lifetime, bool) or not isinstance(token_lifetime, int):
            raise TypeError(f"token_lifetime must be an int, got {type(token_lifetime).__name__}")
        if token_lifetime < 0:
            raise ValueError(f"token_lifetime must be >= 0 seconds, got {token_lifetime}")

        _check_mapping("slow", slow, deployments)
        _check_mapping("expiring", expiring, deployments)

        self._directory = pathlib.Path(directory).absolute()
        self._deployment_count = deployments
        self._latency = _validate_latency(latency)
        self._token_lifetime = token_lifetime
        self._unhealthy = _check_argument_names("unhealthy", unhealthy, deployments)
        self._outdated = _check_argument_names("outdated", outdated, deployments)
        self._slow = {name: _validate_latency(seconds, f"slow[{name!r}]") for name, seconds in slow.items()}
        self._expiring = {name: _validate_days(days, f"expiring[{name!r}]") for name, days in expiring.items()}
        self._license_expiration = ""

        self.config_file: pathlib.Path = self._directory / "config.ini"
        self.ca_bundle: pathlib.Path = self._directory / "ca.pem"
        self.deployments: list[SandboxDeployment] = []
        self.token_requests: dict[str, int] = {}
        self.graph_list_requests: dict[str, int] = {}

        self._signer = _TokenSigner()
        self._deployments_by_port: dict[int, tuple[int, SandboxDeployment]] = {}
        self._sockets: list[socket.socket] = []
        self._runner: web.AppRunner | None = None
        self._running = False

    def set_latency(self, seconds: float) -> None:
        """Set the delay in seconds before each following response.

        Raises ValueError unless ``seconds`` is finite and at least 0.
        """
        self._latency = _validate_latency(seconds)

    async def __aenter__(self) -> Sandbox:
        if self._running:
            raise RuntimeError(f"sandbox in {self._directory} is already running")
        self._running = True
        started = time.perf_counter()
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        logger.debug(
            "Started %d sandbox deployments in %s in %.2f s",
            self._deployment_count,
            self._directory,
            time.perf_counter() - started,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stop()
        logger.debug("Stopped %d sandbox deployments in %s", self._deployment_count, self._directory)

    # Starting and stopping

    async def _start(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        self._signer = _TokenSigner()
        started_at = datetime.now(timezone.utc).replace(microsecond=0)
        self._license_expiration = (started_at + _LICENSE_VALIDITY).date().isoformat()
        shared_certificate, own_certificates = self._create_certificates(started_at)
        self._bind_sockets()
        self._create_deployments(shared_certificate, own_certificates)

        _write_atomically(self.config_file, _render_config(self.deployments, self.ca_bundle).encode("utf-8"))

        app = web.Application(middlewares=[self._apply_latency])
        self._add_routes(app)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        await self._runner.setup()
        for deployment, sock in zip(self.deployments, self._sockets, strict=True):
            certificate = own_certificates.get(deployment.name, shared_certificate)
            site = web.SockSite(self._runner, sock, ssl_context=certificate.context)
            await site.start()

    def _create_certificates(
        self, started_at: datetime
    ) -> tuple[_ServerCertificate, dict[str, _ServerCertificate]]:
        """Create a new throwaway root and intermediate CA, write the root to ca.pem, and
        issue the server certificates from the intermediate.

        Returns the certificate that most deployments share and, by deployment name, the
        certificates of the ``expiring`` deployments.
        """
        root = trustme.CA()
        intermediate = root.create_child_ca()
        shared = _issue_server_certificate(
            intermediate, not_before=started_at, not_after=started_at + SERVER_CERTIFICATE_LIFETIME
        )
        own: dict[str, _ServerCertificate] = {}
        for name, days in self._expiring.items():
            not_after = started_at + timedelta(days=days)
            # notBefore must precede notAfter, also for certificates that expired long ago.
            not_before = min(started_at, not_after) - timedelta(days=90)
            own[name] = _issue_server_certificate(intermediate, not_before=not_before, not_after=not_after)
        _write_atomically(self.ca_bundle, root.cert_pem.bytes())
        return shared, own

    def _bind_sockets(self) -> None:
        """Bind one listening socket per deployment to an ephemeral port on 127.0.0.1."""
        try:
            for _ in range(self._deployment_count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self._sockets.append(sock)
                sock.bind((_HOST, 0))
        except OSError as error:
            if error.errno != errno.EMFILE:
                raise
            raise OSError(
                errno.EMFILE,
                f"Too many open files: opened {len(self._sockets)} of {self._deployment_count} "
                "sandbox sockets. Each deployment needs one file "
                "descriptor plus one per open connection, so raise the limit "
                "(ulimit -n) or start fewer deployments.",
            ) from error

    def _create_deployments(
        self, shared_certificate: _ServerCertificate, own_certificates: Mapping[str, _ServerCertificate]
    ) -> None:
        """Describe one deployment per bound socket, replacing those of an earlier run."""
        self.deployments = []
        self.token_requests = {}
        self.graph_list_requests = {}
        names = deployment_names(self._deployment_count)
        for index, (name, sock) in enumerate(zip(names, self._sockets, strict=True)):
            port = sock.getsockname()[1]
            graphs = _graph_descriptions(name, index)
            certificate = own_certificates.get(name, shared_certificate)
            deployment = SandboxDeployment(
                name=name,
                base_uri=f"https://{_HOST}:{port}",
                port=port,
                client_id=f"acmemc-{name}",
                client_secret=secrets.token_urlsafe(24),
                graph_iris=tuple(graph["iri"] for graph in graphs),
                certificate_not_after=certificate.not_after,
                healthy=name not in self._unhealthy,
                extra_latency=self._slow.get(name, 0.0),
                backend_version=_OUTDATED_VERSION if name in self._outdated else _PRODUCT_VERSION,
            )
            self.deployments.append(deployment)
            self._deployments_by_port[port] = (index, deployment)
            self.token_requests[name] = 0
            self.graph_list_requests[name] = 0

    async def _stop(self) -> None:
        try:
            if self._runner is not None:
                await self._runner.cleanup()
        finally:
            self._runner = None
            # Sockets handed to a started site are already closed by it, and closing a
            # socket twice does nothing. This closes the ones that never got that far.
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()
            self._deployments_by_port.clear()
            self._running = False

    # Request handling

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post(_TOKEN_PATH, self._handle_token)
        app.router.add_get(_GRAPH_LIST_PATH, self._handle_graph_list)
        app.router.add_get(_DI_VERSION_PATH, self._handle_di_version)
        app.router.add_get(_DI_HEALTH_PATH, self._handle_di_health)
        app.router.add_get(_DP_INFO_PATH, self._handle_dp_info)
        app.router.add_get(_DP_HEALTH_PATH, self._handle_dp_health)
        app.router.add_post(_SPARQL_PATH, self._handle_sparql)

    @web.middleware
    async def _apply_latency(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        delay = self._latency
        found = self._lookup_deployment(request)
        if found is not None:
            delay += found[1].extra_latency
        if delay > 0:
            await asyncio.sleep(delay)
        return await handler(request)

    def _lookup_deployment(self, request: web.Request) -> tuple[int, SandboxDeployment] | None:
        """Return the index and deployment that own the local port of the request's connection.

        Returns None when the connection is already closed or the sandbox has stopped.
        """
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        if sockname is None:
            return None
        return self._deployments_by_port.get(sockname[1])

    def _find_deployment(self, request: web.Request) -> tuple[int, SandboxDeployment]:
        """Return the index and deployment of the request, or raise 404 if there is none.

        No client receives that 404, because its connection is closed or the sandbox has stopped.
        """
        found = self._lookup_deployment(request)
        if found is None:
            raise web.HTTPNotFound()
        return found

    def _check_bearer_token(self, request: web.Request, deployment: SandboxDeployment) -> web.Response | None:
        """Return a 401 response unless the request has a valid token of ``deployment``."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _bearer_error(None)
        claims = self._signer.verify(token)
        if claims is None:
            reason = "Token is malformed or its signature is invalid"
        elif not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
            reason = "Token is expired"
        elif claims.get("iss") != deployment.base_uri + _REALM_PATH or claims.get("azp") != deployment.client_id:
            reason = "Token was issued for another deployment"
        else:
            return None
        logger.debug("Rejected bearer token on %s %s: %s", deployment.name, request.path, reason)
        return _bearer_error(reason)

    def _issue_token_response(self, deployment: SandboxDeployment, username: str) -> web.Response:
        issued_at = int(time.time())
        realm = deployment.base_uri + _REALM_PATH
        claims = {
            "exp": issued_at + self._token_lifetime,
            "iat": issued_at,
            "jti": str(uuid.uuid4()),
            "iss": realm,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{realm}/users/{username}")),
            "typ": "Bearer",
            "azp": deployment.client_id,
            "scope": "profile email",
            "preferred_username": username,
        }
        body = {
            "access_token": self._signer.issue(claims),
            "expires_in": self._token_lifetime,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }
        return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def _handle_token(self, request: web.Request) -> web.Response:
        _, deployment = self._find_deployment(request)
        self.token_requests[deployment.name] += 1
        response = self._authenticate(deployment, await request.post())
        if response.status != 200:
            # The body is the OAuth error and contains no secret.
            logger.debug("Rejected token request on %s: %d %s", deployment.name, response.status, response.text)
        return response

    def _authenticate(self, deployment: SandboxDeployment, form: Mapping[str, Any]) -> web.Response:
        """Check a token request form as Keycloak does and return the token or the OAuth error."""
        grant_type = _form_value(form, "grant_type")
        if grant_type is None:
            return _oauth_error(400, "invalid_request", "Missing form parameter: grant_type")
        client_id = _form_value(form, "client_id")
        if client_id is None:
            return _oauth_error(400, "invalid_request", "Missing form parameter: client_id")
        if client_id != deployment.client_id:
            return _oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials")
        client_secret = _form_value(form, "client_secret")

        if grant_type == "client_credentials":
            if client_secret is None:
                return _oauth_error(400, "invalid_request", "Missing form parameter: client_secret")
            if not _secrets_equal(client_secret, deployment.client_secret):
                return _oauth_error(401, "unauthorized_client", "Invalid client or Invalid client credentials")
            return self._issue_token_response(deployment, f"service-account-{deployment.client_id}")

        if grant_type == "password":
            # The client secret is optional here, but a wrong one is still rejected.
            if client_secret is not None and not _secrets_equal(client_secret, deployment.client_secret):
                return _oauth_error(401, "unauthorized_client", "Invalid client or Invalid client credentials")
            username = _form_value(form, "username")
            password = _form_value(form, "password")
            if username is None or password is None:
                return _oauth_error(400, "invalid_request", "Missing form parameter: username or password")
            if username != SANDBOX_USERNAME or not _secrets_equal(password, deployment.client_secret):
                return _oauth_error(401, "invalid_grant", "Invalid user credentials")
            return self._issue_token_response(deployment, username)

        return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")

    async def _handle_graph_list(self, request: web.Request) -> web.Response:
        index, deployment = self._find_deployment(request)
        self.graph_list_requests[deployment.name] += 1
        rejection = self._check_bearer_token(request, deployment)
        if rejection is not None:
            return rejection
        return web.json_response(_graph_descriptions(deployment.name, index))

    async def _handle_di_version(self, request: web.Request) -> web.Response:
        _, deployment = self._find_deployment(request)
        rejection = self._check_bearer_token(request, deployment)
        if rejection is not None:
            return rejection
        return web.Response(text=deployment.backend_version, content_type="text/plain")

    async def _handle_di_health(self, request: web.Request) -> web.Response:
        _, deployment = self._find_deployment(request)
        if deployment.healthy:
            return web.json_response({"status": "UP"})
        logger.debug("Reported DOWN on %s %s", deployment.name, request.path)
        return web.json_response({"status": "DOWN"}, status=503)

    async def _handle_dp_health(self, request: web.Request) -> web.Response:
        _, deployment = self._find_deployment(request)
        if deployment.healthy:
            return web.json_response({"status": "UP"})
        logger.debug("Reported DOWN on %s %s", deployment.name, request.path)
        # diskSpace and ping are Spring Boot's standard health contributors. The failing
        # "store" component is made up for the sandbox, not copied from a real Explore.
        body = {
            "status": "DOWN",
            "components": {
                "diskSpace": {"status": "UP"},
                "ping": {"status": "UP"},
                "store": {"status": "DOWN", "details": {"error": "Connection to the GraphDB store failed"}},
            },
        }
        return web.json_response(body, status=503)

    async def _handle_dp_info(self, request: web.Request) -> web.Response:
        _, deployment = self._find_deployment(request)
        rejection = self._check_bearer_token(request, deployment)
        if rejection is not None:
            return rejection
        body = {
            "version": deployment.backend_version,
            "store": {
                "type": _STORE_TYPE,
                "version": _STORE_VERSION,
                "licenseExpiration": self._license_expiration,
            },
            "license": {"inGracePeriod": False, "validDate": self._license_expiration},
        }
        return web.json_response(body)

    async def _handle_sparql(self, request: web.Request) -> web.Response:
        """Return one binding of ``version`` for any query, as a SPARQL 1.1 JSON result."""
        _, deployment = self._find_deployment(request)
        rejection = self._check_bearer_token(request, deployment)
        if rejection is not None:
            return rejection

        if request.content_type == "application/sparql-query":
            query = await request.text()
        else:
            query = _form_value(await request.post(), "query") or request.query.get("query", "")
        if not query.strip():
            return web.Response(
                status=400,
                text="Missing SPARQL query: send the form parameter 'query' or an application/sparql-query body.",
            )

        result = {
            "head": {"vars": ["version"]},
            "results": {"bindings": [{"version": {"type": "literal", "value": _PRODUCT_VERSION}}]},
        }
        return web.json_response(result, content_type="application/sparql-results+json")
