"""Rebuilding the store from the capture log: after damage, the same questions get the same answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.cli import main
from contexta.errors import StoreError

pytestmark = pytest.mark.sqlite_only("repair rebuilds the SQLite file from the capture log")

PROJECT = "repairs"


def _capture(workspace: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        for attempt in range(2):  # two executions, both kept: in the store and after repair
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
            "executions": [
                (run.run_id, run.execution_id, run.status, run.started_at, run.ended_at)
                for run in ctx.list_runs(all_executions=True)
            ],
            "first loss": ctx.get_metric_series("baseline@1", "loss").values,
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
        assert report.runs == 3 and report.artifacts == 2 and report.interrupted_runs == ()
        assert report.previous_store is not None and report.previous_store.exists()
        assert [run.name for run in ctx.list_runs()] == ["baseline", "broken"]  # the same ctx reads on
    assert _answers(workspace) == before


def test_repair_skips_a_torn_last_line_and_closes_runs_the_log_never_closed(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    script = (
        "import os, signal, sys\n"
        "from contexta import Contexta\n"
        f"ctx = Contexta(workspace={str(workspace)!r}, config={{'project_name': {PROJECT!r}}})\n"
        "run = ctx.run('cut-short')\n"
        "stage = run.stage('train')\n"
        "stage.metric('loss', 0.5, step=0)\n"
        "ctx.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    log = workspace / "cache" / "capture" / "record.jsonl"
    last_metric_at = json.loads(log.read_bytes().splitlines()[-1])["payload"]["envelope"]["observed_at"]
    with log.open("ab") as handle:
        handle.write(b'{"captured_at": "2025-01-01T00:00:0')  # what a kill mid-write leaves
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        report = ctx.repair()
        assert report.skipped_lines == {"record.jsonl": (sum(1 for _ in log.open("rb")),)}
        assert report.interrupted_runs == (f"run:{PROJECT}.cut-short",)
        (stored,) = ctx.list_runs()
        assert (stored.status, stored.end_reason) == ("failed", "interrupted")
        # It ended where the log ends, not when the repair ran; its stage with it.
        assert stored.ended_at == last_metric_at
        (stage,) = ctx.list_stages("cut-short")
        assert (stage.status, stage.end_reason, stage.ended_at) == ("failed", "interrupted", last_metric_at)
        assert ctx.get_metric_series("cut-short", "loss").values == (0.5,)
