"""Which run a run id names when the text could mean more than one.

- A stored full ref (`run:p.x`) names that run, even when some other run was typed with that very
  text as its name (the typed one keeps its own hashed ref and its name).
- `ctx.list_deployments(run_id="r")` with runs named `r` in two projects looks in the Contexta's own
  project first, as every other query of a run does.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from contexta import Contexta


@pytest.mark.parametrize("typed_first", [False, True], ids=["real-first", "typed-first"])
def test_a_full_ref_names_the_real_run_over_a_run_typed_with_that_text(
    workspace: Path, typed_first: bool
) -> None:
    # Breaks if a name matched as typed came before the ref: `run:p.x` read the run *named*
    # "run:p.x" (20.0) instead of run x (10.0).
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        order = ["run:p.x", "x"] if typed_first else ["x", "run:p.x"]
        refs = {}
        for name in order:
            with ctx.run(name) as run:
                run.metric("m", 20.0 if name == "run:p.x" else 10.0)
                with run.stage("train"):
                    pass
            refs[name] = run.ref
        assert refs["x"] == "run:p.x"
        assert refs["run:p.x"] != "run:p.x"

        assert ctx.get_metric_series("run:p.x", "m").values == (10.0,)
        assert ctx.get_run_snapshot("run:p.x").run.run_id == "run:p.x"
        assert ctx.get_run_snapshot("run:p.x").run.name == "x"
        assert [s.stage_id for s in ctx.list_stages("run:p.x")] == ["stage:p.x.train"]
        assert ctx.get_metric_series("run:p.x@1", "m").values == (10.0,)
        # The typed one stays reachable by its own ref.
        assert ctx.get_metric_series(refs["run:p.x"], "m").values == (20.0,)
        assert ctx.get_run_snapshot(refs["run:p.x"]).run.name == "run:p.x"


def test_list_deployments_by_a_bare_run_name_looks_in_the_contextas_own_project(workspace: Path) -> None:
    # Breaks if a bare name was looked up across every project: `r` in projects p and q made
    # `list_deployments(run_id="r")` raise "run name 'r' matches several runs" although every other
    # query of `r` through the same Contexta reads p's run.
    with Contexta(workspace=workspace, config={"project_name": "q"}) as other:
        with other.run("r") as run:
            run.metric("m", 2.0)
        with other.deployment("staging", run_ref=run.ref):
            pass
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        with ctx.run("r") as run:
            run.metric("m", 1.0)
        with ctx.deployment("prod", run_ref=run.ref):
            pass
        assert ctx.get_metric_series("r", "m").values == (1.0,)
        assert [(d.deployment_id, d.run_id) for d in ctx.list_deployments(run_id="r")] == [
            ("deployment:p.prod", "run:p.r")
        ]
        assert [d.deployment_id for d in ctx.list_deployments(run_id="run:q.r")] == ["deployment:q.staging"]
        # An explicit project still decides.
        assert [d.deployment_id for d in ctx.list_deployments(project="q", run_id="r")] == [
            "deployment:q.staging"
        ]
    with Contexta(workspace=workspace, config={"project_name": "q"}) as other:
        assert [d.deployment_id for d in other.list_deployments(run_id="r")] == ["deployment:q.staging"]
