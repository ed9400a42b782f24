"""Configuration: read cmemc's ``config.ini`` and resolve connections.

acmemc reads the same file and environment variables as eccenca's cmemc, so
that one ``config.ini`` serves both tools. A *connection* is a section of the
file. Resolving a connection turns the file, ``[DEFAULT]``, the environment and
the built-in defaults into one frozen :class:`Connection` that records where
each key came from:

- A named connection uses its own section first, then ``[DEFAULT]``, then the
  built-in default. The environment does not apply to the known keys, so that a
  named connection behaves the same in every shell.
- With no named connection, an environment variable wins over ``[DEFAULT]``,
  which wins over the built-in default.

Nothing here writes ``os.environ``, and nothing reads it: callers pass the
environment in, so two connections in one process never see each other's keys.
"""

from __future__ import annotations

import ast
import configparser
import enum
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from ._errors import ConfigurationError

__all__ = [
    "DEFAULT_CONNECTION_NAME",
    "KNOWN_KEYS",
    "SECRET_KEYS",
    "ConfigFile",
    "Connection",
    "CustomHeader",
    "Setting",
    "Source",
    "build_connection",
    "credentials_problem",
    "default_config_path",
    "is_secret_key",
    "misspelt_keys",
    "parse_config",
    "read_config",
    "resolve_connection",
]

logger = logging.getLogger("acmemc.config")

#: The name shown for the connection that is resolved when none is named.
DEFAULT_CONNECTION_NAME = "(default)"

#: Keys that name a connection's endpoints, credentials and trust settings.
KNOWN_KEYS = (
    "CMEM_BASE_URI",
    "DP_API_ENDPOINT",
    "DI_API_ENDPOINT",
    "KEYCLOAK_BASE_URI",
    "KEYCLOAK_REALM_ID",
    "OAUTH_TOKEN_URI",
    "OAUTH_GRANT_TYPE",
    "OAUTH_CLIENT_ID",
    "OAUTH_CLIENT_SECRET",
    "OAUTH_USER",
    "OAUTH_PASSWORD",
    "OAUTH_ACCESS_TOKEN",
    "OAUTH_CLIENT_SECRET_PROCESS",
    "OAUTH_PASSWORD_PROCESS",
    "OAUTH_ACCESS_TOKEN_PROCESS",
    "SSL_VERIFY",
    "REQUESTS_CA_BUNDLE",
    "SSL_TRUST_STORE",
    "SSL_CLIENT_CERT",
    "SSL_CLIENT_KEY",
    "SSL_CLIENT_KEY_PASSWORD",
    "SSL_CLIENT_KEY_PASSWORD_PROCESS",
)

#: Keys whose values are never printed or logged.
SECRET_KEYS = frozenset({"OAUTH_CLIENT_SECRET", "OAUTH_PASSWORD", "OAUTH_ACCESS_TOKEN", "SSL_CLIENT_KEY_PASSWORD"})

#: Values of ``SSL_TRUST_STORE``: the CA bundle of ``REQUESTS_CA_BUNDLE``, or the
#: operating system's trust store through the truststore package.
TRUST_STORES = ("bundle", "system")

GRANT_TYPES = ("client_credentials", "password", "prefetched_token")
CUSTOM_HEADER_PREFIX = "CMEMC_CUSTOM_HEADER_"
PROCESS_SUFFIX = "_PROCESS"
NO_WARNING_KEY = "CMEMC_CREDENTIAL_PROCESS_NO_WARNING"
CONNECTION_KEY = "CMEMC_CONNECTION"
URL_KEYS = ("CMEM_BASE_URI", "DP_API_ENDPOINT", "DI_API_ENDPOINT", "KEYCLOAK_BASE_URI", "OAUTH_TOKEN_URI")
# The proxy variables that aiohttp's trust_env and urllib read, lower case first.
PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY")
PROTECTED_HEADERS = frozenset({"authorization", "user-agent"})

# Builds the error for an invalid key: (key, what is wrong, the fix).
_Fail = Callable[[str, str, str], ConfigurationError]

# The token characters of RFC 9110, section 5.6.2: what a header field name may contain.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

# configparser keeps [DEFAULT] apart and merges it into every section, which hides
# whether a key was set in the section itself. A section name can never contain a
# line break, so this name turns the default-section handling off and [DEFAULT]
# becomes an ordinary section that is merged here, with its source recorded.
NO_DEFAULT_SECTION = "\n"


class Source(enum.Enum):
    """The origin of a configuration key's value."""

    SECTION = "config"
    DEFAULT_SECTION = "config [DEFAULT]"
    ENVIRONMENT = "environment"
    BUILTIN = "built-in default"


@dataclass(frozen=True)
class Setting:
    """The value of one configuration key and where it came from.

    ``derived_from`` lists the keys that a built-in default was computed from,
    for example ``("CMEM_BASE_URI",)`` for the default of ``DP_API_ENDPOINT``.
    """

    value: str
    source: Source
    derived_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigFile:
    """The parsed config file: each section's own keys, and ``[DEFAULT]``.

    ``path`` is the absolute path of the file that was read, or ``None`` when no
    file exists at the default location (an empty configuration).
    """

    path: Path | None
    sections: Mapping[str, Mapping[str, str]]
    defaults: Mapping[str, str]
    #: The default location that was looked at and does not exist, if that is why ``path`` is None.
    missing: Path | None = None

    @property
    def connection_names(self) -> list[str]:
        """The section names, sorted case-insensitively as ``config list`` prints them."""
        return sorted(self.sections, key=str.casefold)

    def describe(self) -> str:
        """Name the configuration for messages: its file, the missing default file, or the settings given in code."""
        if self.path is not None:
            return str(self.path)
        if self.missing is not None:
            return f"{self.missing} (not found)"
        return "the settings given in code"


@dataclass(frozen=True)
class CustomHeader:
    """An extra HTTP header from a ``CMEMC_CUSTOM_HEADER_<NAME>`` key.

    Exactly one of ``value`` and ``process`` is set. Header values count as
    secrets: they are never printed or logged.
    """

    name: str
    key: str
    value: str | None = field(default=None, repr=False)
    process: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Connection:
    """One resolved connection: immutable, with the source of every key.

    Build it with :func:`resolve_connection`. Secrets are kept out of ``repr``.
    ``secrets`` maps a secret key to its configured value, and
    ``secret_processes`` maps a secret key to the command that prints it.
    """

    name: str
    config_path: Path | None
    # Kept out of repr because it contains the values of secrets too.
    settings: Mapping[str, Setting] = field(repr=False)
    base_uri: str
    dp_api_endpoint: str
    di_api_endpoint: str
    token_uri: str
    grant_type: str
    client_id: str
    user: str | None
    ssl_verify: bool
    ca_bundle: Path
    ca_bundle_is_default: bool
    custom_headers: tuple[CustomHeader, ...]
    secrets: Mapping[str, str] = field(repr=False)
    secret_processes: Mapping[str, tuple[str, ...]]
    process_environment: Mapping[str, str] = field(repr=False)
    proxy_environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    credential_process_warning: bool = True
    # SSL_TRUST_STORE: "bundle" (ca_bundle) or "system" (the operating system's store).
    trust_store: str = "bundle"
    # SSL_CLIENT_CERT and SSL_CLIENT_KEY as absolute paths; the key may be inside the certificate file.
    client_certificate: Path | None = None
    client_key: Path | None = None
    #: Known keys set in the environment that a named connection ignores (names only).
    ignored_environment: tuple[str, ...] = ()

    @property
    def is_named(self) -> bool:
        return self.name != DEFAULT_CONNECTION_NAME

    def describe_source(self, key: str) -> str:
        """Describe where ``key`` came from, e.g. ``section [prod] of /home/me/config.ini``."""
        setting = self.settings[key]
        return _describe(setting, self.name, self.config_path)


def _describe(setting: Setting, name: str, config_path: Path | None) -> str:
    where = config_path if config_path is not None else "the settings given in code"
    if setting.source is Source.SECTION:
        return f"section [{name}] of {where}"
    if setting.source is Source.DEFAULT_SECTION:
        return f"section [DEFAULT] of {where}"
    if setting.source is Source.ENVIRONMENT:
        return "the environment"
    if setting.derived_from:
        return "the built-in default derived from " + ", ".join(setting.derived_from)
    return "the built-in default"


def default_config_path() -> Path:
    """Return cmemc's default config file: ``<app dir of "cmemc">/config.ini``.

    This is the folder that click's ``get_app_dir("cmemc")`` returns, for example
    ``$XDG_CONFIG_HOME/cmemc/config.ini`` on Linux.
    """
    import asyncclick

    return Path(asyncclick.get_app_dir("cmemc")) / "config.ini"


def parse_config(text: str, path: Path | None) -> ConfigFile:
    """Parse the text of a config file; ``path`` is only used in messages."""
    parser = configparser.ConfigParser(
        interpolation=None, default_section=NO_DEFAULT_SECTION, strict=True
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    where = str(path) if path is not None else "<config text>"
    try:
        parser.read_string(text, source=where)
    except configparser.Error as error:
        raise ConfigurationError(_describe_parser_error(error, where)) from None

    sections: dict[str, Mapping[str, str]] = {}
    defaults: Mapping[str, str] = MappingProxyType({})
    for section in parser.sections():
        own = MappingProxyType({key: value for key, value in parser.items(section, raw=True)})
        if section == "DEFAULT":
            defaults = own
        else:
            sections[section] = own
    return ConfigFile(path=path, sections=MappingProxyType(sections), defaults=defaults)


def _describe_parser_error(error: configparser.Error, where: str) -> str:
    fix = "Fix: correct the file; each section starts with [NAME] and holds KEY=value lines."
    if isinstance(error, configparser.MissingSectionHeaderError):
        if error.line.strip().startswith("["):
            return f"config file {where}, line {error.lineno}: section header {_line_start(error.line)} has no closing ]. {fix}"
        return f"config file {where}, line {error.lineno}: {_line_start(error.line)} stands outside of a section. {fix}"
    if isinstance(error, configparser.DuplicateSectionError):
        return f"config file {where}, line {error.lineno}: section [{error.section}] appears twice. {fix}"
    if isinstance(error, configparser.DuplicateOptionError):
        return (
            f"config file {where}, line {error.lineno}: key {error.option} appears twice "
            f"in section [{error.section}]. {fix}"
        )
    if isinstance(error, configparser.ParsingError):
        line_number, line = error.errors[0]
        # configparser stores repr() of the line; undo it to show its start.
        try:
            text = ast.literal_eval(line)
        except (SyntaxError, ValueError):
            text = line
        return f"config file {where}, line {line_number}: {_line_start(str(text))} is not a KEY=value line. {fix}"
    return f"config file {where} is invalid: {error.message}. {fix}"  # pragma: no cover


def _line_start(line: str) -> str:
    """Quote the first word of an invalid line, never the rest, which may hold a secret."""
    words = re.split(r"[\s=:]", line.strip(), maxsplit=1)
    return repr(words[0][:40]) if words and words[0] else "an empty line"


async def read_config(path: str | os.PathLike[str] | None = None) -> ConfigFile:
    """Read and parse a config file.

    With ``path=None`` the default location is read, and a missing default file
    means an empty configuration. A file that was named but does not exist is an
    error.
    """
    import aiofiles

    explicit = path is not None
    config_path = Path(os.path.abspath(os.path.expanduser(path))) if path is not None else default_config_path()
    try:
        async with aiofiles.open(config_path, encoding="utf-8") as file:
            text = await file.read()
    except FileNotFoundError:
        if not explicit:
            return ConfigFile(
                path=None, sections=MappingProxyType({}), defaults=MappingProxyType({}), missing=config_path
            )
        raise ConfigurationError(
            f"config file {config_path} not found. "
            "Fix: check --config-file or CMEMC_CONFIG_FILE, or create the file."
        ) from None
    except IsADirectoryError:
        raise ConfigurationError(f"config file {config_path} is a directory. Fix: name the config.ini file in it.") from None
    except PermissionError:
        raise ConfigurationError(f"config file {config_path} is not readable. Fix: check its permissions.") from None
    except UnicodeDecodeError as error:
        raise ConfigurationError(
            f"config file {config_path} is not valid UTF-8 (byte {error.start}). Fix: save it as UTF-8."
        ) from None
    return parse_config(text, config_path)


def build_connection(
    name: str = "adhoc",
    settings: Mapping[str, str] | None = None,
    /,
    *,
    environ: Mapping[str, str] | None = None,
    **keys: str,
) -> Connection:
    """Resolve a connection from keys given in code, without a config file.

    ``settings`` and ``keys`` are the keys of a config section; ``keys`` win.
    The same defaults and checks apply as to a section of ``config.ini``.

    Usage::

        connection = build_connection("prod", CMEM_BASE_URI="https://cmem.example.net", OAUTH_CLIENT_SECRET=secret)
    """
    values = {**(settings or {}), **keys}
    config = ConfigFile(
        path=None,
        sections=MappingProxyType({name: MappingProxyType(values)}),
        defaults=MappingProxyType({}),
    )
    return resolve_connection(config, name, environ)


def selected_connection_name(config: ConfigFile, environ: Mapping[str, str]) -> str | None:
    """Return the connection that ``CMEMC_CONNECTION`` selects, from the environment or ``[DEFAULT]``."""
    return environ.get(CONNECTION_KEY) or config.defaults.get(CONNECTION_KEY) or None


def resolve_connection(
    config: ConfigFile,
    name: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    check_credentials: bool = True,
) -> Connection:
    """Resolve one connection into a frozen :class:`Connection`.

    ``name`` is a section of ``config``, or ``None`` for the unnamed connection
    that the environment and ``[DEFAULT]`` describe. ``environ`` is the
    environment to read; the default is an empty one, so that library callers
    decide whether ``os.environ`` applies.

    Raises :class:`ConfigurationError` naming the key, its value, where it was
    set, and the fix. With ``check_credentials=False`` a missing secret is not an
    error yet, for work that needs no token (``config get``, ``tls inspect``).
    The client then raises it when it first needs the token.
    """
    environ = environ or {}
    if name is not None and config.missing is not None:
        raise ConfigurationError(
            f"connection {name!r} not found: there is no config file at {config.missing}. "
            "Fix: create it, or name one with --config-file or CMEMC_CONFIG_FILE."
        )
    if name is not None and name not in config.sections:
        known = ", ".join(config.connection_names) or "none"
        raise ConfigurationError(
            f"connection {name!r} not found in {config.describe()} (connections: {known}). "
            "Fix: use a name that `acmemc config list` prints, or add the section."
        )
    settings = _collect_settings(config, name, environ)
    display_name = name if name is not None else DEFAULT_CONNECTION_NAME
    # With a named connection, the known keys of the environment do not apply.
    ignored_environment = tuple(key for key in KNOWN_KEYS if key in environ) if name is not None else ()
    connection = _build_connection(display_name, config.path, settings, environ, ignored_environment)
    if logger.isEnabledFor(logging.DEBUG):
        for key in ordered_keys(connection.settings):
            logger.debug("%s", describe_setting(key, connection.settings[key]), extra={"connection": display_name})
        for key in ignored_environment:
            logger.debug(
                "%s in the environment is ignored: a named connection uses its section and [DEFAULT]",
                key,
                extra={"connection": display_name},
            )
    if name is not None:
        for key, suggestion in misspelt_keys(config.sections[name]):
            logger.warning(
                "connection %r: %s in %s is not a known key; did you mean %s?",
                display_name,
                key,
                config.describe(),
                suggestion,
                extra={"connection": display_name},
            )
    if check_credentials:
        problem = credentials_problem(connection)
        if problem is not None:
            raise problem
    return connection


def misspelt_keys(keys: Iterable[str]) -> list[tuple[str, str]]:
    """Return (key, known key) for each key that is probably a misspelt known key, such as CMEM_BASE_URL.

    Other unknown keys are allowed: cmemc hands every key of a section to
    credential processes, so a section may carry keys for them. The keys of
    ``[DEFAULT]`` are the caller's to check, once per file rather than once per
    connection.
    """
    import difflib

    found = []
    for key in keys:
        if _is_known(key) or key.startswith(CUSTOM_HEADER_PREFIX) or key in (NO_WARNING_KEY, CONNECTION_KEY):
            continue
        close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.85)
        if close:
            found.append((key, close[0]))
    return found


def ordered_keys(settings: Mapping[str, Setting]) -> list[str]:
    """Return the known keys in their usual order, then the other keys by name."""
    known = [key for key in KNOWN_KEYS if key in settings]
    return known + sorted(key for key in settings if key not in KNOWN_KEYS)


def describe_setting(key: str, setting: Setting) -> str:
    """Describe a key for the debug log, as cmemc does: ``KEY set by config to VALUE``.

    The source is named truthfully (config section, ``[DEFAULT]``, environment or
    built-in default), and the value of a secret is left out.
    """
    line = f"{key} set by {setting.source.value}"
    if not is_secret_key(key):
        # One line per key, even for a multi-line value.
        line += " to " + setting.value.replace("\r", "\\r").replace("\n", "\\n")
    if setting.derived_from:
        line += " (derived from " + ", ".join(setting.derived_from) + ")"
    return line


def is_secret_key(key: str) -> bool:
    """Tell whether the value of ``key`` is a secret: never printed, logged or exported."""
    if key in SECRET_KEYS:
        return True
    return key.startswith(CUSTOM_HEADER_PREFIX) and not key.endswith(PROCESS_SUFFIX)


def _is_known(key: str) -> bool:
    return key in KNOWN_KEYS


def _applies_from_environment(key: str) -> bool:
    return _is_known(key) or key.startswith(CUSTOM_HEADER_PREFIX) or key == NO_WARNING_KEY


def _collect_settings(config: ConfigFile, name: str | None, environ: Mapping[str, str]) -> dict[str, Setting]:
    environment = {key: value for key, value in environ.items() if _applies_from_environment(key)}
    layers: list[tuple[Mapping[str, str], Source]]
    if name is not None:
        # Named: the section wins over [DEFAULT]; the environment only fills in
        # keys that are not connection keys, such as custom headers.
        unknown_from_environment = {key: value for key, value in environment.items() if not _is_known(key)}
        layers = [
            (unknown_from_environment, Source.ENVIRONMENT),
            (config.defaults, Source.DEFAULT_SECTION),
            (config.sections[name], Source.SECTION),
        ]
    else:
        layers = [(config.defaults, Source.DEFAULT_SECTION), (environment, Source.ENVIRONMENT)]

    settings: dict[str, Setting] = {}
    for values, source in layers:
        for key, value in values.items():
            if key != CONNECTION_KEY:
                settings[key] = Setting(value, source)
    return settings


def _build_connection(
    name: str,
    config_path: Path | None,
    settings: dict[str, Setting],
    environ: Mapping[str, str],
    ignored_environment: tuple[str, ...],
) -> Connection:
    def fail(key: str, problem: str, fix: str) -> ConfigurationError:
        setting = settings[key]
        if is_secret_key(key):
            value = "<hidden>"
        elif key in URL_KEYS:
            value = repr(_redact_userinfo(setting.value))
        else:
            value = repr(setting.value)
        where = _describe(setting, name, config_path)
        return ConfigurationError(f"{key} {value} (from {where}) {problem}. Fix: {fix}.", connection=name)

    def default(key: str, value: str, *derived_from: str) -> str:
        if key not in settings or not settings[key].value.strip():
            settings[key] = Setting(value, Source.BUILTIN, derived_from)
        return settings[key].value.strip()

    base_uri = default("CMEM_BASE_URI", "http://docker.localhost").rstrip("/")
    dp_api_endpoint = default("DP_API_ENDPOINT", f"{base_uri}/dataplatform", "CMEM_BASE_URI").rstrip("/")
    di_api_endpoint = default("DI_API_ENDPOINT", f"{base_uri}/dataintegration", "CMEM_BASE_URI").rstrip("/")
    keycloak_base_uri = default("KEYCLOAK_BASE_URI", f"{base_uri}/auth", "CMEM_BASE_URI").rstrip("/")
    realm_id = default("KEYCLOAK_REALM_ID", "cmem")
    token_uri = default(
        "OAUTH_TOKEN_URI",
        f"{keycloak_base_uri}/realms/{realm_id}/protocol/openid-connect/token",
        "KEYCLOAK_BASE_URI",
        "KEYCLOAK_REALM_ID",
    )
    for key in URL_KEYS:
        problem = _url_problem(settings[key].value.strip())
        if problem and "user name or password" in problem:
            raise fail(key, problem, "remove the user name and password from the URL; acmemc authenticates with OAuth")
        if problem:
            raise fail(key, problem, "use an absolute http:// or https:// URL with a host name")

    grant_type = default("OAUTH_GRANT_TYPE", "client_credentials")
    if grant_type not in GRANT_TYPES:
        raise fail("OAUTH_GRANT_TYPE", "is not a known grant type", "use one of " + ", ".join(GRANT_TYPES))
    client_id = default("OAUTH_CLIENT_ID", "cmem-service-account")

    ssl_verify_text = default("SSL_VERIFY", "true")
    if ssl_verify_text.lower() not in ("true", "false"):
        raise fail("SSL_VERIFY", "is neither true nor false", "set SSL_VERIFY=true, or SSL_VERIFY=false for testing only")
    ssl_verify = ssl_verify_text.lower() == "true"

    ca_bundle_is_default = "REQUESTS_CA_BUNDLE" not in settings or not settings["REQUESTS_CA_BUNDLE"].value.strip()
    if ca_bundle_is_default:
        import certifi

        settings["REQUESTS_CA_BUNDLE"] = Setting(certifi.where(), Source.BUILTIN)
    ca_bundle = Path(os.path.abspath(os.path.expanduser(settings["REQUESTS_CA_BUNDLE"].value.strip())))
    trust_store = default("SSL_TRUST_STORE", "bundle").lower()
    if trust_store not in TRUST_STORES:
        raise fail(
            "SSL_TRUST_STORE",
            "is not a known trust store",
            "set SSL_TRUST_STORE=bundle to trust REQUESTS_CA_BUNDLE, or SSL_TRUST_STORE=system for the operating system's store",
        )
    client_certificate, client_key = _client_certificate_paths(settings, fail)

    # The environment of credential processes copies the caller's environment, so
    # it is built only for a connection that has a process to run.
    has_process = any(key.endswith(PROCESS_SUFFIX) for key in settings)
    process_environment = _process_environment(settings, environ) if has_process else {}
    secrets, secret_processes = _resolve_secrets(name, settings, process_environment, fail)
    user = settings["OAUTH_USER"].value if "OAUTH_USER" in settings else None
    custom_headers = _custom_headers(settings, process_environment, fail)
    warning = settings.get(NO_WARNING_KEY, Setting("false", Source.BUILTIN)).value.strip().lower() != "true"

    return Connection(
        name=name,
        config_path=config_path,
        settings=MappingProxyType(settings),
        base_uri=base_uri,
        dp_api_endpoint=dp_api_endpoint,
        di_api_endpoint=di_api_endpoint,
        token_uri=token_uri,
        grant_type=grant_type,
        client_id=client_id,
        user=user,
        ssl_verify=ssl_verify,
        ca_bundle=ca_bundle,
        ca_bundle_is_default=ca_bundle_is_default,
        custom_headers=custom_headers,
        secrets=MappingProxyType(secrets),
        secret_processes=MappingProxyType(secret_processes),
        process_environment=MappingProxyType(process_environment),
        proxy_environment=MappingProxyType({key: environ[key] for key in PROXY_VARIABLES if key in environ}),
        credential_process_warning=warning,
        trust_store=trust_store,
        client_certificate=client_certificate,
        client_key=client_key,
        ignored_environment=ignored_environment,
    )


def _client_certificate_paths(settings: Mapping[str, Setting], fail: _Fail) -> tuple[Path | None, Path | None]:
    """Return the absolute paths of ``SSL_CLIENT_CERT`` and ``SSL_CLIENT_KEY``; an empty value counts as unset."""

    def path_of(key: str) -> Path | None:
        value = settings[key].value.strip() if key in settings else ""
        return Path(os.path.abspath(os.path.expanduser(value))) if value else None

    certificate = path_of("SSL_CLIENT_CERT")
    key = path_of("SSL_CLIENT_KEY")
    if key is not None and certificate is None:
        raise fail(
            "SSL_CLIENT_KEY",
            "is set without SSL_CLIENT_CERT",
            "set SSL_CLIENT_CERT to the PEM file of the client certificate that belongs to this key",
        )
    return certificate, key


def _url_problem(value: str) -> str | None:
    if not value or any(character.isspace() for character in value):
        return "is not a URL"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "does not start with http:// or https://"
    if not parts.hostname:
        return "has no host name"
    if parts.username is not None or parts.password is not None:
        return "contains a user name or password, which would be sent in clear text"
    return None


def _redact_userinfo(url: str) -> str:
    """Replace the user name and password of a URL with "***", so that an error cannot show them."""
    scheme, separator, rest = url.partition("://")
    if "@" not in rest:
        return url
    # Everything up to the last "@" may belong to the password, "/" included.
    return f"{scheme}{separator}***@{rest.rsplit('@', 1)[1]}"


def _process_environment(settings: Mapping[str, Setting], environ: Mapping[str, str]) -> dict[str, str]:
    """Build the environment of a credential process: the caller's environment and the connection's keys.

    Secrets and custom header values stay out of it, from the connection and
    from the caller's environment alike: a process that prints one secret has no
    need for the others. Connection keys of the caller's environment are
    replaced by the connection's own.
    """
    environment = {
        key: value for key, value in environ.items() if not is_secret_key(key) and not _is_known(key)
    }
    for key, setting in settings.items():
        if not is_secret_key(key):
            environment[key] = setting.value
    return environment


def parse_command(value: str, path: str | None) -> tuple[str, ...] | None:
    """Parse a ``*_PROCESS`` value into an argument list, or return ``None`` if it is invalid.

    The value is either a command found in ``PATH`` (no arguments) or a Python
    list literal of strings such as ``["getpass.sh", "arg1"]``. The first element
    is looked up in ``path`` (the ``PATH`` of the process environment).
    """
    value = value.strip()
    if value.startswith("["):
        try:
            parsed = ast.literal_eval(value)
        except (SyntaxError, ValueError):
            return None
        if not isinstance(parsed, list) or not parsed or not all(isinstance(item, str) for item in parsed):
            return None
        argv = tuple(parsed)
    elif value:
        argv = (value,)
    else:
        return None

    executable = shutil.which(argv[0], path=path)
    if executable is None:
        return None
    return (executable, *argv[1:])


def _resolve_secrets(
    name: str, settings: Mapping[str, Setting], process_environment: Mapping[str, str], fail: _Fail
) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    secrets: dict[str, str] = {}
    processes: dict[str, tuple[str, ...]] = {}
    for key in sorted(SECRET_KEYS):
        process_key = key + PROCESS_SUFFIX
        if key in settings and settings[key].value:
            secrets[key] = settings[key].value
        if process_key not in settings:
            continue
        if name == DEFAULT_CONNECTION_NAME:
            # A credential process runs for named connections only, as in cmemc.
            continue
        argv = parse_command(settings[process_key].value, process_environment.get("PATH"))
        if argv is None:
            raise fail(
                process_key,
                "names no command found in PATH: give a command name or a list such as [\"getpass.sh\", \"arg1\"]",
                "name an executable in PATH, or give its absolute path",
            )
        processes[key] = argv
    return secrets, processes


def credentials_problem(connection: Connection) -> ConfigurationError | None:
    """Return the error for a credential that the grant type needs and the connection lacks, or ``None``."""
    name = connection.name
    if connection.config_path is not None and connection.is_named:
        where = f"section [{name}] of {connection.config_path}"
    elif connection.is_named:
        where = "the settings given in code"
    else:
        where = "the environment and [DEFAULT]"

    def ignored(key: str) -> str:
        if key in connection.ignored_environment:
            return f" ({key} in the environment does not apply to a named connection; put it into its section)"
        return ""

    if connection.grant_type == "password" and not connection.user:
        return ConfigurationError(
            f"OAUTH_USER is missing from {where}, but OAUTH_GRANT_TYPE=password needs it{ignored('OAUTH_USER')}. "
            "Fix: set OAUTH_USER.",
            connection=name,
        )
    key = {
        "client_credentials": "OAUTH_CLIENT_SECRET",
        "password": "OAUTH_PASSWORD",
        "prefetched_token": "OAUTH_ACCESS_TOKEN",
    }[connection.grant_type]
    if key in connection.secrets or key in connection.secret_processes:
        return None
    hint = ignored(key)
    if key + PROCESS_SUFFIX in connection.settings and not connection.is_named:
        hint = f" ({key}{PROCESS_SUFFIX} only runs for a named connection: select one with -c NAME)"
    return ConfigurationError(
        f"{key} is missing from {where}, but OAUTH_GRANT_TYPE={connection.grant_type} needs it{hint}. "
        f"Fix: set {key} or {key}{PROCESS_SUFFIX}; acmemc has no built-in secrets.",
        connection=name,
    )


def _custom_headers(
    settings: Mapping[str, Setting], process_environment: Mapping[str, str], fail: _Fail
) -> tuple[CustomHeader, ...]:
    headers: list[CustomHeader] = []
    for key in sorted(settings):
        if not key.startswith(CUSTOM_HEADER_PREFIX):
            continue
        suffix = key[len(CUSTOM_HEADER_PREFIX) :]
        is_process = suffix.endswith(PROCESS_SUFFIX)
        if is_process:
            suffix = suffix[: -len(PROCESS_SUFFIX)]
        header_name = suffix.replace("_", "-")
        if not header_name or not HEADER_NAME.match(header_name):
            raise fail(key, "does not give a valid header name", "use letters, digits and _ after CMEMC_CUSTOM_HEADER_")
        if header_name.lower() in PROTECTED_HEADERS:
            raise fail(key, f"would replace the protected header {header_name}", "remove this key; acmemc sets that header itself")

        value = settings[key].value
        if is_process:
            argv = parse_command(value, process_environment.get("PATH"))
            if argv is None:
                raise fail(
                    key,
                    "names no command found in PATH: give a command name or a list such as [\"header.sh\", \"arg1\"]",
                    "name an executable in PATH, or give its absolute path",
                )
            headers.append(CustomHeader(name=header_name, key=key, process=argv))
        else:
            if "\n" in value or "\r" in value:
                raise fail(key, "contains a line break", "put the header value on one line")
            headers.append(CustomHeader(name=header_name, key=key, value=value))

    # A value and a process for the same header: the process wins, as for secrets.
    by_name: dict[str, CustomHeader] = {}
    for header in headers:
        if header.name not in by_name or header.process is not None:
            by_name[header.name] = header
    return tuple(by_name.values())
