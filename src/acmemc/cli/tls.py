"""``acmemc tls``: inspect the TLS of connections and build CA bundles from what servers present."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import asyncclick as click

from .._errors import AcmemcError, ConfigurationError
from ._app import EXIT_CONFIGURATION, EXIT_FAILED, EXIT_OK, App, CLIError, error_record
from ._table import render_table

if TYPE_CHECKING:
    from .._bundle import BundleChoice
    from .._config import Connection
    from .._fleet import ConnectionResult
    from .._inspect import EndpointInspection, PresentedCertificate, TLSInspection, Verification

__all__ = ["tls_group"]


@click.group(name="tls")
def tls_group() -> None:
    """Inspect TLS certificates of connections and build CA bundles."""


# tls inspect


@tls_group.command(name="inspect")
@click.option("--raw", is_flag=True, help="Print JSON: one record, or a list of records with several connections.")
@click.pass_obj
async def inspect_command(app: App, raw: bool) -> None:
    """Show why each connection's TLS certificate verifies or not, and the fix.

    This connects to the base URI, and to the token endpoint and APIs where
    they are on another host. For each it shows the TLS version and cipher, the
    certificate chain the server sent (subject, issuer, names, validity,
    SHA-256 fingerprint), the trust settings, and the verification result with
    its reason and fix. With SSL_VERIFY=false it shows whether verification
    would succeed.

    \b
    Exit status: 0 when every connection works as configured, 1 when a
    handshake fails, the server rejects the connection, or a certificate does
    not verify while SSL_VERIFY is true; 2 for configuration errors.
    """
    from .._inspect import inspect_each

    selection = await app.select(check_credentials=False)
    results = [
        result
        async for result in inspect_each(selection.connections, concurrency=app.jobs, timeout=app.timeout)
    ]
    results.sort(key=lambda result: result.connection.casefold())

    if raw:
        _print_inspections_json(results, selection.errors, multiple=selection.multiple)
    elif selection.multiple:
        _print_inspection_summary(app, results, selection.errors)
    elif results and results[0].value is not None:
        _print_inspection(app, results[0].value)

    status = app.report_failures(results, selection.errors)
    if status == EXIT_OK and any(result.value is not None and not result.value.ok for result in results):
        status = EXIT_FAILED
    raise click.exceptions.Exit(status)


def _print_inspections_json(
    results: list[ConnectionResult[TLSInspection]], errors: list[ConfigurationError], *, multiple: bool
) -> None:
    records = []
    for result in results:
        if result.value is not None:
            records.append(result.value.as_record())
        elif result.error is not None:
            records.append({"connection": result.connection, "error": error_record(result.error)})
    records += [{"connection": error.connection, "error": error_record(error)} for error in errors]
    records.sort(key=lambda record: str(record["connection"]).casefold())
    if multiple:
        click.echo(json.dumps(records, indent=2))
    elif records:
        click.echo(json.dumps(records[0], indent=2))


def _print_inspection(app: App, inspection: TLSInspection) -> None:
    trust = inspection.trust
    click.echo(f"Connection: {inspection.connection}")
    click.echo(f"Verification: {'on' if trust.verify else 'off (SSL_VERIFY=false)'}")
    click.echo(f"Trust anchors: {trust.describe_anchors()}")
    if trust.client_certificate is not None:
        key = trust.client_key or "in the certificate file"
        click.echo(f"Client certificate: {trust.client_certificate} (key: {key})")
    if inspection.client_certificate_error is not None:
        click.echo(f"Client certificate not used: {inspection.client_certificate_error.message}")

    for endpoint_inspection in inspection.endpoints:
        click.echo("")
        _print_endpoint(app, endpoint_inspection, verify=trust.verify)


def _print_endpoint(app: App, inspection: EndpointInspection, *, verify: bool) -> None:
    endpoint = inspection.endpoint
    click.echo(f"{endpoint.url} ({', '.join(endpoint.keys)})")
    if not endpoint.uses_tls:
        click.echo(
            "  No TLS: the URL starts with http://, so nothing is encrypted. "
            "If the deployment serves HTTPS on this port, change the URL to https://."
        )
        return
    handshake = inspection.handshake
    if handshake is None:
        assert inspection.error is not None
        click.echo(f"  Handshake failed: {inspection.error.message}")
        return

    click.echo(f"  TLS: {handshake.tls_version}, cipher {handshake.cipher}")
    if inspection.answer is not None:
        # Any HTTP status line shows that the server accepted this TLS connection.
        click.echo(f"  HTTP status of HEAD on this URL: {inspection.answer}")
    if inspection.rejection is not None:
        click.echo(f"  Rejected: {inspection.rejection}")
    rows = [
        [
            str(number),
            certificate.subject,
            certificate.issuer,
            _names(certificate),
            f"{certificate.not_before:%Y-%m-%d}",
            f"{certificate.not_after:%Y-%m-%d}",
        ]
        for number, certificate in enumerate(handshake.chain, start=1)
    ]
    headers = ["#", "Subject", "Issuer", "Names", "Valid from", "Valid until"]
    click.echo(render_table(headers, rows, app.console_width()))
    _print_fingerprints(handshake.chain, err=False)
    click.echo(f"  Result: {_describe_verification(inspection.verification, verify=verify)}")
    if inspection.verification.fix:
        click.echo(f"  Fix: {inspection.verification.fix.rstrip('.')}.")


def _print_fingerprints(chain: tuple[PresentedCertificate, ...], *, err: bool) -> None:
    # On lines of their own, because a table cell would wrap them and break copying and comparing.
    for number, certificate in enumerate(chain, start=1):
        click.echo(f"  SHA-256 of #{number}: {certificate.sha256}", err=err)


def _names(certificate: PresentedCertificate) -> str:
    return ", ".join((*certificate.dns_names, *certificate.ip_addresses))


def _describe_verification(verification: Verification, *, verify: bool) -> str:
    if verification.status == "verified":
        return "verified" if verify else "would verify with SSL_VERIFY=true"
    if verification.status == "failed":
        prefix = "did not verify" if verify else "would not verify with SSL_VERIFY=true"
        return f"{prefix}: {verification.reason}"
    return f"not checked: {verification.reason}"


def _print_inspection_summary(
    app: App, results: list[ConnectionResult[TLSInspection]], errors: list[ConfigurationError]
) -> None:
    rows = []
    for result in results:
        inspection = result.value
        if inspection is None:
            # A connection that could not be inspected is a row too, with the reason.
            summary = getattr(result.error, "summary", str(result.error))
            rows.append([result.connection, "", "", "", "", "error", str(summary)])
            continue
        for endpoint_inspection in inspection.endpoints:
            rows.append(_summary_row(inspection, endpoint_inspection))
    rows += [[str(error.connection), "", "", "", "", "invalid configuration", error.summary] for error in errors]
    rows.sort(key=lambda row: row[0].casefold())
    headers = ["Connection", "Endpoint", "TLS", "Server certificate", "Valid until", "Result", "Reason"]
    if rows:
        click.echo(render_table(headers, rows, app.console_width()))
    failed = [result.connection for result in results if result.value is not None and not result.value.ok]
    if failed:
        app.hint(f"For the chain and the fix, run `acmemc -c NAME tls inspect` for: {', '.join(failed)}.")


def _summary_row(inspection: TLSInspection, endpoint_inspection: EndpointInspection) -> list[str]:
    endpoint = endpoint_inspection.endpoint
    handshake = endpoint_inspection.handshake
    verification = endpoint_inspection.verification
    if not endpoint.uses_tls:
        return [inspection.connection, endpoint.url, "none", "", "", "no TLS", ""]
    if handshake is None:
        error = endpoint_inspection.error
        return [inspection.connection, endpoint.authority, "", "", "", "failed", error.summary if error else ""]
    leaf = handshake.chain[0] if handshake.chain else None
    if endpoint_inspection.rejection is not None:
        result, reason = "rejected", endpoint_inspection.rejection
    elif verification.status == "verified":
        result, reason = ("verified" if inspection.trust.verify else "would verify"), ""
    elif verification.status == "failed":
        result, reason = ("failed" if inspection.trust.verify else "would fail"), verification.reason
    else:
        result, reason = "not checked", verification.reason
    return [
        inspection.connection,
        endpoint.authority,
        handshake.tls_version,
        leaf.subject if leaf else "",
        f"{leaf.not_after:%Y-%m-%d}" if leaf else "",
        result,
        reason,
    ]


# tls bundle


def _https_url(ctx: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a valid URL; use https://HOST[:PORT].") from None
    if parts.scheme != "https" or not parts.hostname:
        raise click.BadParameter(f"{value!r} is not an https:// URL with a host; use https://HOST[:PORT].")
    if parts.username is not None or parts.password is not None:
        # Never repeat the value: it contains a password.
        raise click.BadParameter("the URL contains a user name or password; use https://HOST[:PORT] without them.")
    return value


@tls_group.command(name="bundle")
@click.option(
    "--url",
    metavar="URL",
    callback=_https_url,
    help="Fetch the chain from https://HOST[:PORT] instead of the connection's CMEM_BASE_URI.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the bundle to FILE. Without it (or with -), --yes prints the bundle to stdout.",
)
@click.option(
    "--select",
    type=click.IntRange(min=1),
    metavar="N",
    help="Put certificate N of the chain in the bundle (1 is the server's own) instead of the highest one.",
)
# Neither --yes nor --force reads CMEMC_TLS_BUNDLE_*: trusting a certificate and replacing a file are
# decisions for each run, not settings that an environment variable should make once for all runs.
@click.option("-y", "--yes", is_flag=True, allow_from_autoenv=False, help="Trust the presented certificate without asking.")
@click.option("--force", is_flag=True, allow_from_autoenv=False, help="Replace FILE if it exists.")
@click.pass_obj
async def bundle_command(
    app: App, url: str | None, output: Path | None, select: int | None, yes: bool, force: bool
) -> None:
    """Build a CA bundle for REQUESTS_CA_BUNDLE from the chain a server presents.

    This replaces `openssl s_client -showcerts | openssl x509`. It connects to
    the connection's CMEM_BASE_URI (or --url) without verifying and shows each
    certificate's subject, issuer and SHA-256 fingerprint. The bundle gets the
    highest certificate of the chain, a root or top intermediate CA, so that it
    survives a renewal of the server certificate.

    The bundle trusts what the network presented: compare the fingerprint with
    one your administrator gives you. Nothing is written without --yes or a
    confirmation. The file is written atomically and an existing file is only
    replaced with --force.
    """
    from .._bundle import (
        check_bundle,
        choose_certificate,
        fetch_chain,
        render_bundle,
        write_bundle_file,
    )
    from .._errors import BundleWriteError

    if output is not None and str(output) == "-":
        # "-" is stdout for most tools; here stdout is what leaving out --output does.
        output = None
    connection = await _bundle_connection(app, url)
    if url is None:
        assert connection is not None
        url = connection.base_uri
        if not url.startswith("https://"):
            raise CLIError(
                f"connection {connection.name!r}: CMEM_BASE_URI {url} does not use TLS, so it has no certificate. "
                "Fix: give the HTTPS URL with --url.",
                EXIT_CONFIGURATION,
            )
    if output is not None and output.exists() and not force:
        raise CLIError(f"{output} already exists. Fix: add --force to replace it, or choose another --output.", EXIT_FAILED)

    try:
        handshake = await fetch_chain(url, connection=connection, timeout=app.timeout)
    except ConfigurationError as error:
        raise CLIError(str(error), EXIT_CONFIGURATION) from None
    except AcmemcError as error:
        raise CLIError(str(error), EXIT_FAILED) from None
    try:
        choice = choose_certificate(handshake.chain, select)
    except ValueError as error:
        raise CLIError(f"{error}.", EXIT_CONFIGURATION if select else EXIT_FAILED) from None

    authority = urlsplit(url).netloc
    bundle = render_bundle([choice.certificate], source=authority)
    verification = await check_bundle(url, [choice.certificate], timeout=app.timeout)
    # The chain goes to stderr when stdout carries the bundle itself.
    to_stderr = output is None
    _print_chain(app, handshake.chain, choice, err=to_stderr)
    if verification.verified:
        click.echo(f"With this bundle, {authority} verifies.", err=to_stderr)
    else:
        app.warning(f"with this bundle, {authority} still does not verify: {verification.reason}.")

    if output is None:
        if not yes:
            raise CLIError("nothing written. Fix: add --yes to print the bundle, or --output FILE to write it.", EXIT_FAILED)
        click.echo(bundle.decode("utf-8"), nl=False)
        return

    if not yes:
        question = f"Trust {choice.certificate.subject} (SHA-256 {choice.certificate.sha256}) and write {output}?"
        try:
            confirmed = click.confirm(question, default=False, err=True)
        except click.Abort:
            raise CLIError(
                "nothing written: no input to confirm with. Fix: add --yes to trust the certificate.",
                EXIT_FAILED,
            ) from None
        if not confirmed:
            raise CLIError("nothing written.", EXIT_FAILED)

    try:
        write_bundle_file(output, bundle, replace=force, connection=connection.name if connection else None)
    except BundleWriteError as error:
        raise CLIError(str(error), EXIT_FAILED) from None
    click.echo(f"Wrote {output}. Use it with REQUESTS_CA_BUNDLE={output.resolve()}")


async def _bundle_connection(app: App, url: str | None) -> Connection | None:
    """Return the connection whose client certificate the handshake presents; none for --url without -c."""
    if url is not None and not app.connection_names:
        if app.all_connections or app.match_patterns:
            raise CLIError("--url fetches from one server; drop --all-connections and --match.", EXIT_CONFIGURATION)
        return None
    return await app.single(check_credentials=False)


def _print_chain(
    app: App, chain: tuple[PresentedCertificate, ...], choice: BundleChoice, *, err: bool
) -> None:
    rows = [
        [
            "*" if index == choice.index else "",
            str(index + 1),
            certificate.subject,
            certificate.issuer,
            f"{certificate.not_after:%Y-%m-%d}",
        ]
        for index, certificate in enumerate(chain)
    ]
    headers = ["Use", "#", "Subject", "Issuer", "Valid until"]
    click.echo(render_table(headers, rows, app.console_width()), err=err)
    _print_fingerprints(chain, err=err)
    click.echo(f"Chosen: certificate {choice.index + 1}, {choice.explanation}.", err=err)
