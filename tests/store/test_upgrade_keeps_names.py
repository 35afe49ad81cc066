"""Upgrading keeps the names the previous version stored.

The previous version stored a project or run name in its normalised form only (no typed name): a
project configured as `churn_prediction` became `project:churn-prediction`, `ctx.run("baseline_model")`
became `run:churn-prediction.baseline-model`. Today a name not in ref form gets a hashed component;
after an upgrade the same configuration and the same run name must still reach the stored project and
run (never a second project beside the old one), while a *different* typed name that only normalises
the same gets a ref of its own.

The schema-1 store is written with plain SQL from `MIGRATIONS[1]`, the way that version laid it out.
"""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.contract._timestamps import instant_key
from contexta.errors import NotFoundError
from contexta.store._schema import APPLICATION_ID, MIGRATIONS

pytestmark = pytest.mark.sqlite_only("upgrades SQLite stores written by earlier versions")

PROJECT_REF = "project:churn-prediction"
RUN_REF = "run:churn-prediction.baseline-model"
OLD_START = "2025-01-01T00:00:00Z"
CONFIG = {"project_name": "churn_prediction"}  # as the user configured it then and now


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace whose schema-1 store holds what `config={"project_name": "churn_prediction"}` and
    `ctx.run("baseline_model")` stored under the previous version: one completed execution."""
    workspace = tmp_path / ".contexta"
    (workspace / "metadata").mkdir(parents=True)
    connection = sqlite3.connect(workspace / "metadata" / "contexta.db", isolation_level=None)
    connection.execute("BEGIN")
    for statement in MIGRATIONS[1]:
        connection.execute(statement)
    connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
    connection.execute("PRAGMA user_version=1")
    connection.execute(
        "INSERT INTO projects (project_ref, name, created_at) VALUES (?, ?, ?)",
        (PROJECT_REF, "churn-prediction", OLD_START),
    )
    connection.execute(
        "INSERT INTO runs (run_ref, project_ref, name, status, started_at, ended_at, started_key) "
        "VALUES (?, ?, 'baseline-model', 'completed', ?, '2025-01-01T01:00:00Z', ?)",
        (RUN_REF, PROJECT_REF, OLD_START, instant_key(OLD_START)),
    )
    connection.execute("COMMIT")
    connection.close()
    return workspace


def _open(workspace: Path, config: dict[str, str] = CONFIG) -> Contexta:
    return Contexta(workspace=workspace, config=config)


def test_the_same_name_after_an_upgrade_adds_an_execution_to_the_stored_run(workspace: Path) -> None:
    # Breaks if the upgraded version hashed the configured project and the typed run name into new
    # refs: the user's history would sit in one project and everything new in a second one.
    with _open(workspace) as ctx:
        with ctx.run("baseline_model") as run:
            run.metric("acc", 0.9)
        assert run.ref == RUN_REF
        every = ctx.list_runs(all_executions=True)
        assert [(r.run_id, r.started_at) for r in every] == [
            (f"{RUN_REF}@1", OLD_START),
            (RUN_REF, run.started_at),
        ]
        assert every[1].execution_id == run.execution_id
        assert [project.project_id for project in ctx.list_projects()] == [PROJECT_REF]
        assert ctx.get_metric_series("baseline_model", "acc").values == (0.9,)
        with pytest.raises(NotFoundError, match="no metric 'acc'"):
            ctx.get_metric_series(f"{RUN_REF}@1", "acc")


def test_a_resume_after_an_upgrade_joins_the_stored_execution(workspace: Path) -> None:
    # Breaks if `resume=True` started a fresh run under a new ref instead of continuing the
    # execution the previous version stored.
    with _open(workspace) as ctx:
        (stored,) = ctx.list_runs(all_executions=True)
        with ctx.run("baseline_model", resume=True) as run:
            run.metric("acc", 0.95)
        assert (run.ref, run.execution_id) == (RUN_REF, stored.execution_id)
        (after,) = ctx.list_runs(all_executions=True)
        assert (after.run_id, after.execution_id, after.started_at) == (
            RUN_REF,
            stored.execution_id,
            OLD_START,
        )
        assert [project.project_id for project in ctx.list_projects()] == [PROJECT_REF]
        assert ctx.get_metric_series("baseline_model", "acc").values == (0.95,)


def test_a_later_process_with_the_same_config_stays_in_the_one_project(workspace: Path) -> None:
    # The upgrade is not a one-off: every later process configured the same way keeps using the
    # stored project and run.
    for value in (0.9, 0.91):
        with _open(workspace) as ctx, ctx.run("baseline_model") as run:
            run.metric("acc", value)
        assert run.ref == RUN_REF
    with _open(workspace) as ctx:
        assert [project.project_id for project in ctx.list_projects()] == [PROJECT_REF]
        assert [r.run_id for r in ctx.list_runs(all_executions=True)] == [
            f"{RUN_REF}@1",
            f"{RUN_REF}@2",
            RUN_REF,
        ]
        assert ctx.get_metric_series("baseline_model", "acc").values == (0.91,)


def test_a_different_typed_name_that_normalises_the_same_gets_its_own_ref(workspace: Path) -> None:
    # Breaks if `Baseline Model` (a different name that only normalises to `baseline-model`) joined
    # the stored run once `baseline_model` had claimed it after the upgrade.
    with _open(workspace) as ctx:
        with ctx.run("baseline_model") as kept:
            kept.metric("acc", 0.9)
        with ctx.run("Baseline Model") as other:
            other.metric("acc", 0.5)
        assert kept.ref == RUN_REF
        assert other.ref != RUN_REF
        assert other.ref.startswith(f"{RUN_REF}-")  # the normalised form and a hash of the typed name
        assert ctx.get_metric_series("Baseline Model", "acc").values == (0.5,)
        assert ctx.get_metric_series("baseline_model", "acc").values == (0.9,)
        assert sorted(r.run_id for r in ctx.list_runs()) == sorted([RUN_REF, other.ref])

    with _open(workspace) as ctx, ctx.run("Baseline Model") as again:
        pass
    assert again.ref == other.ref


def test_a_different_typed_name_opened_alongside_never_gets_the_stored_ref(workspace: Path) -> None:
    # Both names are opened before the store has written either (a sweep opening its runs up front,
    # or two runs of a loop in flight at once): `Baseline Model` must not land in the run that
    # `baseline_model` holds.
    with _open(workspace) as ctx, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = ctx.run("baseline_model")
        other = ctx.run("Baseline Model")
        kept.close()
        other.close()
        assert kept.ref == RUN_REF
        assert other.ref != RUN_REF
        assert sorted(r.run_id for r in ctx.list_runs()) == sorted([RUN_REF, other.ref])


def test_a_different_project_name_after_an_upgrade_gets_a_project_of_its_own(workspace: Path) -> None:
    # Breaks if a project configured as `Churn Prediction` (another name that only normalises to
    # `churn-prediction`) wrote its runs into the project `churn_prediction` holds.
    with _open(workspace) as ctx, ctx.run("baseline_model") as run:
        run.metric("acc", 0.9)
    with _open(workspace, {"project_name": "Churn Prediction"}) as ctx:
        with ctx.run("baseline_model") as elsewhere:
            elsewhere.metric("acc", 0.1)
        assert not elsewhere.ref.startswith("run:churn-prediction.")
        assert len(ctx.list_projects()) == 2
        assert ctx.get_metric_series(RUN_REF, "acc").values == (0.9,)


def test_listing_by_the_configured_project_name_finds_the_upgraded_project(workspace: Path) -> None:
    # `ctx.list_runs(project="churn_prediction")` (the name in the config) must list the project's
    # runs, the stored execution and the new one, as it does on a store the new version created.
    with _open(workspace) as ctx:
        with ctx.run("baseline_model"):
            pass
        listed = ctx.list_runs(project="churn_prediction", all_executions=True)
        assert [r.run_id for r in listed] == [f"{RUN_REF}@1", RUN_REF]
