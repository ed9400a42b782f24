"""List the graphs of every connection in a config.ini with as little work as aiohttp allows.

This is the benchmark's floor: the least that a Python asyncio client has to do for
``acmemc --all-connections graph list --id-only``. Per section it sends the
client_credentials token request and the graph list request, and prints
``CONNECTION<TAB>IRI`` lines unsorted. It shares one aiohttp session and one
SSLContext per distinct REQUESTS_CA_BUNDLE, and runs 20 sections at a time, as
acmemc does by default.

It does no checks: it supports only CMEM_BASE_URI, OAUTH_CLIENT_ID,
OAUTH_CLIENT_SECRET and REQUESTS_CA_BUNDLE with the default endpoint paths, and any
error ends the script with a traceback.

Usage::

    python benchmarks/floor.py CONFIG_FILE [CONCURRENCY]
"""

from __future__ import annotations

import asyncio
import configparser
import ssl
import sys

import aiohttp

TOKEN_PATH = "/auth/realms/cmem/protocol/openid-connect/token"
GRAPH_LIST_PATH = "/dataplatform/graphs/list"
DEFAULT_CONCURRENCY = 20


async def list_graphs(
    session: aiohttp.ClientSession,
    slots: asyncio.Semaphore,
    name: str,
    section: configparser.SectionProxy,
    context: ssl.SSLContext,
) -> list[str]:
    base = section["CMEM_BASE_URI"].rstrip("/")
    form = {
        "grant_type": "client_credentials",
        "client_id": section["OAUTH_CLIENT_ID"],
        "client_secret": section["OAUTH_CLIENT_SECRET"],
    }
    async with slots:
        async with session.post(base + TOKEN_PATH, data=form, ssl=context) as response:
            token = (await response.json())["access_token"]
        # The graph list is the last request to this deployment, so the connection
        # closes after it instead of idling in the pool until the end.
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
        async with session.get(base + GRAPH_LIST_PATH, headers=headers, ssl=context) as response:
            graphs = await response.json()
    return [f"{name}\t{graph['iri']}" for graph in graphs]


async def main(config_file: str, concurrency: int) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(config_file, encoding="utf-8")

    contexts: dict[str, ssl.SSLContext] = {}
    for name in parser.sections():
        bundle = parser[name]["REQUESTS_CA_BUNDLE"]
        if bundle not in contexts:
            contexts[bundle] = ssl.create_default_context(cafile=bundle)

    slots = asyncio.Semaphore(concurrency)
    # The semaphore bounds the requests in flight, so the connector needs no limit of its own.
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [
            list_graphs(session, slots, name, parser[name], contexts[parser[name]["REQUESTS_CA_BUNDLE"]])
            for name in parser.sections()
        ]
        for lines in await asyncio.gather(*tasks):
            sys.stdout.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_CONCURRENCY))
