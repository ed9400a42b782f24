"""Trust options beyond one CA bundle: the system trust store, client certificates, renewed bundles.

Servers listen on 127.0.0.1 only and use trustme certificates. The system trust
store is simulated the way OpenSSL allows on Linux: ``SSL_CERT_FILE`` names the
file that truststore loads as the system's CA certificates.
"""

from __future__ import annotations

import datetime
import logging
import os
import ssl
from pathlib import Path

import pytest
import trustme
from asyncclick.testing import CliRunner
from cryptography.hazmat.primitives import serialization

import acmemc._tls
from acmemc import (
    KNOWN_KEYS,
    SECRET_KEYS,
    ClientCertificateError,
    Client,
    ConfigurationError,
    Connection,
    RequestError,
    SSLContextCache,
    TLSVerificationError,
    inspect_connection,
)
from acmemc.cli import cli

from _helpers import connection_from
from tls_servers import StartServer, GRAPHS, BlockingHTTPSServer, ServerCertificate, server_context

KEY_PASSWORD = "key-password-do-not-print"




def tls_connection(base_uri: str, name: str = "tls", **keys: str | Path) -> Connection:
    lines = [f"[{name}]", f"CMEM_BASE_URI={base_uri}", "OAUTH_CLIENT_SECRET=secret"]
    lines += [f"{key}={value}" for key, value in keys.items()]
    return connection_from("\n".join(lines) + "\n", name)


def write_file(path: Path, *parts: bytes) -> Path:
    path.write_bytes(b"".join(parts))
    return path


async def fetch_graphs(connection: Connection, ssl_contexts: SSLContextCache | None = None) -> list[dict[str, object]]:
    async with Client(connection, ssl_contexts=ssl_contexts, timeout=5) as client:
        return await client.graph_list()


# SSL_TRUST_STORE


@pytest.mark.parametrize("value", ["system", "System", "SYSTEM"])
def test_trust_store_system_parsed(value: str) -> None:
    connection = tls_connection("https://127.0.0.1:8443", SSL_TRUST_STORE=value)

    assert connection.trust_store == "system"


def test_trust_store_default_bundle() -> None:
    connection = tls_connection("https://127.0.0.1:8443")

    assert connection.trust_store == "bundle"
    assert connection.settings["SSL_TRUST_STORE"].value == "bundle"
    assert "SSL_TRUST_STORE" in KNOWN_KEYS


def test_trust_store_invalid_value(tmp_path: Path) -> None:
    config = tmp_path / "config.ini"

    with pytest.raises(ConfigurationError) as raised:
        connection_from("[prod]\nOAUTH_CLIENT_SECRET=x\nSSL_TRUST_STORE=windows\n", "prod", path=config)
    message = str(raised.value)

    assert message.startswith("connection 'prod': SSL_TRUST_STORE 'windows'")
    assert f"section [prod] of {config}" in message
    assert "SSL_TRUST_STORE=system" in message
    assert "SSL_TRUST_STORE=bundle" in message
    assert "\n" not in message


async def test_system_store_verifies(
    ca: trustme.CA, start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    monkeypatch.setenv("SSL_CERT_FILE", str(write_file(tmp_path / "system-ca.pem", ca.cert_pem.bytes())))
    connection = tls_connection(server.base_uri, SSL_TRUST_STORE="system")
    cache = SSLContextCache()

    graphs = await fetch_graphs(connection, cache)
    context = cache.context_for(connection)

    assert graphs == GRAPHS
    assert type(context).__module__.startswith("truststore")
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


async def test_system_store_unknown_ca_error(
    ca: trustme.CA, start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    monkeypatch.setenv("SSL_CERT_FILE", str(write_file(tmp_path / "system-ca.pem", trustme.CA().cert_pem.bytes())))
    connection = tls_connection(server.base_uri, SSL_TRUST_STORE="system")

    with pytest.raises(TLSVerificationError) as raised:
        await fetch_graphs(connection)
    message = str(raised.value)

    assert "not in the system trust store" in raised.value.reason
    assert "SSL_TRUST_STORE=system" in message
    assert "install the CA" in message
    assert raised.value.ca_bundle == "system trust store"


async def test_system_store_inspection(
    ca: trustme.CA, start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    monkeypatch.setenv("SSL_CERT_FILE", str(write_file(tmp_path / "system-ca.pem", ca.cert_pem.bytes())))

    inspection = await inspect_connection(tls_connection(server.base_uri, SSL_TRUST_STORE="system"), timeout=5)

    assert inspection.ok
    assert inspection.endpoints[0].verification.status == "verified"
    assert inspection.trust.describe_anchors() == "the system trust store (SSL_TRUST_STORE=system)"
    assert inspection.as_record()["trust"]["ca_bundle"] is None


def test_system_store_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    connection = tls_connection("https://127.0.0.1:8443", SSL_TRUST_STORE="system")

    with caplog.at_level(logging.DEBUG, logger="acmemc.tls"):
        SSLContextCache().context_for(connection)

    assert "Trust store: system (truststore)" in caplog.messages
    assert caplog.records[-1].connection == "tls"  # type: ignore[attr-defined]


def test_system_store_ignores_bundle_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    connection = tls_connection(
        "https://127.0.0.1:8443", SSL_TRUST_STORE="system", REQUESTS_CA_BUNDLE=tmp_path / "missing.pem"
    )

    with caplog.at_level(logging.WARNING, logger="acmemc.tls"):
        SSLContextCache().context_for(connection)

    assert any("REQUESTS_CA_BUNDLE" in message and "is not used" in message for message in caplog.messages)


async def test_config_get_trust_store(tmp_path: Path) -> None:
    config = write_file(tmp_path / "config.ini", b"[prod]\nOAUTH_CLIENT_SECRET=x\nSSL_TRUST_STORE=system\n")

    result = await CliRunner().invoke(cli, ["--config-file", str(config), "-c", "prod", "config", "get", "SSL_TRUST_STORE"])

    assert result.exit_code == 0
    assert result.stdout == "system\n"


# TLS 1.2 minimum


@pytest.mark.parametrize(
    "keys",
    [{}, {"SSL_VERIFY": "false"}, {"SSL_TRUST_STORE": "system"}],
    ids=["bundle", "verify-off", "system"],
)
def test_minimum_tls_version(keys: dict[str, str]) -> None:
    context = SSLContextCache().context_for(tls_connection("https://127.0.0.1:8443", **keys))

    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


# Client certificates


class ClientFiles:
    """PEM files of a client certificate issued by ``ca``: certificate, key, both in one, encrypted key."""

    def __init__(self, ca: trustme.CA, directory: Path) -> None:
        leaf = ca.issue_cert("client@acmemc.test")
        key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        self.certificate = write_file(directory / "client.pem", leaf.cert_chain_pems[0].bytes())
        self.key = write_file(directory / "client-key.pem", leaf.private_key_pem.bytes())
        self.combined = write_file(directory / "client-combined.pem", leaf.private_key_and_cert_chain_pem.bytes())
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        )
        self.encrypted_key = write_file(directory / "client-key-encrypted.pem", encrypted)


@pytest.fixture
def client(client_ca: trustme.CA, tmp_path: Path) -> ClientFiles:
    directory = tmp_path / "client"
    directory.mkdir()
    return ClientFiles(client_ca, directory)


@pytest.mark.parametrize("layout", ["separate", "combined", "encrypted"])
async def test_client_certificate_request(
    layout: str, ca: trustme.CA, client_ca: trustme.CA, client: ClientFiles, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"), client_ca=client_ca)
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    keys: dict[str, str | Path] = {"REQUESTS_CA_BUNDLE": bundle}
    if layout == "separate":
        keys.update(SSL_CLIENT_CERT=client.certificate, SSL_CLIENT_KEY=client.key)
    elif layout == "combined":
        keys.update(SSL_CLIENT_CERT=client.combined)
    else:
        keys.update(SSL_CLIENT_CERT=client.certificate, SSL_CLIENT_KEY=client.encrypted_key, SSL_CLIENT_KEY_PASSWORD=KEY_PASSWORD)

    graphs = await fetch_graphs(tls_connection(server.base_uri, **keys))

    assert graphs == GRAPHS


async def test_client_certificate_missing_rejected(
    ca: trustme.CA, client_ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"), client_ca=client_ca)
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())

    with pytest.raises(RequestError):
        await fetch_graphs(tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle))

    assert server.requests == []


def client_certificate_error(**keys: str | Path) -> ClientCertificateError:
    connection = tls_connection("https://127.0.0.1:8443", **keys)
    with pytest.raises(ClientCertificateError) as raised:
        SSLContextCache().context_for(connection)
    return raised.value


def test_client_certificate_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"

    error = client_certificate_error(SSL_CLIENT_CERT=missing)

    assert error.path == str(missing)
    assert str(error).startswith(f"connection 'tls': client certificate {missing} (SSL_CLIENT_CERT) not found.")
    assert "Fix: point SSL_CLIENT_CERT" in str(error)


def test_client_key_not_found(client: ClientFiles, tmp_path: Path) -> None:
    missing = tmp_path / "missing-key.pem"

    error = client_certificate_error(SSL_CLIENT_CERT=client.certificate, SSL_CLIENT_KEY=missing)

    assert error.path == str(missing)
    assert f"client key {missing} (SSL_CLIENT_KEY) not found" in str(error)


def test_client_certificate_not_pem(client: ClientFiles, tmp_path: Path) -> None:
    error = client_certificate_error(SSL_CLIENT_CERT=write_file(tmp_path / "junk.pem", b"junk\n"), SSL_CLIENT_KEY=client.key)

    assert "contains no PEM certificate" in str(error)


def test_client_key_missing_from_certificate_file(client: ClientFiles) -> None:
    error = client_certificate_error(SSL_CLIENT_CERT=client.certificate)

    assert f"client key {client.certificate} (SSL_CLIENT_CERT) contains no private key" in str(error)
    assert "set SSL_CLIENT_KEY" in str(error)


def test_client_key_mismatch(client: ClientFiles, client_ca: trustme.CA, tmp_path: Path) -> None:
    other_key = write_file(tmp_path / "other-key.pem", client_ca.issue_cert("other@acmemc.test").private_key_pem.bytes())

    error = client_certificate_error(SSL_CLIENT_CERT=client.certificate, SSL_CLIENT_KEY=other_key)

    assert error.path == str(other_key)
    assert f"does not belong to the client certificate {client.certificate}" in str(error)


def test_encrypted_key_without_password(client: ClientFiles) -> None:
    error = client_certificate_error(SSL_CLIENT_CERT=client.certificate, SSL_CLIENT_KEY=client.encrypted_key)

    assert "is encrypted and no password is set" in str(error)
    assert "SSL_CLIENT_KEY_PASSWORD" in str(error)


def test_key_loaded_with_password_callback(client: ClientFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a password argument OpenSSL prompts on the terminal for an encrypted key.
    passwords: list[object] = []
    original = ssl.SSLContext.load_cert_chain

    def recording_load(context: ssl.SSLContext, certfile: str, keyfile: str | None = None, password: object = None) -> None:
        passwords.append(password)
        original(context, certfile, keyfile, password)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", recording_load)
    SSLContextCache().context_for(tls_connection("https://127.0.0.1:8443", SSL_CLIENT_CERT=client.combined))

    assert len(passwords) == 1
    assert callable(passwords[0])


def test_encrypted_key_wrong_password(client: ClientFiles) -> None:
    error = client_certificate_error(
        SSL_CLIENT_CERT=client.certificate, SSL_CLIENT_KEY=client.encrypted_key, SSL_CLIENT_KEY_PASSWORD="wrong-password"
    )

    assert "cannot be decrypted with the password of SSL_CLIENT_KEY_PASSWORD" in str(error)
    assert "wrong-password" not in str(error)


def test_client_key_without_certificate() -> None:
    with pytest.raises(ConfigurationError) as raised:
        tls_connection("https://127.0.0.1:8443", SSL_CLIENT_KEY="key.pem")

    assert "SSL_CLIENT_KEY 'key.pem'" in str(raised.value)
    assert "is set without SSL_CLIENT_CERT" in str(raised.value)


def test_client_paths_relative_to_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    connection = tls_connection("https://127.0.0.1:8443", SSL_CLIENT_CERT="client.pem", SSL_CLIENT_KEY="~/key.pem")

    assert connection.client_certificate == tmp_path / "client.pem"
    assert connection.client_key == Path.home() / "key.pem"


async def test_key_password_is_secret(client: ClientFiles, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = write_file(
        tmp_path / "config.ini",
        f"[prod]\nOAUTH_CLIENT_SECRET=x\nSSL_CLIENT_CERT={client.certificate}\nSSL_CLIENT_KEY={client.encrypted_key}\n"
        f"SSL_CLIENT_KEY_PASSWORD={KEY_PASSWORD}\n".encode(),
    )
    runner = CliRunner()

    got = await runner.invoke(cli, ["--config-file", str(config), "-c", "prod", "config", "get", "SSL_CLIENT_KEY_PASSWORD"])
    evaluated = await runner.invoke(cli, ["--config-file", str(config), "-c", "prod", "--debug", "config", "eval"])
    connection = tls_connection("https://127.0.0.1:8443", SSL_CLIENT_CERT=client.certificate, SSL_CLIENT_KEY=client.encrypted_key, SSL_CLIENT_KEY_PASSWORD=KEY_PASSWORD)
    with caplog.at_level(logging.DEBUG, logger="acmemc"):
        SSLContextCache().context_for(connection)

    assert "SSL_CLIENT_KEY_PASSWORD" in SECRET_KEYS
    assert got.exit_code == 1
    assert "is a secret" in got.stderr
    assert "# SSL_CLIENT_KEY_PASSWORD skipped" in evaluated.stdout
    assert KEY_PASSWORD not in got.output + evaluated.output
    assert KEY_PASSWORD not in repr(connection)
    assert all(KEY_PASSWORD not in message for message in caplog.messages)


def password_script(directory: Path) -> Path:
    script = directory / "key-password.sh"
    script.write_text(f"#!/bin/sh\necho '{KEY_PASSWORD}'\n", encoding="utf-8")
    script.chmod(0o755)
    return script


async def test_password_process_used_by_inspect(
    ca: trustme.CA, client_ca: trustme.CA, client: ClientFiles, tmp_path: Path
) -> None:
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    server_directory = tmp_path / "server"
    server_directory.mkdir()
    context = server_context(ServerCertificate.from_trustme(ca.issue_cert("127.0.0.1")), server_directory)
    context.verify_mode = ssl.CERT_REQUIRED
    client_ca.configure_trust(context)

    with BlockingHTTPSServer(context) as server:
        connection = tls_connection(
            server.base_uri,
            REQUESTS_CA_BUNDLE=bundle,
            SSL_CLIENT_CERT=client.certificate,
            SSL_CLIENT_KEY=client.encrypted_key,
            SSL_CLIENT_KEY_PASSWORD_PROCESS=password_script(tmp_path),
            CMEMC_CREDENTIAL_PROCESS_NO_WARNING="true",
        )
        inspection = await inspect_connection(connection, timeout=5)

    assert inspection.client_certificate_error is None
    assert inspection.ok
    assert inspection.endpoints[0].answer == "HTTP/1.1 204 No Content"


async def test_password_process_used_by_client(
    ca: trustme.CA, client_ca: trustme.CA, client: ClientFiles, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"), client_ca=client_ca)
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    connection = tls_connection(
        server.base_uri,
        REQUESTS_CA_BUNDLE=bundle,
        SSL_CLIENT_CERT=client.certificate,
        SSL_CLIENT_KEY=client.encrypted_key,
        SSL_CLIENT_KEY_PASSWORD_PROCESS=password_script(tmp_path),
        CMEMC_CREDENTIAL_PROCESS_NO_WARNING="true",
    )

    graphs = await fetch_graphs(connection)

    assert graphs == GRAPHS


def test_password_process_not_run_by_cache(client: ClientFiles, tmp_path: Path) -> None:
    connection = tls_connection(
        "https://127.0.0.1:8443",
        SSL_CLIENT_CERT=client.certificate,
        SSL_CLIENT_KEY=client.encrypted_key,
        SSL_CLIENT_KEY_PASSWORD_PROCESS=password_script(tmp_path),
    )
    cache = SSLContextCache()

    with pytest.raises(ClientCertificateError) as raised:
        cache.context_for(connection)
    context = cache.context_for(connection, client_key_password=KEY_PASSWORD)

    assert connection.secret_processes["SSL_CLIENT_KEY_PASSWORD"][0] == str(tmp_path / "key-password.sh")
    assert "SSL_CLIENT_KEY_PASSWORD_PROCESS" in str(raised.value)
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_cache_key_per_password(client: ClientFiles) -> None:
    connection = tls_connection(
        "https://127.0.0.1:8443", SSL_CLIENT_CERT=client.certificate, SSL_CLIENT_KEY=client.encrypted_key
    )
    cache = SSLContextCache()

    first = cache.context_for(connection, client_key_password=KEY_PASSWORD)
    again = cache.context_for(connection, client_key_password=KEY_PASSWORD)
    with pytest.raises(ClientCertificateError):
        cache.context_for(connection, client_key_password="wrong-password")

    assert again is first
    assert cache.contexts_built == 1


# Renewed CA bundles in a long-running program


class ReadCounter:
    """Counts the reads of trust files through acmemc._tls._read_file."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[Path] = []
        original = acmemc._tls._read_file

        def counting_read(path: Path) -> bytes:
            self.paths.append(path)
            return original(path)

        monkeypatch.setattr(acmemc._tls, "_read_file", counting_read)


def clock_ahead(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move acmemc's clock for trust files ahead, so that files written just now count as old."""
    real = acmemc._tls._now_ns
    monkeypatch.setattr(acmemc._tls, "_now_ns", lambda: real() + int(seconds * 1e9))


async def test_renewed_bundle_used_by_next_connection(
    ca: trustme.CA, start_server: StartServer, tmp_path: Path
) -> None:
    old_ca = trustme.CA()
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = write_file(tmp_path / "ca.pem", old_ca.cert_pem.bytes())
    connection = tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle)
    cache = SSLContextCache()

    with pytest.raises(TLSVerificationError):
        await fetch_graphs(connection, cache)
    # The deployment's CA was renewed; an administrator rewrites the bundle in place.
    write_file(bundle, ca.cert_pem.bytes())
    graphs = await fetch_graphs(connection, cache)
    renewed_context = cache.context_for(connection)

    assert graphs == GRAPHS
    assert cache.contexts_built == 2
    assert cache.context_for(connection) is renewed_context


async def test_unchanged_bundle_not_read_again(
    ca: trustme.CA, start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_server(ca.issue_cert("127.0.0.1"))
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    connection = tls_connection(server.base_uri, REQUESTS_CA_BUNDLE=bundle)
    clock_ahead(monkeypatch, 60)
    reads = ReadCounter(monkeypatch)
    cache = SSLContextCache()

    for _ in range(5):
        assert await fetch_graphs(connection, cache) == GRAPHS

    assert reads.paths == [bundle]
    assert cache.contexts_built == 1


def test_racily_rewritten_bundle_detected(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_ca, new_ca = trustme.CA(), trustme.CA()
    bundle = write_file(tmp_path / "ca.pem", old_ca.cert_pem.bytes())
    connection = tls_connection("https://127.0.0.1:8443", REQUESTS_CA_BUNDLE=bundle)
    cache = SSLContextCache()
    old_context = cache.context_for(connection)
    old_stamp = acmemc._tls._stat_stamp(bundle)

    # A rewrite within the same timestamp tick, with content of the same size: stat shows nothing new.
    write_file(bundle, new_ca.cert_pem.bytes())
    monkeypatch.setattr(acmemc._tls, "_stat_stamp", lambda path: old_stamp)
    new_context = cache.context_for(connection)

    assert len(new_ca.cert_pem.bytes()) == len(old_ca.cert_pem.bytes())
    assert new_context is not old_context
    assert cache.contexts_built == 2


def test_recent_unchanged_bundle_compared_until_settled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA) -> None:
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    connection = tls_connection("https://127.0.0.1:8443", REQUESTS_CA_BUNDLE=bundle)
    reads = ReadCounter(monkeypatch)
    cache = SSLContextCache()

    first = cache.context_for(connection)
    second = cache.context_for(connection)
    reads_while_recent = len(reads.paths)
    clock_ahead(monkeypatch, 60)
    third = cache.context_for(connection)
    fourth = cache.context_for(connection)

    assert second is first
    assert third is first
    assert fourth is first
    assert reads_while_recent == 2
    # One comparison after the window has passed records the file as settled; then no more reads.
    assert len(reads.paths) == 3
    assert cache.contexts_built == 1


def test_deleted_bundle_error_on_next_lookup(ca: trustme.CA, tmp_path: Path) -> None:
    bundle = write_file(tmp_path / "ca.pem", ca.cert_pem.bytes())
    connection = tls_connection("https://127.0.0.1:8443", REQUESTS_CA_BUNDLE=bundle)
    cache = SSLContextCache()
    cache.context_for(connection)

    os.remove(bundle)
    with pytest.raises(ConfigurationError) as raised:
        cache.context_for(connection)

    assert "not found" in str(raised.value)
    assert str(bundle) in str(raised.value)


def test_renewed_client_certificate_reloaded(client_ca: trustme.CA, client: ClientFiles, tmp_path: Path) -> None:
    connection = tls_connection("https://127.0.0.1:8443", SSL_CLIENT_CERT=client.combined)
    cache = SSLContextCache()
    first = cache.context_for(connection)

    renewed = client_ca.issue_cert("client@acmemc.test", not_after=datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc))
    write_file(client.combined, renewed.private_key_and_cert_chain_pem.bytes() + b"\n# renewed\n")
    second = cache.context_for(connection)

    assert second is not first
    assert cache.contexts_built == 2
