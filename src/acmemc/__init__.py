"""acmemc: an asyncio client and command line for eccenca Corporate Memory.

It reads cmemc's ``config.ini`` and environment variables and talks to many
deployments at once, in one process. The public API::

    config = await acmemc.read_config("~/.config/cmemc/config.ini")
    connections = [acmemc.resolve_connection(config, name) for name in config.connection_names]
    async for result in acmemc.run_each(connections, lambda client: client.graph_list()):
        ...
"""

from ._auth import AccessToken, decode_jwt_payload
from ._client import DEFAULT_TIMEOUT, Client
from ._config import (
    KNOWN_KEYS,
    SECRET_KEYS,
    ConfigFile,
    Connection,
    Setting,
    Source,
    default_config_path,
    parse_config,
    read_config,
    resolve_connection,
)
from ._errors import (
    AcmemcError,
    AuthenticationError,
    CABundleError,
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
from ._tls import SSLContextCache, TrustSettings
from ._version import __version__

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_TIMEOUT",
    "KNOWN_KEYS",
    "SECRET_KEYS",
    "AccessToken",
    "AcmemcError",
    "AuthenticationError",
    "CABundleError",
    "Client",
    "ConfigFile",
    "ConfigurationError",
    "ConnectError",
    "Connection",
    "ConnectionResult",
    "CredentialProcessError",
    "HTTPStatusError",
    "InvalidResponseError",
    "RequestError",
    "RequestTimeoutError",
    "SSLContextCache",
    "Setting",
    "Source",
    "TLSVerificationError",
    "TrustSettings",
    "__version__",
    "decode_jwt_payload",
    "default_config_path",
    "parse_config",
    "read_config",
    "resolve_connection",
    "run_each",
]
