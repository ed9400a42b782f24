"""``acmemc admin``: health checks and access tokens of one or many connections."""

from __future__ import annotations

import csv
import json
import time
from typing import TYPE_CHECKING, Any

import asyncclick as click

from ._app import EXIT_CONFIGURATION, EXIT_FAILED, EXIT_OK, App, CLIError, error_record, output_option
from ._table import STATE_COLORS, render_table

if TYPE_CHECKING:
    from .._auth import AccessToken
    from .._fleet import ConnectionResult
    from .._status import DeploymentStatus

__all__ = ["admin_group"]

COMPONENTS = ("BUILD", "EXPLORE", "SHAPES", "STORE")


@click.group(name="admin")
def admin_group() -> None:
    """Check the health of deployments and fetch access tokens."""


@admin_group.command(name="status")
@click.option(
    "--key",
    metavar="KEY",
    help="Print only the values whose dotted key starts with KEY, e.g. explore.version. "
    "'all' lists every key; 'overall.healthy' is UP when every component is UP, else DOWN.",
)
@click.option("--raw", is_flag=True, help="Print the combined JSON of the health and info endpoints.")
@click.option("--enforce-table", is_flag=True, help="Print a table even when --key matches a single value.")
@output_option
@click.option(
    "--exit-1",
    "exit_1",
    type=click.Choice(["never", "error", "always"]),
    default="never",
    show_default=True,
    help="When to exit with status 1: never, on errors (a component not UP, an expired license or "
    "certificate), or always on errors and warnings.",
)
@click.option(
    "--expiry-warning",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    metavar="DAYS",
    help="Warn when the server certificate of the base URI expires within DAYS days.",
)
@click.pass_obj
async def status_command(
    app: App, key: str | None, raw: bool, enforce_table: bool, output: str, exit_1: str, expiry_warning: float
) -> None:
    """Show health and versions of each connection's deployment.

    With one connection the output is cmemc's: a table of the components BUILD,
    EXPLORE, SHAPES and STORE with version and UP, DOWN or UNKNOWN. With several
    connections (-c twice, --all-connections or --match), each connection is
    one row with overall health, component versions, response time and the
    server certificate: days until it expires and its issuer.
    """
    from .._fleet import ConnectionResult
    from .._status import fetch_status

    selection = await app.select()
    app.warn_ssl_verify_disabled(selection.connections)

    async def operation(client: Any) -> DeploymentStatus:
        return await fetch_status(client, expiry_warning_days=expiry_warning)

    def stream(result: ConnectionResult[DeploymentStatus]) -> None:
        click.echo(json.dumps(_status_record(result)))

    streaming = output == "ndjson" and not key
    results = await app.run_fleet(selection, operation, on_result=stream if streaming else None)
    # A connection with an invalid configuration is a failed row in every format, like an unreachable one.
    invalid: list[ConnectionResult[DeploymentStatus]] = [
        ConnectionResult(str(error.connection), None, error, 0.0) for error in selection.errors
    ]
    if streaming:
        for result in invalid:
            stream(result)
    results = sorted(results + invalid, key=lambda result: result.connection.casefold())

    if streaming:
        pass
    elif output == "csv" and not key:
        _print_status_csv(results)
    elif selection.multiple:
        _print_status_multiple(app, results, key=key, raw=raw or output == "json", enforce_table=enforce_table)
    else:
        _print_status_single(app, results[0], key=key, raw=raw or output == "json", enforce_table=enforce_table)

    status = app.report_failures(results, [])
    if status == EXIT_CONFIGURATION:
        raise click.exceptions.Exit(EXIT_CONFIGURATION)
    statuses = [result.value for result in results if result.value is not None]
    has_errors = status != EXIT_OK or any(value.has_errors for value in statuses)
    has_warnings = any(value.has_warnings for value in statuses)
    if exit_1 == "always" and (has_errors or has_warnings) or exit_1 == "error" and has_errors:
        raise click.exceptions.Exit(EXIT_FAILED)
    raise click.exceptions.Exit(EXIT_OK)


def _print_status_single(
    app: App, result: ConnectionResult[DeploymentStatus], *, key: str | None, raw: bool, enforce_table: bool
) -> None:
    from .._status import flatten

    status = result.value
    if status is None:
        return
    if raw:
        click.echo(json.dumps(status.data, indent=2))
        return
    if key:
        rows = [[row_key, value] for row_key, value in flatten(status.data) if key == "all" or row_key.startswith(key)]
        if not rows:
            raise CLIError(f"no status value has a key that starts with {key!r}. Fix: list the keys with --key all.", EXIT_FAILED)
        if len(rows) == 1 and not enforce_table:
            click.echo(rows[0][1])
            return
        app.echo(render_table(["Key", "Value"], sorted(rows, key=lambda row: row[0].lower()), app.console_width()))
        return

    rows = [[name, *_component(status.data, name)] for name in COMPONENTS]
    table = render_table(["Component", "Version", "Status"], rows, app.console_width(), _state_color)
    app.echo(table)
    click.echo(f"Status of {status.base_uri}".center(len(table.splitlines()[0])).rstrip())
    _print_findings(app, status, prefix="", detailed=True)


def _component(data: dict[str, Any], name: str) -> tuple[str, str]:
    part = data[name.lower()] if name != "STORE" else data["store"]
    version = part["version"]
    if name == "STORE" and part["type"] != "GRAPHDB":
        # cmemc names the store type unless it is GraphDB, the default store.
        version = f"{part['type']}/{version}"
    return version, part["healthy"]


def _component_cell(data: dict[str, Any], name: str) -> str:
    """The version of an UP component; otherwise the version and the state, e.g. "v25.3.0 DOWN"."""
    version, healthy = _component(data, name)
    return version if healthy == "UP" else f"{version} {healthy}"


def _state_color(header: str, text: str) -> str | None:
    """Colour the health state: the Status column, and a component cell that is not UP."""
    if header == "Status":
        return STATE_COLORS.get(text)
    state = text.rsplit(" ", 1)[-1]
    return STATE_COLORS.get(state) if state in ("DOWN", "UNKNOWN") else None


def _print_status_csv(results: list[ConnectionResult[DeploymentStatus]]) -> None:
    components = ("explore", "build", "shapes", "store")
    columns = ["connection", "status"]
    columns += [f"{component}_{field}" for component in components for field in ("version", "status")]
    columns += ["response_time_ms", "certificate_days_left", "certificate_issuer", "reason"]
    writer = csv.writer(click.get_text_stream("stdout"), lineterminator="\n")
    writer.writerow(columns)
    for result in results:
        status = result.value
        if status is None:
            summary = getattr(result.error, "summary", str(result.error))
            writer.writerow([result.connection, "DOWN", *[""] * (len(columns) - 3), summary])
            continue
        certificate = status.certificate
        cells = [result.connection, status.data["overall"]["healthy"]]
        for component in components:
            cells += list(_component(status.data, component.upper()))
        cells += [
            f"{status.response_time * 1000:.0f}",
            f"{certificate.days_left():.0f}" if certificate else "",
            certificate.issuer_name if certificate else "",
            _reason(status),
        ]
        writer.writerow(cells)


def _print_findings(app: App, status: DeploymentStatus, prefix: str, *, detailed: bool = False) -> None:
    """Print each finding on stderr; ``detailed`` prints the whole message of an error, with its fix."""
    for finding in status.findings:
        message = finding.detail if detailed and finding.detail else finding.message
        if finding.level == "error":
            app.error(f"{prefix}{message}")
        else:
            app.warning(f"{prefix}{message}")


def _print_status_multiple(
    app: App,
    results: list[ConnectionResult[DeploymentStatus]],
    *,
    key: str | None,
    raw: bool,
    enforce_table: bool,
) -> None:
    from .._status import flatten

    if raw:
        click.echo(json.dumps([_status_record(result) for result in results], indent=2))
        return

    if key:
        rows = [
            [result.connection, row_key, value]
            for result in results
            for row_key, value in flatten(_status_data(result))
            if key == "all" or row_key.startswith(key)
        ]
        per_connection = {row[0] for row in rows}
        if not enforce_table and len(rows) == len(per_connection):
            for connection, _, value in rows:
                click.echo(f"{connection}\t{value}")
        elif rows:
            app.echo(render_table(["Connection", "Key", "Value"], rows, app.console_width()))
        return

    table_rows = []
    for result in results:
        status = result.value
        if status is None:
            summary = getattr(result.error, "summary", str(result.error))
            table_rows.append([result.connection, "DOWN", "", "", "", "", "", "", str(summary)])
            continue
        cells = [_component_cell(status.data, name) for name in ("EXPLORE", "BUILD", "SHAPES", "STORE")]
        table_rows.append(
            [
                result.connection,
                status.data["overall"]["healthy"],
                *cells,
                f"{status.response_time * 1000:.0f} ms",
                _certificate_cell(status),
                _reason(status),
            ]
        )
    headers = ["Connection", "Status", "Explore", "Build", "Shapes", "Store", "Time", "Certificate", "Reason"]
    app.echo(render_table(headers, table_rows, app.console_width(), _state_color))
    for result in results:
        if result.value is not None:
            _print_findings(app, result.value, prefix=f"connection {result.connection!r}: ", detailed=True)
    down = sum(1 for row in table_rows if row[1] != "UP")
    if down:
        app.hint(f"{down} of {len(table_rows)} connections are not UP.")


def _status_data(result: ConnectionResult[DeploymentStatus]) -> dict[str, Any]:
    """Return the status data of a connection; one that failed before any call is DOWN overall."""
    if result.value is not None:
        return result.value.data
    return {"overall": {"healthy": "DOWN"}}


def _status_record(result: ConnectionResult[DeploymentStatus]) -> dict[str, Any]:
    status = result.value
    if status is None:
        assert result.error is not None
        return {"connection": result.connection, "healthy": False, "error": error_record(result.error)}
    certificate = None
    if status.certificate is not None:
        certificate = {
            "subject": status.certificate.subject,
            "issuer": status.certificate.issuer,
            "not_after": status.certificate.not_after.isoformat(),
            "days_left": round(status.certificate.days_left(), 1),
        }
    return {
        "connection": result.connection,
        "base_uri": status.base_uri,
        "healthy": status.healthy,
        "response_time_ms": round(status.response_time * 1000, 1),
        "certificate": certificate,
        "findings": [{"level": finding.level, "message": finding.message} for finding in status.findings],
        "status": status.data,
    }


def _certificate_cell(status: DeploymentStatus) -> str:
    certificate = status.certificate
    if certificate is None:
        return ""
    days = certificate.days_left()
    if days < 0:
        return f"expired {-days:.0f} days ago, {certificate.issuer_name}"
    return f"{days:.0f} days, {certificate.issuer_name}"


def _reason(status: DeploymentStatus) -> str:
    """Join the errors of a status, or else its warnings, for the Reason column."""
    for level in ("error", "warning"):
        messages = [finding.message for finding in status.findings if finding.level == level]
        if messages:
            return "; ".join(messages)
    return ""


@admin_group.command(name="token")
@click.option("--raw", is_flag=True, help="Print the token endpoint's JSON response (with --ttl: the seconds left).")
@click.option("--decode", is_flag=True, help="Print the token's payload, decoded without checking its signature.")
@click.option("--ttl", is_flag=True, help="Print how long the token remains valid, in words and seconds.")
@click.pass_obj
async def token_command(app: App, raw: bool, decode: bool, ttl: bool) -> None:
    """Print the access token of each connection.

    The output is a secret: anyone who has the token can use the deployment
    as this account until it expires. Keep it out of logs, tickets and shell
    history. Example:

    \b
        curl -H "Authorization: Bearer $(acmemc -c prod admin token)" ...
    """
    if decode and ttl:
        raise click.UsageError("--decode and --ttl print different things; use one of them.")
    selection = await app.select()
    app.warn_ssl_verify_disabled(selection.connections)
    if raw and not (ttl or decode):
        prefetched = [connection.name for connection in selection.connections if connection.grant_type == "prefetched_token"]
        if prefetched:
            raise CLIError(
                f"--raw prints the token endpoint's response, and connection {prefetched[0]!r} uses a prefetched token "
                "(OAUTH_GRANT_TYPE=prefetched_token) without one. Fix: use --decode or --ttl.",
                EXIT_CONFIGURATION,
            )

    async def operation(client: Any) -> AccessToken:
        token: AccessToken = await client.token()
        # Check what --decode and --ttl need here, so that a token without it is
        # this connection's failure and the other connections still print.
        if ttl:
            _seconds_left(token, client.connection.name)
        elif decode:
            _payload(token, client.connection.name)
        return token

    results = await app.run_fleet(selection, operation)
    if selection.multiple:
        _print_tokens_multiple(results, raw=raw, decode=decode, ttl=ttl)
    elif results[0].value is not None:
        _print_token_single(app, results[0].value, raw=raw, decode=decode, ttl=ttl)
    raise click.exceptions.Exit(app.report_failures(results, selection.errors))


def _payload(token: AccessToken, connection: str | None = None) -> dict[str, Any]:
    from .._auth import decode_jwt_payload
    from .._errors import InvalidResponseError

    payload = decode_jwt_payload(token.token)
    if payload is None:
        raise InvalidResponseError(
            "the access token is not a JWT, so it has no payload with claims or an expiry time.",
            connection=connection,
        )
    return payload


def _seconds_left(token: AccessToken, connection: str | None = None) -> int:
    from .._errors import InvalidResponseError

    payload = _payload(token, connection)
    expires = payload.get("exp")
    if not isinstance(expires, (int, float)):
        raise InvalidResponseError("the access token has no expiry time (exp claim).", connection=connection)
    return int(expires - time.time())


def _print_token_single(app: App, token: AccessToken, *, raw: bool, decode: bool, ttl: bool) -> None:
    from .._status import flatten

    if ttl:
        seconds = _seconds_left(token)
        if raw:
            click.echo(json.dumps(seconds))
        elif seconds >= 0:
            click.echo(f"The access token expires in {describe_duration(seconds)} ({seconds} s).")
        else:
            click.echo(f"The access token expired {describe_duration(-seconds)} ago ({seconds} s).")
        return
    if decode:
        payload = _payload(token)
        if raw:
            click.echo(json.dumps(payload, indent=2))
        else:
            rows = sorted(([key, value] for key, value in flatten(payload)), key=lambda row: row[0].lower())
            app.echo(render_table(["Key", "Value"], rows, app.console_width()))
        return
    if raw:
        click.echo(json.dumps(dict(token.response), indent=2))
        return
    click.echo(token.token)


def _print_tokens_multiple(results: list[ConnectionResult[AccessToken]], *, raw: bool, decode: bool, ttl: bool) -> None:
    successful = [(result.connection, result.value) for result in results if result.value is not None]
    if ttl:
        for connection, token in successful:
            seconds = _seconds_left(token)
            click.echo(f"{connection}\t{seconds}" if raw else f"{connection}\t{seconds}\t{describe_duration(abs(seconds))}")
        return
    if decode:
        records = [{"connection": connection, "payload": _payload(token)} for connection, token in successful]
        click.echo(json.dumps(records, indent=2))
        return
    if raw:
        records = [{"connection": connection, "response": dict(token.response)} for connection, token in successful]
        click.echo(json.dumps(records, indent=2))
        return
    for connection, token in successful:
        click.echo(f"{connection}\t{token.token}")


def describe_duration(seconds: int) -> str:
    """Describe a duration in the two largest units, e.g. "4 minutes 59 seconds"."""
    units = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    parts: list[str] = []
    remaining = seconds
    for name, size in units:
        count, remaining = divmod(remaining, size)
        if count or (not parts and size == 1):
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
        if len(parts) == 2:
            break
    return " ".join(parts)
