"""Rebuilding the store from the capture log: after damage, the same questions get the same answers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.cli import main
from contexta.errors import StoreError

PROJECT = "repairs"


def _capture(workspace: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        for attempt in range(2):  # the second execution replaces the first, in the store and after repair
            with ctx.run("baseline", tags={"attempt": attempt}) as run:
                with run.stage("train") as stage:
                    for step in range(300):
                        stage.metric("loss", 1.0 / (step + 1) + attempt, step=step)
                with run.stage("evaluate") as stage:
                    stage.metric("accuracy", 0.9)
                    with stage.sample("first") as sample:
                        sample.event("judged", message="right", attributes={"ok": True})
                run.register_artifact("model", str(model))
        with (
            ctx.run("broken") as run,
            pytest.raises(RuntimeError),
            run.stage("train") as stage,
            stage.batch("epoch-0") as batch,
        ):
            batch.metric("loss", 2.0)
            raise RuntimeError("diverged")


def _answers(workspace: Path) -> dict[str, object]:
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        return {
            "runs": [(run.name, run.status, run.tags) for run in ctx.list_runs()],
            "loss": [
                (p.step, p.value, p.observed_at) for p in ctx.get_metric_series("baseline", "loss").points
            ],
            "samples": [(s.name, s.status) for s in ctx.list_samples("baseline")],
            "artifacts": [(a.kind, a.hash_value, a.size_bytes) for a in ctx.list_artifacts("baseline")],
            "records": [record.envelope.record_ref for record in ctx.get_run_snapshot("baseline").records],
            "batches": [(b.name, b.status) for b in ctx.list_batches("broken")],
            "issues": sorted(issue.code for issue in ctx.diagnose_run("broken").issues),
        }


def test_a_store_overwritten_with_garbage_is_rebuilt_by_contexta_repair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tmp_path / ".contexta"
    _capture(workspace, tmp_path)
    before = _answers(workspace)
    store = workspace / "metadata" / "contexta.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    store.write_bytes(os.urandom(16_384))
    with pytest.raises(StoreError) as refused:
        Contexta(workspace=workspace, config={"project_name": PROJECT})
    assert refused.value.code == "store_corrupt" and "contexta repair" in refused.value.message

    assert main(["repair", "--workspace", str(workspace)]) == 0
    printed = capsys.readouterr().out
    assert "Rebuilt" in printed and "previous store is kept" in printed
    assert _answers(workspace) == before
    kept = [path for path in store.parent.iterdir() if ".before-repair-" in path.name]
    assert kept and kept[0].read_bytes()[:16] != b"SQLite format 3\x00"  # the damaged file, kept as it was


def test_repair_of_a_healthy_store_changes_no_answer(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    _capture(workspace, tmp_path)
    before = _answers(workspace)
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        report = ctx.repair()
        assert report.runs == 2 and report.artifacts == 2 and report.interrupted_runs == ()
        assert report.previous_store is not None and report.previous_store.exists()
        assert [run.name for run in ctx.list_runs()] == ["baseline", "broken"]  # the same ctx reads on
    assert _answers(workspace) == before


def test_repair_skips_a_torn_last_line_and_closes_runs_the_log_never_closed(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    ctx = Contexta(workspace=workspace, config={"project_name": PROJECT})
    run = ctx.run("cut-short")
    run.metric("loss", 0.5, step=0)
    ctx.flush()
    log = workspace / "cache" / "capture" / "record.jsonl"
    with log.open("ab") as handle:
        handle.write(b'{"captured_at": "2025-01-01T00:00:0')  # what a kill mid-write leaves
    report = ctx.repair()
    assert report.skipped_lines == {"record.jsonl": (sum(1 for _ in log.open("rb")),)}
    assert report.interrupted_runs == (f"run:{PROJECT}.cut-short",)
    (stored,) = ctx.list_runs()
    assert (stored.status, stored.end_reason) == ("failed", "interrupted")
    assert ctx.get_metric_series("cut-short", "loss").values == (0.5,)
    ctx._pipeline.close(timeout=10)  # the run scope is left as a killed process would leave it
