"""Every execution of a run is kept (SPEC §2 "Executions"): running a name again never deletes what
the earlier execution captured. `run:{project}.{run}` and the bare name mean the latest execution
(the one that started last), `name@n` the n-th by start and `name@<execution id>` any one; every
query, report and `contexta` command accepts those ids; `resume=True` adds to the latest one; and
`repair` rebuilds every execution with its own id and points.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture import CaptureWarning
from contexta.cli import main
from contexta.errors import NotFoundError, ValidationError

PROJECT = "executions"
REF = f"run:{PROJECT}.baseline"

# One training attempt; what it captures depends on the attempt number, so each execution's
# config, tags, metrics, stages, samples, events, artifacts are told apart by their values.
TRAIN = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from contexta import Contexta

    workspace, attempt = sys.argv[1], int(sys.argv[2])
    model = Path(workspace).parent / f"model-{attempt}.bin"
    model.write_bytes(b"weights" * (attempt + 1))
    with Contexta(workspace=workspace, config={"project_name": "executions"}) as ctx:
        with ctx.run(
            "baseline",
            tags={"attempt": str(attempt)},
            config_snapshot={"lr": [0.1, 0.01, 0.001][attempt]},
            dataset_ref=f"dataset:executions.split-{attempt}",
        ) as run:
            run.event("dataset.loaded", message=f"attempt {attempt} loaded")
            with run.stage("train") as stage:
                for step in range(3):
                    stage.metric("loss", attempt * 10.0 + step, step=step)
                with stage.batch("epoch-1") as batch, batch.sample(f"case-{attempt}") as sample:
                    sample.metric("score", float(attempt))
            with run.stage(f"only-in-{attempt}") as stage:
                stage.metric("accuracy", 0.7 + attempt / 10)
            run.register_artifact("model", str(model))
    print(json.dumps({"execution_id": run.execution_id, "ref": run.ref}))
    """
)


def _python(script: str, *args: object, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"child exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _train_in_new_process(workspace: Path, attempt: int) -> str:
    """Run the training program once, in a process of its own; its execution id."""
    return str(json.loads(_python(TRAIN, workspace, attempt))["execution_id"])


@pytest.fixture
def ctx(workspace: Path) -> Iterator[Contexta]:
    context = Contexta(workspace=workspace, config={"project_name": PROJECT})
    yield context
    context.close()


def _execution_seen_as(ctx: Contexta, run_id: str) -> dict[str, Any]:
    """Everything a user would look at in one execution, read through `run_id`."""
    snapshot = ctx.get_run_snapshot(run_id)
    environment = ctx.get_environment(run_id)
    return {
        "execution_id": snapshot.run.execution_id,
        "tags": snapshot.run.tags,
        "config": snapshot.run.config_snapshot,
        "dataset_ref": snapshot.run.dataset_ref,
        "stages": [stage.name for stage in ctx.list_stages(run_id)],
        "batches": [batch.name for batch in ctx.list_batches(run_id)],
        "samples": [sample.name for sample in ctx.list_samples(run_id)],
        "events": [
            record.payload.message for record in snapshot.records if record.envelope.record_type == "event"
        ],
        "loss": (ctx.get_metric_series(run_id, "loss").steps, ctx.get_metric_series(run_id, "loss").values),
        "score": ctx.get_metric_series(run_id, "score").values,
        "artifacts": [(artifact.kind, artifact.size_bytes) for artifact in ctx.list_artifacts(run_id)],
        "environment": None if environment is None else environment.python_version,
    }


def _expected(attempt: int, execution_id: str) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "tags": {"attempt": str(attempt)},
        "config": {"lr": [0.1, 0.01, 0.001][attempt]},
        "dataset_ref": f"dataset:executions.split-{attempt}",
        "stages": ["train", f"only-in-{attempt}"],
        "batches": ["epoch-1"],
        "samples": [f"case-{attempt}"],
        "events": [f"attempt {attempt} loaded"],
        "loss": ((0, 1, 2), (attempt * 10.0, attempt * 10.0 + 1, attempt * 10.0 + 2)),
        "score": (float(attempt),),
        "artifacts": [("model", len(b"weights") * (attempt + 1))],
        "environment": f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}",
    }


def test_running_a_name_again_in_a_new_process_keeps_every_part_of_the_earlier_execution(
    workspace: Path,
) -> None:
    # Breaks if the second execution replaced the first (SPEC §8's old rule) or merged into it: the
    # first's config, tags, stages, samples, events, artifact, environment or points would be gone
    # or mixed with the second's.
    first = _train_in_new_process(workspace, 0)
    second = _train_in_new_process(workspace, 1)
    assert first != second
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        for run_id in ("baseline@1", f"{REF}@1", f"baseline@{first}", f"{REF}@{first}"):
            assert _execution_seen_as(ctx, run_id) == _expected(0, first), run_id
            assert ctx.get_run_snapshot(run_id).run.run_id == f"{REF}@1"
        for run_id in ("baseline", REF, "baseline@2", f"baseline@{second}", f"{REF}@{second}"):
            assert _execution_seen_as(ctx, run_id) == _expected(1, second), run_id
            assert ctx.get_run_snapshot(run_id).run.run_id == REF


def test_list_runs_shows_latest_executions_and_all_executions_shows_each_with_an_id_that_reads_it(
    ctx: Contexta,
) -> None:
    # Breaks if list_runs() counted executions as runs (a seed program run twice would list two
    # runs), or if an id it lists did not read back the execution it was listed for.
    opened = {}
    for order, name in enumerate(["a", "a", "b", "a"]):
        with ctx.run(name, tags={"order": str(order)}) as run:
            run.metric("order", float(order))
        opened[order] = run.execution_id

    assert [(run.name, run.tags) for run in ctx.list_runs()] == [("b", {"order": "2"}), ("a", {"order": "3"})]
    every = ctx.list_runs(all_executions=True)
    assert [(run.run_id, run.execution_id, run.execution_number, run.latest) for run in every] == [
        (f"run:{PROJECT}.a@1", opened[0], 1, False),
        (f"run:{PROJECT}.a@2", opened[1], 2, False),
        (f"run:{PROJECT}.b", opened[2], 1, True),
        (f"run:{PROJECT}.a", opened[3], 3, True),
    ]
    for order, run in enumerate(every):
        assert ctx.get_run_snapshot(run.run_id).run.execution_id == run.execution_id
        assert ctx.get_metric_series(run.run_id, "order").values == (float(order),)
    assert len(ctx.list_runs(PROJECT, limit=10)) == 2


def test_the_latest_execution_is_the_one_that_started_last_even_when_it_ended_first(ctx: Contexta) -> None:
    # Breaks if "latest" meant the last one written or closed: `baseline` would name the older one.
    older = ctx.run("baseline")
    older.metric("loss", 1.0, step=0)
    with pytest.warns(CaptureWarning, match="already open"):
        newer = ctx.run("baseline")
    newer.metric("loss", 2.0, step=0)
    newer.close()
    older.metric("loss", 1.5, step=1)  # the older one goes on after the newer one ended
    older.close()

    assert ctx.get_run_snapshot("baseline").run.execution_id == newer.execution_id
    assert ctx.get_metric_series("baseline", "loss").values == (2.0,)
    assert ctx.get_metric_series("baseline@1", "loss").values == (1.0, 1.5)
    assert [run.execution_id for run in ctx.list_runs()] == [newer.execution_id]


def test_every_query_and_report_reads_the_execution_it_is_given(ctx: Contexta) -> None:
    # The first execution fails, the second is clean. Breaks if any query or report read the latest
    # execution when handed `baseline@1`, or refused the `@` form.
    with pytest.raises(RuntimeError), ctx.run("baseline", config_snapshot={"lr": 1.0}) as run:
        with run.stage("evaluate") as stage:
            stage.metric("accuracy", 0.7)
        with run.stage("train"):
            raise RuntimeError("loss diverged")
    with ctx.run("baseline", config_snapshot={"lr": 0.1}) as run, run.stage("evaluate") as stage:
        stage.metric("accuracy", 0.9)

    comparison = ctx.compare_runs("baseline@1", "baseline")
    assert (comparison.left_run_id, comparison.right_run_id) == (f"{REF}@1", REF)
    delta = comparison.metric_delta("accuracy", "evaluate")
    assert delta is not None and (delta.left, delta.right) == (0.7, 0.9)
    assert [(d.field, d.left, d.right) for d in comparison.argument_differences] == [
        ("config_snapshot.lr", 1.0, 0.1)
    ]
    assert ctx.compare_multiple_runs(["baseline@1", "baseline"]).run_ids == (f"{REF}@1", REF)
    assert ctx.select_best_run(["baseline@1", "baseline"], "accuracy") == REF
    assert ctx.select_best_run(["baseline@1", "baseline"], "accuracy", higher_is_better=False) == f"{REF}@1"
    assert ctx.select_best_run(["baseline@1"], "accuracy") == f"{REF}@1"

    first_issues = {issue.code for issue in ctx.diagnose_run("baseline@1").issues}
    assert {"failed_stage", "failed_run"} <= first_issues
    assert not {"failed_stage", "failed_run"} & {issue.code for issue in ctx.diagnose_run("baseline").issues}

    first_report = ctx.build_snapshot_report("baseline@1").to_markdown()
    assert f"{REF}@1" in first_report and "loss diverged" in first_report
    assert "loss diverged" not in ctx.build_snapshot_report("baseline").to_markdown()
    pair = ctx.build_run_report("baseline@1", "baseline").to_markdown()
    assert f"{REF}@1" in pair and "0.7" in pair and "0.9" in pair
    multi = ctx.build_multi_run_report(["baseline@1", "baseline"])
    assert multi.title == "Multi Run Report: 2 runs"
    # Both executions are called `baseline`: the columns must still say which is which.
    for document in (pair, multi.to_markdown()):
        header = next(line for line in document.splitlines() if line.startswith("| stage | metric |"))
        left, right = (cell.strip() for cell in header.strip("|").split("|")[2:4])
        assert left != right, header

    # The failure is the truth about the first execution, whatever happened later.
    assert ctx.list_runs(status="failed") == []  # the run (its latest execution) completed
    assert [run.run_id for run in ctx.list_runs(status="failed", all_executions=True)] == [f"{REF}@1"]


@pytest.mark.parametrize(
    ("selector", "error"),
    [("@0", NotFoundError), ("@3", NotFoundError), ("@", ValidationError), ("@Not An Id!", ValidationError)],
)
def test_an_execution_selector_that_names_nothing_is_refused(
    ctx: Contexta, selector: str, error: type[Exception]
) -> None:
    # Breaks if a bad selector fell back to the latest execution (a silent wrong answer).
    for _ in range(2):
        with ctx.run("baseline") as run:
            run.metric("loss", 1.0)
    with pytest.raises(error):
        ctx.get_run_snapshot(f"baseline{selector}")


def test_an_execution_id_of_another_run_is_not_found_under_this_one(ctx: Contexta) -> None:
    # Breaks if `name@<id>` looked the id up without checking it belongs to `name`.
    with ctx.run("baseline") as baseline:
        baseline.metric("loss", 1.0)
    with ctx.run("tuned") as tuned:
        tuned.metric("loss", 2.0)
    with pytest.raises(NotFoundError) as refused:
        ctx.get_metric_series(f"baseline@{tuned.execution_id}", "loss")
    assert refused.value.code == "run_not_found"
    assert ctx.get_metric_series(f"tuned@{tuned.execution_id}", "loss").values == (2.0,)


RESUME = textwrap.dedent(
    """
    import json, sys
    from contexta import Contexta

    with Contexta(workspace=sys.argv[1], config={"project_name": "executions"}) as ctx:
        with ctx.run("baseline", resume=True) as run, run.stage("train") as stage:
            for step in range(3, 6):
                stage.metric("loss", 100.0 + step, step=step)
    print(json.dumps({"execution_id": run.execution_id}))
    """
)


def test_resume_in_a_new_process_appends_to_the_latest_execution_only(workspace: Path) -> None:
    # Breaks if resume joined the first execution, started a third, or rewrote the second's start.
    first = _train_in_new_process(workspace, 0)
    second = _train_in_new_process(workspace, 1)
    resumed = json.loads(_python(RESUME, workspace))["execution_id"]
    assert resumed == second
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        every = ctx.list_runs(all_executions=True)
        assert [run.execution_id for run in every] == [first, second]
        assert ctx.get_metric_series("baseline", "loss").steps == (0, 1, 2, 3, 4, 5)
        assert ctx.get_metric_series("baseline", "loss").values[3:] == (103.0, 104.0, 105.0)
        assert _execution_seen_as(ctx, "baseline@1") == _expected(0, first)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from contexta import Contexta

    workspace, opened, release = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    ctx = Contexta(workspace=workspace, config={"project_name": "executions"})
    with ctx.run("shared") as run:
        run.metric("loss", 1.0, step=0)
        ctx.flush()  # the open execution is in the store before the other process looks
        opened.write_text(run.execution_id)
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        run.metric("loss", 3.0, step=2)
    ctx.close()
    """
)


def test_resume_joins_the_latest_execution_while_another_process_still_has_it_open(
    workspace: Path, tmp_path: Path
) -> None:
    # Breaks if resume only knew executions this process opened (it would start a new one) or if
    # the resumed points landed in a separate series.
    opened, release = tmp_path / "opened", tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(workspace), str(opened), str(release)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # the file is written before its text: let it land
        held = opened.read_text()
        with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
            with ctx.run("shared", resume=True) as run:
                run.metric("loss", 2.0, step=1)
            assert run.execution_id == held
    finally:
        release.touch()
        _, errors = holder.communicate(timeout=60)
    assert holder.returncode == 0, errors
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        assert [run.execution_id for run in ctx.list_runs(all_executions=True)] == [held]
        series = ctx.get_metric_series("shared", "loss")
        assert (series.steps, series.values) == ((0, 1, 2), (1.0, 2.0, 3.0))


def _answers(ctx: Contexta) -> list[dict[str, Any]]:
    """What each execution of `baseline` holds, read through its id."""
    answers = []
    for run in ctx.list_runs(all_executions=True):
        run_id = f"baseline@{run.execution_id}"
        snapshot = ctx.get_run_snapshot(run_id)
        answers.append(
            {
                "run_id": run.run_id,
                "execution_id": run.execution_id,
                "status": run.status,
                "tags": run.tags,
                "started_at": run.started_at,
                "loss": [(p.step, p.value) for p in ctx.get_metric_series(run_id, "loss").points],
                "events": [r.payload.message for r in snapshot.records if r.envelope.record_type == "event"],
                "samples": [(s.name, s.status) for s in snapshot.samples],
            }
        )
    return answers


@pytest.mark.sqlite_only("repair rebuilds the SQLite file from the capture log")
def test_every_execution_survives_repair_with_its_id_and_its_own_points(workspace: Path) -> None:
    # Two executions captured at the same time in one process (their points interleave in the
    # capture log), a third in a new Contexta, and a resume of the third. Breaks if repair, which
    # rebuilds the store from the log, merged executions, gave them new ids or lost the resume.
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CaptureWarning)
            left, right = (
                ctx.run("baseline", tags={"who": "left"}),
                ctx.run("baseline", tags={"who": "right"}),
            )
        left_stage, right_stage = left.stage("train"), right.stage("train")
        for step in range(200):
            left_stage.metric("loss", float(step), step=step)
            right_stage.metric("loss", 1000.0 + step, step=step)
            if step % 50 == 0:
                left.event("tick", message=f"left {step}")
                right.event("tick", message=f"right {step}")
        for stage, name in ((left_stage, "case-left"), (right_stage, "case-right")):
            with stage.sample(name) as sample:
                sample.metric("score", 1.0)
        right.close()
        left.close()
    for tags, resume, step, loss in (({"who": "third"}, False, 0, -1.0), (None, True, 1, -2.0)):
        with (
            Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx,
            ctx.run("baseline", tags=tags, resume=resume) as run,
            run.stage("train") as stage,
        ):
            stage.metric("loss", loss, step=step)

    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        before = _answers(ctx)
        assert [answer["tags"] for answer in before] == [{"who": "left"}, {"who": "right"}, {"who": "third"}]
        assert before[0]["loss"] == [(step, float(step)) for step in range(200)]
        assert before[1]["loss"] == [(step, 1000.0 + step) for step in range(200)]
        assert before[2]["loss"] == [(0, -1.0), (1, -2.0)]
        assert before[0]["events"] == [f"left {step}" for step in range(0, 200, 50)]
        report = ctx.repair()
        assert report.runs == 3
        assert _answers(ctx) == before
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        assert _answers(ctx) == before


def test_contexta_runs_all_run_show_and_compare_name_each_execution(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Breaks if the command line read only latest executions, or listed `--all` without telling
    # which execution is which.
    monkeypatch.setenv("COLUMNS", "160")
    first = _train_in_new_process(workspace, 0)
    second = _train_in_new_process(workspace, 1)

    def contexta(*argv: str) -> str:
        capsys.readouterr()
        code = main([*argv, "--workspace", str(workspace)])
        printed = capsys.readouterr()
        assert code == 0, printed.err
        return printed.out

    assert contexta("runs").count("baseline") == 1
    table = contexta("runs", "--all")
    assert table.count("baseline") == 2 and "@1" in table and "@2 latest" in table
    listed = json.loads(contexta("runs", "--all", "--format", "json"))
    assert [(run["run_id"], run["execution_id"]) for run in listed] == [(f"{REF}@1", first), (REF, second)]

    shown = contexta("run", "show", "baseline@1")
    assert f"Run {REF}@1" in shown and first in shown and "lr=0.1" in shown and "only-in-0" in shown
    assert "only-in-1" not in shown
    shown_json = json.loads(contexta("run", "show", f"baseline@{first}", "--format", "json"))
    assert shown_json["run"]["execution_id"] == first

    compared = contexta("compare", "baseline@1", "baseline")
    assert f"{REF}@1" in compared and "0.1" in compared and "0.01" in compared
    assert "only-in-0" in compared and "only-in-1" in compared

    assert f"{REF}@1" in contexta("diagnose", f"baseline@{first}")
    multi = contexta("report", "--multi", "baseline@1", "baseline", "--format", "md")
    assert "Multi Run Report: 2 runs" in multi and f"{REF}@1" in multi
    pair = contexta("report", "baseline@1", "baseline", "--format", "md")
    assert f"Run Report: {REF}@1 vs {REF}" in pair


def test_an_artifact_registered_under_a_given_ref_in_two_executions_stays_with_each(
    ctx: Contexta, tmp_path: Path
) -> None:
    # A training script that names its artifact itself (`artifact_ref=`) and is run twice. Breaks
    # if the second registration took the artifact away from the first execution.
    given = f"artifact:{PROJECT}.baseline.model-best"
    for attempt in range(2):
        model = tmp_path / f"model-{attempt}.bin"
        model.write_bytes(b"w" * (attempt + 1))
        with ctx.run("baseline") as run:
            run.register_artifact("model", str(model), artifact_ref=given)
    assert [(a.artifact_ref, a.size_bytes) for a in ctx.list_artifacts("baseline")] == [(given, 2)]
    assert [(a.artifact_ref, a.size_bytes) for a in ctx.list_artifacts("baseline@1")] == [(given, 1)]
