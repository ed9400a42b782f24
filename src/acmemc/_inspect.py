"""TLS inspection: what a connection's servers present, and why their certificates verify or not.

For each distinct HTTPS host and port among a connection's endpoints,
:func:`inspect_connection` runs two handshakes. The first does not verify, so
that it always gets the certificate chain the server sent, the TLS version and
the cipher. Over it goes one ``HEAD`` request, which shows whether the server
accepts the connection: a server that requires a client certificate closes it.
The second handshake uses the connection's own trust settings with verification
on, which yields OpenSSL's exact verification result even when ``SSL_VERIFY``
is false.
"""

from __future__ import annotations

import _ssl
import asyncio
import datetime
import hashlib
import logging
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from ._client import DEFAULT_TIMEOUT, TLS_VERSION_REASON, USER_AGENT, _authority, _os_reason, _ssl_reason
from ._config import DEFAULT_CONNECTION_NAME, Connection
from ._credentials import run_credential_process
from ._errors import AcmemcError, ConfigurationError, ConnectError
from ._fleet import DEFAULT_CONCURRENCY, ConnectionResult, run_bounded
from ._tls import (
    SYSTEM_TRUST_STORE,
    SSLContextCache,
    TrustSettings,
    describe_verification_error,
    non_verifying_context,
)

__all__ = [
    "Endpoint",
    "EndpointInspection",
    "PresentedCertificate",
    "ServerHandshake",
    "TLSInspection",
    "Verification",
    "check_verification",
    "client_key_password",
    "connection_endpoints",
    "fetch_presented_chain",
    "inspect_connection",
    "inspect_each",
    "issuer_path",
]

logger = logging.getLogger("acmemc.tls")

# The URL keys whose hosts are inspected, in the order they are reported.
ENDPOINT_KEYS = ("CMEM_BASE_URI", "DP_API_ENDPOINT", "DI_API_ENDPOINT", "OAUTH_TOKEN_URI")

# TLS alerts that a server sends when it rejects the client certificate, by OpenSSL's reason.
CLIENT_CERTIFICATE_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the server rejected the client certificate (bad certificate)",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the server rejected the client certificate (certificate unknown)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the server rejected the client certificate (certificate expired)",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "the server rejected the client certificate (certificate revoked)",
    "TLSV1_ALERT_UNKNOWN_CA": "the server rejected the client certificate (unknown CA)",
    "TLSV1_ALERT_ACCESS_DENIED": "the server rejected the client certificate (access denied)",
    "TLSV1_ALERT_DECRYPT_ERROR": "the server rejected the client certificate (decrypt error)",
}


# Certificates


@dataclass(frozen=True)
class PresentedCertificate:
    """One certificate of the chain a server sent, with the fields a user compares.

    ``subject`` and ``issuer`` are RFC 4514 strings, ``sha256`` the fingerprint
    of the DER encoding as colon-separated upper-case hex (as ``openssl x509
    -fingerprint -sha256`` prints it), and ``self_issued`` is true when subject
    and issuer are the same name, as for a root CA or a self-signed server
    certificate.
    """

    subject: str
    issuer: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_before: datetime.datetime
    not_after: datetime.datetime
    sha256: str
    is_ca: bool
    self_issued: bool
    der: bytes = field(repr=False)

    @classmethod
    def from_der(cls, der: bytes) -> PresentedCertificate:
        """Parse a DER certificate; raises ``ValueError`` if cryptography cannot parse it."""
        from cryptography import x509

        certificate = x509.load_der_x509_certificate(der)
        dns_names: list[str] = []
        ip_addresses: list[str] = []
        try:
            names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            pass
        else:
            dns_names = [_printable(name) for name in names.get_values_for_type(x509.DNSName)]
            ip_addresses = [str(address) for address in names.get_values_for_type(x509.IPAddress)]
        try:
            is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        return cls(
            subject=_printable(certificate.subject.rfc4514_string()),
            issuer=_printable(certificate.issuer.rfc4514_string()),
            dns_names=tuple(dns_names),
            ip_addresses=tuple(ip_addresses),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            sha256=hashlib.sha256(der).digest().hex(":").upper(),
            is_ca=is_ca,
            self_issued=certificate.subject == certificate.issuer,
            der=der,
        )

    @property
    def pem(self) -> str:
        return ssl.DER_cert_to_PEM_cert(self.der)

    def as_record(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "dns_names": list(self.dns_names),
            "ip_addresses": list(self.ip_addresses),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "sha256": self.sha256,
            "is_ca": self.is_ca,
            "self_issued": self.self_issued,
        }


def _printable(text: str) -> str:
    """Escape control characters of a name that the network sent.

    A line break in a subject could otherwise start a PEM block in the comments
    of a written bundle, and an escape sequence could change the terminal.
    """
    if text.isprintable():
        return text
    return "".join(character if character.isprintable() else ascii(character)[1:-1] for character in text)


def issuer_path(chain: tuple[PresentedCertificate, ...]) -> list[int]:
    """Return the indexes of the issuer path from the server certificate (index 0) up, within ``chain``.

    A certificate's issuer is the one whose subject is its issuer name and whose
    key verifies its signature, wherever it is in the chain: servers send extra
    or misordered certificates. The path ends at a self-issued certificate or
    at one whose issuer the server did not send.
    """
    from cryptography import x509

    if not chain:
        return []
    loaded = [x509.load_der_x509_certificate(certificate.der) for certificate in chain]
    path = [0]
    while not chain[path[-1]].self_issued:
        child = loaded[path[-1]]
        parent = next(
            (
                index
                for index, candidate in enumerate(loaded)
                if index not in path and candidate.subject == child.issuer and _issued_by(child, candidate)
            ),
            None,
        )
        if parent is None:
            break
        path.append(parent)
    return path


def _issued_by(child: Any, parent: Any) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        child.verify_directly_issued_by(parent)
    except (InvalidSignature, ValueError, TypeError):
        # ValueError: the names differ or the algorithm is unsupported; TypeError: the key type is.
        return False
    return True


# Endpoints and handshakes


@dataclass(frozen=True)
class Endpoint:
    """A host and port that a connection talks to, and the URL keys that point there."""

    url: str
    scheme: str
    host: str
    port: int
    keys: tuple[str, ...]

    @property
    def authority(self) -> str:
        return _authority(self.host, self.port)

    @property
    def uses_tls(self) -> bool:
        return self.scheme == "https"


def connection_endpoints(connection: Connection) -> list[Endpoint]:
    """Group the URL keys of ``connection`` by scheme, host and port, in the order of :data:`ENDPOINT_KEYS`."""
    urls = {
        "CMEM_BASE_URI": connection.base_uri,
        "DP_API_ENDPOINT": connection.dp_api_endpoint,
        "DI_API_ENDPOINT": connection.di_api_endpoint,
        "OAUTH_TOKEN_URI": connection.token_uri,
    }
    groups: dict[tuple[str, str, int], list[str]] = {}
    first_url: dict[tuple[str, str, int], str] = {}
    for key in ENDPOINT_KEYS:
        parts = urlsplit(urls[key])
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        group = (parts.scheme, host, port)
        groups.setdefault(group, []).append(key)
        first_url.setdefault(group, urls[key])
    return [
        Endpoint(url=first_url[group], scheme=group[0], host=group[1], port=group[2], keys=tuple(keys))
        for group, keys in groups.items()
    ]


@dataclass(frozen=True)
class ServerHandshake:
    """The outcome of a TLS handshake: protocol version, cipher suite and the chain the server sent, leaf first."""

    tls_version: str
    cipher: str
    chain: tuple[PresentedCertificate, ...]


def _presented_chain(ssl_object: ssl.SSLObject) -> list[bytes]:
    """Return the DER certificates the peer sent, in the order it sent them.

    ``get_unverified_chain()`` is public on ``SSLObject`` from Python 3.13 on
    and returns DER bytes there. In Python 3.10 to 3.12 it exists only on the
    private ``_sslobj`` and returns ``_ssl.Certificate`` objects. Without either,
    only the peer's own certificate is available.
    """
    method = getattr(ssl_object, "get_unverified_chain", None)
    if method is None:
        method = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if method is not None:
        chain = method() or []
        return [item if isinstance(item, bytes) else item.public_bytes(_ssl.ENCODING_DER) for item in chain]
    peer = ssl_object.getpeercert(binary_form=True)
    return [peer] if peer else []


async def _open(
    endpoint: Endpoint, context: ssl.SSLContext, timeout: float, connection: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect and run the TLS handshake; raise :class:`ConnectError` with the reason in plain words."""
    # TODO: connect through https_proxy as the client does; inspection now always connects directly.
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.open_connection(
                endpoint.host, endpoint.port, ssl=context, server_hostname=endpoint.host
            )
    except ssl.SSLCertVerificationError:
        raise
    except ssl.SSLError as error:
        reason = _ssl_reason(error)
        fix = "Fix: check that the URL names the HTTPS port of the deployment."
        if reason == TLS_VERSION_REASON:
            fix = "Fix: enable TLS 1.2 or newer on the server or on the proxy in front of it."
        elif error.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
            reason += "; a server that requires a client certificate fails the handshake this way"
            fix = "Fix: set SSL_CLIENT_CERT if the server requires a client certificate, else check its TLS setup."
        elif error.reason in CLIENT_CERTIFICATE_ALERTS:
            reason = CLIENT_CERTIFICATE_ALERTS[error.reason]
            fix = "Fix: set SSL_CLIENT_CERT (and SSL_CLIENT_KEY) to a certificate that the server accepts."
        raise ConnectError(
            f"the TLS handshake with {endpoint.authority} failed ({reason}). {fix}",
            connection=connection,
            url=endpoint.url,
            summary=f"TLS: {reason}",
        ) from None
    except TimeoutError:
        raise ConnectError(
            f"connecting to {endpoint.authority} timed out after {timeout:g} s. "
            "Fix: check that the deployment is up, or raise the timeout (acmemc --timeout SECONDS COMMAND ...).",
            connection=connection,
            url=endpoint.url,
            summary=f"timed out after {timeout:g} s",
        ) from None
    except OSError as error:
        reason = _os_reason(error)
        raise ConnectError(
            f"cannot connect to {endpoint.authority}: {reason}. "
            "Fix: check the host and port of the URL and that the deployment is up.",
            connection=connection,
            url=endpoint.url,
            summary=reason,
        ) from None


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, ssl.SSLError):
        # The server may have sent an alert or reset the connection; it is closed either way.
        pass


def _handshake_of(writer: asyncio.StreamWriter, endpoint: Endpoint, connection: str | None) -> ServerHandshake:
    ssl_object: ssl.SSLObject = writer.get_extra_info("ssl_object")
    cipher = ssl_object.cipher()
    try:
        chain = tuple(PresentedCertificate.from_der(der) for der in _presented_chain(ssl_object))
    except ValueError as error:
        raise ConnectError(
            f"{endpoint.authority} sent a certificate that cannot be parsed ({error}). "
            f"Fix: check the server's certificate with `openssl s_client -connect {endpoint.authority} -showcerts`.",
            connection=connection,
            url=endpoint.url,
            summary="invalid server certificate",
        ) from None
    return ServerHandshake(tls_version=ssl_object.version() or "", cipher=cipher[0] if cipher else "", chain=chain)


async def fetch_presented_chain(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    context: ssl.SSLContext | None = None,
    connection: str | None = None,
) -> ServerHandshake:
    """Connect to an ``https://`` URL without verifying, and return the chain the server sent.

    ``context`` must not verify; pass one with a client certificate for a
    server that requires one. Raises :class:`ConnectError` when the handshake fails.
    """
    endpoint = _endpoint_of(url)
    _, writer = await _open(endpoint, context or non_verifying_context(), timeout, connection)
    try:
        return _handshake_of(writer, endpoint, connection)
    finally:
        await _close(writer)


def _endpoint_of(url: str) -> Endpoint:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return Endpoint(url=url, scheme=parts.scheme, host=host, port=parts.port or 443, keys=())


# Verification


@dataclass(frozen=True)
class Verification:
    """The result of verifying a server certificate with a set of trust settings.

    ``status`` is ``"verified"``, ``"failed"`` (``code`` is OpenSSL's
    X509_V_ERR code) or ``"not checked"`` when no verifying handshake could run,
    for example because the CA bundle is missing. ``reason`` and ``fix`` are
    plain sentences for the user; both are empty when the certificate verified.
    """

    status: Literal["verified", "failed", "not checked"]
    reason: str = ""
    fix: str = ""
    code: int | None = None

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def as_record(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason or None, "fix": self.fix or None, "code": self.code}


async def check_verification(
    url: str, context: ssl.SSLContext, *, timeout: float = DEFAULT_TIMEOUT, anchors: str = "the CA bundle"
) -> Verification:
    """Run a verifying handshake with ``context`` against an ``https://`` URL and return the result.

    Only the reason is filled in; :func:`inspect_connection` adds the fix.
    """
    return await _verify(_endpoint_of(url), context, timeout, None, anchors)


async def _verify(
    endpoint: Endpoint, context: ssl.SSLContext, timeout: float, connection: str | None, anchors: str
) -> Verification:
    try:
        _, writer = await _open(endpoint, context, timeout, connection)
    except ssl.SSLCertVerificationError as error:
        return Verification("failed", reason=describe_verification_error(error, anchors=anchors), code=error.verify_code)
    except ConnectError as error:
        return Verification("not checked", reason=error.summary, fix=_fix_of(error))
    await _close(writer)
    return Verification("verified")


def _fix_of(error: AcmemcError) -> str:
    _, _, fix = error.message.partition(" Fix: ")
    return fix


# Inspection of a connection


@dataclass(frozen=True)
class EndpointInspection:
    """The TLS state of one endpoint of a connection.

    ``handshake`` is ``None`` when no TLS connection could be made, and
    ``error`` is then the cause. ``answer`` is the status line of the server's
    response to a ``HEAD`` request, and ``rejection`` the reason the server
    closed the connection instead (a missing or rejected client certificate,
    for example).
    """

    endpoint: Endpoint
    handshake: ServerHandshake | None
    verification: Verification
    answer: str | None = None
    rejection: str | None = None
    error: ConnectError | None = None

    def as_record(self) -> dict[str, Any]:
        handshake = self.handshake
        return {
            "url": self.endpoint.url,
            "host": self.endpoint.host,
            "port": self.endpoint.port,
            "keys": list(self.endpoint.keys),
            "tls": self.endpoint.uses_tls,
            "tls_version": handshake.tls_version if handshake else None,
            "cipher": handshake.cipher if handshake else None,
            "chain": [certificate.as_record() for certificate in handshake.chain] if handshake else [],
            "verification": self.verification.as_record(),
            "answer": self.answer,
            "rejection": self.rejection,
            "error": str(self.error) if self.error else None,
        }


@dataclass(frozen=True)
class TLSInspection:
    """The TLS state of every endpoint of one connection, and the trust settings used.

    ``client_certificate_error`` is set when ``SSL_CLIENT_CERT`` cannot be
    loaded; the handshakes then ran without a client certificate.
    """

    connection: str
    trust: TrustSettings
    endpoints: tuple[EndpointInspection, ...]
    client_certificate_error: ConfigurationError | None = None

    @property
    def ok(self) -> bool:
        """Tell whether the connection works as configured: no failed handshake, rejection or verification."""
        if self.client_certificate_error is not None:
            return False
        for inspection in self.endpoints:
            if not inspection.endpoint.uses_tls:
                continue
            if inspection.handshake is None or inspection.rejection is not None:
                return False
            if self.trust.verify and not inspection.verification.verified:
                return False
        return True

    def as_record(self) -> dict[str, Any]:
        trust = self.trust
        return {
            "connection": self.connection,
            "ok": self.ok,
            "trust": {
                "verify": trust.verify,
                "trust_store": trust.trust_store,
                "ca_bundle": None if trust.uses_system_store else str(trust.ca_bundle),
                "ca_bundle_is_default": trust.ca_bundle_is_default and not trust.uses_system_store,
                "client_certificate": str(trust.client_certificate) if trust.client_certificate else None,
                "client_key": str(trust.client_key) if trust.client_key else None,
            },
            "client_certificate_error": str(self.client_certificate_error) if self.client_certificate_error else None,
            "endpoints": [inspection.as_record() for inspection in self.endpoints],
        }


async def inspect_connection(
    connection: Connection,
    *,
    ssl_contexts: SSLContextCache | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> TLSInspection:
    """Inspect TLS on every HTTPS endpoint of ``connection``; see the module documentation.

    Runs ``SSL_CLIENT_KEY_PASSWORD_PROCESS`` when the client key needs it.
    Configuration errors of the trust settings (a missing CA bundle, an
    unusable client certificate, a failed password process) are part of the
    result, not raised, so that the chain the server sent is still shown.
    """
    contexts = ssl_contexts if ssl_contexts is not None else SSLContextCache()
    trust = TrustSettings.of(connection)
    extra = {"connection": connection.name}

    client_error: ConfigurationError | None = None
    password: str | None = None
    try:
        password = await client_key_password(connection)
        probe_context = contexts.context_for(connection, verify=False, client_key_password=password)
    except ConfigurationError as error:
        logger.debug("Client certificate not used: %s", error.message, extra=extra)
        client_error = error
        connection = replace(connection, client_certificate=None, client_key=None)
        probe_context = non_verifying_context()

    verify_context: ssl.SSLContext | None = None
    setup_error: ConfigurationError | None = None
    try:
        verify_context = contexts.context_for(connection, verify=True, client_key_password=password)
    except ConfigurationError as error:
        setup_error = error

    inspections = []
    for endpoint in connection_endpoints(connection):
        if not endpoint.uses_tls:
            no_tls = Verification("not checked", reason="no TLS: the URL is http://")
            inspections.append(EndpointInspection(endpoint, None, no_tls))
            continue
        inspection = await _inspect_endpoint(
            endpoint, connection, trust, probe_context, verify_context, setup_error, timeout
        )
        logger.debug(
            "TLS of %s: %s%s",
            endpoint.authority,
            inspection.verification.status,
            f" ({inspection.verification.reason})" if inspection.verification.reason else "",
            extra=extra,
        )
        inspections.append(inspection)
    return TLSInspection(connection.name, trust, tuple(inspections), client_error)


async def client_key_password(connection: Connection) -> str | None:
    """Return the client key's password: ``SSL_CLIENT_KEY_PASSWORD``, else the output of its process, else ``None``."""
    password = connection.secrets.get("SSL_CLIENT_KEY_PASSWORD")
    argv = connection.secret_processes.get("SSL_CLIENT_KEY_PASSWORD")
    if connection.client_certificate is None or password is not None or argv is None:
        return password
    return await run_credential_process(connection, "SSL_CLIENT_KEY_PASSWORD_PROCESS", argv)


async def _inspect_endpoint(
    endpoint: Endpoint,
    connection: Connection,
    trust: TrustSettings,
    probe_context: ssl.SSLContext,
    verify_context: ssl.SSLContext | None,
    setup_error: ConfigurationError | None,
    timeout: float,
) -> EndpointInspection:
    has_client_certificate = connection.client_certificate is not None
    try:
        reader, writer = await _open(endpoint, probe_context, timeout, connection.name)
        try:
            handshake = _handshake_of(writer, endpoint, connection.name)
            answer, rejection = await _request_head(
                reader, writer, endpoint, timeout, has_client_certificate=has_client_certificate
            )
        finally:
            await _close(writer)
    except ConnectError as error:
        return EndpointInspection(endpoint, None, Verification("not checked", reason=error.summary), error=error)

    anchors = SYSTEM_TRUST_STORE if trust.uses_system_store else "the CA bundle"
    if verify_context is None:
        assert setup_error is not None
        verification = Verification("not checked", reason=setup_error.summary, fix=_fix_of(setup_error))
    else:
        verification = await _verify(endpoint, verify_context, timeout, connection.name, anchors)
        if verification.status == "failed":
            verification = replace(
                verification,
                reason=_explain_reason(verification, handshake),
                fix=_fix_for(verification.code, endpoint, handshake, trust, connection),
            )
    return EndpointInspection(endpoint, handshake, verification, answer=answer, rejection=rejection)


async def _request_head(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    endpoint: Endpoint,
    timeout: float,
    *,
    has_client_certificate: bool,
) -> tuple[str | None, str | None]:
    """Send ``HEAD`` for the endpoint's path; return (status line, None) or (None, why there is none).

    In TLS 1.3 a server checks the client certificate after the client has
    finished its handshake. So a missing or rejected client certificate shows
    only here, when the server responds or closes the connection.
    """
    path = urlsplit(endpoint.url).path or "/"
    request = (
        f"HEAD {path} HTTP/1.1\r\nHost: {endpoint.authority}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Connection: close\r\n\r\n"
    )
    try:
        async with asyncio.timeout(timeout):
            writer.write(request.encode("ascii", errors="replace"))
            await writer.drain()
            line = await reader.readline()
    except ssl.SSLError as error:
        rejection = CLIENT_CERTIFICATE_ALERTS.get(error.reason or "")
        return None, rejection or f"the server ended the TLS connection ({_ssl_reason(error)})"
    except TimeoutError:
        return None, f"the server sent no answer within {timeout:g} s"
    except (OSError, ValueError):
        # ValueError: a first line longer than the stream's limit, so no HTTP status line either.
        line = b""
    if line.startswith(b"HTTP/"):
        return line.decode("ascii", errors="replace").strip(), None
    hint = (
        "it may have rejected the client certificate"
        if has_client_certificate
        else "it may require a client certificate (SSL_CLIENT_CERT)"
    )
    return None, f"the server closed the connection after the TLS handshake without an answer; {hint}"


def _explain_reason(verification: Verification, handshake: ServerHandshake) -> str:
    reason = verification.reason
    chain = handshake.chain
    if verification.code in (2, 20, 21) and len(chain) == 1 and not chain[0].self_issued:
        reason += " (the server sent only its own certificate, no intermediate CA certificate)"
    return reason


def _fix_for(
    code: int | None, endpoint: Endpoint, handshake: ServerHandshake, trust: TrustSettings, connection: Connection
) -> str:
    """Return the fix for a failed verification, with the names and dates it depends on."""
    chain = handshake.chain
    leaf = chain[0] if chain else None
    bundle_command = _bundle_command(connection, endpoint)
    if trust.uses_system_store:
        add_ca = (
            "install the CA certificate that issued it in the system trust store, or run "
            f"`{bundle_command}` and set SSL_TRUST_STORE=bundle and REQUESTS_CA_BUNDLE to that file"
        )
    else:
        add_ca = f"run `{bundle_command}` and set REQUESTS_CA_BUNDLE to that file"

    if code in (2, 20, 21) and leaf is not None:
        if len(chain) == 1 and not leaf.self_issued:
            return (
                f"add the CA certificate of the issuer {leaf.issuer} to the trust anchors, or configure the server "
                f"to send its intermediate certificates; or {add_ca} (it then trusts the server certificate itself)"
            )
        return f"{add_ca}, after checking the fingerprints of the chain with the deployment's administrator"
    if code == 18:
        return f"trust this self-signed certificate: {add_ca}; compare its SHA-256 fingerprint first"
    if code == 19:
        top = chain[issuer_path(chain)[-1]] if chain else None
        root = f" {top.subject}" if top is not None else ""
        return f"trust the root CA{root}: {add_ca}; compare its SHA-256 fingerprint first"
    if code == 10 and leaf is not None:
        return f"renew the server certificate (it expired on {leaf.not_after:%Y-%m-%d %H:%M} UTC); no CA bundle can fix this"
    if code == 9 and leaf is not None:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            f"check the clock of this machine (now {now:%Y-%m-%d %H:%M} UTC) and of the CA; "
            f"the certificate is valid from {leaf.not_before:%Y-%m-%d %H:%M} UTC"
        )
    if code in (62, 64) and leaf is not None:
        names = ", ".join((*leaf.dns_names, *leaf.ip_addresses)) or "none"
        return (
            f"use a host name that the certificate lists (names: {names}) in {endpoint.keys[0]}, "
            f"or reissue the certificate with {endpoint.host} as a subject alternative name"
        )
    if code == 26:
        return "reissue the server certificate with the extended key usage serverAuth (TLS Web Server Authentication)"
    if code == 24:
        return "fix the chain on the server: a certificate that is not a CA certificate issued the next one"
    if code == 23:
        return "replace the revoked certificate on the server"
    return f"compare the chain the server sent with {trust.describe_anchors()}"


def _bundle_command(connection: Connection, endpoint: Endpoint) -> str:
    if "CMEM_BASE_URI" not in endpoint.keys:
        return f"acmemc tls bundle --url https://{endpoint.authority} --output ca.pem"
    if connection.name == DEFAULT_CONNECTION_NAME:
        return "acmemc tls bundle --output ca.pem"
    return f"acmemc -c {connection.name} tls bundle --output ca.pem"


# Many connections


async def inspect_each(
    connections: Iterable[Connection],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    ssl_contexts: SSLContextCache | None = None,
) -> AsyncIterator[ConnectionResult[TLSInspection]]:
    """Inspect each connection, at most ``concurrency`` at once; yield results as they complete.

    Closing the iterator early cancels the inspections still running and waits
    until their sockets are closed.
    """
    contexts = ssl_contexts if ssl_contexts is not None else SSLContextCache()

    async def job(connection: Connection) -> TLSInspection:
        return await inspect_connection(connection, ssl_contexts=contexts, timeout=timeout)

    async for result in run_bounded(connections, job, concurrency=concurrency):
        yield result

