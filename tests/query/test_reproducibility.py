"""Auditing a captured run for what running it again needs, and comparing two runs' environments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.contract import EnvironmentSnapshot, Run
from contexta.errors import NotFoundError
from contexta.query import ReproducibilityAudit

PROJECT = "vision"


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Contexta]:
    # Outside any git checkout, so git HEAD is not recorded and the runs' code revisions are only
    # what each test gives.
    outside = tmp_path / "job"
    outside.mkdir()
    monkeypatch.chdir(outside)
    context = Contexta(workspace=tmp_path / "ws", config={"project_name": PROJECT})
    yield context
    context.close()


def _statuses(audit: ReproducibilityAudit) -> dict[str, str]:
    return {check.name: check.status for check in audit.checks}


def _complete_run(ctx: Contexta, model: Path) -> str:
    model.write_bytes(b"weights")
    with ctx.run(
        "complete", dataset_ref="dataset:vision.digits", code_revision="9f2c1e0", config_snapshot={"lr": 0.1}
    ) as run:
        run.register_artifact("model", model)
    return run.ref


def test_a_fully_captured_run_misses_nothing_and_says_what_it_cannot_know(
    ctx: Contexta, tmp_path: Path
) -> None:
    _complete_run(ctx, tmp_path / "model.bin")

    audit = ctx.audit_reproducibility("complete")

    assert audit.run_id == "run:vision.complete"
    assert _statuses(audit) == {
        "code_revision": "ok",
        "git_tree_clean": "unknown",  # the snapshot records HEAD, never `git status`
        "dataset_ref": "ok",
        "environment": "ok",
        "config_snapshot": "ok",
        "artifact": "ok",
    }
    assert audit.complete and audit.missing == ()
    assert "9f2c1e0" in next(check.detail for check in audit.checks if check.name == "code_revision")
    assert "uncommitted" in audit.unknown[0].detail


def test_a_bare_run_misses_its_code_revision_dataset_and_config(ctx: Contexta) -> None:
    with ctx.run("bare") as run:
        run.metric("loss", 0.5)

    audit = ctx.audit_reproducibility("bare")

    assert not audit.complete
    assert [check.name for check in audit.missing] == ["code_revision", "dataset_ref", "config_snapshot"]
    assert _statuses(audit)["environment"] == "ok"
    assert "dataset_ref=" in next(check.detail for check in audit.missing if check.name == "dataset_ref")


def test_artifacts_that_are_gone_or_changed_are_missing(ctx: Contexta, tmp_path: Path) -> None:
    kept, changed, gone = (tmp_path / name for name in ("kept.bin", "changed.bin", "gone.bin"))
    for path in (kept, changed, gone):
        path.write_bytes(b"original bytes")
    with ctx.run(
        "trained", dataset_ref="dataset:vision.digits", code_revision="abc", config_snapshot={"a": 1}
    ) as run:
        refs = [
            run.register_artifact(kind, path).payload["manifest"].artifact_ref
            for kind, path in (("kept", kept), ("changed", changed), ("gone", gone))
        ]
    changed.write_bytes(b"altered! bytes")  # same size, other content: only the digest tells
    gone.unlink()

    audit = ctx.audit_reproducibility("trained")

    artifacts = {check.subject_ref: check for check in audit.checks if check.name == "artifact"}
    assert [artifacts[ref].status for ref in refs] == ["ok", "missing", "missing"]
    assert "BLAKE3" in artifacts[refs[1]].detail
    assert "gone" in artifacts[refs[2]].detail
    assert [check.subject_ref for check in audit.missing] == refs[1:]


def _hand_written_run(
    ctx: Contexta, name: str, packages: dict[str, str] | None, python: str = "3.11.7"
) -> str:
    """A run imported by hand (not captured), with the environment given, or none."""
    ref = f"run:{PROJECT}.{name}"
    ctx.metadata_store.runs.put_run(
        Run(ref, f"project:{PROJECT}", name, "completed", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z")
    )
    if packages is not None:
        ctx.metadata_store.environments.put_environment_snapshot(
            EnvironmentSnapshot(ref, "2026-01-01T00:00:00Z", python, "Linux-x86_64", packages, "abc123")
        )
    return ref


def test_a_run_without_an_environment_snapshot_misses_it(ctx: Contexta, tmp_path: Path) -> None:
    _complete_run(ctx, tmp_path / "model.bin")  # the project exists once something was captured
    _hand_written_run(ctx, "imported", None)

    audit = ctx.audit_reproducibility("imported")

    assert _statuses(audit)["environment"] == "missing"
    assert _statuses(audit)["git_tree_clean"] == "unknown"
    assert "no git checkout" in audit.unknown[0].detail


def test_environments_differ_by_python_and_packages_added_removed_and_changed(
    ctx: Contexta, tmp_path: Path
) -> None:
    _complete_run(ctx, tmp_path / "model.bin")
    _hand_written_run(ctx, "old", {"numpy": "1.26.4", "torch": "2.2.0", "pandas": "2.2.1"})
    _hand_written_run(ctx, "new", {"numpy": "2.0.0", "torch": "2.2.0", "polars": "1.0.0"}, python="3.12.1")

    comparison = ctx.compare_environments("old", "new")

    assert (comparison.left_run_id, comparison.right_run_id) == ("run:vision.old", "run:vision.new")
    assert [(d.field, d.left, d.right) for d in comparison.differences] == [
        ("python_version", "3.11.7", "3.12.1")
    ]
    assert [(p.name, p.left_version, p.right_version) for p in comparison.packages_added] == [
        ("polars", None, "1.0.0")
    ]
    assert [(p.name, p.left_version, p.right_version) for p in comparison.packages_removed] == [
        ("pandas", "2.2.1", None)
    ]
    assert [(p.name, p.left_version, p.right_version) for p in comparison.packages_changed] == [
        ("numpy", "1.26.4", "2.0.0")
    ]
    assert not comparison.identical
    assert comparison.to_dict()["packages_changed"] == [
        {"name": "numpy", "left_version": "1.26.4", "right_version": "2.0.0"}
    ]


def test_two_runs_of_one_process_have_identical_environments(ctx: Contexta, tmp_path: Path) -> None:
    _complete_run(ctx, tmp_path / "model.bin")
    with ctx.run("again") as run:
        run.metric("loss", 0.1)

    comparison = ctx.compare_environments("complete", "again")

    assert comparison.identical
    assert comparison.left.packages == comparison.right.packages and comparison.left.packages


def test_comparing_a_run_without_an_environment_is_refused_naming_it(ctx: Contexta, tmp_path: Path) -> None:
    _complete_run(ctx, tmp_path / "model.bin")
    _hand_written_run(ctx, "imported", None)

    with pytest.raises(NotFoundError) as refused:
        ctx.compare_environments("complete", "imported")

    assert refused.value.code == "environment_not_found"
    assert "run:vision.imported" in refused.value.message
