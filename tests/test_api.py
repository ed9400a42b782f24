"""The public Python API: names, isolation between configurations, and clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import acmemc


def test_public_names_resolve() -> None:
    for name in acmemc.__all__:
        assert getattr(acmemc, name) is not None


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError):
        acmemc.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_cli_starts_without_aiohttp() -> None:
    code = "import sys, acmemc.cli; sys.exit('aiohttp' in sys.modules)"

    completed = subprocess.run([sys.executable, "-c", code], check=False, timeout=30)

    assert completed.returncode == 0


def test_build_connection_from_keywords_and_mapping() -> None:
    connection = acmemc.build_connection(
        "adhoc", {"CMEM_BASE_URI": "https://one.test", "OAUTH_CLIENT_SECRET": "a"}, CMEM_BASE_URI="https://two.test"
    )

    assert connection.base_uri == "https://two.test"
    assert connection.token_uri == "https://two.test/auth/realms/cmem/protocol/openid-connect/token"
    assert connection.settings["CMEM_BASE_URI"].source is acmemc.Source.SECTION


def test_build_connection_checks_values() -> None:
    with pytest.raises(acmemc.ConfigurationError) as caught:
        acmemc.build_connection("adhoc", OAUTH_GRANT_TYPE="magic", OAUTH_CLIENT_SECRET="a")

    assert "OAUTH_GRANT_TYPE 'magic'" in str(caught.value)


async def test_two_configurations_in_one_process(tmp_path: Path) -> None:
    """Two sandboxes with different CAs and secrets, used at once from several tasks."""
    environ_before = dict(os.environ)
    async with acmemc.Sandbox(tmp_path / "one", 2) as one, acmemc.Sandbox(tmp_path / "two", 2) as two:
        configs = [await acmemc.read_config(one.config_file), await acmemc.read_config(two.config_file)]
        connections = [
            [acmemc.resolve_connection(config, name) for name in config.connection_names] for config in configs
        ]

        async def graph_iris(batch: list[acmemc.Connection]) -> dict[str, list[str]]:
            found = {}
            async for result in acmemc.run_each(batch, lambda client: client.graph_list()):
                assert result.value is not None, result.error
                found[result.connection] = [graph["iri"] for graph in result.value]
            return found

        first, second = await asyncio.gather(*(graph_iris(batch) for batch in connections))

    assert first == {deployment.name: list(deployment.graph_iris) for deployment in one.deployments}
    assert second == {deployment.name: list(deployment.graph_iris) for deployment in two.deployments}
    assert connections[0][0].ca_bundle != connections[1][0].ca_bundle
    assert dict(os.environ) == environ_before


async def test_shared_ssl_context_cache_counts_one_context(tmp_path: Path) -> None:
    async with acmemc.Sandbox(tmp_path, 5) as sandbox:
        config = await acmemc.read_config(sandbox.config_file)
        connections = [acmemc.resolve_connection(config, name) for name in config.connection_names]
        cache = acmemc.SSLContextCache()

        results = [result async for result in acmemc.run_each(connections, lambda c: c.graph_list(), ssl_contexts=cache)]

    assert all(result.ok for result in results)
    assert cache.contexts_built == 1


async def test_break_with_aclosing_closes_everything(tmp_path: Path) -> None:
    async with acmemc.Sandbox(tmp_path, 4, latency=0.2) as sandbox:
        config = await acmemc.read_config(sandbox.config_file)
        connections = [acmemc.resolve_connection(config, name) for name in config.connection_names]

        async with contextlib.aclosing(acmemc.run_each(connections, lambda c: c.graph_list(), concurrency=1)) as results:
            async for _ in results:
                break

        fleet_tasks = [task for task in asyncio.all_tasks() if "run_each" in task.get_coro().__qualname__]
        assert fleet_tasks == []


async def test_run_each_rejects_zero_concurrency() -> None:
    with pytest.raises(ValueError):
        async for _ in acmemc.run_each([], lambda client: client.graph_list(), concurrency=0):
            pass


async def test_unexpected_exception_is_the_result(tmp_path: Path) -> None:
    async with acmemc.Sandbox(tmp_path, 2) as sandbox:
        config = await acmemc.read_config(sandbox.config_file)
        connections = [acmemc.resolve_connection(config, name) for name in config.connection_names]

        async def broken(client: acmemc.Client) -> None:
            raise KeyError("bug")

        results = [result async for result in acmemc.run_each(connections, broken)]

    assert [type(result.error) for result in results] == [KeyError, KeyError]
