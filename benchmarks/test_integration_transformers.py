"""What `ContextaCallback` costs a Hugging Face `Trainer` step (issue 20).

Run with `python -m pytest benchmarks/test_integration_transformers.py --benchmark-enable -s`. Without
that flag (the project default) the body runs once on one short pair of trainings, as a smoke test.

The same tiny BERT (2 layers, hidden size 32, built from a config with one seed) trains on the CPU
with and without the callback, alternating within one process, so both arms see the same machine
weather. A step is timed from one `on_step_begin` to the next: forward, backward, optimizer, and
everything the callbacks do after it (the callback's `on_log` for the step's loss, learning rate,
grad norm and epoch with `logging_steps=1`, its worst case; with checkpoints, also hashing and
registering every file of each `checkpoint-N`). Reported in `extra_info` (and printed): mean and
worst step in ms for each arm and the ratio of the means; also the mean `train()` call, which adds
opening and closing the run and its Contexta. Torch runs on one thread in both arms.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing here may reach the hub; set before transformers loads

import statistics
import time
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.integrations.test_transformers import TokenDataset, tiny_model  # noqa: E402

from contexta.integrations.transformers import ContextaCallback  # noqa: E402

PAIRS = 5  # trainings per arm, alternating
STEPS = 60  # optimizer steps per training
SMOKE_PAIRS, SMOKE_STEPS = 1, 6
BATCH = 8


class _StepClock(transformers.TrainerCallback):  # type: ignore[misc]
    """Notes the time each step begins; the gaps are the steps, with all the callbacks' work in them."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.starts.append(time.perf_counter())

    def steps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.starts, self.starts[1:], strict=False)]


def _train(
    root: Path, number: int, steps: int, save_steps: int | None, captured: bool
) -> tuple[list[float], float]:
    """One training; returns its step durations and the duration of its `train()` call, in s."""
    clock = _StepClock()
    callbacks: list[Any] = [clock]
    if captured:
        callbacks.append(ContextaCallback(f"bench-{number}", workspace=root / "ws", project_name="bench"))
    args = transformers.TrainingArguments(
        output_dir=str(root / f"out-{number}"),
        use_cpu=True,
        report_to=[],
        max_steps=steps,
        per_device_train_batch_size=BATCH,
        logging_steps=1,
        eval_strategy="no",
        save_strategy="no" if save_steps is None else "steps",
        save_steps=save_steps or 500,
        disable_tqdm=True,
        seed=0,
    )
    trainer = transformers.Trainer(
        model=tiny_model(),  # the tests' model: a 2-layer BERT of hidden size 32, seeded
        args=args,
        train_dataset=TokenDataset(steps * BATCH, seed=1),
        callbacks=callbacks,
    )
    trainer.remove_callback(transformers.PrinterCallback)  # printing every log would swamp both arms
    started = time.perf_counter()
    trainer.train()
    return clock.steps(), time.perf_counter() - started


@pytest.mark.benchmark(group="transformers-callback")
@pytest.mark.parametrize("save_steps", [None, 20], ids=["logs", "logs-and-checkpoints"])
def test_trainer_steps_with_and_without_the_callback(
    benchmark: Any, tmp_path: Path, save_steps: int | None
) -> None:
    pairs = PAIRS if benchmark.enabled else SMOKE_PAIRS
    steps = STEPS if benchmark.enabled else SMOKE_STEPS
    if save_steps is not None and not benchmark.enabled:
        save_steps = 3
    arms: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}

    def body() -> None:
        for pair in range(pairs):
            for captured in (pair % 2 == 0, pair % 2 == 1):  # alternate which arm goes first
                step_times, call = _train(tmp_path, 2 * pair + captured, steps, save_steps, captured)
                arms[captured][0].extend(step_times)
                arms[captured][1].append(call)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a shared machine: one thread times the steps steadily
    try:
        benchmark.pedantic(body, rounds=1, iterations=1)
    finally:
        torch.set_num_threads(threads)

    figures: dict[str, float] = {}
    for captured, name in ((False, "without"), (True, "with")):
        step_times, calls = arms[captured]
        assert len(step_times) == pairs * (steps - 1)
        figures[f"step_mean_ms_{name}"] = round(statistics.fmean(step_times) * 1e3, 3)
        figures[f"step_worst_ms_{name}"] = round(max(step_times) * 1e3, 3)
        figures[f"train_call_mean_s_{name}"] = round(statistics.fmean(calls), 3)
    figures["step_mean_ratio"] = round(figures["step_mean_ms_with"] / figures["step_mean_ms_without"], 3)
    benchmark.extra_info.update(figures)
    print(f"\ntransformers callback ({'logs' if save_steps is None else 'logs + checkpoints'}): {figures}")


LOG_CALLS = 10_000
SMOKE_LOG_CALLS = 200


@pytest.mark.benchmark(group="transformers-on-log")
def test_on_log_call(benchmark: Any, tmp_path: Path) -> None:
    """One `on_log` with a training log's four values (loss, grad norm, learning rate, epoch), the
    callback's part of a logging step without the step around it; `per_call_us` is the mean / calls."""
    from contexta import Contexta

    calls = LOG_CALLS if benchmark.enabled else SMOKE_LOG_CALLS
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[])
    state = transformers.TrainerState(is_world_process_zero=True)
    control = transformers.TrainerControl()
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "bench"}) as ctx:
        callback = ContextaCallback("on-log", ctx=ctx)
        callback.on_train_begin(args, state, control, model=None)
        steps = iter(range(10**9))

        def body() -> None:
            on_log = callback.on_log
            for _ in range(calls):
                state.global_step = step = next(steps)
                logs = {
                    "loss": 0.5 + step * 1e-6,
                    "grad_norm": 1.25,
                    "learning_rate": 1e-3,
                    "epoch": step / 100,
                }
                on_log(args, state, control, logs=logs)

        def flush() -> None:  # between rounds, untimed; pedantic takes a truthy return for arguments
            ctx.flush()

        benchmark.pedantic(body, setup=flush, rounds=10 if benchmark.enabled else 1, warmup_rounds=0)
        callback.on_train_end(args, state, control)
    if benchmark.stats is not None:
        benchmark.extra_info["per_call_us"] = round(benchmark.stats.stats.mean / calls * 1e6, 2)
        benchmark.extra_info["per_call_max_round_us"] = round(benchmark.stats.stats.max / calls * 1e6, 2)
        print(f"\non_log: {benchmark.extra_info}")
