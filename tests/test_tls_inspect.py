"""`acmemc tls inspect` and `acmemc tls bundle` against real TLS servers on loopback.

Servers use trustme certificates (or a self-signed one) and listen on 127.0.0.1
or ::1 only. The library functions are tested first, then the commands.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path

import pytest
import trustme
from asyncclick.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import acmemc._files
from acmemc import Client, Connection, SSLContextCache, inspect_connection, inspect_each
from acmemc._bundle import BundleWriteError, check_bundle, choose_certificate, fetch_chain, render_bundle, write_bundle_file
from acmemc._inspect import PresentedCertificate, connection_endpoints, issuer_path
from acmemc.cli import cli

from _helpers import connection_from
from tls_servers import StartServer, GRAPHS, BlockingHTTPSServer, ServerCertificate, self_signed_certificate, server_context





def tls_connection(base_uri: str, name: str = "tls", **keys: str | Path) -> Connection:
    lines = [f"[{name}]", f"CMEM_BASE_URI={base_uri}", "OAUTH_CLIENT_SECRET=secret"]
    lines += [f"{key}={value}" for key, value in keys.items()]
    return connection_from("\n".join(lines) + "\n", name)


def write_file(path: Path, *parts: bytes) -> Path:
    path.write_bytes(b"".join(parts))
    return path


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def fingerprint(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex(":").upper()


def subject(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).subject.rfc4514_string()


def closed_port() -> int:
    """Return a loopback port that nothing listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return int(listener.getsockname()[1])


# Chains and verification results


async def test_intermediate_sent_verifies(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    intermediate = ca.create_child_ca()
    leaf = intermediate.issue_cert("127.0.0.1")
    server = await start_server(leaf)
    bundle = write_file(tmp_path / "root.pem", ca.cert_pem.bytes())

    inspection = await inspect_connection(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle), timeout=5)
    endpoint = inspection.endpoints[0]
    handshake = endpoint.handshake

    assert inspection.ok
    assert handshake is not None
    assert handshake.tls_version in ("TLSv1.2", "TLSv1.3")
    assert handshake.cipher
    assert len(handshake.chain) == 2
    assert handshake.chain[0].sha256 == fingerprint(leaf.cert_chain_pems[0].bytes())
    assert handshake.chain[1].sha256 == fingerprint(intermediate.cert_pem.bytes())
    assert handshake.chain[0].issuer == handshake.chain[1].subject
    assert handshake.chain[1].is_ca
    assert not handshake.chain[0].is_ca
    assert handshake.chain[0].ip_addresses == ("127.0.0.1",)
    assert handshake.chain[0].not_before < now() < handshake.chain[0].not_after
    assert endpoint.verification.status == "verified"
    assert endpoint.verification.reason == ""
    assert endpoint.answer is not None and endpoint.answer.startswith("HTTP/1.1 ")
    assert endpoint.rejection is None
    assert endpoint.endpoint.keys == ("CMEM_BASE_URI", "DP_API_ENDPOINT", "DI_API_ENDPOINT", "OAUTH_TOKEN_URI")


async def test_intermediate_not_sent_reason(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    intermediate = ca.create_child_ca()
    server = await start_server(intermediate.issue_cert("127.0.0.1"), with_intermediates=False)
    bundle = write_file(tmp_path / "root.pem", ca.cert_pem.bytes())

    inspection = await inspect_connection(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle), timeout=5)
    endpoint = inspection.endpoints[0]
    verification = endpoint.verification

    assert not inspection.ok
    assert endpoint.handshake is not None
    assert len(endpoint.handshake.chain) == 1
    assert verification.status == "failed"
    assert verification.code == 20
    assert "not in the CA bundle" in verification.reason
    assert "sent only its own certificate" in verification.reason
    assert subject(intermediate.cert_pem.bytes()) in verification.fix
    assert "intermediate" in verification.fix


async def test_expired_certificate_fix(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    leaf = ca.issue_cert(
        "127.0.0.1", not_before=now() - datetime.timedelta(days=30), not_after=now() - datetime.timedelta(days=1)
    )
    server = await start_server(leaf)
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())

    inspection = await inspect_connection(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle), timeout=5)
    verification = inspection.endpoints[0].verification

    assert verification.code == 10
    assert "expired" in verification.reason
    assert "renew the server certificate" in verification.fix


async def test_not_yet_valid_certificate_fix(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    leaf = ca.issue_cert(
        "127.0.0.1", not_before=now() + datetime.timedelta(days=1), not_after=now() + datetime.timedelta(days=30)
    )
    server = await start_server(leaf)
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())

    inspection = await inspect_connection(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle), timeout=5)
    verification = inspection.endpoints[0].verification

    assert verification.code == 9
    assert "not yet valid" in verification.reason
    assert "clock" in verification.fix


async def test_host_name_mismatch_fix(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("other.test"))
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())

    connection = tls_connection(f"https://localhost:{server.port}", REQUESTS_CA_BUNDLE=bundle)
    inspection = await inspect_connection(connection, timeout=5)
    endpoint = inspection.endpoints[0]

    assert endpoint.handshake is not None
    assert endpoint.handshake.chain[0].dns_names == ("other.test",)
    assert endpoint.verification.code == 62
    assert "host name" in endpoint.verification.reason
    assert "other.test" in endpoint.verification.fix
    assert "CMEM_BASE_URI" in endpoint.verification.fix


async def test_ip_address_names_verify(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("::1", "127.0.0.1"), host="::1")
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())

    inspection = await inspect_connection(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle), timeout=5)
    endpoint = inspection.endpoints[0]

    assert endpoint.handshake is not None
    assert endpoint.handshake.chain[0].ip_addresses == ("::1", "127.0.0.1")
    assert endpoint.handshake.chain[0].dns_names == ()
    assert endpoint.endpoint.authority == f"[::1]:{server.port}"
    assert endpoint.verification.status == "verified"


async def test_ip_address_mismatch_fix(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("localhost"))
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())

    inspection = await inspect_connection(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle), timeout=5)
    verification = inspection.endpoints[0].verification

    assert verification.code == 64
    assert "IP address" in verification.reason
    assert "localhost" in verification.fix


async def test_self_signed_fix_names_bundle_command(start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(self_signed_certificate("127.0.0.1"))

    inspection = await inspect_connection(tls_connection(server.base_uri, "prod"), timeout=5)
    verification = inspection.endpoints[0].verification

    assert verification.code == 18
    assert "self-signed" in verification.reason
    assert "`acmemc -c prod tls bundle --output ca.pem`" in verification.fix
    assert inspection.trust.ca_bundle_is_default


async def test_verify_off_reports_would_fail(
    ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = write_file(tmp_path / "other.pem", other_ca.cert_pem.bytes())

    connection = tls_connection(server.base_uri, SSL_VERIFY="false", REQUESTS_CA_BUNDLE=bundle)
    inspection = await inspect_connection(connection, timeout=5)
    verification = inspection.endpoints[0].verification

    assert inspection.ok
    assert not inspection.trust.verify
    assert verification.status == "failed"
    assert "certificate authority that is not in the CA bundle" in verification.reason


async def test_verify_off_reports_would_verify(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())

    connection = tls_connection(server.base_uri, SSL_VERIFY="false", REQUESTS_CA_BUNDLE=bundle)
    inspection = await inspect_connection(connection, timeout=5)

    assert inspection.ok
    assert inspection.endpoints[0].verification.status == "verified"


async def test_missing_bundle_still_shows_chain(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    missing = tmp_path / "missing.pem"

    inspection = await inspect_connection(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=missing), timeout=5)
    endpoint = inspection.endpoints[0]

    assert not inspection.ok
    assert endpoint.handshake is not None
    assert len(endpoint.handshake.chain) == 1
    assert endpoint.verification.status == "not checked"
    assert str(missing) in endpoint.verification.reason
    assert "not found" in endpoint.verification.reason
    assert "REQUESTS_CA_BUNDLE" in endpoint.verification.fix


async def test_token_endpoint_on_other_host(ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    base = await start_server(ca.issue_cert("127.0.0.1"))
    keycloak = await start_server(other_ca.issue_cert("localhost"))
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    token_uri = f"https://localhost:{keycloak.port}/realms/cmem/protocol/openid-connect/token"

    connection = tls_connection(base.base_uri, REQUESTS_CA_BUNDLE=bundle, OAUTH_TOKEN_URI=token_uri)
    inspection = await inspect_connection(connection, timeout=5)
    first, second = inspection.endpoints

    assert len(inspection.endpoints) == 2
    assert first.endpoint.keys == ("CMEM_BASE_URI", "DP_API_ENDPOINT", "DI_API_ENDPOINT")
    assert first.verification.status == "verified"
    assert second.endpoint.keys == ("OAUTH_TOKEN_URI",)
    assert second.endpoint.authority == f"localhost:{keycloak.port}"
    assert second.verification.status == "failed"
    assert f"--url https://localhost:{keycloak.port}" in second.verification.fix


def test_endpoints_grouped_by_host_and_port() -> None:
    connection = tls_connection(
        "https://127.0.0.1:8443",
        DP_API_ENDPOINT="https://127.0.0.1:8443/dp",
        DI_API_ENDPOINT="http://127.0.0.1:8080/di",
        OAUTH_TOKEN_URI="https://[::1]/token",
    )

    endpoints = connection_endpoints(connection)

    assert [(endpoint.scheme, endpoint.host, endpoint.port) for endpoint in endpoints] == [
        ("https", "127.0.0.1", 8443),
        ("http", "127.0.0.1", 8080),
        ("https", "::1", 443),
    ]
    assert endpoints[0].keys == ("CMEM_BASE_URI", "DP_API_ENDPOINT")


async def test_http_base_uri_has_no_tls() -> None:
    inspection = await inspect_connection(tls_connection(f"http://127.0.0.1:{closed_port()}"), timeout=5)

    assert inspection.ok
    assert inspection.endpoints[0].handshake is None
    assert inspection.endpoints[0].verification.reason == "no TLS: the URL is http://"


async def test_connection_refused_reported() -> None:
    port = closed_port()

    inspection = await inspect_connection(tls_connection(f"https://127.0.0.1:{port}"), timeout=5)
    endpoint = inspection.endpoints[0]

    assert not inspection.ok
    assert endpoint.handshake is None
    assert endpoint.error is not None
    assert endpoint.error.summary == "connection refused"
    assert f"127.0.0.1:{port}" in str(endpoint.error)


async def test_inspect_each_runs_every_connection(
    ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    good = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    bad = write_file(tmp_path / "other.pem", other_ca.cert_pem.bytes())
    connections = [tls_connection(server.base_uri, f"good-{index}", REQUESTS_CA_BUNDLE=good) for index in range(3)]
    connections.append(tls_connection(server.base_uri, "bad", REQUESTS_CA_BUNDLE=bad))
    cache = SSLContextCache()

    results = [result async for result in inspect_each(connections, concurrency=2, timeout=5, ssl_contexts=cache)]
    by_name = {result.connection: result.value for result in results}

    assert sorted(by_name) == ["bad", "good-0", "good-1", "good-2"]
    assert all(result.ok for result in results)
    assert [name for name, value in by_name.items() if value is not None and not value.ok] == ["bad"]
    # One verifying context per bundle and one that does not verify, shared by every connection.
    assert cache.contexts_built == 3


async def test_silent_server_times_out() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def stay_silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(stay_silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        inspection = await inspect_connection(tls_connection(f"https://127.0.0.1:{port}"), timeout=0.5)
    finally:
        server.close()
        await server.wait_closed()
        for writer in accepted:
            writer.close()
            await writer.wait_closed()
    endpoint = inspection.endpoints[0]

    assert not inspection.ok
    assert endpoint.error is not None
    assert endpoint.error.summary == "timed out after 0.5 s"


# Client certificates


def mutual_tls_server(server_ca: trustme.CA, client_ca: trustme.CA, directory: Path) -> BlockingHTTPSServer:
    context = server_context(ServerCertificate.from_trustme(server_ca.issue_cert("127.0.0.1")), directory)
    context.verify_mode = ssl.CERT_REQUIRED
    client_ca.configure_trust(context)
    return BlockingHTTPSServer(context)


def client_files(client_ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    client = client_ca.issue_cert("client@acmemc.test")
    certificate = write_file(directory / "client.pem", client.cert_chain_pems[0].bytes())
    key = write_file(directory / "client-key.pem", client.private_key_pem.bytes())
    return certificate, key


async def test_client_certificate_accepted(ca: trustme.CA, other_ca: trustme.CA, tmp_path: Path) -> None:
    certificate, key = client_files(other_ca, tmp_path)
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())

    with mutual_tls_server(ca, other_ca, tmp_path) as server:
        connection = tls_connection(
            server.base_uri, REQUESTS_CA_BUNDLE=bundle, SSL_CLIENT_CERT=certificate, SSL_CLIENT_KEY=key
        )
        inspection = await inspect_connection(connection, timeout=5)
    endpoint = inspection.endpoints[0]

    assert inspection.ok
    assert endpoint.answer == "HTTP/1.1 204 No Content"
    assert endpoint.rejection is None
    assert endpoint.verification.status == "verified"
    assert inspection.trust.client_certificate == certificate
    assert server.requests == ["HEAD / HTTP/1.1"]


async def test_client_certificate_required(ca: trustme.CA, other_ca: trustme.CA, tmp_path: Path) -> None:
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())

    with mutual_tls_server(ca, other_ca, tmp_path) as server:
        inspection = await inspect_connection(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle), timeout=5)
    endpoint = inspection.endpoints[0]

    assert not inspection.ok
    assert endpoint.answer is None
    assert endpoint.rejection == "the server requires a client certificate"
    assert endpoint.handshake is not None
    assert endpoint.verification.status == "verified"


async def test_client_certificate_unknown_ca(ca: trustme.CA, other_ca: trustme.CA, tmp_path: Path) -> None:
    certificate, key = client_files(trustme.CA(), tmp_path)
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())

    with mutual_tls_server(ca, other_ca, tmp_path) as server:
        connection = tls_connection(
            server.base_uri, REQUESTS_CA_BUNDLE=bundle, SSL_CLIENT_CERT=certificate, SSL_CLIENT_KEY=key
        )
        inspection = await inspect_connection(connection, timeout=5)

    assert inspection.endpoints[0].rejection == "the server rejected the client certificate (unknown CA)"


async def test_unusable_client_certificate_reported(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    missing = tmp_path / "missing-client.pem"

    connection = tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle, SSL_CLIENT_CERT=missing)
    inspection = await inspect_connection(connection, timeout=5)

    assert not inspection.ok
    assert inspection.client_certificate_error is not None
    assert str(missing) in str(inspection.client_certificate_error)
    assert inspection.endpoints[0].verification.status == "verified"


# Choosing the bundle certificate


def presented(*pems: bytes) -> tuple[PresentedCertificate, ...]:
    return tuple(PresentedCertificate.from_der(ssl.PEM_cert_to_DER_cert(pem.decode())) for pem in pems)


def test_choice_prefers_root(ca: trustme.CA) -> None:
    intermediate = ca.create_child_ca()
    leaf = intermediate.issue_cert("127.0.0.1")
    chain = presented(leaf.cert_chain_pems[0].bytes(), intermediate.cert_pem.bytes(), ca.cert_pem.bytes())

    choice = choose_certificate(chain)

    assert choice.index == 2
    assert choice.certificate.self_issued
    assert "root CA" in choice.explanation


def test_choice_top_intermediate(ca: trustme.CA) -> None:
    upper = ca.create_child_ca()
    lower = upper.create_child_ca()
    leaf = lower.issue_cert("127.0.0.1")
    chain = presented(leaf.cert_chain_pems[0].bytes(), lower.cert_pem.bytes(), upper.cert_pem.bytes())

    choice = choose_certificate(chain)

    assert choice.index == 2
    assert choice.certificate.subject == subject(upper.cert_pem.bytes())
    assert subject(ca.cert_pem.bytes()) in choice.explanation


def test_choice_misordered_chain_with_stranger(ca: trustme.CA, other_ca: trustme.CA) -> None:
    intermediate = ca.create_child_ca()
    leaf = intermediate.issue_cert("127.0.0.1")
    chain = presented(
        leaf.cert_chain_pems[0].bytes(), other_ca.cert_pem.bytes(), ca.cert_pem.bytes(), intermediate.cert_pem.bytes()
    )

    assert issuer_path(chain) == [0, 3, 2]
    assert choose_certificate(chain).index == 2


def test_choice_leaf_only(ca: trustme.CA) -> None:
    chain = presented(ca.issue_cert("127.0.0.1").cert_chain_pems[0].bytes())

    choice = choose_certificate(chain)

    assert choice.index == 0
    assert "sent no CA certificate" in choice.explanation


def test_choice_select_and_range(ca: trustme.CA) -> None:
    intermediate = ca.create_child_ca()
    chain = presented(intermediate.issue_cert("127.0.0.1").cert_chain_pems[0].bytes(), intermediate.cert_pem.bytes())

    assert choose_certificate(chain, select=1).index == 0
    with pytest.raises(ValueError, match="outside the chain, which has 2 certificates"):
        choose_certificate(chain, select=3)


def test_control_characters_escaped_in_bundle(ca: trustme.CA) -> None:
    # Each attribute value may have at most 64 characters.
    injected = "x\n-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, injected),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "\x1b[2J"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - datetime.timedelta(hours=1))
        .not_valid_after(now() + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )

    parsed = PresentedCertificate.from_der(certificate.public_bytes(serialization.Encoding.DER))
    bundle = render_bundle([parsed], source="127.0.0.1:8443")

    assert "\n" not in parsed.subject
    assert "\x1b" not in parsed.subject
    assert "x\\n-----BEGIN CERTIFICATE-----" in parsed.subject
    assert [line for line in bundle.splitlines() if line.startswith(b"-----")] == [
        b"-----BEGIN CERTIFICATE-----",
        b"-----END CERTIFICATE-----",
    ]


# Writing bundles


def test_write_refuses_existing_file(tmp_path: Path) -> None:
    path = write_file(tmp_path / "ca.pem", b"old")

    with pytest.raises(BundleWriteError) as raised:
        write_bundle_file(path, b"new", replace=False)

    assert "already exists" in str(raised.value)
    assert "--force" in str(raised.value)
    assert path.read_bytes() == b"old"


def test_write_replaces_with_force(tmp_path: Path) -> None:
    path = write_file(tmp_path / "ca.pem", b"old")
    path.chmod(0o600)

    write_bundle_file(path, b"new", replace=True)

    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["ca.pem"]


def test_write_new_file_readable(tmp_path: Path) -> None:
    path = tmp_path / "ca.pem"

    write_bundle_file(path, b"new", replace=False)

    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()], ids=["disk-full", "ctrl-c"])
def test_write_failure_leaves_nothing(failure: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_file(tmp_path / "ca.pem", b"old")

    def fail(descriptor: int) -> None:
        raise failure

    monkeypatch.setattr(acmemc._files.os, "fsync", fail)
    with pytest.raises((BundleWriteError, KeyboardInterrupt)):
        write_bundle_file(path, b"new content", replace=True)

    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["ca.pem"]


def test_write_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleWriteError) as raised:
        write_bundle_file(tmp_path / "missing" / "ca.pem", b"new", replace=False)

    assert "does not exist" in str(raised.value)


# Bundle round trips


async def test_bundle_round_trip_survives_renewal(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    intermediate = ca.create_child_ca()
    server = await start_server(intermediate.issue_cert("127.0.0.1"))

    handshake = await fetch_chain(server.base_uri, timeout=5)
    choice = choose_certificate(handshake.chain)
    bundle = render_bundle([choice.certificate], source=f"127.0.0.1:{server.port}")
    path = tmp_path / "ca.pem"
    write_bundle_file(path, bundle, replace=False)
    renewed = await start_server(intermediate.issue_cert("127.0.0.1"))

    graphs = await fetch_graphs(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=path))
    renewed_graphs = await fetch_graphs(tls_connection(renewed.base_uri, REQUESTS_CA_BUNDLE=path))

    assert choice.index == 1
    assert choice.certificate.sha256 == fingerprint(intermediate.cert_pem.bytes())
    assert f"# SHA-256: {choice.certificate.sha256}" in bundle.decode()
    assert (await check_bundle(server.base_uri, [choice.certificate], timeout=5)).verified
    assert graphs == GRAPHS
    assert renewed_graphs == GRAPHS


async def fetch_graphs(connection: Connection) -> list[dict[str, object]]:
    async with Client(connection, timeout=5) as client:
        return await client.graph_list()


# The commands


async def invoke(args: Sequence[str], input: str | None = None) -> Result:
    return await CliRunner().invoke(cli, list(args), input=input, env={"CMEMC_CONSOLE_WIDTH": "200"})


def write_config(directory: Path, **sections: dict[str, str | Path]) -> Path:
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines.append("OAUTH_CLIENT_SECRET = secret")
        lines += [f"{key} = {value}" for key, value in keys.items()]
    path = directory / "config.ini"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_inspect_command_table(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    intermediate = ca.create_child_ca()
    leaf = intermediate.issue_cert("127.0.0.1")
    server = await start_server(leaf)
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    config = write_config(tmp_path, prod={"CMEM_BASE_URI": server.base_uri, "REQUESTS_CA_BUNDLE": bundle})

    result = await invoke(["--config-file", str(config), "-c", "prod", "tls", "inspect"])

    assert result.exit_code == 0, result.output
    assert "Connection: prod" in result.stdout
    assert "Verification: on" in result.stdout
    assert f"Trust anchors: CA bundle {bundle}" in result.stdout
    assert f"{server.base_uri} (CMEM_BASE_URI, DP_API_ENDPOINT, DI_API_ENDPOINT, OAUTH_TOKEN_URI)" in result.stdout
    assert fingerprint(leaf.cert_chain_pems[0].bytes()) in result.stdout
    assert fingerprint(intermediate.cert_pem.bytes()) in result.stdout
    assert "Result: verified" in result.stdout


async def test_inspect_command_failure_exit_status(start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(self_signed_certificate("127.0.0.1"))
    config = write_config(tmp_path, prod={"CMEM_BASE_URI": server.base_uri})

    result = await invoke(["--config-file", str(config), "-c", "prod", "tls", "inspect"])

    assert result.exit_code == 1
    assert "Result: did not verify: the certificate is self-signed" in result.stdout
    assert "Fix: trust this self-signed certificate" in result.stdout


async def test_inspect_command_verify_off(start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(self_signed_certificate("127.0.0.1"))
    config = write_config(tmp_path, prod={"CMEM_BASE_URI": server.base_uri, "SSL_VERIFY": "false"})

    result = await invoke(["--config-file", str(config), "-c", "prod", "tls", "inspect"])

    assert result.exit_code == 0
    assert "Verification: off (SSL_VERIFY=false)" in result.stdout
    assert "Result: would not verify with SSL_VERIFY=true: the certificate is self-signed" in result.stdout


async def test_inspect_command_json(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    leaf = ca.issue_cert("127.0.0.1")
    server = await start_server(leaf)
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    config = write_config(tmp_path, prod={"CMEM_BASE_URI": server.base_uri, "REQUESTS_CA_BUNDLE": bundle})

    result = await invoke(["--config-file", str(config), "-c", "prod", "tls", "inspect", "--raw"])
    record = json.loads(result.stdout)
    endpoint = record["endpoints"][0]

    assert result.exit_code == 0
    assert record["connection"] == "prod"
    assert record["ok"] is True
    assert record["trust"]["ca_bundle"] == str(bundle)
    assert record["trust"]["verify"] is True
    assert endpoint["verification"] == {"status": "verified", "reason": None, "fix": None, "code": None}
    assert endpoint["chain"][0]["ip_addresses"] == ["127.0.0.1"]
    assert endpoint["chain"][0]["sha256"] == fingerprint(leaf.cert_chain_pems[0].bytes())
    assert endpoint["tls_version"] in ("TLSv1.2", "TLSv1.3")


async def test_inspect_command_several_connections(
    ca: trustme.CA, other_ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    good = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    bad = write_file(tmp_path / "other.pem", other_ca.cert_pem.bytes())
    config = write_config(
        tmp_path,
        good={"CMEM_BASE_URI": server.base_uri, "REQUESTS_CA_BUNDLE": good},
        bad={"CMEM_BASE_URI": server.base_uri, "REQUESTS_CA_BUNDLE": bad},
        broken={"CMEM_BASE_URI": server.base_uri, "SSL_TRUST_STORE": "nowhere"},
    )

    table = await invoke(["--config-file", str(config), "-A", "tls", "inspect"])
    raw = await invoke(["--config-file", str(config), "-A", "tls", "inspect", "--raw"])
    records = json.loads(raw.stdout)

    assert table.exit_code == 2
    assert "┃ good " in table.stdout
    assert "┃ verified " in table.stdout
    assert "┃ bad " in table.stdout
    assert "┃ failed " in table.stdout
    assert "SSL_TRUST_STORE 'nowhere'" in table.stderr
    assert [record["connection"] for record in records] == ["bad", "broken", "good"]
    assert records[0]["ok"] is False
    assert records[1]["error"]["type"] == "ConfigurationError"
    assert records[2]["ok"] is True


async def test_bundle_command_round_trip(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    intermediate = ca.create_child_ca()
    server = await start_server(intermediate.issue_cert("127.0.0.1"))
    bundle = tmp_path / "bundle.pem"
    config = write_config(tmp_path, prod={"CMEM_BASE_URI": server.base_uri, "REQUESTS_CA_BUNDLE": bundle})

    built = await invoke(["--config-file", str(config), "-c", "prod", "tls", "bundle", "--output", str(bundle), "--yes"])
    inspected = await invoke(["--config-file", str(config), "-c", "prod", "tls", "inspect"])
    listed = await invoke(["--config-file", str(config), "-c", "prod", "graph", "list", "--raw"])

    assert built.exit_code == 0, built.output
    assert fingerprint(intermediate.cert_pem.bytes()) in built.stdout
    assert "Chosen: certificate 2, the highest CA certificate the server sent" in built.stdout
    assert f"With this bundle, 127.0.0.1:{server.port} verifies." in built.stdout
    assert f"Wrote {bundle}." in built.stdout
    assert bundle.read_bytes().count(b"-----BEGIN CERTIFICATE-----") == 1
    assert inspected.exit_code == 0, inspected.output
    assert listed.exit_code == 0, listed.output


async def test_bundle_command_url_to_stdout(start_server: StartServer, tmp_path: Path) -> None:
    certificate = self_signed_certificate("127.0.0.1")
    server = await start_server(certificate)

    result = await invoke(["tls", "bundle", "--url", server.base_uri, "--yes"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# CA bundle written by acmemc")
    assert certificate.leaf_pem.decode() in result.stdout
    assert "self-signed certificate" in result.stderr
    assert fingerprint(certificate.leaf_pem) in result.stderr


async def test_bundle_command_needs_yes_for_stdout(start_server: StartServer) -> None:
    server = await start_server(self_signed_certificate("127.0.0.1"))

    result = await invoke(["tls", "bundle", "--url", server.base_uri])

    assert result.exit_code == 1
    assert "BEGIN CERTIFICATE" not in result.stdout
    assert "nothing written" in result.stderr
    assert "--yes" in result.stderr


async def test_bundle_command_no_input_writes_nothing(start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(self_signed_certificate("127.0.0.1"))
    output = tmp_path / "ca.pem"

    result = await invoke(["tls", "bundle", "--url", server.base_uri, "--output", str(output)])

    assert result.exit_code == 1
    assert not output.exists()
    assert "no input to confirm with" in result.stderr
    assert [name for name in os.listdir(tmp_path) if "ca.pem" in name] == []


@pytest.mark.parametrize(("answer", "written"), [("y\n", True), ("n\n", False)], ids=["yes", "no"])
async def test_bundle_command_confirmation(answer: str, written: bool, start_server: StartServer, tmp_path: Path) -> None:
    certificate = self_signed_certificate("127.0.0.1")
    server = await start_server(certificate)
    output = tmp_path / "ca.pem"

    result = await invoke(["tls", "bundle", "--url", server.base_uri, "--output", str(output)], input=answer)

    assert result.exit_code == (0 if written else 1)
    assert output.exists() is written
    assert f"SHA-256 {fingerprint(certificate.leaf_pem)}" in result.stderr


async def test_bundle_command_force(start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(self_signed_certificate("127.0.0.1"))
    output = write_file(tmp_path / "ca.pem", b"old bundle\n")

    refused = await invoke(["tls", "bundle", "--url", server.base_uri, "--output", str(output), "--yes"])
    unchanged = output.read_bytes()
    forced = await invoke(["tls", "bundle", "--url", server.base_uri, "--output", str(output), "--yes", "--force"])

    assert refused.exit_code == 1
    assert "already exists" in refused.stderr
    assert unchanged == b"old bundle\n"
    assert forced.exit_code == 0, forced.output
    assert b"-----BEGIN CERTIFICATE-----" in output.read_bytes()


async def test_bundle_command_select(ca: trustme.CA, start_server: StartServer, tmp_path: Path) -> None:
    intermediate = ca.create_child_ca()
    leaf = intermediate.issue_cert("127.0.0.1")
    server = await start_server(leaf)

    result = await invoke(["tls", "bundle", "--url", server.base_uri, "--select", "1", "--yes"])
    outside = await invoke(["tls", "bundle", "--url", server.base_uri, "--select", "5", "--yes"])

    assert result.exit_code == 0
    assert "Chosen: certificate 1, selected with --select." in result.stderr
    assert leaf.cert_chain_pems[0].bytes().decode() in result.stdout
    assert outside.exit_code == 2
    assert "outside the chain" in outside.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "https://", "ftp://127.0.0.1"])
async def test_bundle_command_rejects_url(url: str) -> None:
    result = await invoke(["tls", "bundle", "--url", url, "--yes"])

    assert result.exit_code == 2
    assert "https://HOST[:PORT]" in result.output


async def test_bundle_command_refused_connection() -> None:
    port = closed_port()

    result = await invoke(["tls", "bundle", "--url", f"https://127.0.0.1:{port}", "--yes"])

    assert result.exit_code == 1
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in result.stderr


async def test_bundle_command_dash_output_is_stdout(start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    certificate = self_signed_certificate("127.0.0.1")
    server = await start_server(certificate)
    monkeypatch.chdir(tmp_path)

    result = await invoke(["tls", "bundle", "--url", server.base_uri, "--yes", "--output", "-"])

    assert result.exit_code == 0, result.output
    assert certificate.leaf_pem.decode() in result.stdout
    assert not (tmp_path / "-").exists()


async def test_bundle_command_rejects_url_password(start_server: StartServer) -> None:
    server = await start_server(self_signed_certificate("127.0.0.1"))
    url = server.base_uri.replace("https://", "https://alice:hunter2@")

    result = await invoke(["tls", "bundle", "--url", url, "--yes"])

    assert result.exit_code == 2
    assert "user name or password" in result.stderr
    assert "hunter2" not in result.output


async def test_inspect_summary_lists_invalid_connections(tmp_path: Path) -> None:
    from acmemc import Sandbox

    async with Sandbox(tmp_path / "sandbox", 2) as sandbox:
        with sandbox.config_file.open("a", encoding="utf-8") as file:
            file.write("\n[broken]\nCMEM_BASE_URI = https://127.0.0.1:1\nSSL_VERIFY = maybe\n")

        result = await invoke(["--config-file", str(sandbox.config_file), "-A", "tls", "inspect"])

    first_cells = [line.split("┃")[1].strip() for line in result.stdout.splitlines() if line.startswith("┃")]
    assert "broken" in first_cells
    assert "sandbox-01" in first_cells
    assert result.exit_code == 2
