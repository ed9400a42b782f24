"""The HTTP client of one connection: an aiohttp session, its token and its requests."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
import ssl
import time
from collections.abc import Collection, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

import aiohttp

from ._auth import AccessToken, TokenProvider
from ._config import Connection, CustomHeader
from ._credentials import run_credential_process
from ._errors import (
    AcmemcError,
    AuthenticationError,
    ConnectError,
    HTTPStatusError,
    InvalidResponseError,
    RequestError,
    RequestTimeoutError,
)
from ._tls import SSLContextCache, verification_error
from ._version import __version__

if TYPE_CHECKING:
    from ._status import DeploymentStatus

__all__ = ["DEFAULT_TIMEOUT", "USER_AGENT", "Client", "Response"]

logger = logging.getLogger("acmemc.http")

#: Seconds a request may take, from sending it to reading the whole response.
DEFAULT_TIMEOUT = 10.0
USER_AGENT = f"acmemc/{__version__}"
TLS_VERSION_REASON = "the server offers no TLS version acmemc accepts (TLS 1.2 or newer)"


class Response(NamedTuple):
    """A complete HTTP response: status, reason phrase, content type and the body as text."""

    status: int
    reason: str
    content_type: str
    text: str


class Client:
    """An HTTP client for one Corporate Memory connection.

    Opens one aiohttp session for the connection, fetches its access token once
    and reuses it, and turns every failure into an :class:`~acmemc.AcmemcError`
    that names the connection. Connections with the same trust settings share one
    SSLContext when they share ``ssl_contexts``.

    Usage::

        async with Client(connection) as client:
            graphs = await client.graph_list()
    """

    def __init__(
        self,
        connection: Connection,
        *,
        ssl_contexts: SSLContextCache | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.connection = connection
        self._ssl_contexts = ssl_contexts if ssl_contexts is not None else SSLContextCache()
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._tokens: TokenProvider | None = None
        self._extra = {"connection": connection.name}

    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Check the trust settings, run the credential processes and open the session."""
        if self._session is not None:
            return
        # The CA bundle is checked first: it has no side effects, and a broken
        # bundle must fail before any credential process runs or request is sent.
        # Only a client key whose password a process prints must wait for it.
        password_from_process = (
            self.connection.client_certificate is not None
            and "SSL_CLIENT_KEY_PASSWORD" in self.connection.secret_processes
        )
        if not password_from_process:
            ssl_context = self._ssl_contexts.context_for(self.connection)
        secrets, header_values = await self._run_credential_processes()
        if password_from_process:
            ssl_context = self._ssl_contexts.context_for(
                self.connection, client_key_password=secrets["SSL_CLIENT_KEY_PASSWORD"]
            )

        headers = {"User-Agent": USER_AGENT}
        for header in self.connection.custom_headers:
            headers[header.name] = header_values.get(header.name, header.value or "")
        # At most two connections to one host: the status calls send five requests at
        # once, and a TLS handshake for each costs more than the wait for a free
        # connection (see benchmarks/RESULTS.md). graph list sends one request at a
        # time and is not affected.
        connector = aiohttp.TCPConnector(ssl=ssl_context, limit_per_host=2)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        )
        self._tokens = TokenProvider(self.connection, secrets, self._post_form)

    async def close(self) -> None:
        if self._tokens is not None:
            await self._tokens.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def ssl_contexts(self) -> SSLContextCache:
        """The SSLContext cache this client takes its contexts from."""
        return self._ssl_contexts

    @property
    def timeout(self) -> float:
        """Seconds a request may take."""
        return self._timeout

    @property
    def token_requests(self) -> int:
        """How many requests this client sent to the token endpoint."""
        return self._tokens.requests_sent if self._tokens is not None else 0

    async def token(self) -> AccessToken:
        """Return the access token, fetching it if there is none or it is about to expire."""
        return await self._token_provider().get()

    async def status(self, *, expiry_warning_days: float = 30) -> DeploymentStatus:
        """Return health, versions, response time and server certificate of the deployment.

        A call that fails with an :class:`~acmemc.AcmemcError` is recorded in the
        result instead of raised; see :func:`acmemc.fetch_status`.
        """
        from ._status import fetch_status

        return await fetch_status(self, expiry_warning_days=expiry_warning_days)

    async def graph_list(self) -> list[dict[str, Any]]:
        """Return the graphs the account can read: ``GET $DP_API_ENDPOINT/graphs/list``."""
        url = f"{self.connection.dp_api_endpoint}/graphs/list"
        answer = await self.request_json("GET", url)
        if not isinstance(answer, list) or not all(
            isinstance(graph, dict) and isinstance(graph.get("iri"), str) for graph in answer
        ):
            raise InvalidResponseError(
                f"GET {url} returned JSON that is not a list of graphs with an iri each. "
                "Fix: check that DP_API_ENDPOINT points to the DataPlatform API.",
                connection=self.connection.name,
                url=url,
            )
        return answer

    async def request(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        accept_statuses: Collection[int] = (),
    ) -> Response:
        """Send an authorized request and return its successful response.

        A 401 response fetches a new token and repeats the request once, unless the
        token was prefetched and cannot be renewed. Any other status of 400 or
        more raises :class:`~acmemc.HTTPStatusError`, unless it is in
        ``accept_statuses`` (a health endpoint, for example, returns 503 with a
        JSON body when its service is down).
        """
        tokens = self._token_provider()
        token = await tokens.get()
        response = await self._send(method, url, token=token, data=data, headers=headers)
        if response.status == 401 and tokens.can_refresh:
            logger.debug("%s %s returned 401, fetching a new token", method, url, extra=self._extra)
            tokens.invalidate(token)
            token = await tokens.get()
            response = await self._send(method, url, token=token, data=data, headers=headers)

        if response.status == 401:
            raise AuthenticationError(
                f"{method} {url} rejected the access token (HTTP 401). "
                + (
                    "Fix: OAUTH_ACCESS_TOKEN may have expired; set a new one."
                    if not tokens.can_refresh
                    else "Fix: check that the token endpoint belongs to this deployment."
                ),
                connection=self.connection.name,
                url=url,
            )
        if response.status >= 400 and response.status not in accept_statuses:
            raise _status_error(method, url, response, self.connection)
        return response

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        accept_statuses: Collection[int] = (),
    ) -> Any:
        """Send an authorized request (see :meth:`request`) and return its JSON body."""
        response = await self.request(method, url, data=data, headers=headers, accept_statuses=accept_statuses)
        try:
            return json.loads(response.text)
        except ValueError:
            raise InvalidResponseError(
                f"{method} {url} returned HTTP {response.status} with {response.content_type or 'no content type'} "
                "that is not valid JSON. Fix: check that the endpoint URL points to the Corporate Memory API.",
                connection=self.connection.name,
                url=url,
            ) from None

    def _token_provider(self) -> TokenProvider:
        if self._tokens is None:
            raise RuntimeError("Client is not open: use it as `async with Client(connection) as client`.")
        return self._tokens

    async def _post_form(self, url: str, form: Mapping[str, str]) -> tuple[int, str]:
        response = await self._send("POST", url, data=form)
        return response.status, response.text

    async def _send(
        self,
        method: str,
        url: str,
        *,
        token: AccessToken | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request and read the whole response; log a failure in the debug log."""
        started = time.monotonic()
        try:
            return await self._send_once(method, url, token=token, data=data, headers=headers)
        except AcmemcError as error:
            logger.debug(
                "%s %s failed (%.0f ms): %s",
                method,
                url,
                (time.monotonic() - started) * 1000,
                error.summary,
                extra=self._extra,
            )
            raise

    async def _send_once(
        self,
        method: str,
        url: str,
        *,
        token: AccessToken | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request and read the whole response (see :meth:`_send`)."""
        if self._session is None:
            raise RuntimeError("Client is not open: use it as `async with Client(connection) as client`.")
        request_headers = dict(headers or {})
        if token is not None:
            request_headers["Authorization"] = f"Bearer {token.token}"
        started = time.monotonic()
        try:
            async with self._session.request(
                method, url, headers=request_headers or None, data=data, proxy=self._proxy_for(url)
            ) as answer:
                text = await answer.text(errors="replace")
                response = Response(answer.status, answer.reason or "", answer.content_type, text)
        except aiohttp.ClientConnectorCertificateError as error:
            certificate_error = error.certificate_error
            if isinstance(certificate_error, ssl.SSLCertVerificationError):
                raise verification_error(
                    certificate_error, connection=self.connection, host=_authority(error.host, error.port), url=url
                ) from None
            raise self._connect_error(
                url, f"the TLS certificate of {_authority(error.host, error.port)} was rejected", "TLS: certificate rejected"
            ) from None
        except aiohttp.ClientConnectorSSLError as error:
            reason = _ssl_reason(error.os_error)
            fix = None
            if reason == TLS_VERSION_REASON:
                fix = "Fix: enable TLS 1.2 or newer on the server or on the proxy in front of it."
            raise self._connect_error(
                url, f"the TLS handshake with {_authority(error.host, error.port)} failed ({reason})", f"TLS: {reason}", fix
            ) from None
        except aiohttp.ClientConnectorError as error:
            reason = _os_reason(error.os_error)
            raise self._connect_error(
                url, f"cannot connect to {_authority(error.host, error.port)}: {reason}", reason
            ) from None
        except TimeoutError:
            raise RequestTimeoutError(
                f"{method} {url} timed out after {self._timeout:g} s. "
                "Fix: check that the deployment is up, or raise the timeout (acmemc --timeout SECONDS COMMAND ...).",
                connection=self.connection.name,
                url=url,
                summary=f"timed out after {self._timeout:g} s",
            ) from None
        except aiohttp.ServerDisconnectedError:
            hint = " An https:// port answers a plain http:// request this way: check the scheme." if url.startswith("http://") else ""
            raise RequestError(
                f"{method} {url} failed: the server closed the connection without a response.{hint}",
                connection=self.connection.name,
                url=url,
                summary="server closed the connection",
            ) from None
        except aiohttp.ClientError as error:
            raise RequestError(
                f"{method} {url} failed: {type(error).__name__}. Run with --debug for details.",
                connection=self.connection.name,
                url=url,
            ) from None

        logger.debug(
            "%s %s -> %s %s (%.0f ms)",
            method,
            url,
            response.status,
            response.reason,
            (time.monotonic() - started) * 1000,
            extra=self._extra,
        )
        return response

    def _connect_error(self, url: str, problem: str, summary: str, fix: str | None = None) -> ConnectError:
        fix = fix or "Fix: check the host and port in CMEM_BASE_URI (or the endpoint keys) and that the deployment is up."
        return ConnectError(
            f"{problem}. {fix}",
            connection=self.connection.name,
            url=url,
            summary=summary,
        )

    def _proxy_for(self, url: str) -> str | None:
        environment = self.connection.proxy_environment
        if not environment:
            return None
        scheme, _, rest = url.partition("://")
        host = rest.split("/", 1)[0]
        no_proxy = environment.get("no_proxy") or environment.get("NO_PROXY")
        if no_proxy and _bypasses_proxy(host, no_proxy):
            return None
        return environment.get(f"{scheme}_proxy") or environment.get(f"{scheme.upper()}_PROXY")

    async def _run_credential_processes(self) -> tuple[dict[str, str], dict[str, str]]:
        """Run every credential process of the connection at once; return (secrets, header values)."""
        connection = self.connection
        secrets = dict(connection.secrets)
        header_values: dict[str, str] = {}
        process_headers: list[CustomHeader] = [header for header in connection.custom_headers if header.process]
        if not connection.secret_processes and not process_headers:
            return secrets, header_values

        async def run_secret(key: str, argv: tuple[str, ...]) -> None:
            secrets[key] = await run_credential_process(connection, key + "_PROCESS", argv)

        async def run_header(header: CustomHeader) -> None:
            assert header.process is not None
            header_values[header.name] = await run_credential_process(connection, header.key, header.process)

        try:
            async with asyncio.TaskGroup() as group:
                for key, argv in connection.secret_processes.items():
                    group.create_task(run_secret(key, argv))
                for header in process_headers:
                    group.create_task(run_header(header))
        except ExceptionGroup as group_error:
            # The first failure is the one to report; the others were cancelled with it.
            raise group_error.exceptions[0] from None
        return secrets, header_values


def _status_error(method: str, url: str, response: Response, connection: Connection) -> HTTPStatusError:
    status = response.status
    detail = _error_detail(response.text)
    if status == 403:
        fix = "Fix: give the account of OAUTH_CLIENT_ID (or OAUTH_USER) access to this API."
    elif status == 404:
        fix = "Fix: check DP_API_ENDPOINT and DI_API_ENDPOINT, or CMEM_BASE_URI they derive from."
    elif status >= 500:
        fix = "Fix: the deployment has a server-side problem; check its logs or try again later."
    else:
        fix = "Fix: run with --debug to see the request."
    return HTTPStatusError(
        f"{method} {url} returned HTTP {status} {response.reason}{detail}. {fix}",
        connection=connection.name,
        url=url,
        status=status,
    )


def _error_detail(text: str) -> str:
    """Return a short detail from a JSON error body, such as Spring's "message"."""
    try:
        answer = json.loads(text)
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    for key in ("detail", "message", "error_description", "title", "error"):
        value = answer.get(key)
        if isinstance(value, str) and value.strip():
            one_line = " ".join(value.split())
            return f" ({one_line[:200]})"
    return ""


def _bypasses_proxy(host_and_port: str, no_proxy: str) -> bool:
    """Tell whether ``no_proxy`` (comma-separated hosts or domains, or ``*``) exempts a host.

    As curl and urllib read it: an entry matches the host itself and its
    subdomains, a leading dot is optional, and an entry with a port matches
    that port only.
    """
    host = host_and_port.lower()
    bare_host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    for entry in (item.strip().lower() for item in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        candidate = host if (":" in entry and not entry.startswith("[")) else bare_host
        entry = entry.lstrip(".")
        if candidate == entry or candidate.endswith("." + entry):
            return True
    return False


def _authority(host: str, port: int | None) -> str:
    """Write host and port as in a URL: an IPv6 address in brackets, e.g. "[::1]:8443"."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _os_reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError) or error.errno == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(error, ConnectionResetError) or error.errno == errno.ECONNRESET:
        return "the server reset the connection"
    if isinstance(error, socket.gaierror):
        return "host name not found"
    if error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "network unreachable"
    if isinstance(error, TimeoutError) or error.errno == errno.ETIMEDOUT:
        return "connection timed out"
    return error.strerror or type(error).__name__


def _ssl_reason(error: OSError) -> str:
    if isinstance(error, ssl.SSLError):
        reason = error.reason or error.strerror or "TLS error"
        if reason == "WRONG_VERSION_NUMBER":
            return "the server does not speak TLS on this port; is it http:// instead of https://?"
        if reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"):
            return TLS_VERSION_REASON
        return reason.replace("_", " ").lower()
    return error.strerror or type(error).__name__
