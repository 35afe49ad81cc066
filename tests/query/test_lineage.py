"""Lineage over runs captured live: datasets, runs, artifacts and deployments linked only by what was
captured (a run's dataset_ref, the artifacts it registered, a deployment's run and artifact, and the
relations table), and where an artifact came from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contexta import Contexta, Workspace
from contexta.contract import LineageEdge
from contexta.errors import NotFoundError, ValidationError
from contexta.query import LineageGraph

PROJECT = "vision"
DIGITS = "dataset:vision.digits"


def _train(ctx: Contexta, tmp_path: Path, content: bytes) -> tuple[str, str]:
    """A `train` execution reading DIGITS whose `fit` stage registers a model; (run ref, artifact ref)."""
    model = tmp_path / "model.bin"
    model.write_bytes(content)
    with (
        ctx.run("train", dataset_ref=DIGITS, config_snapshot={"lr": 0.1}) as run,
        run.stage("fit") as stage,
    ):
        stage.metric("loss", 0.5)
        registration = stage.register_artifact("model", model)
    return run.ref, registration.payload["manifest"].artifact_ref


@pytest.fixture
def captured(tmp_path: Path) -> Iterator[tuple[Contexta, dict[str, str]]]:
    """Two executions of `train` (each registering a different model), a deployment of the latest
    one and its model, and an unrelated run `sibling` that read the same dataset."""
    ctx = Contexta(workspace=tmp_path / "ws", config={"project_name": PROJECT})
    _, first_model = _train(ctx, tmp_path, b"weights one")
    run_ref, model = _train(ctx, tmp_path, b"weights two")
    with ctx.deployment("canary", run_ref=run_ref, artifact_ref=model) as deployment:
        deployment.event("deployment.ready", message="serving")
    with ctx.run("sibling", dataset_ref=DIGITS) as run:
        run.metric("loss", 0.7)
    refs = {"run": run_ref, "model": model, "first_model": first_model, "deployment": deployment.ref}
    yield ctx, refs
    ctx.close()


def _refs(graph: LineageGraph) -> set[str]:
    return {node.ref for node in graph.nodes}


def _links(graph: LineageGraph) -> set[tuple[str, str, str]]:
    return {(link.source_ref, link.relation, link.target_ref) for link in graph.edges}


def test_downstream_of_a_dataset_reaches_the_runs_that_read_it_and_what_came_of_them(
    captured: tuple[Contexta, dict[str, str]],
) -> None:
    ctx, refs = captured

    graph = ctx.traverse_lineage(DIGITS, direction="downstream")

    assert graph.root_ref == DIGITS
    assert _refs(graph) == {
        DIGITS,
        "run:vision.train",
        "run:vision.train@1",
        "run:vision.sibling",
        refs["model"],
        refs["first_model"],
        refs["deployment"],
    }
    assert (DIGITS, "input_of", "run:vision.train") in _links(graph)
    assert ("run:vision.train", "produced", refs["model"]) in _links(graph)
    assert (refs["model"], "deployed_as", refs["deployment"]) in _links(graph)
    assert ("run:vision.train", "deployed", refs["deployment"]) in _links(graph)
    deployment = graph.node(refs["deployment"])
    assert deployment is not None
    assert (deployment.kind, deployment.label, deployment.depth) == ("deployment", "canary", 2)
    model = graph.node(refs["model"])
    assert model is not None and (model.kind, model.label) == ("artifact", "model")


def test_upstream_of_a_deployment_is_the_run_and_model_it_names_and_the_dataset_behind_them(
    captured: tuple[Contexta, dict[str, str]],
) -> None:
    ctx, refs = captured

    graph = ctx.traverse_lineage(refs["deployment"], direction="upstream")

    # The earlier execution, its model and the sibling run read the same dataset but did not lead
    # to this deployment: nothing is pulled in by name or by sharing a dataset.
    assert _refs(graph) == {refs["deployment"], "run:vision.train", refs["model"], DIGITS}
    assert {link.evidence for link in graph.edges} == {
        "deployment.run_ref",
        "deployment.artifact_ref",
        "artifact.run",
        "run.dataset_ref",
    }


def test_both_directions_from_a_run_stop_at_its_dataset_instead_of_reaching_other_runs(
    captured: tuple[Contexta, dict[str, str]],
) -> None:
    ctx, refs = captured

    graph = ctx.traverse_lineage("train")  # a bare run name means its latest execution

    assert _refs(graph) == {"run:vision.train", DIGITS, refs["model"], refs["deployment"]}
    assert graph.direction == "both"


def test_max_depth_counts_hops_from_the_ref(captured: tuple[Contexta, dict[str, str]]) -> None:
    ctx, refs = captured

    alone = ctx.traverse_lineage(DIGITS, max_depth=0)
    one_hop = ctx.traverse_lineage(DIGITS, direction="downstream", max_depth=1)

    assert [node.ref for node in alone.nodes] == [DIGITS] and alone.edges == ()
    assert _refs(one_hop) == {DIGITS, "run:vision.train", "run:vision.train@1", "run:vision.sibling"}
    assert refs["deployment"] not in _refs(one_hop)


def test_an_earlier_execution_keeps_its_own_artifact(captured: tuple[Contexta, dict[str, str]]) -> None:
    ctx, refs = captured

    graph = ctx.traverse_lineage(refs["first_model"], direction="upstream")

    assert _links(graph) == {
        ("run:vision.train@1", "produced", refs["first_model"]),
        (DIGITS, "input_of", "run:vision.train@1"),
    }


def test_relations_table_rows_are_followed_and_a_cycle_ends(
    captured: tuple[Contexta, dict[str, str]],
) -> None:
    ctx, refs = captured
    # By hand: the deployed model was fine-tuned into the sibling run, which produced nothing, and
    # the sibling run fed the model back (a cycle: model -> sibling -> model).
    now = "2026-01-01T00:00:00Z"
    ctx.metadata_store.relations.put_relation(
        LineageEdge(refs["model"], "run:vision.sibling", "fine_tuned_in", now)
    )
    ctx.metadata_store.relations.put_relation(
        LineageEdge("run:vision.sibling", refs["model"], "refined", now)
    )

    graph = ctx.traverse_lineage(refs["model"], direction="downstream")

    assert (refs["model"], "fine_tuned_in", "run:vision.sibling") in _links(graph)
    assert ("run:vision.sibling", "refined", refs["model"]) in _links(graph)
    assert [link.evidence for link in graph.edges if link.relation == "refined"] == ["relations"]
    assert len(graph.nodes) == len(_refs(graph))  # each subject once, however often it is reached


def test_the_read_only_workspace_answers_as_the_capturing_facade_does(
    captured: tuple[Contexta, dict[str, str]],
) -> None:
    ctx, refs = captured
    ctx.flush()

    with Workspace(ctx.workspace) as workspace:
        assert workspace.traverse_lineage(refs["deployment"]) == ctx.traverse_lineage(refs["deployment"])
        assert workspace.get_artifact_origin(refs["model"]) == ctx.get_artifact_origin(refs["model"])


def test_an_unknown_ref_or_bad_options_are_refused_at_the_call(
    captured: tuple[Contexta, dict[str, str]],
) -> None:
    ctx, _ = captured

    with pytest.raises(NotFoundError) as unknown:
        ctx.traverse_lineage("dataset:vision.never-captured")
    with pytest.raises(NotFoundError) as unknown_artifact:
        ctx.traverse_lineage("artifact:vision.train.model-000000000000")
    with pytest.raises(ValidationError) as direction:
        ctx.traverse_lineage(DIGITS, direction="sideways")
    with pytest.raises(ValidationError) as depth:
        ctx.traverse_lineage(DIGITS, max_depth=-1)

    assert unknown.value.code == unknown_artifact.value.code == "lineage_ref_not_found"
    assert "dataset:vision.never-captured" in unknown.value.message
    assert direction.value.code == "lineage_direction_invalid"
    assert "upstream" in direction.value.message
    assert depth.value.code == "lineage_depth_invalid"


def test_artifact_origin_names_the_run_stage_digest_and_deployments(
    captured: tuple[Contexta, dict[str, str]],
) -> None:
    ctx, refs = captured

    origin = ctx.get_artifact_origin(refs["model"])
    first = ctx.get_artifact_origin(refs["first_model"])

    assert (origin.run_id, origin.stage_id, origin.kind) == (
        "run:vision.train",
        "stage:vision.train.fit",
        "model",
    )
    assert origin.size_bytes == len(b"weights two") and origin.hash_algorithm == "blake3"
    assert origin.hash_value == ctx.list_artifacts("train")[0].hash_value
    assert origin.location.endswith("model.bin") and origin.registered_at.endswith("Z")
    assert [deployment.deployment_id for deployment in origin.deployments] == [refs["deployment"]]
    assert (first.run_id, first.deployments) == ("run:vision.train@1", ())


def test_artifact_origin_refuses_an_unknown_artifact_or_another_kind_of_ref(
    captured: tuple[Contexta, dict[str, str]],
) -> None:
    ctx, _ = captured

    with pytest.raises(NotFoundError) as unknown:
        ctx.get_artifact_origin("artifact:vision.train.model-000000000000")
    with pytest.raises(ValidationError):
        ctx.get_artifact_origin("run:vision.train")

    assert unknown.value.code == "artifact_not_found"
