"""Tests of reading cmemc's config.ini and resolving connections from it."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import certifi
import pytest

from _helpers import connection_from
from acmemc import (
    ConfigurationError,
    Setting,
    Source,
    default_config_path,
    parse_config,
    read_config,
    resolve_connection,
)
from acmemc._config import describe_setting

SECRET = "hunter2-do-not-print"
PROD = f"""\
[prod]
CMEM_BASE_URI = https://prod.example
OAUTH_CLIENT_SECRET = {SECRET}
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """Return the path that parse_config names in its messages. The file itself is never read."""
    return tmp_path / "config.ini"


# Parsing


def test_parse_keeps_default_apart() -> None:
    config = parse_config("[DEFAULT]\nA = 1\n[prod]\nB = 2\n", None)

    assert dict(config.defaults) == {"A": "1"}
    assert dict(config.sections) == {"prod": {"B": "2"}}


def test_parse_keeps_key_case() -> None:
    config = parse_config("[prod]\nCmem_Base_Uri = x\n", None)

    assert list(config.sections["prod"]) == ["Cmem_Base_Uri"]


def test_parse_no_interpolation() -> None:
    config = parse_config("[prod]\nA = 50%(B)s $HOME\n", None)

    assert config.sections["prod"]["A"] == "50%(B)s $HOME"


def test_parse_multiline_value() -> None:
    config = parse_config("[prod]\nA = first\n  second\n", None)

    assert config.sections["prod"]["A"] == "first\nsecond"


def test_connection_names_sorted_casefold() -> None:
    config = parse_config("[DEFAULT]\n[beta]\n[Alpha]\n[gamma]\n[BETA2]\n", None)

    assert config.connection_names == ["Alpha", "beta", "BETA2", "gamma"]


def test_connection_names_exclude_default() -> None:
    config = parse_config("[DEFAULT]\nA = 1\n", None)

    assert config.connection_names == []


# Reading files


async def test_read_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.ini"
    path.write_text(PROD, encoding="utf-8")

    config = await read_config(path)

    assert config.path == path
    assert config.sections["prod"]["CMEM_BASE_URI"] == "https://prod.example"


async def test_read_config_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.ini").write_text(PROD, encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    config = await read_config("config.ini")

    assert config.path == tmp_path / "config.ini"


def test_default_path_under_xdg_config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    assert default_config_path() == tmp_path / "cmemc" / "config.ini"


async def test_read_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "cmemc").mkdir()
    (tmp_path / "cmemc" / "config.ini").write_text(PROD, encoding="utf-8")

    config = await read_config(None)

    assert config.connection_names == ["prod"]


async def test_read_default_missing_is_empty() -> None:
    config = await read_config(None)

    assert config.path is None
    assert config.connection_names == []
    assert dict(config.defaults) == {}


async def test_read_explicit_missing_fails(tmp_path: Path) -> None:
    path = tmp_path / "missing.ini"

    with pytest.raises(ConfigurationError) as caught:
        await read_config(path)

    assert str(path) in str(caught.value)
    assert "Fix:" in str(caught.value)


async def test_read_directory_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await read_config(tmp_path)

    assert str(tmp_path) in str(caught.value)


async def test_read_invalid_utf8_fails(tmp_path: Path) -> None:
    path = tmp_path / "config.ini"
    path.write_bytes(b"[prod]\nOAUTH_CLIENT_ID = caf\xe9\n")

    with pytest.raises(ConfigurationError) as caught:
        await read_config(path)

    assert "UTF-8" in str(caught.value)


# Built-in defaults


def test_builtin_defaults() -> None:
    connection = connection_from("[DEFAULT]\nOAUTH_CLIENT_SECRET = s\n")

    assert connection.base_uri == "http://docker.localhost"
    assert connection.dp_api_endpoint == "http://docker.localhost/dataplatform"
    assert connection.di_api_endpoint == "http://docker.localhost/dataintegration"
    assert connection.settings["KEYCLOAK_BASE_URI"].value == "http://docker.localhost/auth"
    assert connection.settings["KEYCLOAK_REALM_ID"].value == "cmem"
    assert connection.token_uri == "http://docker.localhost/auth/realms/cmem/protocol/openid-connect/token"
    assert connection.grant_type == "client_credentials"
    assert connection.client_id == "cmem-service-account"
    assert connection.ssl_verify is True
    assert connection.ca_bundle == Path(certifi.where())
    assert connection.ca_bundle_is_default is True


@pytest.mark.parametrize(
    ("key", "derived_from"),
    [
        ("CMEM_BASE_URI", ()),
        ("DP_API_ENDPOINT", ("CMEM_BASE_URI",)),
        ("DI_API_ENDPOINT", ("CMEM_BASE_URI",)),
        ("KEYCLOAK_BASE_URI", ("CMEM_BASE_URI",)),
        ("KEYCLOAK_REALM_ID", ()),
        ("OAUTH_TOKEN_URI", ("KEYCLOAK_BASE_URI", "KEYCLOAK_REALM_ID")),
        ("OAUTH_GRANT_TYPE", ()),
        ("OAUTH_CLIENT_ID", ()),
        ("SSL_VERIFY", ()),
        ("REQUESTS_CA_BUNDLE", ()),
    ],
)
def test_builtin_default_source(key: str, derived_from: tuple[str, ...]) -> None:
    connection = connection_from(PROD.replace("CMEM_BASE_URI = https://prod.example\n", ""), "prod")

    assert connection.settings[key].source is Source.BUILTIN
    assert connection.settings[key].derived_from == derived_from


def test_defaults_derive_from_base_uri() -> None:
    connection = connection_from(PROD, "prod")

    assert connection.dp_api_endpoint == "https://prod.example/dataplatform"
    assert connection.di_api_endpoint == "https://prod.example/dataintegration"
    assert connection.token_uri == "https://prod.example/auth/realms/cmem/protocol/openid-connect/token"


def test_base_uri_trailing_slash_stripped() -> None:
    connection = connection_from(PROD.replace("https://prod.example", "https://prod.example/"), "prod")

    assert connection.base_uri == "https://prod.example"
    assert connection.dp_api_endpoint == "https://prod.example/dataplatform"
    assert connection.token_uri.startswith("https://prod.example/auth/")


def test_token_uri_from_keycloak_keys() -> None:
    text = PROD + "KEYCLOAK_BASE_URI = https://sso.example/\nKEYCLOAK_REALM_ID = staff\n"

    connection = connection_from(text, "prod")

    assert connection.token_uri == "https://sso.example/realms/staff/protocol/openid-connect/token"


def test_explicit_endpoints_win_over_derived() -> None:
    text = PROD + "DP_API_ENDPOINT = https://dp.example/api\nOAUTH_TOKEN_URI = https://sso.example/token\n"

    connection = connection_from(text, "prod")

    assert connection.dp_api_endpoint == "https://dp.example/api"
    assert connection.token_uri == "https://sso.example/token"
    assert connection.settings["OAUTH_TOKEN_URI"].source is Source.SECTION


def test_empty_value_uses_builtin_default() -> None:
    connection = connection_from(PROD + "OAUTH_CLIENT_ID =\n", "prod")

    assert connection.client_id == "cmem-service-account"
    assert connection.settings["OAUTH_CLIENT_ID"].source is Source.BUILTIN


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("TRUE", True), ("false", False), ("False", False), ("FALSE", False)])
def test_ssl_verify_any_case(text: str, expected: bool) -> None:
    connection = connection_from(PROD + f"SSL_VERIFY = {text}\n", "prod")

    assert connection.ssl_verify is expected


def test_ca_bundle_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    connection = connection_from(PROD + "REQUESTS_CA_BUNDLE = certs/ca.pem\n", "prod")

    assert connection.ca_bundle == tmp_path / "certs" / "ca.pem"
    assert connection.ca_bundle_is_default is False


def test_password_grant() -> None:
    text = "[prod]\nOAUTH_GRANT_TYPE = password\nOAUTH_USER = alice\nOAUTH_PASSWORD = pw\n"

    connection = connection_from(text, "prod")

    assert connection.grant_type == "password"
    assert connection.user == "alice"
    assert connection.secrets["OAUTH_PASSWORD"] == "pw"


def test_prefetched_token_grant() -> None:
    connection = connection_from("[prod]\nOAUTH_GRANT_TYPE = prefetched_token\nOAUTH_ACCESS_TOKEN = tok\n", "prod")

    assert connection.grant_type == "prefetched_token"
    assert connection.secrets["OAUTH_ACCESS_TOKEN"] == "tok"


# Resolution order


def test_named_section_wins_over_all() -> None:
    text = "[DEFAULT]\nOAUTH_CLIENT_ID = from-default\n" + PROD + "OAUTH_CLIENT_ID = from-section\n"

    connection = connection_from(text, "prod", environ={"OAUTH_CLIENT_ID": "from-env"})

    assert connection.client_id == "from-section"
    assert connection.settings["OAUTH_CLIENT_ID"].source is Source.SECTION


def test_named_uses_default_section() -> None:
    """Check that [DEFAULT] applies to known keys with -c NAME, which cmemc 25.6.2 ignores."""
    text = "[DEFAULT]\nOAUTH_CLIENT_ID = from-default\nSSL_VERIFY = false\n" + PROD

    connection = connection_from(text, "prod")

    assert connection.client_id == "from-default"
    assert connection.settings["OAUTH_CLIENT_ID"].source is Source.DEFAULT_SECTION
    assert connection.ssl_verify is False


def test_named_default_wins_over_environment() -> None:
    text = "[DEFAULT]\nOAUTH_CLIENT_ID = from-default\n" + PROD

    connection = connection_from(text, "prod", environ={"OAUTH_CLIENT_ID": "from-env"})

    assert connection.client_id == "from-default"


def test_named_ignores_environment_keys() -> None:
    environ = {
        "CMEM_BASE_URI": "https://env.example",
        "OAUTH_CLIENT_ID": "from-env",
        "OAUTH_CLIENT_SECRET": "env-secret",
        "SSL_VERIFY": "false",
    }

    connection = connection_from(PROD, "prod", environ=environ)

    assert connection.base_uri == "https://prod.example"
    assert connection.client_id == "cmem-service-account"
    assert connection.settings["OAUTH_CLIENT_ID"].source is Source.BUILTIN
    assert connection.secrets["OAUTH_CLIENT_SECRET"] == SECRET
    assert connection.ssl_verify is True


def test_named_secret_not_from_environment() -> None:
    with pytest.raises(ConfigurationError) as caught:
        connection_from("[prod]\n", "prod", environ={"OAUTH_CLIENT_SECRET": SECRET})

    assert "OAUTH_CLIENT_SECRET is missing" in str(caught.value)


def test_unnamed_environment_wins_over_default() -> None:
    """Check a [DEFAULT] key that is also set in the environment, on which cmemc 25.6.2 crashes."""
    text = "[DEFAULT]\nCMEM_BASE_URI = https://default.example\nOAUTH_CLIENT_SECRET = s\n"

    connection = connection_from(text, environ={"CMEM_BASE_URI": "https://env.example"})

    assert connection.base_uri == "https://env.example"
    assert connection.settings["CMEM_BASE_URI"].source is Source.ENVIRONMENT
    assert connection.dp_api_endpoint == "https://env.example/dataplatform"


def test_unnamed_default_wins_over_builtin() -> None:
    text = "[DEFAULT]\nCMEM_BASE_URI = https://default.example\nOAUTH_CLIENT_SECRET = s\n"

    connection = connection_from(text)

    assert connection.base_uri == "https://default.example"
    assert connection.settings["CMEM_BASE_URI"].source is Source.DEFAULT_SECTION


def test_unnamed_from_environment_only() -> None:
    environ = {"CMEM_BASE_URI": "https://env.example", "OAUTH_CLIENT_SECRET": SECRET, "SSL_VERIFY": "false"}

    connection = connection_from("", environ=environ)

    assert connection.base_uri == "https://env.example"
    assert connection.secrets["OAUTH_CLIENT_SECRET"] == SECRET
    assert connection.ssl_verify is False
    assert connection.is_named is False


def test_unnamed_ignores_sections() -> None:
    connection = connection_from(PROD + "[DEFAULT]\nOAUTH_CLIENT_SECRET = s\n")

    assert connection.base_uri == "http://docker.localhost"


def test_unrelated_environment_ignored() -> None:
    connection = connection_from("[DEFAULT]\nOAUTH_CLIENT_SECRET = s\n", environ={"HOME": "/home/alice"})

    assert "HOME" not in connection.settings


def test_connection_key_not_a_setting() -> None:
    text = "[DEFAULT]\nCMEMC_CONNECTION = prod\n" + PROD

    connection = connection_from(text, "prod")

    assert "CMEMC_CONNECTION" not in connection.settings


def test_describe_source_names_file(config_path: Path) -> None:
    text = "[DEFAULT]\nOAUTH_CLIENT_ID = x\n" + PROD

    connection = connection_from(text, "prod", path=config_path)

    assert connection.describe_source("CMEM_BASE_URI") == f"section [prod] of {config_path}"
    assert connection.describe_source("OAUTH_CLIENT_ID") == f"section [DEFAULT] of {config_path}"


# Custom headers


def test_custom_header_from_config() -> None:
    connection = connection_from(PROD + "CMEMC_CUSTOM_HEADER_X_TENANT = blue\n", "prod")

    assert [(header.name, header.value) for header in connection.custom_headers] == [("X-TENANT", "blue")]


def test_custom_header_from_environment() -> None:
    environ = {"CMEMC_CUSTOM_HEADER_X_TENANT": "blue", "OAUTH_CLIENT_SECRET": "s"}

    connection = connection_from("", environ=environ)

    assert [(header.name, header.value) for header in connection.custom_headers] == [("X-TENANT", "blue")]


def test_custom_header_section_wins() -> None:
    text = PROD + "CMEMC_CUSTOM_HEADER_X_TENANT = from-section\n"

    connection = connection_from(text, "prod", environ={"CMEMC_CUSTOM_HEADER_X_TENANT": "from-env"})

    assert [header.value for header in connection.custom_headers] == ["from-section"]


def test_custom_header_value_hidden_in_repr() -> None:
    connection = connection_from(PROD + "CMEMC_CUSTOM_HEADER_X_API_KEY = header-secret\n", "prod")

    assert "header-secret" not in repr(connection)


@pytest.mark.parametrize(
    "key",
    [
        "CMEMC_CUSTOM_HEADER_AUTHORIZATION",
        "CMEMC_CUSTOM_HEADER_Authorization",
        "CMEMC_CUSTOM_HEADER_USER_AGENT",
        "CMEMC_CUSTOM_HEADER_user_agent",
    ],
)
def test_custom_header_protected(key: str, config_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        connection_from(PROD + f"{key} = Bearer {SECRET}x\n", "prod", path=config_path)

    message = str(caught.value)
    assert key in message
    assert f"{SECRET}x" not in message
    assert "Fix:" in message


def test_custom_header_line_break_hidden() -> None:
    with pytest.raises(ConfigurationError) as caught:
        connection_from(PROD + f"CMEMC_CUSTOM_HEADER_X_API_KEY = {SECRET}x\n  second\n", "prod")

    assert "CMEMC_CUSTOM_HEADER_X_API_KEY" in str(caught.value)
    assert f"{SECRET}x" not in str(caught.value)


# Immutability and secrets


def test_connection_frozen() -> None:
    connection = connection_from(PROD, "prod")

    with pytest.raises(dataclasses.FrozenInstanceError):
        connection.base_uri = "https://other.example"  # type: ignore[misc]


def test_settings_read_only() -> None:
    connection = connection_from(PROD, "prod")

    with pytest.raises(TypeError):
        connection.settings["CMEM_BASE_URI"] = Setting("x", Source.SECTION)  # type: ignore[index]


def test_secret_hidden_in_repr() -> None:
    connection = connection_from(PROD, "prod")

    assert SECRET not in repr(connection)


# Errors


def test_unknown_connection(config_path: Path) -> None:
    config = parse_config(PROD + "[test]\n", config_path)

    with pytest.raises(ConfigurationError) as caught:
        resolve_connection(config, "staging", {})

    message = str(caught.value)
    assert "'staging'" in message
    assert str(config_path) in message
    assert "prod, test" in message
    assert "Fix:" in message


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        ("CMEM_BASE_URI = prod.example", "CMEM_BASE_URI", "prod.example"),
        ("CMEM_BASE_URI = ftp://prod.example", "CMEM_BASE_URI", "ftp://prod.example"),
        ("CMEM_BASE_URI = https://", "CMEM_BASE_URI", "https://"),
        ("CMEM_BASE_URI = https://prod.example:99999", "CMEM_BASE_URI", "https://prod.example:99999"),
        ("CMEM_BASE_URI = https://prod.example:port", "CMEM_BASE_URI", "https://prod.example:port"),
        ("DP_API_ENDPOINT = /dataplatform", "DP_API_ENDPOINT", "/dataplatform"),
        ("OAUTH_TOKEN_URI = https://sso example/token", "OAUTH_TOKEN_URI", "https://sso example/token"),
        ("OAUTH_GRANT_TYPE = implicit", "OAUTH_GRANT_TYPE", "implicit"),
        ("SSL_VERIFY = yes", "SSL_VERIFY", "yes"),
        ("SSL_VERIFY = 0", "SSL_VERIFY", "0"),
    ],
)
def test_invalid_value_message(line: str, key: str, value: str, config_path: Path) -> None:
    text = f"[prod]\nOAUTH_CLIENT_SECRET = {SECRET}\n{line}\n"

    with pytest.raises(ConfigurationError) as caught:
        connection_from(text, "prod", path=config_path)

    message = str(caught.value)
    assert "\n" not in message
    assert str(config_path) in message
    assert "[prod]" in message
    assert key in message
    assert repr(value) in message
    assert "Fix:" in message


def test_invalid_value_from_environment() -> None:
    with pytest.raises(ConfigurationError) as caught:
        connection_from("", environ={"CMEM_BASE_URI": "prod.example", "OAUTH_CLIENT_SECRET": "s"})

    assert "environment" in str(caught.value)


def test_invalid_value_from_default_section(config_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        connection_from("[DEFAULT]\nSSL_VERIFY = maybe\n" + PROD, "prod", path=config_path)

    assert f"section [DEFAULT] of {config_path}" in str(caught.value)


def test_error_without_path_readable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        connection_from(PROD + "SSL_VERIFY = yes\n", "prod")

    assert "of None" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["https://alice:{secret}@prod.example", "https://:{secret}@prod.example", "https://alice:{secret}@prod.example:8443/"],
)
def test_url_password_not_in_message(url: str, config_path: Path) -> None:
    text = "[prod]\nOAUTH_CLIENT_SECRET = s\nCMEM_BASE_URI = " + url.format(secret=SECRET) + "\n"

    with pytest.raises(ConfigurationError) as caught:
        connection_from(text, "prod", path=config_path)

    message = str(caught.value)
    assert "CMEM_BASE_URI" in message
    assert "password" in message
    assert SECRET not in message


def test_url_slash_password_hidden(config_path: Path) -> None:
    """Check a password with an unencoded "/", which ends the host part of the URL early."""
    text = f"[prod]\nOAUTH_CLIENT_SECRET = s\nCMEM_BASE_URI = https://alice:pre/{SECRET}@prod.example\n"

    with pytest.raises(ConfigurationError) as caught:
        connection_from(text, "prod", path=config_path)

    assert "CMEM_BASE_URI" in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("grant_type", "missing_key"),
    [
        ("client_credentials", "OAUTH_CLIENT_SECRET"),
        ("password", "OAUTH_PASSWORD"),
        ("prefetched_token", "OAUTH_ACCESS_TOKEN"),
    ],
)
def test_missing_secret_message(grant_type: str, missing_key: str, config_path: Path) -> None:
    text = f"[prod]\nOAUTH_GRANT_TYPE = {grant_type}\nOAUTH_USER = alice\n"

    with pytest.raises(ConfigurationError) as caught:
        connection_from(text, "prod", path=config_path)

    message = str(caught.value)
    assert "\n" not in message
    assert "'prod'" in message
    assert missing_key in message
    assert "Fix:" in message


def test_missing_secret_names_file(config_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        connection_from("[prod]\n", "prod", path=config_path)

    assert str(config_path) in str(caught.value)


def test_password_grant_needs_user() -> None:
    with pytest.raises(ConfigurationError) as caught:
        connection_from(f"[prod]\nOAUTH_GRANT_TYPE = password\nOAUTH_PASSWORD = {SECRET}\n", "prod")

    assert "OAUTH_USER" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_empty_secret_is_missing() -> None:
    with pytest.raises(ConfigurationError) as caught:
        connection_from("[prod]\nOAUTH_CLIENT_SECRET =\n", "prod")

    assert "OAUTH_CLIENT_SECRET is missing" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "line_number", "expected"),
    [
        ("CMEM_BASE_URI = x\n[prod]\n", 1, "outside of a section"),
        ("[prod]\nthis is not a key\n", 2, "is not a KEY=value line"),
        ("[prod]\nA = 1\n[test]\n[prod]\n", 4, "[prod] appears twice"),
        ("[DEFAULT]\n[DEFAULT]\n", 2, "[DEFAULT] appears twice"),
        ("[prod]\nA = 1\nB = 2\nA = 3\n", 4, "key A appears twice in section [prod]"),
        ("[prod\nA = 1\n", 1, "section header '[prod' has no closing ]"),
    ],
)
def test_syntax_error_message(text: str, line_number: int, expected: str, config_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_config(text, config_path)

    message = str(caught.value)
    assert "\n" not in message
    assert str(config_path) in message
    assert f"line {line_number}:" in message
    assert expected in message
    assert "Fix:" in message


@pytest.mark.parametrize(
    "text",
    [
        f"OAUTH_CLIENT_SECRET = {SECRET}\n[prod]\n",
        f"[prod]\nOAUTH_CLIENT_SECRET {SECRET}\n",
        f"[prod]\nOAUTH_PASSWORD={SECRET}\nOAUTH_PASSWORD={SECRET}\n",
    ],
)
def test_syntax_error_hides_secret(text: str, config_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_config(text, config_path)

    assert SECRET not in str(caught.value)


# Debug log


@pytest.mark.parametrize(
    ("key", "setting", "expected"),
    [
        ("CMEM_BASE_URI", Setting("https://prod.example", Source.SECTION), "CMEM_BASE_URI set by config to https://prod.example"),
        ("OAUTH_CLIENT_ID", Setting("cli", Source.DEFAULT_SECTION), "OAUTH_CLIENT_ID set by config [DEFAULT] to cli"),
        ("SSL_VERIFY", Setting("false", Source.ENVIRONMENT), "SSL_VERIFY set by environment to false"),
        (
            "DP_API_ENDPOINT",
            Setting("http://docker.localhost/dataplatform", Source.BUILTIN, ("CMEM_BASE_URI",)),
            "DP_API_ENDPOINT set by built-in default to http://docker.localhost/dataplatform (derived from CMEM_BASE_URI)",
        ),
        ("OAUTH_CLIENT_SECRET", Setting(SECRET, Source.SECTION), "OAUTH_CLIENT_SECRET set by config"),
        ("OAUTH_PASSWORD", Setting(SECRET, Source.ENVIRONMENT), "OAUTH_PASSWORD set by environment"),
        ("CMEMC_CUSTOM_HEADER_X_API_KEY", Setting(SECRET, Source.SECTION), "CMEMC_CUSTOM_HEADER_X_API_KEY set by config"),
    ],
)
def test_describe_setting(key: str, setting: Setting, expected: str) -> None:
    assert describe_setting(key, setting) == expected


def test_resolve_logs_each_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="acmemc")
    text = "[DEFAULT]\nOAUTH_CLIENT_ID = cli\n" + PROD + f"CMEMC_CUSTOM_HEADER_X_API_KEY = {SECRET}x\n"

    connection = connection_from(text, "prod")

    records = [record for record in caplog.records if record.name == "acmemc.config"]
    expected = [describe_setting(key, setting) for key, setting in connection.settings.items()]
    assert sorted(record.getMessage() for record in records) == sorted(expected)
    assert all(getattr(record, "connection", None) == "prod" for record in records)
    assert "OAUTH_CLIENT_ID set by config [DEFAULT] to cli" in caplog.messages
    assert "OAUTH_CLIENT_SECRET set by config" in caplog.messages
    assert SECRET not in caplog.text


def test_resolve_logs_nothing_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="acmemc")

    connection_from(PROD, "prod")

    assert caplog.records == []


def test_describe_setting_multi_line_value() -> None:
    line = describe_setting("CMEM_BASE_URI", Setting("first\nsecond", Source.SECTION))

    assert line == "CMEM_BASE_URI set by config to first\\nsecond"
