"""`run.replace_config_snapshot` (what integrations use when the configuration arrives after the
run opened, as Lightning's hyperparameters do): the open run takes the new configuration at once, in
the store and in a store rebuilt from the capture log, without closing, moving its start, or
starting another execution; it is checked as `ctx.run` checks it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from contexta import Contexta, Workspace
from contexta.cli import main
from contexta.errors import ClosedScopeError, ContextaError


def _run_statuses(workspace: Path) -> list[str]:
    """The status of each Run document in the workspace's capture log, in order."""
    lines = (workspace / "cache" / "capture" / "context.jsonl").read_bytes().splitlines()
    documents = [orjson.loads(line) for line in lines if line.strip()]
    return [d["payload"]["status"] for d in documents if d["payload_type"] == "Run"]


def test_an_open_run_takes_the_new_configuration_and_stays_open(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        run = ctx.run("train", config_snapshot={"lr": 0.1}, tags={"team": "a"})
        with run.stage("fit") as stage:
            stage.metric("loss", 1.0, step=0)
        ctx.flush()
        (before,) = ctx.list_runs()

        run.replace_config_snapshot({"lr": 0.2, "optimizer": {"name": "sgd", "momentum": 0.9}})
        ctx.flush()
        (during,) = ctx.list_runs()
        with run.stage("eval") as stage:
            stage.metric("acc", 0.5, step=1)
        run.close()
        (after,) = ctx.list_runs()

    configuration = {"lr": 0.2, "optimizer": {"name": "sgd", "momentum": 0.9}}
    assert during.status == "open" and during.config_snapshot == configuration
    assert during.started_at == before.started_at and during.execution_id == before.execution_id
    assert during.tags == {"team": "a"}
    assert after.status == "completed" and after.config_snapshot == configuration
    assert after.execution_id == before.execution_id and after.execution_number == 1
    assert _run_statuses(workspace) == ["open", "open", "completed"]

    assert main(["repair", "--workspace", str(workspace)]) == 0  # the store rebuilt from the capture log
    (rebuilt,) = Workspace(workspace).list_runs()
    assert rebuilt.config_snapshot == configuration and rebuilt.status == "completed"
    assert rebuilt.started_at == before.started_at


def test_it_is_checked_as_ctx_run_checks_it_and_refused_on_a_closed_run(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx:
        with pytest.raises(ContextaError) as by_run:
            ctx.run("refused", config_snapshot={"model": object()})
        with ctx.run("train", config_snapshot={"lr": 0.1}) as run, pytest.raises(type(by_run.value)):
            run.replace_config_snapshot({"model": object()})
        with pytest.raises(ClosedScopeError):
            run.replace_config_snapshot({"lr": 0.3})
        (stored,) = ctx.list_runs()
    assert stored.config_snapshot == {"lr": 0.1}
