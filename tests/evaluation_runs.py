"""Two evaluation runs captured live, each with 200 samples (the cases of an LLM evaluation).

In run `quick` case i (0..199) has `latency.ms` 10 + i and `correct` 0 for every fourth case, else 1;
case 3's latency is NaN (a broken timer). Run `slow` doubles every latency and gets every other case
wrong. In both, cases 7, 57, 107 and 157 raise after recording their metrics (failed samples), the
stage records `pass.rate` itself, and a `train` stage records `loss` per step.
"""

from __future__ import annotations

import math
from pathlib import Path

from contexta import Contexta

CASES = 200
FAILING = (7, 57, 107, 157)
PROJECT = "evals"


def _evaluate(ctx: Contexta, name: str, slowdown: float, wrong_every: int) -> None:
    with ctx.run(name) as run:
        with run.stage("train") as stage:
            for step, loss in enumerate((0.9, 0.5, 0.4)):
                stage.metric("loss", loss, step=step)
        with run.stage("evaluate") as stage:
            for case in range(CASES):
                try:
                    with stage.sample(f"case-{case:03d}") as sample:
                        latency = math.nan if case == 3 else slowdown * (10 + case)
                        sample.metric("latency.ms", latency, unit="ms")
                        sample.metric("correct", 0.0 if case % wrong_every == 0 else 1.0)
                        sample.event("response.received", message=f"answer {case}")
                        if case in FAILING:
                            raise TimeoutError(f"no answer for case {case}")
                except TimeoutError:
                    pass
            stage.metric("pass.rate", 1 - 1 / wrong_every)


def capture_evaluations(workspace: Path) -> Contexta:
    """A Contexta on `workspace` holding runs `quick` and `slow` (the caller closes it)."""
    ctx = Contexta(workspace=workspace, config={"project_name": PROJECT})
    _evaluate(ctx, "quick", 1.0, 4)
    _evaluate(ctx, "slow", 2.0, 2)
    return ctx
