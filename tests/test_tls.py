"""TLS trust settings against real HTTPS servers on loopback.

Most tests start their own HTTPS server on 127.0.0.1 (or ::1) with a
certificate from trustme or a self-signed one, and point a connection at it with
``SSL_VERIFY`` and ``REQUESTS_CA_BUNDLE`` as a user would set them.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import ssl
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import certifi
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from acmemc import (
    CABundleError,
    Client,
    ConnectError,
    Connection,
    SSLContextCache,
    TLSVerificationError,
)

from _helpers import connection_from
from tls_servers import (
    StartServer,
    GRAPHS,
    GRAPHS_PATH,
    TOKEN_PATH,
    BlockingHTTPSServer,
    ServerCertificate,
    self_signed_certificate,
    server_context,
)

# Text of aiohttp and ssl exceptions that must never reach the user's message.
LIBRARY_FRAGMENTS = (
    "ClientConnectorCertificateError",
    "Cannot connect to host",
    "SSLCertVerificationError",
    "[SSL:",
    "aiohttp",
)

SUCCESSFUL_REQUESTS = [f"POST {TOKEN_PATH}", f"GET {GRAPHS_PATH}"]





def write_bundle(path: Path, *pems: bytes) -> Path:
    path.write_bytes(b"".join(pems))
    return path


def tls_connection(base_uri: str, name: str = "tls", **keys: str | Path) -> Connection:
    """Resolve the connection ``name`` to ``base_uri`` with the extra config ``keys``."""
    lines = [f"[{name}]", f"CMEM_BASE_URI={base_uri}", "OAUTH_CLIENT_SECRET=secret"]
    lines += [f"{key}={value}" for key, value in keys.items()]
    return connection_from("\n".join(lines) + "\n", name)


async def fetch_graphs(connection: Connection, ssl_contexts: SSLContextCache | None = None) -> list[dict[str, object]]:
    if ssl_contexts is None:
        ssl_contexts = SSLContextCache()
    async with Client(connection, ssl_contexts=ssl_contexts, timeout=5) as client:
        return await client.graph_list()


async def verification_failure(connection: Connection) -> TLSVerificationError:
    with pytest.raises(TLSVerificationError) as raised:
        await fetch_graphs(connection)
    return raised.value


def subject_hash(certificate_file: Path) -> str:
    """Return OpenSSL's subject hash of a certificate, the stem of its name in a hashed directory."""
    result = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(certificate_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.strip()


async def leaf_from_s_client(port: int) -> bytes:
    """Fetch the server certificate with ``openssl s_client | openssl x509``, as users build a bundle.

    The command runs as a subprocess so that the server, in this event loop, can complete the handshake.
    """
    command = f"openssl s_client -showcerts -connect 127.0.0.1:{port} </dev/null | openssl x509 -outform PEM"
    process = await asyncio.create_subprocess_shell(
        command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")
    return stdout


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


# Trusted bundles


async def test_pem_file_bundle_verifies(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1", "localhost"))
    bundle = write_bundle(tmp_path / "ca.pem", ca.cert_pem.bytes())

    graphs = await fetch_graphs(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert graphs == GRAPHS
    assert server.requests == SUCCESSFUL_REQUESTS


async def test_hashed_directory_bundle_verifies(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1", "localhost"))
    ca_file = write_bundle(tmp_path / "ca.pem", ca.cert_pem.bytes())
    directory = tmp_path / "certs"
    directory.mkdir()
    shutil.copy(ca_file, directory / f"{subject_hash(ca_file)}.0")

    graphs = await fetch_graphs(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=directory))

    assert graphs == GRAPHS


async def test_bundle_comments_crlf_several_certificates(
    ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    text = (
        b"# Unrelated CA first\n"
        + other_ca.cert_pem.bytes()
        + b"\n# The CA that issued the server certificate\n"
        + ca.cert_pem.bytes()
        + b"# end of bundle\n"
    )
    bundle = write_bundle(tmp_path / "bundle.pem", text.replace(b"\n", b"\r\n"))

    graphs = await fetch_graphs(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert graphs == GRAPHS


async def test_intermediate_chain_root_in_bundle(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    intermediate = ca.create_child_ca()
    leaf = intermediate.issue_cert("127.0.0.1")
    assert len(leaf.cert_chain_pems) == 2
    server = await start_server(leaf)
    bundle = write_bundle(tmp_path / "root.pem", ca.cert_pem.bytes())

    graphs = await fetch_graphs(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert graphs == GRAPHS


async def test_intermediate_alone_in_bundle_verifies(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    intermediate = ca.create_child_ca()
    server = await start_server(ServerCertificate.from_trustme(intermediate.issue_cert("127.0.0.1"), with_intermediates=False))
    bundle = write_bundle(tmp_path / "intermediate.pem", intermediate.cert_pem.bytes())

    graphs = await fetch_graphs(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert graphs == GRAPHS


async def test_s_client_bundle_self_signed(start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(self_signed_certificate("127.0.0.1"))
    leaf = await leaf_from_s_client(server.port)
    assert leaf.startswith(b"-----BEGIN CERTIFICATE-----")
    bundle = write_bundle(tmp_path / "server.pem", leaf)

    graphs = await fetch_graphs(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert graphs == GRAPHS


async def test_s_client_bundle_private_ca_leaf(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    certificate = ServerCertificate.from_trustme(ca.issue_cert("127.0.0.1"))
    server = await start_server(certificate)
    leaf = await leaf_from_s_client(server.port)
    assert leaf == certificate.leaf_pem
    bundle = write_bundle(tmp_path / "server.pem", leaf)

    graphs = await fetch_graphs(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert graphs == GRAPHS


async def test_relative_bundle_from_current_directory(
    ca: trustme.CA, start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    directory = tmp_path / "certs"
    directory.mkdir()
    bundle = write_bundle(directory / "ca.pem", ca.cert_pem.bytes())
    monkeypatch.chdir(directory)

    connection = tls_connection(server.base_uri, REQUESTS_CA_BUNDLE="ca.pem")
    graphs = await fetch_graphs(connection)

    assert connection.ca_bundle == bundle
    assert graphs == GRAPHS


async def test_ipv6_loopback_verifies(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("::1"), host="::1")
    bundle = write_bundle(tmp_path / "ca.pem", ca.cert_pem.bytes())

    graphs = await fetch_graphs(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert graphs == GRAPHS


# Verification failures


async def test_unknown_ca_error(ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = write_bundle(tmp_path / "other-ca.pem", other_ca.cert_pem.bytes())

    error = await verification_failure(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))
    message = str(error)

    assert "certificate authority that is not in the CA bundle" in error.reason
    assert error.host == f"127.0.0.1:{server.port}"
    assert error.ca_bundle == str(bundle)
    assert error.connection == "tls"
    assert message.startswith("connection 'tls': ")
    assert f"127.0.0.1:{server.port}" in message
    assert error.reason in message
    assert str(bundle) in message
    assert "REQUESTS_CA_BUNDLE" in message
    assert "SSL_VERIFY=false" in message
    assert "\n" not in message
    for fragment in LIBRARY_FRAGMENTS:
        assert fragment not in message
    assert server.requests == []


async def test_self_signed_certificate_reason(
    ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(self_signed_certificate("127.0.0.1"))
    bundle = write_bundle(tmp_path / "ca.pem", ca.cert_pem.bytes())

    error = await verification_failure(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert "self-signed" in error.reason
    assert error.reason in str(error)


async def test_expired_certificate_reason(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    leaf = ca.issue_cert(
        "127.0.0.1", not_before=now() - datetime.timedelta(days=30), not_after=now() - datetime.timedelta(days=1)
    )
    server = await start_server(leaf)
    bundle = write_bundle(tmp_path / "ca.pem", ca.cert_pem.bytes())

    error = await verification_failure(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert "expired" in error.reason
    assert error.reason in str(error)
    assert "renew the server certificate" in str(error)
    assert "REQUESTS_CA_BUNDLE" not in str(error)


async def test_not_yet_valid_certificate_reason(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    leaf = ca.issue_cert(
        "127.0.0.1", not_before=now() + datetime.timedelta(days=1), not_after=now() + datetime.timedelta(days=30)
    )
    server = await start_server(leaf)
    bundle = write_bundle(tmp_path / "ca.pem", ca.cert_pem.bytes())

    error = await verification_failure(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert "not yet valid" in error.reason
    assert error.reason in str(error)


async def test_ip_address_mismatch_reason(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("localhost"))
    bundle = write_bundle(tmp_path / "ca.pem", ca.cert_pem.bytes())

    error = await verification_failure(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert "IP address" in error.reason
    assert error.host == f"127.0.0.1:{server.port}"


async def test_host_name_mismatch_reason(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("other.test"))
    bundle = write_bundle(tmp_path / "ca.pem", ca.cert_pem.bytes())

    error = await verification_failure(tls_connection(f"https://localhost:{server.port}", REQUESTS_CA_BUNDLE=bundle))

    assert "host name" in error.reason
    assert error.host == f"localhost:{server.port}"
    assert "reissue the certificate" in str(error)


async def test_missing_intermediate_reason(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    intermediate = ca.create_child_ca()
    server = await start_server(ServerCertificate.from_trustme(intermediate.issue_cert("127.0.0.1"), with_intermediates=False))
    bundle = write_bundle(tmp_path / "root.pem", ca.cert_pem.bytes())

    error = await verification_failure(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert "not in the CA bundle" in error.reason


async def test_ipv6_host_bracketed_in_error(
    ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(ca.issue_cert("::1"), host="::1")
    bundle = write_bundle(tmp_path / "other-ca.pem", other_ca.cert_pem.bytes())

    error = await verification_failure(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert error.host == f"[::1]:{server.port}"
    assert f"[::1]:{server.port}" in str(error)


async def test_default_bundle_is_certifi(ca: trustme.CA, start_server: StartServer) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    connection = tls_connection(server.base_uri)

    error = await verification_failure(connection)

    assert connection.ca_bundle_is_default
    assert error.ca_bundle == certifi.where()
    assert "certifi" in str(error)
    assert "the default" in str(error)
    assert "certificate authority that is not in the CA bundle" in error.reason


# SSL_VERIFY=false


@pytest.mark.parametrize("value", ["false", "FALSE"])
async def test_ssl_verify_false_accepts_unknown_ca(
    value: str, ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = write_bundle(tmp_path / "other-ca.pem", other_ca.cert_pem.bytes())

    graphs = await fetch_graphs(tls_connection(server.base_uri, SSL_VERIFY=value, REQUESTS_CA_BUNDLE=bundle))

    assert graphs == GRAPHS


async def test_ssl_verify_false_ignores_missing_bundle(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    connection = tls_connection(server.base_uri, SSL_VERIFY="false", REQUESTS_CA_BUNDLE=tmp_path / "missing.pem")

    graphs = await fetch_graphs(connection)

    assert graphs == GRAPHS


# CA bundle errors, raised before any request


def make_missing(path: Path, ca: trustme.CA) -> Path:
    return path


def make_empty(path: Path, ca: trustme.CA) -> Path:
    return write_bundle(path, b"\n  \n")


def make_without_pem(path: Path, ca: trustme.CA) -> Path:
    return write_bundle(path, b"this is not a certificate\n")


def make_der(path: Path, ca: trustme.CA) -> Path:
    certificate = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    return write_bundle(path, certificate.public_bytes(Encoding.DER))


def make_garbage_in_pem(path: Path, ca: trustme.CA) -> Path:
    return write_bundle(path, b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")


def make_unhashed_directory(path: Path, ca: trustme.CA) -> Path:
    path.mkdir()
    write_bundle(path / "ca.pem", ca.cert_pem.bytes())
    return path


@pytest.mark.parametrize(
    ("make_bundle", "problem"),
    [
        (make_missing, "not found"),
        (make_empty, "is empty"),
        (make_without_pem, "contains no PEM certificate"),
        (make_der, "contains no PEM certificate"),
        (make_garbage_in_pem, "invalid PEM certificate"),
        (make_unhashed_directory, "without hashed certificate names"),
    ],
    ids=["missing", "empty", "no-pem", "der", "garbage-in-pem", "unhashed-directory"],
)
async def test_bundle_error_before_request(
    make_bundle: Callable[[Path, trustme.CA], Path],
    problem: str,
    ca: trustme.CA,
    start_server: StartServer,
    tmp_path: Path,
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = make_bundle(tmp_path / "bundle", ca)
    connection = tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle)

    with pytest.raises(CABundleError) as raised:
        await fetch_graphs(connection)
    message = str(raised.value)

    assert raised.value.path == str(bundle)
    assert raised.value.connection == "tls"
    assert message.startswith("connection 'tls': ")
    assert str(bundle) in message
    assert problem in message
    assert "\n" not in message
    assert server.requests == []


# One SSLContext per trust configuration


async def test_context_shared_per_bundle(
    ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = write_bundle(tmp_path / "ca.pem", ca.cert_pem.bytes())
    other_bundle = write_bundle(tmp_path / "other-ca.pem", other_ca.cert_pem.bytes())
    sharing = [tls_connection(server.base_uri, name, REQUESTS_CA_BUNDLE=bundle) for name in ("a", "b", "c")]
    separate = tls_connection(server.base_uri, "d", REQUESTS_CA_BUNDLE=other_bundle)
    cache = SSLContextCache()

    contexts = [cache.context_for(connection) for connection in sharing]
    separate_context = cache.context_for(separate)
    results = await asyncio.gather(*(fetch_graphs(connection, cache) for connection in sharing))

    assert cache.contexts_built == 2
    assert contexts[1] is contexts[0]
    assert contexts[2] is contexts[0]
    assert separate_context is not contexts[0]
    assert results == [GRAPHS, GRAPHS, GRAPHS]
    assert len(server.requests) == 6


async def test_context_shared_when_verify_off(tmp_path: Path) -> None:
    first = tls_connection("https://127.0.0.1:9", "first", SSL_VERIFY="false", REQUESTS_CA_BUNDLE=tmp_path / "a.pem")
    second = tls_connection("https://127.0.0.1:9", "second", SSL_VERIFY="false", REQUESTS_CA_BUNDLE=tmp_path / "b.pem")
    cache = SSLContextCache()

    first_context = cache.context_for(first)
    second_context = cache.context_for(second)

    assert second_context is first_context
    assert cache.contexts_built == 1
    assert first_context.verify_mode == ssl.CERT_NONE


async def test_rewritten_bundle_gets_new_context(
    ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = write_bundle(tmp_path / "ca.pem", other_ca.cert_pem.bytes())
    connection = tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle)
    cache = SSLContextCache()

    old_context = cache.context_for(connection)
    with pytest.raises(TLSVerificationError):
        await fetch_graphs(connection, cache)
    write_bundle(bundle, other_ca.cert_pem.bytes(), ca.cert_pem.bytes())
    new_context = cache.context_for(connection)
    graphs = await fetch_graphs(connection, cache)

    assert new_context is not old_context
    assert cache.contexts_built == 2
    assert graphs == GRAPHS


# TLS versions


def tls_1_1_server_context(certificate: ServerCertificate, directory: Path) -> ssl.SSLContext:
    context = server_context(certificate, directory)
    with warnings.catch_warnings():
        # ssl deprecates the TLS 1.0 and 1.1 members, which this server needs.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    # With OpenSSL 3.0.19 a TLS 1.1 server fails with "no ciphers available" above security level 0.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def tls_1_1_handshake_works(ca: trustme.CA, server: ssl.SSLContext) -> bool:
    """Tell whether the local OpenSSL completes a TLS 1.1 handshake at all, in memory."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client.minimum_version = ssl.TLSVersion.TLSv1
            client.maximum_version = ssl.TLSVersion.TLSv1_1
        client.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return False
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client_side = client.wrap_bio(client_in, client_out, server_hostname="127.0.0.1")
    server_side = server.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):
        for side in (client_side, server_side):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return False
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    return client_side.version() == "TLSv1.1"


async def test_tls_1_1_server_rejected(ca: trustme.CA, tmp_path: Path) -> None:
    certificate = ServerCertificate.from_trustme(ca.issue_cert("127.0.0.1"))
    try:
        context = tls_1_1_server_context(certificate, tmp_path)
    except (ValueError, ssl.SSLError) as error:
        pytest.skip(f"the local OpenSSL cannot configure a TLS 1.1 server: {error}")
    if not tls_1_1_handshake_works(ca, context):
        pytest.skip("the local OpenSSL does not complete a TLS 1.1 handshake")
    bundle = write_bundle(tmp_path / "ca.pem", ca.cert_pem.bytes())
    with BlockingHTTPSServer(context) as server:
        with pytest.raises(ConnectError) as raised:
            await fetch_graphs(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))
    message = str(raised.value)

    assert len(server.handshake_errors) == 1
    assert not isinstance(raised.value, TLSVerificationError)
    assert "TLS 1.2" in message
    assert f"127.0.0.1:{server.port}" in message
    for fragment in LIBRARY_FRAGMENTS:
        assert fragment not in message


async def test_bundle_from_environment_named_in_error(
    ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    """The unnamed connection takes REQUESTS_CA_BUNDLE from the environment, and the error names that source."""
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = write_bundle(tmp_path / "other-ca.pem", other_ca.cert_pem.bytes())
    environ = {"CMEM_BASE_URI": server.base_uri, "OAUTH_CLIENT_SECRET": "x", "REQUESTS_CA_BUNDLE": str(bundle)}

    error = await verification_failure(connection_from("[DEFAULT]\n", None, environ=environ))

    assert "(REQUESTS_CA_BUNDLE from the environment)" in str(error)


async def test_bundle_from_section_not_explained(ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = write_bundle(tmp_path / "other-ca.pem", other_ca.cert_pem.bytes())

    error = await verification_failure(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert "REQUESTS_CA_BUNDLE from" not in str(error)
