"""TLS: one SSLContext per distinct trust configuration, and plain-words verification errors.

A connection's trust settings are ``SSL_VERIFY`` and ``REQUESTS_CA_BUNDLE`` (a
PEM file or a directory of hashed certificates, default: the certifi bundle).
Building an ``ssl.SSLContext`` loads and parses every certificate of the bundle,
so :class:`SSLContextCache` builds one context per distinct configuration and
hands the same object to every connection and request that uses it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from ._config import Connection
from ._errors import CABundleError, TLSVerificationError

__all__ = [
    "SSLContextCache",
    "TrustSettings",
    "describe_verification_error",
    "fetch_server_certificate",
    "verification_error",
]

logger = logging.getLogger("acmemc.tls")

PEM_CERTIFICATE_BEGIN = b"-----BEGIN CERTIFICATE-----"

# OpenSSL X509_V_ERR_* codes (include/openssl/x509_vfy.h) with the cause in plain words.
VERIFY_REASONS = {
    2: "the certificate of its issuer is not in the CA bundle",
    9: "the certificate is not yet valid",
    10: "the certificate has expired",
    18: "the certificate is self-signed and not in the CA bundle",
    19: "the certificate chain ends in a self-signed root that is not in the CA bundle",
    20: "the certificate was issued by a certificate authority that is not in the CA bundle",
    21: "the certificate was issued by a certificate authority that is not in the CA bundle",
    23: "the certificate has been revoked",
    24: "an intermediate certificate is not allowed to issue certificates",
    26: "the certificate is not meant for TLS servers",
    62: "the certificate is not valid for this host name",
    64: "the certificate is not valid for this IP address",
}


@dataclass(frozen=True)
class TrustSettings:
    """What a connection trusts: verification on or off, and the CA bundle.

    ``ca_bundle`` is an absolute path to a PEM file or to a directory of
    certificates named by their subject hash (as ``openssl rehash`` makes them).
    """

    verify: bool
    ca_bundle: Path

    @classmethod
    def of(cls, connection: Connection) -> TrustSettings:
        return cls(verify=connection.ssl_verify, ca_bundle=connection.ca_bundle)


class SSLContextCache:
    """Builds SSLContexts, one per distinct trust configuration, and reuses them.

    A context is keyed by the trust settings and by the bundle's modification
    time and size, so a bundle that is replaced on disk gets a new context on the
    next lookup while an unchanged bundle is read once. ``contexts_built`` counts
    the contexts this cache has built.

    Usage::

        cache = SSLContextCache()
        context = cache.context_for(connection)
    """

    def __init__(self) -> None:
        self._contexts: dict[tuple[object, ...], ssl.SSLContext] = {}
        self.contexts_built = 0

    def context_for(self, connection: Connection) -> ssl.SSLContext:
        """Return the context for ``connection``'s trust settings.

        Raises :class:`CABundleError` if the CA bundle is missing, unreadable,
        empty or holds no PEM certificate.
        """
        trust = TrustSettings.of(connection)
        if not trust.verify:
            key: tuple[object, ...] = (False,)
        else:
            key = (True, trust.ca_bundle, *_file_identity(trust.ca_bundle, connection.name))
        context = self._contexts.get(key)
        if context is None:
            context = _build_context(trust, connection.name)
            self._contexts[key] = context
            self.contexts_built += 1
        if trust.verify:
            logger.debug("CA bundle loaded from %s", trust.ca_bundle, extra={"connection": connection.name})
        return context


def _file_identity(path: Path, connection: str) -> tuple[object, ...]:
    try:
        status = path.stat()
    except FileNotFoundError:
        raise _bundle_error(path, connection, "not found") from None
    except OSError as error:
        raise _bundle_error(path, connection, f"cannot be read ({error.strerror})") from None
    return (status.st_mtime_ns, status.st_size, status.st_ino)


def _bundle_error(path: Path, connection: str, problem: str) -> CABundleError:
    return CABundleError(
        f"CA bundle {path} (REQUESTS_CA_BUNDLE) {problem}. "
        "Fix: point REQUESTS_CA_BUNDLE to a PEM file with the issuing CA certificate, "
        "or to a directory of hashed certificates.",
        connection=connection,
        path=str(path),
    )


def _build_context(trust: TrustSettings, connection: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not trust.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    # Trust a certificate in the bundle even if it is not a self-signed root.
    # cmemc's documentation builds a bundle with `openssl s_client | openssl x509`,
    # which keeps only the server's own certificate; without this flag OpenSSL
    # rejects such a bundle when a private CA issued the certificate. Python 3.13
    # sets this flag in ssl.create_default_context() for the same reason.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN

    path = trust.ca_bundle
    if path.is_dir():
        _load_directory(context, path, connection)
    else:
        _load_file(context, path, connection)
    return context


def _load_file(context: ssl.SSLContext, path: Path, connection: str) -> None:
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise _bundle_error(path, connection, "not found") from None
    except OSError as error:
        raise _bundle_error(path, connection, f"cannot be read ({error.strerror})") from None
    if not content.strip():
        raise _bundle_error(path, connection, "is empty")
    if PEM_CERTIFICATE_BEGIN not in content:
        raise _bundle_error(path, connection, "contains no PEM certificate (no '-----BEGIN CERTIFICATE-----' line)")
    try:
        context.load_verify_locations(cafile=os.fspath(path))
    except ssl.SSLError as error:
        raise _bundle_error(path, connection, f"contains an invalid PEM certificate ({error.reason or error})") from None


def _load_directory(context: ssl.SSLContext, path: Path, connection: str) -> None:
    # OpenSSL finds certificates in a directory by subject hash ("5ed36f99.0") and
    # reads them only during a handshake, so a directory without such names would
    # fail every handshake with an unknown-issuer error. Check for them up front.
    try:
        names = os.listdir(path)
    except OSError as error:
        raise _bundle_error(path, connection, f"cannot be read ({error.strerror})") from None
    if not any(_is_hashed_name(name) for name in names):
        raise _bundle_error(
            path,
            connection,
            "is a directory without hashed certificate names such as 5ed36f99.0 (run `openssl rehash` on it)",
        )
    context.load_verify_locations(capath=os.fspath(path))


def _is_hashed_name(name: str) -> bool:
    stem, _, suffix = name.partition(".")
    return len(stem) == 8 and all(c in "0123456789abcdef" for c in stem) and suffix.isdigit()


def describe_verification_error(error: ssl.SSLCertVerificationError) -> str:
    """Return the cause of a failed certificate verification in plain words."""
    reason = VERIFY_REASONS.get(error.verify_code)
    if reason is not None:
        return reason
    message = error.verify_message or error.reason or "unknown reason"
    return f"verification failed ({message})"


def verification_error(
    error: ssl.SSLCertVerificationError, *, connection: Connection, host: str, url: str
) -> TLSVerificationError:
    """Turn an ``ssl`` verification failure into a one-line :class:`TLSVerificationError`."""
    reason = describe_verification_error(error)
    bundle = str(connection.ca_bundle)
    if connection.ca_bundle_is_default:
        bundle += " (certifi, the default)"
    return TLSVerificationError(
        f"TLS certificate of {host} did not verify: {reason}; CA bundle {bundle}. "
        "Fix: set REQUESTS_CA_BUNDLE to a PEM file with the CA that issued the certificate, "
        "or SSL_VERIFY=false for testing only.",
        connection=connection.name,
        url=url,
        reason=reason,
        host=host,
        ca_bundle=str(connection.ca_bundle),
    )


async def fetch_server_certificate(host: str, port: int, *, timeout: float) -> bytes | None:
    """Return the certificate (DER) that ``host:port`` presents, without verifying it; ``None`` if unreachable.

    The handshake does not verify, so that the certificate of a server that fails
    verification (expired, unknown issuer) can still be shown.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
    except (OSError, TimeoutError):
        return None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass
