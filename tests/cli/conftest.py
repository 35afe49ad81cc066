"""A workspace captured through the facade, and a way to run `contexta` in-process against it.

Project p holds four runs, oldest first:
  baseline    clean; lr 0.1; train loss 0.9 -> 0.3; evaluate accuracy 0.81; a model artifact; deployed.
  tuned       clean; lr 0.01; train loss 0.8 -> 0.2; evaluate accuracy 0.9; a different model artifact.
  broken      its holdout batch raised (failed batch, stage and run); evaluate accuracy 0.5 before that.
  unmeasured  an evaluate stage that recorded nothing (warnings only).
Project q holds a second `baseline` (evaluate accuracy 0.7), so the bare name is ambiguous.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.cli import main


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


CliRunner = Callable[..., CliResult]


def _train(
    ctx: Contexta, name: str, lr: float, losses: tuple[float, ...], accuracy: float, model: Path
) -> str:
    with ctx.run(
        name, dataset_ref="dataset:p.digits", tags={"team": "vision"}, config_snapshot={"lr": lr}
    ) as run:
        run.event("dataset.loaded", message="loaded 1797 rows", attributes={"rows": 1797})
        with run.stage("train") as stage:
            for epoch, loss in enumerate(losses, start=1):
                stage.metric("train/loss", loss, step=epoch)
        with run.stage("evaluate") as stage:
            stage.metric("accuracy", accuracy, unit="ratio")
            with stage.batch("holdout") as batch:
                batch.metric("macro.f1", accuracy - 0.02)
        run.register_artifact("model", model, attributes={"format": "pickle"})
        return run.ref


def capture_workspace(root: Path) -> Path:
    """Capture the runs described above into `<root>/.contexta` and return the workspace path."""
    workspace = root / ".contexta"
    models = root / "models"
    models.mkdir()
    (models / "baseline.pkl").write_bytes(b"baseline weights")
    (models / "tuned.pkl").write_bytes(b"tuned weights, better")
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        baseline = _train(ctx, "baseline", 0.1, (0.9, 0.5, 0.3), 0.81, models / "baseline.pkl")
        _train(ctx, "tuned", 0.01, (0.8, 0.4, 0.2), 0.9, models / "tuned.pkl")
        with ctx.deployment("canary", run_ref=baseline) as deployment:
            deployment.event("deployment.ready", message="serving baseline")
        try:
            with ctx.run("broken", config_snapshot={"lr": 1.0}) as run, run.stage("evaluate") as stage:
                stage.metric("accuracy", 0.5)
                with stage.batch("holdout"):
                    raise RuntimeError("out of memory")
        except RuntimeError:
            pass
        with ctx.run("unmeasured") as run, run.stage("evaluate"):
            pass
    with (
        Contexta(workspace=workspace, config={"project_name": "q"}) as ctx,
        ctx.run("baseline") as run,
        run.stage("evaluate") as stage,
    ):
        stage.metric("accuracy", 0.7)
    return workspace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The captured workspace, shared by the tests of a module that only read it."""
    return capture_workspace(tmp_path_factory.mktemp("captured"))


@pytest.fixture
def fresh_workspace(tmp_path: Path) -> Path:
    """A captured workspace of this test's own, for tests that change files or add runs."""
    return capture_workspace(tmp_path)


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command renders for an 80-column terminal (shutil.get_terminal_size reads COLUMNS)."""
    monkeypatch.setenv("COLUMNS", "80")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[CliRunner]:
    """`cli("runs", "--workspace", path)`: run `contexta` in this process and get its exit code and
    what it printed."""

    def run(*argv: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    yield run
