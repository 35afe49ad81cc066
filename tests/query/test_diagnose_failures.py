"""What went wrong in a run is visible: in its rows, in `diagnose_run`, in `contexta run show` and in
reports.

Each test captures the run a user would write (a training stage that raises, an LLM evaluation whose
loop catches failing cases and goes on) into a real workspace under `tmp_path`, then reads it back
the way the user would. Before issue 13, `diagnose_run` said "No issues" for a run that completed
although some of its samples failed and it logged error events; the evaluation tests pin that down.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.cli import main

PROJECT = "p"


@pytest.fixture
def ctx(workspace: Path) -> Contexta:
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as opened:
        yield opened


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def _cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def configure_optimizer(lr: float) -> None:
    if lr > 0.5:
        raise ValueError("bad lr")


# -- an exception escaping a stage ---------------------------------------------------------------


def test_an_exception_escaping_a_stage_is_stored_listed_shown_and_diagnosed(
    ctx: Contexta, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Breaks if: the stage or run row lacks end_reason "exception" or the failure's type, message or
    # traceback; any reader (list_stages, list_runs, the snapshot, run show, the markdown and JSON
    # reports, diagnose) leaves out what the exception was.
    with pytest.raises(ValueError, match="bad lr"), ctx.run("train-bad") as run, run.stage("train") as stage:
        stage.metric("loss", 1.0, step=0)
        configure_optimizer(1.0)
    ctx.flush()

    (stage_row,) = ctx.list_stages("train-bad")
    (run_row,) = ctx.list_runs()
    snapshot = ctx.get_run_snapshot("train-bad")
    for row in (stage_row, run_row, snapshot.run, snapshot.stages[0]):
        assert (row.status, row.end_reason) == ("failed", "exception")
        assert row.failure is not None
        assert (row.failure["type"], row.failure["message"]) == ("ValueError", "bad lr")
        traceback = row.failure["traceback"].splitlines()
        assert traceback[0] == "Traceback (most recent call last):"
        assert 'raise ValueError("bad lr")' in row.failure["traceback"]
        assert "in configure_optimizer" in row.failure["traceback"]  # the innermost frame is kept
        assert traceback[-1] == "ValueError: bad lr"

    codes = {issue.code: issue for issue in ctx.diagnose_run("train-bad").issues}
    assert codes["failed_run"].severity == codes["failed_stage"].severity == "error"
    assert "ValueError: bad lr" in codes["failed_run"].summary
    assert "ValueError: bad lr" in codes["failed_stage"].summary
    assert codes["failed_stage"].subject_ref == stage_row.stage_id

    code, out, _ = _cli(capsys, "run", "show", "train-bad", "--workspace", workspace)
    assert code == 0
    assert "Failure of stage train: ValueError: bad lr" in out
    assert "Failure of run train-bad: ValueError: bad lr" in out
    assert "Traceback (most recent call last):" in out
    assert 'raise ValueError("bad lr")' in out
    assert "failed_run" in out and "failed_stage" in out

    report = ctx.build_snapshot_report("train-bad")
    markdown = report.to_markdown()
    assert "ValueError: bad lr" in markdown
    assert 'raise ValueError(\\"bad lr\\")' in markdown or 'raise ValueError("bad lr")' in markdown
    document = json.loads(report.to_json())
    summary = dict(next(s for s in document["sections"] if s["title"] == "Run Summary")["table"]["rows"])
    assert summary["ended_because"] == "exception; ValueError: bad lr"
    assert summary["traceback"].endswith("ValueError: bad lr")
    stages = next(s for s in document["sections"] if s["title"] == "Stages")["table"]
    assert stages["rows"][0][stages["columns"].index("ended_because")] == "exception; ValueError: bad lr"


def test_an_exception_from_a_sample_names_itself_in_every_scope_it_failed(ctx: Contexta) -> None:
    # Breaks if: a failed batch or sample is diagnosed without the exception that failed it (the
    # summary says "failed" and nothing about why).
    with (
        pytest.raises(RuntimeError),
        ctx.run("oom") as run,
        run.stage("evaluate") as stage,
        stage.batch("holdout") as batch,
        batch.sample("long-document") as sample,
    ):
        sample.metric("tokens", 128_000.0)
        raise RuntimeError("CUDA out of memory")
    issues = {issue.code: issue for issue in ctx.diagnose_run("oom").issues}
    assert {"failed_run", "failed_stage", "failed_batch", "failed_sample"} <= set(issues)
    for code in ("failed_run", "failed_stage", "failed_batch", "failed_sample"):
        assert "RuntimeError: CUDA out of memory" in issues[code].summary, code
    assert issues["failed_sample"].subject_ref == sample.ref
    assert issues["failed_batch"].subject_ref == batch.ref


# -- an evaluation that carries on past failing cases ----------------------------------------------


def _judge(case: int) -> float:
    if case in (3, 7):
        raise TimeoutError(f"judge timed out on case {case}")
    if case == 9:
        raise ValueError("answer is not JSON")
    return 1.0


def _evaluate(ctx: Contexta) -> dict[str, str]:
    """An LLM evaluation: each case is a sample; a case that raises is recorded failed and the loop
    goes on; one case is skipped, one is cancelled by a timeout of the asyncio service. Returns the
    refs of the samples that did not complete, by name."""
    refs: dict[str, str] = {}
    with ctx.run("llm-eval") as run, run.stage("judge") as stage:
        for case in range(12):
            try:
                with stage.sample(f"case-{case}") as sample:
                    refs[sample.name] = sample.ref
                    sample.metric("score", _judge(case))
            except (TimeoutError, ValueError):
                continue
        skipped = stage.sample("case-skipped")
        refs[skipped.name] = skipped.ref
        skipped.close("cancelled")

        async def serve() -> None:
            async def slow_case() -> None:
                with stage.sample("case-slow") as sample:
                    refs[sample.name] = sample.ref
                    await asyncio.sleep(30)

            task = asyncio.create_task(slow_case())
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(serve())
        stage.event("judge.quota", message="rate limited, retried 3 times", level="warning")
        stage.event("judge.crash", message="judge worker 2 crashed and was restarted", level="error")
        stage.metric("accuracy", 9 / 12)
    return {
        name: ref
        for name, ref in refs.items()
        if name in {"case-3", "case-7", "case-9", "case-skipped", "case-slow"}
    }


def test_an_evaluation_that_caught_failing_cases_is_not_reported_clean(
    ctx: Contexta, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Breaks if: diagnose says "No issues" for a completed run whose samples failed or were cancelled
    # and which logged an error event (the bug before issue 13); a failed or cancelled sample is
    # missing, has the wrong severity or subject, or its summary lacks the exception; the automatic
    # `sample.failed` events are reported again as error events; `--fail-on error` lets it pass.
    refs = _evaluate(ctx)
    ctx.flush()
    (run,) = ctx.list_runs()
    assert (run.status, run.end_reason) == ("completed", None)

    diagnosis = ctx.diagnose_run("llm-eval")
    found = [(issue.severity, issue.code, issue.subject_ref) for issue in diagnosis.issues]
    assert found == [
        ("error", "failed_sample", refs["case-3"]),
        ("error", "failed_sample", refs["case-7"]),
        ("error", "failed_sample", refs["case-9"]),
        ("warning", "cancelled_sample", refs["case-skipped"]),
        ("warning", "cancelled_sample", refs["case-slow"]),
        ("warning", "error_event", "stage:p.llm-eval.judge"),
    ]
    summaries = [issue.summary for issue in diagnosis.issues]
    assert "TimeoutError: judge timed out on case 3" in summaries[0]
    assert "TimeoutError: judge timed out on case 7" in summaries[1]
    assert "ValueError: answer is not JSON" in summaries[2]
    assert "CancelledError" in summaries[4]
    assert "judge worker 2 crashed and was restarted" in summaries[5]

    statuses = Counter(sample.status for sample in ctx.list_samples("llm-eval"))
    assert statuses == {"completed": 9, "failed": 3, "cancelled": 2}

    code, out, err = _cli(capsys, "diagnose", "llm-eval", "--workspace", workspace, "--fail-on", "error")
    assert code == 1
    assert "No issues" not in out
    assert "failed_sample" in out and "3 issues at severity error" in err


@pytest.mark.parametrize(
    ("first", "then", "expected_summaries"),
    [
        # 15 cancelled, then 30 failed: the first 20 are 15 cancelled and 5 failed.
        ("cancelled", "failed", {"failed": "25 more samples failed (30 in all)"}),
        # 30 failed, then 15 cancelled: the first 20 are all failed.
        (
            "failed",
            "cancelled",
            {
                "failed": "10 more samples failed (30 in all)",
                "cancelled": "15 more samples were cancelled (15 in all)",
            },
        ),
    ],
)
def test_failed_and_cancelled_samples_past_the_first_twenty_are_counted_per_status(
    ctx: Contexta, first: str, then: str, expected_summaries: dict[str, str]
) -> None:
    # Breaks if: the count issues use the wrong numbers (total instead of the rest, one status's
    # listed count for the other's), summarise a status whose samples were all listed, or list more
    # than 20 samples.
    counts = {"failed": 30, "cancelled": 15}
    with ctx.run("mixed") as run, run.stage("judge") as stage:
        for status in (first, then):
            for number in range(counts[status]):
                sample = stage.sample(f"{status}-{number}")
                if status == "cancelled":
                    sample.close("cancelled")
                else:
                    with pytest.raises(KeyError), sample:
                        raise KeyError(number)
    issues = ctx.diagnose_run("mixed").issues
    listed = [issue for issue in issues if issue.subject_ref.startswith("sample:")]
    counted = [issue for issue in issues if issue.subject_ref == run.ref]
    assert len(listed) == 20
    in_capture_order = [f"{status}-{n}" for status in (first, then) for n in range(counts[status])]
    assert sorted(issue.subject_ref.rpartition(".")[2] for issue in listed) == sorted(in_capture_order[:20])
    assert {issue.code.removesuffix("_sample"): issue.summary.split(";")[0] for issue in counted} == (
        expected_summaries
    )
    for issue in counted:
        assert issue.severity == ("error" if issue.code == "failed_sample" else "warning")


def test_fifty_failed_samples_of_five_hundred_are_twenty_listed_and_thirty_counted(ctx: Contexta) -> None:
    # Breaks if: all 50 are listed (an evaluation of 100,000 cases would drown the report), fewer than
    # 20 are, they are not the first 20 in capture order, or the summary's numbers are off.
    with ctx.run("big-eval") as run, run.stage("judge") as stage:
        for case in range(500):
            try:
                with stage.sample(f"q{case:03d}") as sample:
                    sample.metric("latency_ms", float(case))
                    if case % 10 == 0:
                        raise ValueError(f"unparseable answer to q{case:03d}")
            except ValueError:
                pass
    issues = ctx.diagnose_run("big-eval").issues
    assert [issue.code for issue in issues] == ["failed_sample"] * 21
    assert all(issue.severity == "error" for issue in issues)
    *listed, rest = issues
    assert [issue.subject_ref for issue in listed] == [
        f"sample:p.big-eval.judge.q{case:03d}" for case in range(0, 200, 10)
    ]
    assert "ValueError: unparseable answer to q190" in listed[-1].summary
    assert rest.subject_ref == run.ref
    assert rest.summary.startswith("30 more samples failed (50 in all)")
    assert Counter(sample.status for sample in ctx.list_samples("big-eval")) == {
        "completed": 450,
        "failed": 50,
    }


# -- events, non-finite values, and a clean run ----------------------------------------------------


def test_error_and_critical_events_are_issues_and_info_and_warning_events_are_not(ctx: Contexta) -> None:
    # Breaks if: an error or critical event is not an issue, or carries the wrong subject or message;
    # an info or warning event, or an event a failing scope writes about itself, becomes one.
    with ctx.run("serve") as run, run.stage("inference") as stage:
        stage.event("request.slow", message="p99 above 2 s", level="warning")
        stage.event("model.loaded", message="weights ready")
        stage.event("gpu.lost", message="GPU 3 fell off the bus", level="error")
        run.event("disk.full", message="no space left for checkpoints", level="critical")
        with pytest.raises(OSError), stage.sample("req-1"):
            raise OSError("connection reset")
    issues = [issue for issue in ctx.diagnose_run("serve").issues if issue.code == "error_event"]
    assert [(issue.subject_ref, issue.summary.rpartition(": ")[2]) for issue in issues] == [
        ("stage:p.serve.inference", "GPU 3 fell off the bus"),
        ("run:p.serve", "no space left for checkpoints"),
    ]
    assert "critical" in issues[1].summary


def test_every_error_event_is_visible_even_past_twenty(ctx: Contexta) -> None:
    # Breaks if: error events past the first 20 vanish without a word (failed samples past 20 are
    # counted in an issue of their own; a user reading the diagnosis would believe there were 20).
    with ctx.run("noisy") as run, run.stage("train") as stage:
        for step in range(25):
            stage.event("grad.overflow", message=f"gradient overflow at step {step}", level="error")
    issues = [issue for issue in ctx.diagnose_run("noisy").issues if issue.code == "error_event"]
    listed = [issue for issue in issues if "gradient overflow at step" in issue.summary]
    counted = [issue for issue in issues if re.search(r"\b5 more\b|\(25 in all\)", issue.summary)]
    assert len(listed) == 25 or counted, f"{len(listed)} of 25 error events are visible, and none is counted"


def test_a_nan_loss_is_reported_with_the_step_it_appeared_at(ctx: Contexta) -> None:
    # Breaks if: a diverged loss (NaN) is not reported, or is reported on the wrong subject or step.
    with ctx.run("diverged") as run, run.stage("train") as stage:
        for step, loss in enumerate([0.9, 0.5, float("inf"), float("nan")]):
            stage.metric("loss", loss, step=step)
    (issue,) = ctx.diagnose_run("diverged").issues
    assert (issue.severity, issue.code, issue.subject_ref) == (
        "warning",
        "non_finite_metric",
        "stage:p.diverged.train",
    )
    assert "2 non-finite values" in issue.summary and "step 2" in issue.summary


def test_a_run_without_problems_has_no_issues(
    ctx: Contexta, workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Breaks if: anything of an ordinary healthy run (info and warning events, completed samples,
    # operations, an artifact, an evaluate stage with metrics) is reported as an issue.
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    with ctx.run("healthy", config_snapshot={"lr": 0.01}) as run:
        run.event("dataset.loaded", message="1797 rows", attributes={"rows": 1797})
        with run.stage("train") as stage:
            for step in range(50):
                stage.metrics({"loss": 1 / (step + 1), "lr": 0.01}, step=step)
            with stage.operation("checkpoint"):
                pass
        with run.stage("evaluate") as stage:
            stage.metric("accuracy", 0.93)
            stage.event("threshold.close", message="accuracy near the bar", level="warning")
            with stage.batch("holdout") as batch:
                for case in range(30):
                    with batch.sample(f"case-{case}") as sample:
                        sample.metric("correct", 1.0)
        run.register_artifact("model", model)
    assert ctx.diagnose_run("healthy").issues == ()
    code, out, _ = _cli(capsys, "diagnose", "healthy", "--workspace", workspace, "--fail-on", "warning")
    assert code == 0
    assert "No issues in run:p.healthy." in out
