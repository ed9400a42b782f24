"""Health and version of one deployment, combined as cmemc's ``admin status`` does.

The calls, all sent at once with one token:

- DataIntegration (BUILD): ``GET $DI_API_ENDPOINT/version`` (text) and ``/health``;
- DataPlatform (EXPLORE): ``GET $DP_API_ENDPOINT/actuator/info`` and ``/actuator/health``;
  the info also names the STORE type and version;
- ShapeCatalog (SHAPES): its ``owl:versionInfo`` by a SPARQL query through
  ``POST $DP_API_ENDPOINT/proxy/default/sparql``.

The result has cmemc's shape (``build``, ``explore``, ``shapes``, ``store``,
``overall``), so ``--key`` and ``--raw`` read the same as with cmemc. A call
that fails with an :class:`~acmemc.AcmemcError` is recorded in the component's
``error`` instead of raised.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

from ._client import Client
from ._errors import AcmemcError
from ._tls import fetch_server_certificate

__all__ = [
    "DEFAULT_EXPIRY_WARNING_DAYS",
    "TARGET_VERSION",
    "CertificateInfo",
    "DeploymentStatus",
    "Finding",
    "fetch_status",
    "flatten",
]

#: The release that cmemc 25.6.2 targets for DataIntegration and Explore; older
#: backends may lack functions that cmemc and acmemc use.
TARGET_VERSION = "v25.3.0"

#: A server certificate that expires within this many days is a warning.
DEFAULT_EXPIRY_WARNING_DAYS = 30

SHAPE_CATALOG_GRAPH = "https://vocab.eccenca.com/shacl/"
SHAPE_CATALOG_VERSION_QUERY = f"""\
PREFIX owl: <http://www.w3.org/2002/07/owl#>
SELECT ?version
FROM <{SHAPE_CATALOG_GRAPH}>
WHERE {{ <{SHAPE_CATALOG_GRAPH}> owl:versionInfo ?version }}
ORDER BY ASC(?version)
"""

VERSION = re.compile(r"^v(\d+)\.(\d+)")


@dataclass(frozen=True)
class CertificateInfo:
    """The server certificate of a deployment's base URI."""

    subject: str
    issuer: str
    issuer_name: str
    not_after: datetime

    @classmethod
    def from_der(cls, der: bytes) -> CertificateInfo:
        from cryptography import x509

        from cryptography.x509.oid import NameOID

        certificate = x509.load_der_x509_certificate(der)
        issuer_name = certificate.issuer.rfc4514_string()
        # A short issuer name for a table cell: its common name, else its organization.
        for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME):
            attributes = certificate.issuer.get_attributes_for_oid(oid)
            if attributes:
                issuer_name = str(attributes[0].value)
                break
        return cls(
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            issuer_name=issuer_name,
            not_after=certificate.not_valid_after_utc,
        )

    def days_left(self, now: datetime | None = None) -> float:
        now = now or datetime.now(timezone.utc)
        return (self.not_after - now) / timedelta(days=1)


@dataclass(frozen=True)
class Finding:
    """A warning or error about a deployment, in one line."""

    level: Literal["warning", "error"]
    message: str
    #: The whole error message with its fix, where the finding summarizes a failed call.
    detail: str | None = None


@dataclass(frozen=True)
class DeploymentStatus:
    """Health, versions, response time and server certificate of one deployment.

    ``data`` has cmemc's structure. ``response_time`` is the wall time in
    seconds of all status calls, the token included. ``findings`` lists the
    warnings and errors that cmemc gives, plus certificate expiry.
    """

    base_uri: str
    data: dict[str, Any]
    response_time: float
    certificate: CertificateInfo | None
    findings: tuple[Finding, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        return bool(self.data["overall"]["healthy"] == "UP")

    @property
    def has_errors(self) -> bool:
        return not self.healthy or any(finding.level == "error" for finding in self.findings)

    @property
    def has_warnings(self) -> bool:
        return any(finding.level == "warning" for finding in self.findings)


async def fetch_status(client: Client, *, expiry_warning_days: float = DEFAULT_EXPIRY_WARNING_DAYS) -> DeploymentStatus:
    """Collect health and versions of the client's deployment; failures become ``error`` entries."""
    connection = client.connection
    di, dp = connection.di_api_endpoint, connection.dp_api_endpoint
    started = time.monotonic()
    results = await asyncio.gather(
        _server_certificate(connection.base_uri, client),
        client.request("GET", f"{di}/version"),
        client.request_json("GET", f"{di}/health", accept_statuses=(503,)),
        client.request_json("GET", f"{dp}/actuator/info"),
        client.request_json("GET", f"{dp}/actuator/health", accept_statuses=(503,)),
        client.request_json(
            "POST",
            f"{dp}/proxy/default/sparql",
            data={"query": SHAPE_CATALOG_VERSION_QUERY},
            headers={"Accept": "application/sparql-results+json"},
        ),
        return_exceptions=True,
    )
    response_time = time.monotonic() - started
    for result in results:
        # Errors acmemc expects become entries; anything else is a bug and is raised.
        if isinstance(result, BaseException) and not isinstance(result, AcmemcError):
            raise result

    der, di_version, di_health, dp_info, dp_health, shapes = results
    errors = {
        component: next((answer for answer in answers if isinstance(answer, AcmemcError)), None)
        for component, answers in (("build", (di_version, di_health)), ("explore", (dp_info, dp_health)), ("shapes", (shapes,)))
    }
    data = {
        "build": _build(di_version, di_health),
        "explore": _explore(dp_info, dp_health),
        "shapes": _shapes(shapes),
    }
    data["store"] = _store(data["explore"])
    data["overall"] = {"healthy": "UP" if all(part["healthy"] == "UP" for part in data.values()) else "DOWN"}

    certificate = CertificateInfo.from_der(der) if isinstance(der, bytes) else None
    findings = tuple(_findings(data, errors, certificate, expiry_warning_days))
    return DeploymentStatus(connection.base_uri, data, response_time, certificate, findings)


async def _server_certificate(base_uri: str, client: Client) -> bytes | None:
    parts = urlsplit(base_uri)
    if parts.scheme != "https" or parts.hostname is None:
        return None
    context = client.ssl_contexts.unverified_context()
    return await fetch_server_certificate(parts.hostname, parts.port or 443, timeout=client.timeout, context=context)


def _error_text(error: BaseException) -> str:
    return error.message if isinstance(error, AcmemcError) else str(error)


def _build(version: Any, health: Any) -> dict[str, Any]:
    part: dict[str, Any] = {"version": "UNKNOWN", "healthy": "UNKNOWN"}
    if isinstance(version, BaseException):
        part.update(healthy="DOWN", error=_error_text(version))
        return part
    part["version"] = version.text.strip() or "UNKNOWN"
    if isinstance(health, BaseException):
        part.update(healthy="DOWN", error=_error_text(health))
    else:
        part["healthy"] = "UP" if isinstance(health, dict) and health.get("status") == "UP" else "DOWN"
    return part


def _explore(info: Any, health: Any) -> dict[str, Any]:
    part: dict[str, Any] = {"version": "UNKNOWN", "healthy": "UNKNOWN"}
    for answer in (info, health):
        if isinstance(answer, BaseException):
            part.update(healthy="DOWN", error=_error_text(answer))
            return part
        if not isinstance(answer, dict):
            part.update(healthy="DOWN", error="the actuator returned JSON that is not an object")
            return part
    part.update(info=info, health=health)
    part["version"] = str(info.get("version", "UNKNOWN"))
    part["healthy"] = "UP" if health.get("status") == "UP" else "DOWN"
    return part


def _shapes(answer: Any) -> dict[str, Any]:
    part: dict[str, Any] = {"version": "UNKNOWN", "healthy": "UNKNOWN"}
    if isinstance(answer, BaseException):
        part["error"] = _error_text(answer)
        return part
    try:
        part["version"] = str(answer["results"]["bindings"][0]["version"]["value"])
    except (KeyError, IndexError, TypeError):
        part["healthy"] = "DOWN"
        return part
    part["healthy"] = "UP"
    return part


def _store(explore: dict[str, Any]) -> dict[str, Any]:
    store = explore.get("info", {}).get("store", {})
    if not isinstance(store, dict):
        store = {}
    return {
        "type": str(store.get("type", "STORE")),
        "version": str(store.get("version", "UNKNOWN")),
        "healthy": explore["healthy"],
    }


def _findings(
    data: dict[str, Any],
    errors: dict[str, AcmemcError | None],
    certificate: CertificateInfo | None,
    expiry_warning_days: float,
) -> Iterator[Finding]:
    for name, key in (("DataIntegration", "build"), ("Explore", "explore")):
        version = data[key]["version"]
        if version != "UNKNOWN" and _is_older(version, TARGET_VERSION):
            yield Finding(
                "warning",
                f"{name} {version} is older than {TARGET_VERSION}, the release acmemc targets; "
                "some functions may not work.",
            )
    names = {"build": "DataIntegration", "explore": "Explore", "shapes": "ShapeCatalog"}
    for component, name in names.items():
        state = data[component]["healthy"]
        if errors[component] is None and state != "UP":
            # The endpoints responded, but the component reports that it is not healthy.
            what = "version is unknown" if component == "shapes" else f"health is {state}"
            yield Finding("error", f"{name} {what}")
    failed = {component: error for component, error in errors.items() if error is not None}
    summaries = {component: error.summary for component, error in failed.items()}
    if len(summaries) > 1 and len(set(summaries.values())) == 1:
        # One cause for every component, such as a rejected token, is reported once.
        first = next(iter(failed.values()))
        yield Finding("error", first.summary, first.message)
    else:
        for component, error in failed.items():
            yield Finding("error", f"{component}: {error.summary}", f"{component}: {error.message}")

    info = data["explore"].get("info", {})
    if info.get("workspaceConfiguration", {}).get("workspacesToMigrate"):
        yield Finding("warning", "the workspace configuration is older than Explore; migrate it (cmemc admin store migrate).")
    shapes, explore = data["shapes"]["version"], data["explore"]["version"]
    if shapes not in (explore, "UNKNOWN"):
        yield Finding(
            "warning",
            f"ShapeCatalog {shapes} differs from Explore {explore}; update the bootstrap data (cmemc admin store bootstrap).",
        )
    license_ = info.get("license", {})
    if isinstance(license_, dict) and license_.get("inGracePeriod"):
        yield Finding("error", f"the Corporate Memory license expired on {license_.get('validDate', 'an unknown date')} (grace period).")
    store = info.get("store", {})
    expiration = store.get("licenseExpiration") if isinstance(store, dict) else None
    if isinstance(expiration, str):
        yield from _graphdb_license(expiration)
    if certificate is not None:
        yield from _certificate(certificate, expiry_warning_days)


def _graphdb_license(expiration: str) -> Iterator[Finding]:
    try:
        expires = date.fromisoformat(expiration)
    except ValueError:
        yield Finding("warning", f"the GraphDB license expiration {expiration!r} is not a date.")
        return
    # cmemc warns from one calendar month before the expiration date on.
    if expires - timedelta(days=31) < datetime.now(timezone.utc).date():
        yield Finding("warning", f"the GraphDB license expires on {expiration}.")


def _certificate(certificate: CertificateInfo, expiry_warning_days: float) -> Iterator[Finding]:
    days = certificate.days_left()
    expires = certificate.not_after.date().isoformat()
    if days < 0:
        yield Finding("error", f"the server certificate expired on {expires}.")
    elif days < expiry_warning_days:
        yield Finding("warning", f"the server certificate expires in {days:.0f} days ({expires}); renew it.")


def _is_older(version: str, target: str) -> bool:
    found, wanted = VERSION.match(version), VERSION.match(target)
    if found is None or wanted is None:
        return False
    return (int(found[1]), int(found[2])) < (int(wanted[1]), int(wanted[2]))


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested JSON into (dotted key, value) rows, as ``--key`` addresses them."""
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key, item in value.items():
            rows.extend(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    if isinstance(value, list):
        return [row for item in value for row in flatten(item, prefix)]
    if value is None:
        return [(prefix, "")]
    return [(prefix, str(value))]
