"""The exceptions acmemc raises.

Every error names the connection it belongs to, so that a run over many
connections can report each failure on one line. The hierarchy::

    AcmemcError
    ├── ConfigurationError            the config file, a key or a value is invalid
    │   ├── CABundleError             REQUESTS_CA_BUNDLE is missing, empty or not PEM
    │   ├── ClientCertificateError    SSL_CLIENT_CERT or SSL_CLIENT_KEY cannot be used
    │   └── CredentialProcessError    an *_PROCESS command failed or printed nothing
    ├── BundleWriteError              `tls bundle` could not write the CA bundle file
    └── RequestError                  a request to a deployment failed
        ├── ConnectError              the host could not be reached
        │   └── TLSVerificationError  its certificate did not verify
        ├── RequestTimeoutError       no response within the timeout
        ├── AuthenticationError       the token endpoint rejected the credentials
        ├── HTTPStatusError           the API returned an error status
        └── InvalidResponseError      the response is not the JSON that was expected

Catch ``ConfigurationError`` for problems the user fixes in ``config.ini`` or
the environment, and ``RequestError`` for problems of one deployment.
"""

from __future__ import annotations

__all__ = [
    "AcmemcError",
    "AuthenticationError",
    "BundleWriteError",
    "CABundleError",
    "ClientCertificateError",
    "ConfigurationError",
    "ConnectError",
    "CredentialProcessError",
    "HTTPStatusError",
    "InvalidResponseError",
    "RequestError",
    "RequestTimeoutError",
    "TLSVerificationError",
]


class AcmemcError(Exception):
    """Base class of every acmemc error.

    ``connection`` is the connection name, or ``None`` where the error is not
    tied to one connection (for example a syntax error in the config file).
    ``str(error)`` is a complete one-line message: what failed, on which value,
    and what to do.
    """

    def __init__(self, message: str, *, connection: str | None = None, summary: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.connection = connection
        self._summary = summary

    @property
    def summary(self) -> str:
        """The cause in a few words, for a table cell: for example "connection refused"."""
        if self._summary is not None:
            return self._summary
        return self.message.split(" Fix: ", 1)[0].rstrip(".")

    def __str__(self) -> str:
        if self.connection is None:
            return self.message
        return f"connection {self.connection!r}: {self.message}"


class ConfigurationError(AcmemcError):
    """The config file, a configuration key or one of its values is invalid."""


class CABundleError(ConfigurationError):
    """The CA bundle (``REQUESTS_CA_BUNDLE``) cannot be used."""

    def __init__(self, message: str, *, connection: str | None = None, path: str) -> None:
        super().__init__(message, connection=connection)
        self.path = path


class ClientCertificateError(ConfigurationError):
    """The client certificate or its key (``SSL_CLIENT_CERT``, ``SSL_CLIENT_KEY``) cannot be used.

    ``path`` is the file at fault. The message never contains the key's password.
    """

    def __init__(self, message: str, *, connection: str | None = None, path: str) -> None:
        super().__init__(message, connection=connection)
        self.path = path


class BundleWriteError(AcmemcError):
    """The CA bundle file could not be written; ``path`` is the file that was to be written."""

    def __init__(self, message: str, *, connection: str | None = None, path: str) -> None:
        super().__init__(message, connection=connection)
        self.path = path


class CredentialProcessError(ConfigurationError):
    """A credential process (``*_PROCESS``) failed, timed out or printed nothing."""


class RequestError(AcmemcError):
    """A request to a deployment failed.

    ``url`` is the URL of the failed request (never with credentials).
    """

    def __init__(
        self, message: str, *, connection: str | None = None, url: str | None = None, summary: str | None = None
    ) -> None:
        super().__init__(message, connection=connection, summary=summary)
        self.url = url


class ConnectError(RequestError):
    """The host could not be reached: refused, not resolved or reset."""


class TLSVerificationError(ConnectError):
    """The server's certificate did not verify.

    ``reason`` is the plain-words cause (for example "certificate has expired"),
    ``host`` the host and port that presented the certificate, and ``ca_bundle``
    the trust anchors that were used.
    """

    def __init__(
        self,
        message: str,
        *,
        connection: str | None = None,
        url: str | None = None,
        reason: str,
        host: str,
        ca_bundle: str,
    ) -> None:
        super().__init__(message, connection=connection, url=url, summary=f"TLS: {reason}")
        self.reason = reason
        self.host = host
        self.ca_bundle = ca_bundle


class RequestTimeoutError(RequestError):
    """A request got no complete response within the timeout."""


class AuthenticationError(RequestError):
    """The token endpoint rejected the credentials, or the API rejected the token.

    ``error`` and ``error_description`` are the OAuth fields of the response, where
    the token endpoint sent them.
    """

    def __init__(
        self,
        message: str,
        *,
        connection: str | None = None,
        url: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> None:
        summary = f"token rejected: {error}" if error else None
        super().__init__(message, connection=connection, url=url, summary=summary)
        self.error = error
        self.error_description = error_description


class HTTPStatusError(RequestError):
    """The API returned an error status; ``status`` is the HTTP status code."""

    def __init__(self, message: str, *, connection: str | None = None, url: str | None = None, status: int) -> None:
        super().__init__(message, connection=connection, url=url, summary=f"HTTP {status}")
        self.status = status


class InvalidResponseError(RequestError):
    """The response is not the JSON document that the endpoint should return."""
