"""CA bundles from what a server presents: choose a certificate, render PEM, write the file atomically.

This replaces the ``openssl s_client -showcerts | openssl x509`` pipeline. It
trusts whatever the network presented, so callers show the fingerprints and
ask before they write.
"""

from __future__ import annotations

import contextlib
import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

from ._client import DEFAULT_TIMEOUT
from ._config import Connection
from ._errors import BundleWriteError
from ._files import write_atomically
from ._inspect import (
    PresentedCertificate,
    ServerHandshake,
    Verification,
    check_verification,
    client_key_password,
    fetch_presented_chain,
    issuer_path,
)
from ._tls import SSLContextCache, non_verifying_context

__all__ = [
    "BundleChoice",
    "check_bundle",
    "choose_certificate",
    "fetch_chain",
    "render_bundle",
    "write_bundle_file",
]

# A CA bundle is public; the file is readable by all unless it replaces a file with other permissions.
BUNDLE_FILE_MODE = 0o644


@dataclass(frozen=True)
class BundleChoice:
    """The certificate to put in a bundle: its index in the presented chain (0 is the server's own) and why."""

    index: int
    certificate: PresentedCertificate
    explanation: str


async def fetch_chain(
    url: str,
    *,
    connection: Connection | None = None,
    ssl_contexts: SSLContextCache | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ServerHandshake:
    """Return the chain that the server of an ``https://`` URL presents, without verifying it.

    With ``connection``, its client certificate is presented, for a server that
    requires one during the handshake. Raises :class:`~acmemc.ConnectError` when
    the handshake fails, and :class:`~acmemc.ConfigurationError` when the client
    certificate cannot be loaded.
    """
    context = non_verifying_context()
    name = connection.name if connection is not None else None
    if connection is not None and connection.client_certificate is not None:
        contexts = ssl_contexts if ssl_contexts is not None else SSLContextCache()
        password = await client_key_password(connection)
        context = contexts.context_for(connection, verify=False, client_key_password=password)
    return await fetch_presented_chain(url, timeout=timeout, context=context, connection=name)


async def check_bundle(
    url: str, certificates: list[PresentedCertificate], *, timeout: float = DEFAULT_TIMEOUT
) -> Verification:
    """Verify the server of ``url`` with ``certificates`` as the only trust anchors, as a connection would."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The same partial-chain rule as for REQUESTS_CA_BUNDLE (see _tls.py), so that an intermediate CA
    # or a server certificate alone in the bundle verifies here as it will for the connection.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_verify_locations(cadata=b"".join(certificate.der for certificate in certificates))
    return await check_verification(url, context, timeout=timeout)


def choose_certificate(chain: tuple[PresentedCertificate, ...], select: int | None = None) -> BundleChoice:
    """Choose the certificate of ``chain`` that a bundle should trust.

    Without ``select`` this is the highest certificate on the issuer path from
    the server certificate: a root CA, or the top intermediate CA the server
    sent. Trusting it survives a renewal of the server certificate by the same
    CA. ``select`` picks a certificate by its 1-based position in the chain instead.
    Raises ``ValueError`` for an empty chain or a position outside it.
    """
    if not chain:
        raise ValueError("the server sent no certificate")
    if select is not None:
        if not 1 <= select <= len(chain):
            raise ValueError(f"--select {select} is outside the chain, which has {len(chain)} certificates")
        certificate = chain[select - 1]
        return BundleChoice(select - 1, certificate, "selected with --select")

    top_index = issuer_path(chain)[-1]
    top = chain[top_index]
    if top_index == 0 and top.self_issued:
        explanation = (
            "the server's self-signed certificate, the only one it sent; "
            "rebuild the bundle when the server certificate is renewed"
        )
    elif top_index == 0:
        explanation = (
            "the server's own certificate, because the server sent no CA certificate; rebuild the bundle when it is "
            f"renewed, or ask for the certificate of its issuer {top.issuer}, which lasts longer"
        )
    elif top.self_issued:
        explanation = (
            "the root CA at the top of the chain the server sent; "
            "the bundle stays valid when this CA renews the server certificate"
        )
    else:
        explanation = (
            f"the highest CA certificate the server sent (it did not send its issuer {top.issuer}); "
            "the bundle stays valid while this CA issues the server certificate"
        )
    return BundleChoice(top_index, top, explanation)


def render_bundle(certificates: list[PresentedCertificate], *, source: str) -> bytes:
    """Render certificates as a PEM bundle, each after comment lines with its subject, issuer and fingerprint.

    OpenSSL and Python's ``ssl`` skip the text outside the PEM blocks.
    """
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    lines = [f"# CA bundle written by acmemc on {today} from the chain that {source} presented."]
    for certificate in certificates:
        lines += [
            f"# Subject: {certificate.subject}",
            f"# Issuer: {certificate.issuer}",
            f"# Valid until: {certificate.not_after:%Y-%m-%d %H:%M} UTC",
            f"# SHA-256: {certificate.sha256}",
            certificate.pem.strip(),
        ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_bundle_file(path: Path, content: bytes, *, replace: bool, connection: str | None = None) -> None:
    """Write ``content`` to ``path`` atomically: readers see the old file or the new one, never a part.

    The content goes to a temporary file in the same directory, is flushed to
    disk, and is then renamed over ``path``. The temporary file is removed on
    any error, cancellation or Ctrl-C. An existing ``path`` is replaced only
    with ``replace``; without it the rename is a hard link, which fails if the
    file appeared in the meantime.
    """

    def fail(problem: str, fix: str) -> BundleWriteError:
        return BundleWriteError(f"CA bundle {path} {problem}. Fix: {fix}.", connection=connection, path=str(path))

    if path.is_dir():
        raise fail("is a directory", "name a file in it with --output")
    if path.exists() and not replace:
        raise fail("already exists", "add --force to replace it, or choose another --output")
    mode = BUNDLE_FILE_MODE
    with contextlib.suppress(OSError):
        mode = path.stat().st_mode & 0o7777

    try:
        write_atomically(path, content, mode=mode, replace=replace)
    except FileExistsError:
        raise fail("already exists", "add --force to replace it, or choose another --output") from None
    except FileNotFoundError:
        raise fail(f"cannot be written: the directory {path.parent} does not exist", "create it first") from None
    except OSError as error:
        raise fail(f"cannot be written ({error.strerror})", "check the free space and permissions") from None
