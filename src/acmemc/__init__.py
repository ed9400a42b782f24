"""acmemc: an asyncio client and command line for eccenca Corporate Memory.

It reads cmemc's ``config.ini`` and environment variables and talks to many
deployments at once, in one process. The public API::

    config = await acmemc.read_config("~/.config/cmemc/config.ini")
    connections = [acmemc.resolve_connection(config, name) for name in config.connection_names]
    async for result in acmemc.run_each(connections, lambda client: client.graph_list()):
        ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._auth import AccessToken, decode_jwt_payload
    from ._client import DEFAULT_TIMEOUT, Client
    from ._config import (
        KNOWN_KEYS,
        SECRET_KEYS,
        ConfigFile,
        Connection,
        Setting,
        Source,
        build_connection,
        default_config_path,
        parse_config,
        read_config,
        resolve_connection,
    )
    from ._errors import (
        AcmemcError,
        AuthenticationError,
        BundleWriteError,
        CABundleError,
        ClientCertificateError,
        ConfigurationError,
        ConnectError,
        CredentialProcessError,
        HTTPStatusError,
        InvalidResponseError,
        RequestError,
        RequestTimeoutError,
        TLSVerificationError,
    )
    from ._fleet import DEFAULT_CONCURRENCY, ConnectionResult, run_each
    from ._sandbox import Sandbox, SandboxDeployment
    from ._status import CertificateInfo, DeploymentStatus, Finding, fetch_status
    from ._inspect import TLSInspection, inspect_connection, inspect_each
    from ._tls import SSLContextCache, TrustSettings

# The public names and the private module that defines each. They are imported
# on first use, so that `acmemc --help` starts without importing aiohttp.
_MODULES = {
    "AccessToken": "_auth",
    "decode_jwt_payload": "_auth",
    "DEFAULT_TIMEOUT": "_client",
    "Client": "_client",
    "KNOWN_KEYS": "_config",
    "SECRET_KEYS": "_config",
    "ConfigFile": "_config",
    "Connection": "_config",
    "Setting": "_config",
    "Source": "_config",
    "build_connection": "_config",
    "default_config_path": "_config",
    "parse_config": "_config",
    "read_config": "_config",
    "resolve_connection": "_config",
    "AcmemcError": "_errors",
    "AuthenticationError": "_errors",
    "CABundleError": "_errors",
    "ConfigurationError": "_errors",
    "ConnectError": "_errors",
    "CredentialProcessError": "_errors",
    "HTTPStatusError": "_errors",
    "InvalidResponseError": "_errors",
    "RequestError": "_errors",
    "RequestTimeoutError": "_errors",
    "TLSVerificationError": "_errors",
    "DEFAULT_CONCURRENCY": "_fleet",
    "ConnectionResult": "_fleet",
    "run_each": "_fleet",
    "Sandbox": "_sandbox",
    "SandboxDeployment": "_sandbox",
    "CertificateInfo": "_status",
    "DeploymentStatus": "_status",
    "Finding": "_status",
    "fetch_status": "_status",
    "BundleWriteError": "_errors",
    "TLSInspection": "_inspect",
    "inspect_connection": "_inspect",
    "inspect_each": "_inspect",
    "ClientCertificateError": "_errors",
    "SSLContextCache": "_tls",
    "TrustSettings": "_tls",
}


def __getattr__(name: str) -> Any:
    module_name = _MODULES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'acmemc' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"acmemc.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AccessToken",
    "AcmemcError",
    "AuthenticationError",
    "BundleWriteError",
    "CABundleError",
    "CertificateInfo",
    "Client",
    "ClientCertificateError",
    "ConfigFile",
    "ConfigurationError",
    "ConnectError",
    "Connection",
    "ConnectionResult",
    "CredentialProcessError",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_TIMEOUT",
    "DeploymentStatus",
    "Finding",
    "HTTPStatusError",
    "InvalidResponseError",
    "KNOWN_KEYS",
    "RequestError",
    "RequestTimeoutError",
    "SECRET_KEYS",
    "SSLContextCache",
    "Sandbox",
    "SandboxDeployment",
    "Setting",
    "Source",
    "TLSInspection",
    "TLSVerificationError",
    "TrustSettings",
    "__version__",
    "build_connection",
    "decode_jwt_payload",
    "default_config_path",
    "fetch_status",
    "inspect_connection",
    "inspect_each",
    "parse_config",
    "read_config",
    "resolve_connection",
    "run_each",
]
