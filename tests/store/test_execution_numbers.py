"""Executions of a run are numbered in the order the store received them, and `run:p.r@n` never changes
meaning: an execution stored later with an earlier start (history written by hand, a node whose clock
is behind) takes the next number instead of renumbering the ones already handed out. The ref without
`@n` names the execution that started last.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import contexta.capture._scopes._scope as scopes
from contexta import Contexta
from contexta.contract import Run

REF = "run:p.r"


def _hand_written(ctx: Contexta, started_at: str, ended_at: str) -> None:
    ctx.metadata_store.runs.put_run(
        Run(
            run_ref=REF,
            project_ref="project:p",
            name="r",
            status="completed",
            started_at=started_at,
            ended_at=ended_at,
        )
    )


def _two_live_executions(ctx: Contexta) -> dict[str, str]:
    """Runs `r` twice (acc 1.0 then 2.0); returns {run_id: execution_id} as listed then."""
    for value in (1.0, 2.0):
        with ctx.run("r") as run:
            run.metric("acc", value)
    listed = {r.run_id: str(r.execution_id) for r in ctx.list_runs(all_executions=True)}
    assert list(listed) == [f"{REF}@1", REF]
    return listed


def _ids(ctx: Contexta) -> list[tuple[str, str, int, bool]]:
    return [
        (r.run_id, r.started_at, r.execution_number, r.latest) for r in ctx.list_runs(all_executions=True)
    ]


def test_a_hand_written_execution_that_started_earlier_takes_the_next_number(workspace: Path) -> None:
    # Breaks if executions were numbered by start: the backfilled 2023 execution would become `@1`
    # and a saved `run:p.r@1` would read it instead of the first run.
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        before = _two_live_executions(ctx)
        _hand_written(ctx, "2023-06-01T00:00:00Z", "2023-06-01T01:00:00Z")
        _hand_written(ctx, "2023-01-01T00:00:00Z", "2023-01-01T01:00:00Z")  # even earlier, stored last

        assert ctx.get_metric_series(f"{REF}@1", "acc").values == (1.0,)
        assert ctx.get_metric_series(f"{REF}@2", "acc").values == (2.0,)
        assert ctx.get_metric_series(REF, "acc").values == (2.0,)
        assert ctx.get_run_snapshot(f"{REF}@1").run.execution_id == before[f"{REF}@1"]
        assert ctx.get_run_snapshot(f"{REF}@3").run.started_at == "2023-06-01T00:00:00Z"
        assert ctx.get_run_snapshot(f"{REF}@4").run.started_at == "2023-01-01T00:00:00Z"
        by_number = {number: (run_id, latest) for run_id, _, number, latest in _ids(ctx)}
        assert by_number == {
            1: (f"{REF}@1", False),
            2: (REF, True),
            3: (f"{REF}@3", False),
            4: (f"{REF}@4", False),
        }


def test_a_capture_that_started_before_a_stored_execution_is_numbered_after_it(workspace: Path) -> None:
    # An execution written by hand starts an hour from now (a node whose clock runs ahead); a run
    # captured now starts before it but is stored after it: it takes the next number, and the ref
    # without `@n` names the hand-written one, which started last.
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    much_later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200))
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        before = _two_live_executions(ctx)
        _hand_written(ctx, later, much_later)
        with ctx.run("r") as captured:
            captured.metric("acc", 3.0)

        assert ctx.get_run_snapshot(REF).run.started_at == later
        assert ctx.get_run_snapshot(f"{REF}@4").run.execution_id == captured.execution_id
        assert ctx.get_metric_series(f"{REF}@4", "acc").values == (3.0,)
        assert ctx.get_metric_series(f"{REF}@1", "acc").values == (1.0,)
        assert ctx.get_metric_series(f"{REF}@2", "acc").values == (2.0,)
        assert ctx.get_run_snapshot(f"{REF}@2").run.execution_id == before[REF]
        assert [(number, latest) for _, _, number, latest in _ids(ctx)] == [
            (1, False),
            (2, False),
            (4, False),
            (3, True),
        ]


def test_a_run_from_a_clock_behind_keeps_the_saved_ids_meaning_the_same(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reviewer's case: a saved `run:p.r@1` read the third run once a node whose clock is an
    # hour behind captured it (its start sorted first).
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        _two_live_executions(ctx)
        real = time.time_ns
        monkeypatch.setattr(scopes, "_time_ns", lambda: real() - 3600 * 10**9)
        with ctx.run("r") as skewed:
            skewed.metric("acc", 3.0)
        monkeypatch.undo()

        assert ctx.get_metric_series(f"{REF}@1", "acc").values == (1.0,)
        assert ctx.get_metric_series(REF, "acc").values == (2.0,)  # the one that started last
        assert ctx.get_metric_series(f"{REF}@3", "acc").values == (3.0,)
        assert ctx.get_run_snapshot(f"{REF}@3").run.execution_id == skewed.execution_id


def test_listed_ids_read_back_the_same_executions_after_more_are_stored(workspace: Path) -> None:
    # Ids copied from `list_runs(all_executions=True)` into notes or a report must keep naming the
    # same executions whatever is stored afterwards.
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        _two_live_executions(ctx)
        _hand_written(ctx, "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z")
        with ctx.run("r") as run:
            run.metric("acc", 3.0)
        saved = {
            r.run_id: (r.execution_id, r.started_at)
            for r in ctx.list_runs(all_executions=True)
            if "@" in r.run_id
        }
        assert len(saved) == 3

        _hand_written(ctx, "2022-01-01T00:00:00Z", "2022-01-01T01:00:00Z")
        _hand_written(ctx, "2023-01-01T00:00:00Z", "2023-01-01T01:00:00Z")
        for value in (4.0, 5.0):
            with ctx.run("r") as run:
                run.metric("acc", value)

    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        for run_id, (execution_id, started_at) in saved.items():
            run = ctx.get_run_snapshot(run_id).run
            assert (run.execution_id, run.started_at) == (execution_id, started_at), run_id
        numbers = sorted(r.execution_number for r in ctx.list_runs(all_executions=True))
        assert numbers == list(range(1, 9))
        assert ctx.get_metric_series(REF, "acc").values == (5.0,)


def test_fifteen_hundred_executions_of_one_name_store_and_list(workspace: Path) -> None:
    # Renumbering every execution of a ref on each insert made the n-th run cost O(n) (a nightly
    # job's 2,000th run took a third of a second just to be stored); this only checks it completes.
    count = 1_500
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        for _ in range(count):
            with ctx.run("nightly"):
                pass
        listed = ctx.list_runs(all_executions=True)
        assert [r.execution_number for r in listed] == list(range(1, count + 1))
        assert [r.latest for r in listed] == [False] * (count - 1) + [True]
        assert listed[0].run_id == "run:p.nightly@1" and listed[-1].run_id == "run:p.nightly"
        assert ctx.get_run_snapshot("nightly@1500").run.execution_id == listed[-1].execution_id
        assert len(ctx.list_runs()) == 1
