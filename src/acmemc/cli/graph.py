"""``acmemc graph``: list the graphs of one or many connections."""

from __future__ import annotations

import csv
import json
from typing import TYPE_CHECKING, Any

import asyncclick as click

from ._app import App, Selection, error_record, output_option
from ._table import render_table

if TYPE_CHECKING:
    from .._fleet import ConnectionResult

__all__ = ["graph_group"]

# Prefixes for the graph type column, the ones cmemc shortens class IRIs with.
NAMESPACES = {
    "void": "http://rdfs.org/ns/void#",
    "di": "https://vocab.eccenca.com/di/",
    "shui": "https://vocab.eccenca.com/shui/",
    "dsm": "https://vocab.eccenca.com/dsm/",
    "owl": "http://www.w3.org/2002/07/owl#",
    "sd": "http://www.w3.org/ns/sparql-service-description#",
}

EMPTY_HINT = (
    "The account of this connection can read no graphs. "
    "Import one with `cmemc graph import`, or give the account access to existing graphs."
)


@click.group(name="graph")
def graph_group() -> None:
    """List the graphs of one or many connections."""


@graph_group.command(name="list")
@click.option("--raw", is_flag=True, help="Print the JSON response of the API.")
@click.option("--id-only", is_flag=True, help="Print only graph IRIs, one a line, sorted.")
@output_option
@click.option(
    "--filter",
    "filter_",
    type=(click.Choice(["access"]), click.Choice(["readonly", "writeable"])),
    default=(None, None),
    metavar="access readonly|writeable",
    help="Show only read-only or only writeable graphs.",
)
@click.pass_obj
async def list_command(
    app: App, raw: bool, id_only: bool, output: str, filter_: tuple[str | None, str | None]
) -> None:
    """List the graphs that the account of each connection can read.

    With one connection, the output is cmemc's: a table of graph IRI, type and
    label sorted by label. With several connections (-c twice,
    --all-connections or --match), the table gains a Connection column,
    --id-only prints `CONNECTION<TAB>IRI` lines, and --raw prints one JSON
    record per connection with its graphs or its error. A failed connection is
    reported on stderr and does not stop the others.

    --output ndjson prints one JSON object per graph (with its connection) as
    each connection completes, and --output csv a CSV table.
    """
    if id_only and (raw or output != "table"):
        raise click.UsageError("--id-only prints IRIs only; leave out --raw and --output, or leave out --id-only.")
    selection = await app.select()
    app.warn_ssl_verify_disabled(selection.connections)
    access = filter_[1]
    if raw:
        output = "json"

    def stream(result: ConnectionResult[list[dict[str, Any]]]) -> None:
        if result.value is not None:
            for graph in _filter_access(result.value, access):
                click.echo(json.dumps({"connection": result.connection, **_graph_record(graph)}))
        elif result.error is not None:
            click.echo(json.dumps({"connection": result.connection, "error": error_record(result.error)}))

    streaming = output == "ndjson" and not id_only
    results = await app.run_fleet(selection, _graph_list_operation, on_result=stream if streaming else None)

    graphs_by_connection = {
        result.connection: _filter_access(result.value, access) for result in results if result.value is not None
    }
    if streaming:
        for error in selection.errors:
            click.echo(json.dumps({"connection": error.connection, "error": error_record(error)}))
    elif output == "csv" and not id_only:
        _print_csv(graphs_by_connection, multiple=selection.multiple)
    elif selection.multiple:
        _print_multiple(app, selection, results, graphs_by_connection, raw=output == "json", id_only=id_only)
    elif graphs_by_connection:
        _print_single(app, next(iter(graphs_by_connection.values())), raw=output == "json", id_only=id_only)

    status = app.report_failures(results, selection.errors)
    failed = len(selection.errors) + sum(1 for result in results if not result.ok)
    if selection.multiple and failed:
        app.hint(f"{failed} of {len(results) + len(selection.errors)} connections failed.")
    raise click.exceptions.Exit(status)


async def _graph_list_operation(client: Any) -> list[dict[str, Any]]:
    graphs: list[dict[str, Any]] = await client.graph_list()
    return graphs


def _filter_access(graphs: list[dict[str, Any]] | None, access: str | None) -> list[dict[str, Any]]:
    graphs = graphs or []
    if access == "writeable":
        return [graph for graph in graphs if graph.get("writeable") is True]
    if access == "readonly":
        return [graph for graph in graphs if graph.get("writeable") is not True]
    return graphs


def graph_type(graph: dict[str, Any]) -> str:
    """Return the first assigned class, by sorted IRI, as a prefixed name where the prefix is known."""
    classes = graph.get("assignedClasses") or []
    if not classes:
        return ""
    iri = sorted(str(item) for item in classes)[0]
    for prefix, namespace in NAMESPACES.items():
        if iri.startswith(namespace):
            return prefix + ":" + iri[len(namespace) :]
    return iri


def graph_label(graph: dict[str, Any]) -> str:
    label = graph.get("label")
    if isinstance(label, dict) and isinstance(label.get("title"), str):
        return str(label["title"])
    return ""


def _graph_record(graph: dict[str, Any]) -> dict[str, Any]:
    return {
        "iri": graph["iri"],
        "type": graph_type(graph),
        "label": graph_label(graph),
        "writeable": graph.get("writeable") is True,
    }


def _csv_cell(value: object) -> object:
    """Write booleans as JSON does, true and false, so that CSV and JSON read alike."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _print_csv(graphs_by_connection: dict[str, list[dict[str, Any]]], *, multiple: bool) -> None:
    columns = ["iri", "type", "label", "writeable"]
    writer = csv.writer(click.get_text_stream("stdout"), lineterminator="\n")
    writer.writerow((["connection"] if multiple else []) + columns)
    for connection, graphs in graphs_by_connection.items():
        for graph in sorted(graphs, key=lambda graph: graph_label(graph).lower()):
            record = _graph_record(graph)
            writer.writerow(([connection] if multiple else []) + [_csv_cell(record[column]) for column in columns])


def _sorted_iris(graphs: list[dict[str, Any]]) -> list[str]:
    return sorted((graph["iri"] for graph in graphs), key=str.lower)


def _print_single(app: App, graphs: list[dict[str, Any]], *, raw: bool, id_only: bool) -> None:
    if raw:
        click.echo(json.dumps(graphs, indent=2))
        return
    if id_only:
        for iri in _sorted_iris(graphs):
            click.echo(iri)
        return
    if not graphs:
        app.hint(EMPTY_HINT)
        return
    rows = sorted(([graph["iri"], graph_type(graph), graph_label(graph)] for graph in graphs), key=lambda row: row[2].lower())
    app.echo(render_table(["Graph IRI", "Type", "Label"], rows, app.console_width()))


def _print_multiple(
    app: App,
    selection: Selection,
    results: list[Any],
    graphs_by_connection: dict[str, list[dict[str, Any]]],
    *,
    raw: bool,
    id_only: bool,
) -> None:
    if raw:
        records: list[dict[str, Any]] = []
        for error in selection.errors:
            records.append({"connection": error.connection, "error": error_record(error)})
        for result in results:
            if result.error is not None:
                records.append({"connection": result.connection, "error": error_record(result.error)})
            else:
                records.append({"connection": result.connection, "graphs": graphs_by_connection[result.connection]})
        records.sort(key=lambda record: str(record["connection"]).casefold())
        click.echo(json.dumps(records, indent=2))
        return
    if id_only:
        for connection, graphs in graphs_by_connection.items():
            for iri in _sorted_iris(graphs):
                click.echo(f"{connection}\t{iri}")
        return

    rows = []
    for connection, graphs in graphs_by_connection.items():
        rows.extend(
            sorted(
                ([connection, graph["iri"], graph_type(graph), graph_label(graph)] for graph in graphs),
                key=lambda row: row[3].lower(),
            )
        )
    if not rows:
        if graphs_by_connection:
            app.hint("The accounts of the selected connections can read no graphs.")
        return
    app.echo(render_table(["Connection", "Graph IRI", "Type", "Label"], rows, app.console_width()))
