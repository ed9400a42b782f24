"""OAuth 2.0 access tokens: fetched once, cached until shortly before they expire.

Grant types, as in cmemc:

- ``client_credentials``: ``client_id`` and ``client_secret``;
- ``password``: ``client_id``, ``username`` and ``password``;
- ``prefetched_token``: the configured ``OAUTH_ACCESS_TOKEN``, no request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._config import Connection, credentials_problem
from ._errors import AuthenticationError, InvalidResponseError

__all__ = ["AccessToken", "TokenProvider", "decode_jwt_payload"]

logger = logging.getLogger("acmemc.auth")

# Refresh a token this many seconds before it expires, so that a request sent
# just before expiry does not reach the server with a token that has run out.
EXPIRY_MARGIN = 30.0

# Posts a form to the token endpoint and returns (HTTP status, body text).
PostForm = Callable[[str, Mapping[str, str]], Awaitable[tuple[int, str]]]


@dataclass(frozen=True)
class AccessToken:
    """An access token and when it expires (``time.monotonic()`` seconds, or ``None`` if unknown).

    ``response`` is the token endpoint's JSON response, empty for a prefetched token.
    """

    token: str = field(repr=False)
    expires_at: float | None
    response: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def is_fresh(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at - EXPIRY_MARGIN


def decode_jwt_payload(token: str) -> dict[str, Any] | None:
    """Decode the payload of a JWT without checking its signature; ``None`` if it is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        decoded = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None


class TokenProvider:
    """Fetches and caches the access token of one connection.

    Concurrent callers of :meth:`get` share one request to the token endpoint,
    and its failure too: a token endpoint that times out is asked once, not
    once per waiting caller. :meth:`invalidate` drops a token that the API
    rejected, so that the next :meth:`get` fetches a new one. :meth:`close`
    cancels a request still under way.
    """

    def __init__(self, connection: Connection, secrets: Mapping[str, str], post_form: PostForm) -> None:
        self._connection = connection
        self._secrets = secrets
        self._post_form = post_form
        self._token: AccessToken | None = None
        self._fetching: asyncio.Task[AccessToken] | None = None
        self.requests_sent = 0

    @property
    def can_refresh(self) -> bool:
        return self._connection.grant_type != "prefetched_token"

    async def get(self) -> AccessToken:
        token = self._token
        if token is not None and token.is_fresh(time.monotonic()):
            return token
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._fetch_and_store())
            # Retrieve the outcome even if every caller was cancelled meanwhile,
            # so that asyncio does not log "exception was never retrieved".
            self._fetching.add_done_callback(lambda task: task.cancelled() or task.exception())
        # Shielded: a cancelled caller must not cancel the request that others wait for.
        return await asyncio.shield(self._fetching)

    async def close(self) -> None:
        task, self._fetching = self._fetching, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _fetch_and_store(self) -> AccessToken:
        try:
            token = await self._fetch()
            self._token = token
            return token
        finally:
            self._fetching = None

    def invalidate(self, token: AccessToken) -> None:
        if self._token is token:
            self._token = None

    async def _fetch(self) -> AccessToken:
        connection = self._connection
        # A connection resolved without the credentials check fails here, before any request.
        problem = credentials_problem(connection)
        if problem is not None:
            raise problem
        if connection.grant_type == "prefetched_token":
            return _prefetched(self._secrets["OAUTH_ACCESS_TOKEN"])

        form = {"grant_type": connection.grant_type, "client_id": connection.client_id}
        if connection.grant_type == "client_credentials":
            form["client_secret"] = self._secrets["OAUTH_CLIENT_SECRET"]
        else:
            form["username"] = connection.user or ""
            form["password"] = self._secrets["OAUTH_PASSWORD"]

        logger.debug(
            "Fetching access token from %s (grant type %s, client %s)",
            connection.token_uri,
            connection.grant_type,
            connection.client_id,
            extra={"connection": connection.name},
        )
        self.requests_sent += 1
        started = time.monotonic()
        status, text = await self._post_form(connection.token_uri, form)
        return self._parse(status, text, started)

    def _parse(self, status: int, text: str, started: float) -> AccessToken:
        connection = self._connection
        url = connection.token_uri
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None

        if status != 200:
            error = answer.get("error") if isinstance(answer, dict) else None
            description = answer.get("error_description") if isinstance(answer, dict) else None
            if error:
                detail = f"{error}" + (f" ({description})" if description else "")
            else:
                detail = f"HTTP status {status}"
            raise AuthenticationError(
                f"token endpoint {url} rejected the {connection.grant_type} grant: {detail}. "
                f"Fix: check {_credential_keys(connection.grant_type)}.",
                connection=connection.name,
                url=url,
                error=error,
                error_description=description,
            )

        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str) or not answer["access_token"]:
            raise InvalidResponseError(
                f"token endpoint {url} returned no access_token in JSON. "
                "Fix: check that OAUTH_TOKEN_URI points to the OpenID Connect token endpoint.",
                connection=connection.name,
                url=url,
            )
        expires_in = answer.get("expires_in")
        expires_at = started + float(expires_in) if isinstance(expires_in, (int, float)) else None
        logger.debug(
            "Access token received (expires in %s s)",
            expires_in if expires_in is not None else "unknown",
            extra={"connection": connection.name},
        )
        return AccessToken(token=answer["access_token"], expires_at=expires_at, response=answer)


def _prefetched(token: str) -> AccessToken:
    payload = decode_jwt_payload(token)
    expires_at = None
    if payload is not None and isinstance(payload.get("exp"), (int, float)):
        expires_at = time.monotonic() + (payload["exp"] - time.time())
    return AccessToken(token=token, expires_at=expires_at)


def _credential_keys(grant_type: str) -> str:
    if grant_type == "client_credentials":
        return "OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET and OAUTH_TOKEN_URI"
    return "OAUTH_CLIENT_ID, OAUTH_USER, OAUTH_PASSWORD and OAUTH_TOKEN_URI"
