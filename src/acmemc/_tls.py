"""TLS: one SSLContext per distinct trust configuration, and plain-words verification errors.

A connection's trust settings are ``SSL_VERIFY``, ``SSL_TRUST_STORE`` and
``REQUESTS_CA_BUNDLE`` (a PEM file or a directory of hashed certificates,
default: the certifi bundle), and for mutual TLS ``SSL_CLIENT_CERT``,
``SSL_CLIENT_KEY`` and the key's password. Building an ``ssl.SSLContext`` loads
and parses every certificate of the bundle, so :class:`SSLContextCache` builds
one context per distinct configuration and hands the same object to every
connection and request that uses it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ._config import Connection, Source
from ._errors import CABundleError, ClientCertificateError, ConfigurationError, TLSVerificationError

__all__ = [
    "SSLContextCache",
    "TrustSettings",
    "describe_verification_error",
    "fetch_server_certificate",
    "non_verifying_context",
    "verification_error",
]

logger = logging.getLogger("acmemc.tls")

PEM_CERTIFICATE_BEGIN = b"-----BEGIN CERTIFICATE-----"
# "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", ...
PEM_PRIVATE_KEY_BEGIN = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
# PKCS #8 encrypted keys, and the traditional OpenSSL format with a Proc-Type header.
PEM_ENCRYPTED_KEY_MARKERS = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")

SYSTEM_TRUST_STORE = "the system trust store"

# A file may change again within the timestamp tick in which acmemc read it, and
# stat would not show it. So a file whose modification or change time is this close
# to the time of reading has its content compared on the next lookup, as git does
# for "racily clean" index entries. Two seconds cover coarse kernel timestamps and
# the 2-second resolution of FAT.
RACY_WINDOW_NS = 2_000_000_000

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
    """A connection's trust settings: verification, trust anchors and client certificate.

    ``trust_store`` is ``"bundle"`` to trust ``ca_bundle``, an absolute path to a
    PEM file or to a directory of certificates named by their subject hash (as
    ``openssl rehash`` makes them), or ``"system"`` to trust the operating
    system's store through the truststore package. ``client_certificate`` and
    ``client_key`` are the PEM files for mutual TLS; the key may be in the
    certificate file.
    """

    verify: bool
    ca_bundle: Path
    trust_store: str = "bundle"
    client_certificate: Path | None = None
    client_key: Path | None = None
    ca_bundle_is_default: bool = False

    @classmethod
    def of(cls, connection: Connection) -> TrustSettings:
        return cls(
            verify=connection.ssl_verify,
            ca_bundle=connection.ca_bundle,
            trust_store=connection.trust_store,
            client_certificate=connection.client_certificate,
            client_key=connection.client_key,
            ca_bundle_is_default=connection.ca_bundle_is_default,
        )

    @property
    def uses_system_store(self) -> bool:
        return self.trust_store == "system"

    def describe_anchors(self) -> str:
        """Name the trust anchors, e.g. "CA bundle /etc/ca.pem" or "the system trust store"."""
        if self.uses_system_store:
            return f"{SYSTEM_TRUST_STORE} (SSL_TRUST_STORE=system)"
        described = f"CA bundle {self.ca_bundle}"
        if self.ca_bundle_is_default:
            described += " (certifi, the default)"
        return described


@dataclass
class _FileState:
    """A trust file as it was when its context was built: stat stamp, content digest, time of reading."""

    path: Path
    stamp: tuple[int, int, int, int]
    digest: bytes | None
    read_ns: int


@dataclass
class _CachedContext:
    context: ssl.SSLContext
    files: tuple[_FileState, ...]


class SSLContextCache:
    """Builds SSLContexts, one per distinct trust configuration, and reuses them.

    Each lookup checks the files a context was built from (CA bundle, client
    certificate and key) with ``stat``. A file whose modification time, change
    time, size or inode differs gets a new context, so a renewed CA bundle
    applies to the next new connection of a long-running program. An unchanged
    file is not read again, except right after it was written: then its content
    is compared until its timestamp is safely in the past. ``contexts_built``
    counts the contexts this cache has built.

    Usage::

        cache = SSLContextCache()
        context = cache.context_for(connection)
    """

    def __init__(self) -> None:
        self._contexts: dict[tuple[object, ...], _CachedContext] = {}
        # Keys the password digests of the cache keys, so that no plain hash of a password is kept.
        self._password_key = os.urandom(16)
        self._unverified: ssl.SSLContext | None = None
        self.contexts_built = 0

    def unverified_context(self) -> ssl.SSLContext:
        """Return a :func:`non_verifying_context`, built once per cache."""
        if self._unverified is None:
            self._unverified = non_verifying_context()
            self.contexts_built += 1
        return self._unverified

    def context_for(
        self, connection: Connection, *, client_key_password: str | None = None, verify: bool | None = None
    ) -> ssl.SSLContext:
        """Return the context for ``connection``'s trust settings.

        ``client_key_password`` decrypts an encrypted client key; without it the
        connection's ``SSL_CLIENT_KEY_PASSWORD`` applies. ``verify`` overrides
        ``SSL_VERIFY``, for example to find out whether a connection with
        verification off would verify.

        Raises :class:`CABundleError` if the CA bundle is missing, unreadable,
        empty or contains no PEM certificate, and :class:`ClientCertificateError`
        if the client certificate or key cannot be loaded.
        """
        trust = TrustSettings.of(connection)
        if verify is not None:
            trust = replace(trust, verify=verify)
        password = client_key_password
        if password is None:
            password = connection.secrets.get("SSL_CLIENT_KEY_PASSWORD")

        key = self._key(trust, password)
        cached = self._contexts.get(key)
        if cached is None or not all(_unchanged(state) for state in cached.files):
            cached = _build_context(trust, password, connection)
            self._contexts[key] = cached
            self.contexts_built += 1

        extra = {"connection": connection.name}
        if trust.verify and trust.uses_system_store:
            logger.debug("Trust store: system (truststore)", extra=extra)
        elif trust.verify:
            logger.debug("CA bundle loaded from %s", trust.ca_bundle, extra=extra)
        if trust.client_certificate is not None:
            logger.debug(
                "Client certificate loaded from %s (key: %s)",
                trust.client_certificate,
                trust.client_key or "in the certificate file",
                extra=extra,
            )
        return cached.context

    def _key(self, trust: TrustSettings, password: str | None) -> tuple[object, ...]:
        digest = None
        if password is not None:
            digest = hmac.new(self._password_key, password.encode("utf-8"), hashlib.sha256).digest()
        client = (trust.client_certificate, trust.client_key, digest) if trust.client_certificate else None
        if not trust.verify:
            return (False, client)
        if trust.uses_system_store:
            return (True, "system", client)
        return (True, "bundle", trust.ca_bundle, client)


def _build_context(trust: TrustSettings, password: str | None, connection: Connection) -> _CachedContext:
    name = connection.name
    files: list[_FileState] = []
    if not trust.verify:
        context = _new_context(system=False)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif trust.uses_system_store:
        context = _new_context(system=True)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        if not connection.ca_bundle_is_default:
            logger.warning(
                "REQUESTS_CA_BUNDLE %s is not used, because SSL_TRUST_STORE=system trusts the system trust store.",
                trust.ca_bundle,
                extra={"connection": name},
            )
    else:
        context = _new_context(system=False)
        # Trust a certificate in the bundle even if it is not a self-signed root.
        # cmemc's documentation builds a bundle with `openssl s_client | openssl x509`,
        # which keeps only the server's own certificate. Without this flag OpenSSL
        # rejects such a bundle when a private CA issued the certificate. Python 3.13
        # sets this flag in ssl.create_default_context() for the same reason.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        if trust.ca_bundle.is_dir():
            files.append(_load_directory(context, trust.ca_bundle, name))
        else:
            files.append(_load_file(context, trust.ca_bundle, name))

    if trust.client_certificate is not None:
        files.extend(
            _load_client_certificate(context, trust.client_certificate, trust.client_key, password, connection)
        )
    return _CachedContext(context, tuple(files))


def _new_context(*, system: bool) -> ssl.SSLContext:
    context: ssl.SSLContext
    if system:
        # Imported here because only SSL_TRUST_STORE=system needs it.
        import truststore

        context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# Reading trust files


def _now_ns() -> int:
    """Return the wall-clock time that file timestamps are compared with; tests replace it."""
    return time.time_ns()


def _read_file(path: Path) -> bytes:
    """Read a trust file. Every read of a trust file goes through here, which tests count."""
    return path.read_bytes()


def _stat_stamp(path: Path) -> tuple[int, int, int, int]:
    """Return the ``stat`` fields that change with a file's content: modification and change time, size, inode."""
    status = path.stat()
    return (status.st_mtime_ns, status.st_ctime_ns, status.st_size, status.st_ino)


def _stamp(path: Path, error: Callable[[str], ConfigurationError]) -> tuple[int, int, int, int]:
    try:
        return _stat_stamp(path)
    except FileNotFoundError:
        raise error("not found") from None
    except OSError as failure:
        raise error(f"cannot be read ({failure.strerror})") from None


def _snapshot(path: Path, error: Callable[[str], ConfigurationError]) -> tuple[_FileState, bytes]:
    """Stat and read a file; the stat comes first, so a write after it shows in the next stat."""
    stamp = _stamp(path, error)
    read_ns = _now_ns()
    try:
        content = _read_file(path)
    except FileNotFoundError:
        raise error("not found") from None
    except IsADirectoryError:
        raise error("is a directory, not a file") from None
    except OSError as failure:
        raise error(f"cannot be read ({failure.strerror})") from None
    return _FileState(path, stamp, hashlib.sha256(content).digest(), read_ns), content


def _unchanged(state: _FileState) -> bool:
    """Tell whether a file still has the content that its context was built from.

    A file that cannot be read counts as changed: rebuilding the context then
    raises the error that names the file and its setting.
    """
    try:
        stamp = _stat_stamp(state.path)
    except OSError:
        return False
    if stamp != state.stamp:
        return False
    if state.digest is None:
        # A directory of hashed certificates: OpenSSL reads its files during handshakes.
        return True
    modified_ns = max(stamp[0], stamp[1])
    if modified_ns < state.read_ns - RACY_WINDOW_NS:
        return True
    try:
        content = _read_file(state.path)
    except OSError:
        return False
    if hashlib.sha256(content).digest() != state.digest:
        return False
    state.read_ns = _now_ns()
    return True


def non_verifying_context() -> ssl.SSLContext:
    """Return a client context that accepts any certificate, for reading what a server presents."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _bundle_error(path: Path, connection: str, problem: str) -> CABundleError:
    return CABundleError(
        f"CA bundle {path} (REQUESTS_CA_BUNDLE) {problem}. "
        "Fix: point REQUESTS_CA_BUNDLE to a PEM file with the issuing CA certificate, "
        "or to a directory of hashed certificates.",
        connection=connection,
        path=str(path),
    )


def _load_file(context: ssl.SSLContext, path: Path, connection: str) -> _FileState:
    state, content = _snapshot(path, lambda problem: _bundle_error(path, connection, problem))
    if not content.strip():
        raise _bundle_error(path, connection, "is empty")
    if PEM_CERTIFICATE_BEGIN not in content:
        raise _bundle_error(path, connection, "contains no PEM certificate (no '-----BEGIN CERTIFICATE-----' line)")
    try:
        context.load_verify_locations(cafile=os.fspath(path))
    except ssl.SSLError as error:
        raise _bundle_error(path, connection, f"contains an invalid PEM certificate ({error.reason or error})") from None
    return state


def _load_directory(context: ssl.SSLContext, path: Path, connection: str) -> _FileState:
    # OpenSSL finds certificates in a directory by subject hash ("5ed36f99.0") and
    # reads them only during a handshake, so a directory without such names would
    # fail every handshake with an unknown-issuer error. Check for them up front.
    stamp = _stamp(path, lambda problem: _bundle_error(path, connection, problem))
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
    return _FileState(path, stamp, None, _now_ns())


def _is_hashed_name(name: str) -> bool:
    stem, _, suffix = name.partition(".")
    return len(stem) == 8 and all(c in "0123456789abcdef" for c in stem) and suffix.isdigit()


# Client certificates


def _load_client_certificate(
    context: ssl.SSLContext,
    certificate: Path,
    key: Path | None,
    password: str | None,
    connection: Connection,
) -> list[_FileState]:
    """Load the client certificate and key, with an error for each way this fails.

    OpenSSL reports most failures as "PEM lib", so the files are checked here
    first: certificate present, key present, key encrypted and password given.
    """
    name = connection.name

    def certificate_error(problem: str, fix: str) -> ClientCertificateError:
        return ClientCertificateError(
            f"client certificate {certificate} (SSL_CLIENT_CERT) {problem}. Fix: {fix}.",
            connection=name,
            path=str(certificate),
        )

    key_path = key if key is not None else certificate
    key_key = "SSL_CLIENT_KEY" if key is not None else "SSL_CLIENT_CERT"

    def key_error(problem: str, fix: str) -> ClientCertificateError:
        return ClientCertificateError(
            f"client key {key_path} ({key_key}) {problem}. Fix: {fix}.", connection=name, path=str(key_path)
        )

    file_fix = "point SSL_CLIENT_CERT to the PEM file of the client certificate"
    certificate_state, certificate_content = _snapshot(certificate, lambda problem: certificate_error(problem, file_fix))
    if PEM_CERTIFICATE_BEGIN not in certificate_content:
        raise certificate_error("contains no PEM certificate (no '-----BEGIN CERTIFICATE-----' line)", file_fix)
    states = [certificate_state]
    if key is not None:
        key_state, key_content = _snapshot(key, lambda problem: key_error(problem, "point SSL_CLIENT_KEY to the PEM file of the private key"))
        states.append(key_state)
    else:
        key_content = certificate_content

    if not PEM_PRIVATE_KEY_BEGIN.search(key_content):
        if key is None:
            raise key_error(
                "contains no private key",
                "set SSL_CLIENT_KEY to the PEM file of the key, or append the key to the certificate file",
            )
        raise key_error("contains no PEM private key (no '-----BEGIN PRIVATE KEY-----' line)", "point SSL_CLIENT_KEY to the key file")

    encrypted = any(marker in key_content for marker in PEM_ENCRYPTED_KEY_MARKERS)
    if encrypted and password is None:
        raise _missing_password_error(key_error, connection)

    def password_callback() -> str:
        # Given in every case, so that OpenSSL never prompts on the terminal for a password.
        if password is None:
            raise _missing_password_error(key_error, connection)
        return password

    try:
        context.load_cert_chain(os.fspath(certificate), os.fspath(key) if key is not None else None, password_callback)
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise key_error(
                f"does not belong to the client certificate {certificate}",
                "use the key that the certificate was issued for, or the certificate that belongs to this key",
            ) from None
        if encrypted:
            raise key_error(
                "cannot be decrypted with the password of SSL_CLIENT_KEY_PASSWORD", "set the correct password"
            ) from None
        raise key_error(
            f"or the certificate cannot be loaded ({error.reason or 'invalid PEM data'})",
            "check that both are PEM files and not corrupted",
        ) from None
    except OSError as error:
        # The files were read a moment ago, so this is a race with a program that replaces them.
        raise certificate_error(f"cannot be read ({error.strerror})", file_fix) from None
    return states


def _missing_password_error(
    key_error: Callable[[str, str], ClientCertificateError], connection: Connection
) -> ClientCertificateError:
    if "SSL_CLIENT_KEY_PASSWORD" in connection.secret_processes:
        return key_error(
            "is encrypted, and the password that SSL_CLIENT_KEY_PASSWORD_PROCESS prints was not passed to the TLS setup",
            "set SSL_CLIENT_KEY_PASSWORD, or use a command that runs the password process first, such as `acmemc tls inspect`",
        )
    return key_error(
        "is encrypted and no password is set",
        "set SSL_CLIENT_KEY_PASSWORD or SSL_CLIENT_KEY_PASSWORD_PROCESS, or use an unencrypted key",
    )


# Verification errors


def describe_verification_error(error: ssl.SSLCertVerificationError, *, anchors: str = "the CA bundle") -> str:
    """Return the cause of a failed certificate verification in plain words.

    ``anchors`` names what the connection trusts where the cause mentions it,
    for example "the system trust store".
    """
    reason = VERIFY_REASONS.get(error.verify_code)
    if reason is not None:
        return reason.replace("the CA bundle", anchors)
    message = error.verify_message or error.reason or "unknown reason"
    return f"verification failed ({message})"


# OpenSSL X509_V_ERR_* codes whose fix is not another CA bundle.
X509_V_ERR_CERT_NOT_YET_VALID = 9
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_HOSTNAME_MISMATCH = 62
X509_V_ERR_IP_ADDRESS_MISMATCH = 64


def _bundle_origin(connection: Connection) -> str:
    """Say where REQUESTS_CA_BUNDLE was set when that is not obvious: the environment or [DEFAULT]."""
    setting = connection.settings.get("REQUESTS_CA_BUNDLE")
    if connection.trust_store == "system" or setting is None or setting.source in (Source.SECTION, Source.BUILTIN):
        return ""
    return f" (REQUESTS_CA_BUNDLE from {connection.describe_source('REQUESTS_CA_BUNDLE')})"


def verification_error(
    error: ssl.SSLCertVerificationError, *, connection: Connection, host: str, url: str
) -> TLSVerificationError:
    """Turn an ``ssl`` verification failure into a one-line :class:`TLSVerificationError`."""
    trust = TrustSettings.of(connection)
    if trust.uses_system_store:
        reason = describe_verification_error(error, anchors=SYSTEM_TRUST_STORE)
        fix = (
            "Fix: install the CA that issued the certificate in the system trust store, or set "
            "SSL_TRUST_STORE=bundle and REQUESTS_CA_BUNDLE to a PEM file with that CA "
            "(`acmemc tls bundle` writes one), or SSL_VERIFY=false for testing only."
        )
        anchors = "system trust store"
    else:
        reason = describe_verification_error(error)
        fix = (
            "Fix: set REQUESTS_CA_BUNDLE to a PEM file with the CA that issued the certificate "
            "(`acmemc tls bundle` writes one), or SSL_VERIFY=false for testing only."
        )
        anchors = str(connection.ca_bundle)
    # A trusted certificate that is out of date or names another host needs no
    # other bundle: the certificate, the clock or the URL must change.
    if error.verify_code in (X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED):
        fix = (
            "Fix: renew the server certificate, or correct this machine's clock if it is wrong; "
            "SSL_VERIFY=false for testing only."
        )
    elif error.verify_code in (X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH):
        fix = (
            "Fix: use a host name the certificate names in CMEM_BASE_URI (see `acmemc tls inspect`), "
            "or reissue the certificate for this name; SSL_VERIFY=false for testing only."
        )
    return TLSVerificationError(
        f"TLS certificate of {host} did not verify: {reason}; {trust.describe_anchors()}{_bundle_origin(connection)}. {fix}",
        connection=connection.name,
        url=url,
        reason=reason,
        host=host,
        ca_bundle=anchors,
    )


async def fetch_server_certificate(
    host: str, port: int, *, timeout: float, context: ssl.SSLContext
) -> bytes | None:
    """Return the certificate (DER) that ``host:port`` presents; ``None`` if unreachable.

    ``context`` should not verify (see :meth:`SSLContextCache.unverified_context`),
    so that the certificate of a server that fails verification (expired,
    unknown issuer) can still be shown.
    """
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

