"""`contexta lineage REF`: the datasets, runs, artifacts and deployments captured facts link to REF."""

from __future__ import annotations

import argparse

from contexta.cli._output import Output
from contexta.cli._tables import Column, render_table
from contexta.cli._workspace import open_workspace
from contexta.query import LineageGraph

__all__ = ["lineage_command"]


def _graph_text(graph: LineageGraph, output: Output) -> None:
    reach = "any depth" if graph.max_depth is None else f"at most {graph.max_depth} hops"
    output.line(
        f"Lineage of {graph.root_ref} ({graph.direction}, {reach}): "
        f"{len(graph.nodes)} subjects, {len(graph.edges)} links"
    )
    output.line()
    output.line("Subjects")
    output.lines(
        render_table(
            [
                Column("depth", numeric=True),
                Column("kind", keep=True),
                Column("ref", keep_end=True),
                Column("label"),
            ],
            [[str(node.depth), node.kind, node.ref, node.label] for node in graph.nodes],
            output.width,
        )
    )
    output.line()
    if not graph.edges:
        output.line("Links: none captured")
        return
    output.line("Links")
    output.lines(
        render_table(
            [
                Column("from", keep_end=True),
                Column("relation", keep=True),
                Column("to", keep_end=True),
                Column("evidence", keep=True),
            ],
            [[link.source_ref, link.relation, link.target_ref, link.evidence] for link in graph.edges],
            output.width,
        )
    )


def lineage_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta lineage REF [--direction both|upstream|downstream] [--depth N]` (json: the graph)."""
    with open_workspace(args) as ctx:
        graph = ctx.traverse_lineage(args.ref, direction=args.direction, max_depth=args.depth)
    if args.format == "json":
        output.json(graph.to_dict())
    else:
        _graph_text(graph, output)
    return 0
