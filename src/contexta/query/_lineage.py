"""Lineage: which datasets, runs, artifacts and deployments led to one another, and where an
artifact came from.

A graph is built only from what was captured: a run's `dataset_ref`, the artifacts a run (or one of
its stages) registered, a deployment's `run_ref` and `artifact_ref`, and rows of the relations
table. Nothing is matched by name or time, so every link names the fact it stands on (`evidence`).
A run is one of its executions, named as queries name it (`run:p.r`, `run:p.r@2` for an earlier
one): an artifact or deployment belongs to the execution that captured it. Traversal remembers what
it has visited, so a cycle in hand-written relations ends instead of looping.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import NamedTuple

from contexta.contract import parse_ref
from contexta.errors import NotFoundError, ValidationError
from contexta.query._fetch import fetch_deployments
from contexta.query._lineage_models import (
    LINEAGE_DIRECTIONS,
    ArtifactOrigin,
    LineageGraph,
    LineageLink,
    LineageNode,
)
from contexta.query._reading import reading
from contexta.query._resolve import find_run
from contexta.store import StoreDatabase, latest_execution_id

__all__ = ["get_artifact_origin", "traverse_lineage"]

# How a run execution is named in every answer: the run ref for the latest, `ref@n` for an earlier one.
_RUN_ID = "CASE WHEN latest = 1 THEN run_ref ELSE run_ref || '@' || execution_number END"


class _Subject(NamedTuple):
    ref: str
    kind: str
    label: str
    execution_id: str | None = None  # for a run: the execution it is


class _Step(NamedTuple):
    """A link from the subject being visited, and the subject at its other end."""

    link: LineageLink
    other: _Subject


def _check_direction(direction: object) -> str:
    if direction not in LINEAGE_DIRECTIONS:
        raise ValidationError(
            f"direction must be one of {', '.join(LINEAGE_DIRECTIONS)}, got {direction!r}",
            code="lineage_direction_invalid",
            details={"direction": direction},
        )
    return str(direction)


def _check_depth(max_depth: object) -> int | None:
    if max_depth is None:
        return None
    if type(max_depth) is not int or max_depth < 0:
        raise ValidationError(
            f"max_depth must be a whole number of hops (0 or more) or None for no limit, got {max_depth!r}",
            code="lineage_depth_invalid",
            details={"max_depth": max_depth},
        )
    return max_depth


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be a non-empty string, got {value!r}", code="id_invalid")
    return value.strip()


class _LineageReader:
    """The captured facts around one subject, read from an open connection."""

    def __init__(self, connection: sqlite3.Connection):
        self._connection = connection

    def _rows(self, sql: str, *parameters: object) -> list[tuple[str, ...]]:
        return self._connection.execute(sql, parameters).fetchall()

    # -- subjects ----------------------------------------------------------------------------------

    def run(self, execution_id: str | None) -> _Subject | None:
        """The run execution `execution_id` as a subject; None when it is not stored (a row that
        names an execution reclaimed since, or none)."""
        found = self._rows(
            f"SELECT {_RUN_ID}, coalesce(display_name, name) FROM runs WHERE execution_id = ?", execution_id
        )
        return _Subject(found[0][0], "run", found[0][1], execution_id) if found else None

    def subject(self, ref: str) -> _Subject:
        """The subject a captured ref names: a stored run's latest execution, an artifact or a
        deployment with its label, else a ref only known by name (a dataset, a relation's end)."""
        kind, _, rest = ref.partition(":")
        if kind == "run":
            run = self.run(latest_execution_id(self._connection, ref))
            if run is not None:
                return run
        elif kind == "artifact":
            found = self._rows(
                "SELECT kind FROM artifacts WHERE artifact_ref = ? ORDER BY rowid DESC LIMIT 1", ref
            )
            return _Subject(ref, "artifact", found[0][0] if found else rest.rpartition(".")[2])
        elif kind == "deployment":
            found = self._rows(
                "SELECT coalesce(display_name, name) FROM deployments WHERE deployment_ref = ? "
                "ORDER BY rowid DESC LIMIT 1",
                ref,
            )
            return _Subject(ref, "deployment", found[0][0] if found else rest.rpartition(".")[2])
        if self._rows("SELECT 1 FROM runs WHERE dataset_ref = ? LIMIT 1", ref):
            return _Subject(ref, "dataset", ref)
        return _Subject(ref, kind if rest else "ref", ref)

    def root(self, text: str, project: str | None) -> _Subject:
        """The subject the caller named: an artifact or deployment ref, a run (full ref, bare name or
        `name@n`), or a dataset or other ref the store holds; NotFoundError when nothing holds it."""
        if text.startswith(("artifact:", "deployment:")):
            if self._known(text):
                return self.subject(text)
        else:
            try:
                run = self.run(find_run(self._connection, text, project).execution_id)
            except NotFoundError:
                run = None
            if run is not None:
                return run
            if self._known(text):
                return self.subject(text)
        raise NotFoundError(
            f"nothing in this store is named {text!r}: give a run (ref or name), an artifact, a deployment "
            "or a dataset ref that was captured (list runs with `contexta runs`, their artifacts with "
            "`contexta run show RUN`)",
            code="lineage_ref_not_found",
            details={"ref": text},
        )

    def _known(self, ref: str) -> bool:
        holders = (
            "SELECT 1 FROM artifacts WHERE artifact_ref = ?1",
            "SELECT 1 FROM deployments WHERE deployment_ref = ?1 OR artifact_ref = ?1",
            "SELECT 1 FROM runs WHERE dataset_ref = ?1",
            "SELECT 1 FROM relations WHERE source_ref = ?1 OR target_ref = ?1",
        )
        return any(self._rows(f"{sql} LIMIT 1", ref) for sql in holders)

    # -- links -------------------------------------------------------------------------------------

    def upstream(self, subject: _Subject) -> Iterator[_Step]:
        """Links that end at `subject`, each with the subject it starts from."""
        if subject.kind == "run" and subject.execution_id is not None:
            for (dataset_ref,) in self._rows(
                "SELECT dataset_ref FROM runs WHERE execution_id = ? AND dataset_ref IS NOT NULL",
                subject.execution_id,
            ):
                yield self._step(
                    dataset_ref, subject.ref, "input_of", "run.dataset_ref", self.subject(dataset_ref)
                )
        elif subject.kind == "artifact":
            for (execution_id,) in self._rows(
                "SELECT execution_id FROM artifacts WHERE artifact_ref = ? ORDER BY rowid", subject.ref
            ):
                run = self.run(execution_id)
                if run is not None:
                    yield self._step(run.ref, subject.ref, "produced", "artifact.run", run)
        elif subject.kind == "deployment":
            for execution_id, run_ref, artifact_ref in self._rows(
                "SELECT run_execution_id, run_ref, artifact_ref FROM deployments WHERE deployment_ref = ?",
                subject.ref,
            ):
                if run_ref is not None:
                    run = self.run(execution_id) or self.subject(run_ref)
                    yield self._step(run.ref, subject.ref, "deployed", "deployment.run_ref", run)
                if artifact_ref is not None:
                    artifact = self.subject(artifact_ref)
                    yield self._step(
                        artifact_ref, subject.ref, "deployed_as", "deployment.artifact_ref", artifact
                    )
        for source_ref, relation in self._rows(
            "SELECT source_ref, relation FROM relations WHERE target_ref = ? ORDER BY recorded_at, rowid",
            subject.ref,
        ):
            yield self._step(source_ref, subject.ref, relation, "relations", self.subject(source_ref))

    def downstream(self, subject: _Subject) -> Iterator[_Step]:
        """Links that start at `subject`, each with the subject it leads to."""
        if subject.kind == "run" and subject.execution_id is not None:
            for (artifact_ref,) in self._rows(
                "SELECT artifact_ref FROM artifacts WHERE execution_id = ? ORDER BY rowid",
                subject.execution_id,
            ):
                yield self._step(
                    subject.ref, artifact_ref, "produced", "artifact.run", self.subject(artifact_ref)
                )
            for (deployment_ref,) in self._rows(
                "SELECT deployment_ref FROM deployments WHERE run_execution_id = ? "
                "ORDER BY started_key, rowid",
                subject.execution_id,
            ):
                deployment = self.subject(deployment_ref)
                yield self._step(subject.ref, deployment_ref, "deployed", "deployment.run_ref", deployment)
        elif subject.kind == "artifact":
            for (deployment_ref,) in self._rows(
                "SELECT deployment_ref FROM deployments WHERE artifact_ref = ? ORDER BY started_key, rowid",
                subject.ref,
            ):
                deployment = self.subject(deployment_ref)
                yield self._step(
                    subject.ref, deployment_ref, "deployed_as", "deployment.artifact_ref", deployment
                )
        if subject.kind != "run" or subject.execution_id is None:
            for (execution_id,) in self._rows(
                "SELECT execution_id FROM runs WHERE dataset_ref = ? ORDER BY started_key, rowid", subject.ref
            ):
                run = self.run(execution_id)
                if run is not None:
                    yield self._step(subject.ref, run.ref, "input_of", "run.dataset_ref", run)
        for target_ref, relation in self._rows(
            "SELECT target_ref, relation FROM relations WHERE source_ref = ? ORDER BY recorded_at, rowid",
            subject.ref,
        ):
            yield self._step(subject.ref, target_ref, relation, "relations", self.subject(target_ref))

    @staticmethod
    def _step(source: str, target: str, relation: str, evidence: str, other: _Subject) -> _Step:
        return _Step(LineageLink(source, target, relation, evidence), other)


def _walk(
    reader: _LineageReader,
    root: _Subject,
    way: str,
    max_depth: int | None,
    nodes: dict[str, LineageNode],
    links: dict[tuple[str, str, str], LineageLink],
) -> None:
    """Breadth first from `root` along links of one way (`upstream` or `downstream`), adding what it
    reaches to `nodes` (keeping each node's smallest depth) and `links`."""
    frontier = [root]
    seen = {root.ref}
    depth = 0
    while frontier and (max_depth is None or depth < max_depth):
        depth += 1
        reached: list[_Subject] = []
        for subject in frontier:
            steps = reader.upstream(subject) if way == "upstream" else reader.downstream(subject)
            for link, other in steps:
                links.setdefault((link.source_ref, link.target_ref, link.relation), link)
                known = nodes.get(other.ref)
                if known is None or known.depth > depth:
                    nodes[other.ref] = LineageNode(other.ref, other.kind, other.label, depth)
                if other.ref not in seen:
                    seen.add(other.ref)
                    reached.append(other)
        frontier = reached


def traverse_lineage(
    db: StoreDatabase,
    ref: str,
    *,
    direction: str = "both",
    max_depth: int | None = None,
    project: str | None = None,
) -> LineageGraph:
    """The datasets, runs, artifacts and deployments linked to `ref` by captured facts.

    `ref` is a run (full ref, bare name or `name@n`; a bare name is looked up in `project` first), an
    artifact, a deployment or a dataset ref. `upstream` follows links back to what led to it (the
    run that produced an artifact, the dataset a run read), `downstream` forward to what came of it,
    and `both` does each from `ref` (so a dataset's other runs are not pulled in through a run).
    `max_depth` limits the hops (0: the subject alone). `NotFoundError(lineage_ref_not_found)` when
    no captured fact names `ref`.
    """
    way = _check_direction(direction)
    depth = _check_depth(max_depth)
    text = _text(ref, "ref")
    with reading(db) as connection:
        reader = _LineageReader(connection)
        root = reader.root(text, project)
        nodes = {root.ref: LineageNode(root.ref, root.kind, root.label, 0)}
        links: dict[tuple[str, str, str], LineageLink] = {}
        for walked in ("upstream", "downstream"):
            if way in ("both", walked):
                _walk(reader, root, walked, depth, nodes, links)
    ordered = sorted(nodes.values(), key=lambda node: node.depth)  # stable: order reached within a depth
    return LineageGraph(root.ref, way, depth, tuple(ordered), tuple(links.values()))


def get_artifact_origin(db: StoreDatabase, artifact_ref: str) -> ArtifactOrigin:
    """Where an artifact came from: the run execution and stage that registered it (the last one,
    when a ref given by hand was registered again), when, its digest and size, and the deployments
    that name it. `NotFoundError(artifact_not_found)` when no run registered it."""
    text = _text(artifact_ref, "artifact_ref")
    parse_ref(text, "artifact")
    with reading(db) as connection:
        row = connection.execute(
            "SELECT a.artifact_ref, a.kind, "
            "coalesce(CASE WHEN r.latest = 1 THEN r.run_ref ELSE r.run_ref || '@' || r.execution_number END, "
            "a.run_ref), a.stage_ref, a.created_at, a.location_ref, a.hash_algorithm, a.hash_value, "
            "a.size_bytes, a.binding_status "
            "FROM artifacts AS a LEFT JOIN runs AS r ON r.execution_id = a.execution_id "
            "WHERE a.artifact_ref = ? ORDER BY a.rowid DESC LIMIT 1",
            (text,),
        ).fetchone()
        if row is None:
            raise NotFoundError(
                f"no run registered artifact {text!r} in this store; a run's artifacts are listed by "
                "`contexta run show RUN` or ctx.list_artifacts(run)",
                code="artifact_not_found",
                details={"artifact_ref": text},
            )
        deployments = fetch_deployments(connection, artifact_ref=text)
    ref, kind, run_id, stage_id, registered_at, location, algorithm, digest, size, binding = row
    return ArtifactOrigin(
        ref,
        kind,
        run_id,
        stage_id,
        registered_at,
        location,
        algorithm,
        digest,
        size,
        binding,
        tuple(deployments),
    )
