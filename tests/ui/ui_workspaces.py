"""Workspaces the dashboard tests browse, and `contexta ui` started on one in a subprocess.

Workspaces the dashboard tests browse, captured live through `Contexta` (quickstart-like data).

Project `demo`, oldest first:
  baseline  lr 0.1; train: loss over STEPS steps (decaying, with one NaN at step 50), accuracy;
            evaluate: SAMPLES samples (latency.ms 10 + i, correct 0 every third), cases 4 and 9 fail;
            an artifact `model`; events.
  tuned     lr 0.01; the same shape, lower loss.
  broken    raises in train: a failed run with its failure reason.
  hostile   name, params, tags, event messages and attributes, a stage, a batch and a sample named
            with HTML/JS payloads (HOSTILE_*).
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from contexta import Contexta

PROJECT = "demo"
STEPS = 300
SAMPLES = 12
FAILING = (4, 9)
# Debian's Chromium, headless on a machine without network: what the browser tests and the
# screenshot helper launch it with (no background networking, no sandbox as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

HOSTILE_NAME = "<img src=x onerror=window.__pwned=1>"
HOSTILE_SCRIPT = "</script><script>window.__pwned=2</script>"
HOSTILE_ATTRIBUTE = '" onmouseover="window.__pwned=3" x="'


def _train(ctx: Contexta, name: str, lr: float, floor: float, model: Path) -> None:
    with ctx.run(
        name,
        config_snapshot={"lr": lr, "epochs": STEPS, "optimizer": {"name": "sgd", "momentum": 0.9}},
        tags={"team": "vision"},
        dataset_ref="dataset:demo.digits",
    ) as run:
        run.event("dataset.loaded", message="loaded 1797 rows", attributes={"rows": 1797})
        with run.stage("train") as stage:
            for step in range(STEPS):
                loss = math.nan if step == 50 else floor + math.exp(-step / 60) + 0.02 * math.sin(step)
                stage.metric("loss", loss, step=step)
                stage.metric("accuracy", 0.5 if math.isnan(loss) else 1 - loss / 2, step=step)
        with run.stage("evaluate") as stage:
            for case in range(SAMPLES):
                try:
                    with stage.sample(f"case-{case:02d}") as sample:
                        sample.metric("latency.ms", 10.0 + case, unit="ms")
                        sample.metric("correct", 0.0 if case % 3 == 0 else 1.0)
                        if case in FAILING:
                            raise TimeoutError(f"no answer for case {case}")
                except TimeoutError:
                    pass
            stage.metric("accuracy", 1 - floor)
        run.register_artifact("model", model, attributes={"format": "pickle"})


def _broken(ctx: Contexta) -> None:
    try:
        with ctx.run("broken", config_snapshot={"lr": 1.0}) as run, run.stage("train") as stage:
            stage.metric("loss", 3.0, step=0)
            raise RuntimeError("loss diverged at step 1")
    except RuntimeError:
        pass


def _hostile(ctx: Contexta) -> None:
    with ctx.run(
        HOSTILE_NAME,
        config_snapshot={HOSTILE_NAME: HOSTILE_SCRIPT, "lr": 0.5, "note": HOSTILE_ATTRIBUTE},
        tags={"team": HOSTILE_NAME},
    ) as run:
        run.event("hostile.event", message=HOSTILE_SCRIPT, attributes={HOSTILE_NAME: HOSTILE_ATTRIBUTE})
        with run.stage(HOSTILE_SCRIPT) as stage:
            for step in range(5):
                stage.metric("loss", 1.0 / (step + 1), step=step)
            with stage.batch(HOSTILE_NAME):
                pass
            with stage.sample(HOSTILE_NAME) as sample:
                sample.metric("score", 1.0)
                sample.event("sample.note", message=HOSTILE_NAME)


def capture_demo(workspace: Path, *, hostile: bool = True) -> Path:
    """Capture the runs above into `workspace` (created) and return it."""
    models = workspace.parent / f"{workspace.name}-models"
    models.mkdir(parents=True, exist_ok=True)
    (models / "baseline.pkl").write_bytes(b"baseline weights")
    (models / "tuned.pkl").write_bytes(b"tuned weights")
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        _train(ctx, "baseline", 0.1, 0.3, models / "baseline.pkl")
        _train(ctx, "tuned", 0.01, 0.2, models / "tuned.pkl")
        _broken(ctx)
        if hostile:
            _hostile(ctx)
    return workspace


SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class UiProcess:
    process: subprocess.Popen[str]
    url: str  # as printed: with ?token= when one is set
    base: str  # scheme, host and port, ending in /

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_ui(workspace: Path, *extra: str, env: dict[str, str] | None = None) -> UiProcess:
    """`contexta ui --workspace W --port 0` in a subprocess; returns once it printed its URL."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    environment.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "contexta", "ui", "--workspace", str(workspace), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://\S+", line)
    if found is None:
        process.kill()
        raise AssertionError(
            f"contexta ui printed no URL: {line!r} {process.stderr.read() if process.stderr else ''}"
        )
    url = found.group(0)
    return UiProcess(process, url, url.split("?")[0])
