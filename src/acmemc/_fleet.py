"""Run one operation over many connections, a bounded number at a time.

Each connection gets its own :class:`~acmemc.Client`, and so its own session
and token. All of them share one :class:`~acmemc.SSLContextCache`, so
connections with the same trust settings share one SSLContext. A failure of one
connection is its result, never a stop of the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ._client import DEFAULT_TIMEOUT, Client
from ._config import Connection
from ._tls import SSLContextCache

__all__ = ["DEFAULT_CONCURRENCY", "ConnectionResult", "run_each"]

#: How many connections run at once unless the caller says otherwise.
DEFAULT_CONCURRENCY = 20

T = TypeVar("T")


@dataclass(frozen=True)
class ConnectionResult(Generic[T]):
    """The outcome of an operation on one connection: a value, or the error.

    ``error`` is an :class:`~acmemc.AcmemcError` for the expected failures
    (configuration, TLS, authentication, HTTP), or any other exception for a bug.
    ``duration`` is the wall time in seconds, from the client's start to its close.
    """

    connection: str
    value: T | None
    error: Exception | None
    duration: float

    @property
    def ok(self) -> bool:
        return self.error is None


async def run_each(
    connections: Iterable[Connection],
    operation: Callable[[Client], Awaitable[T]],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    ssl_contexts: SSLContextCache | None = None,
) -> AsyncIterator[ConnectionResult[T]]:
    """Run ``operation`` on a client of each connection; yield results as they complete.

    At most ``concurrency`` connections are open at once. Closing the iterator
    early (``break``, an exception, cancellation) cancels the connections still
    running and waits until their sessions are closed.

    Usage::

        async for result in run_each(connections, lambda client: client.graph_list()):
            print(result.connection, result.value if result.ok else result.error)
    """
    contexts = ssl_contexts if ssl_contexts is not None else SSLContextCache()

    async def job(connection: Connection) -> T:
        async with Client(connection, ssl_contexts=contexts, timeout=timeout) as client:
            return await operation(client)

    async for result in run_bounded(connections, job, concurrency=concurrency):
        yield result


async def run_bounded(
    connections: Iterable[Connection],
    job: Callable[[Connection], Awaitable[T]],
    *,
    concurrency: int,
) -> AsyncIterator[ConnectionResult[T]]:
    """Run ``job`` per connection, at most ``concurrency`` at once; yield results as they complete.

    The shared core of :func:`run_each` and :func:`~acmemc.inspect_each`: an
    exception of a job is its connection's result, and closing the iterator
    cancels the jobs still running and waits for them to finish.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    slots = asyncio.Semaphore(concurrency)

    async def run_one(connection: Connection) -> ConnectionResult[T]:
        async with slots:
            started = time.monotonic()
            try:
                value = await job(connection)
            except Exception as error:  # noqa: BLE001 - each connection's failure is its result
                return ConnectionResult(connection.name, None, error, time.monotonic() - started)
            return ConnectionResult(connection.name, value, None, time.monotonic() - started)

    tasks = [asyncio.create_task(run_one(connection)) for connection in connections]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()
        # Wait for the cancelled jobs to close their sessions and sockets before returning.
        await asyncio.gather(*tasks, return_exceptions=True)
