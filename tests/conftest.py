"""Fixtures shared by the whole suite.

Every test runs with an environment cleaned of the variables acmemc, cmemc,
OpenSSL and proxies read, so that the machine's settings (for example a
REQUESTS_CA_BUNDLE set system-wide) can neither help nor break a test.
"""

from __future__ import annotations

import os

import pytest

CLEARED_PREFIXES = ("CMEMC_", "CMEM_", "OAUTH_", "KEYCLOAK_", "DP_API", "DI_API")
CLEARED_NAMES = (
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "SSL_VERIFY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES) or name in CLEARED_NAMES:
            monkeypatch.delenv(name, raising=False)
    # cmemc's default config file lives under XDG_CONFIG_HOME: point it at an empty folder.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
