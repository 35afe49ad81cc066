"""`ContextaLogger` under a real Lightning `Trainer`, as a demanding user drives it: a fit is one run
that opens once and ends once (what the store, the capture log and every sink see, with system
metrics on too), and metric keys that lose characters never merge two series."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning")
import torch
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.integrations.test_lightning import (
    RecordingLogger,
    TinyClassifier,
    loaders,
    make_trainer,
    stored_series,
)

from contexta import Contexta
from contexta.capture import InMemorySink
from contexta.errors import CaptureWarning
from contexta.integrations.lightning import ContextaLogger
from contexta.integrations.opentelemetry import OpenTelemetrySink

HPARAMS = {"lr": 0.5, "hidden": 8, "optimizer": None, "fail_at_step": None}


def _run_documents(sink: InMemorySink) -> list[dict[str, Any]]:
    return [line["payload"] for line in sink.lines("CONTEXT") if line["payload_type"] == "Run"]


def test_a_fit_opens_its_run_once_and_ends_it_once(tmp_path: Path) -> None:
    """The hyperparameters arrive after the run opened; recording them must not end the run (a
    reader polling the store, an OpenTelemetry backend, would see a run `completed` before its
    first step, and a second run span)."""
    memory = InMemorySink()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with Contexta(
        workspace=tmp_path / "ws",
        config={"project_name": "review"},
        sinks=[memory, OpenTelemetrySink(tracer_provider=provider)],
    ) as ctx:
        make_trainer(ContextaLogger("fit", ctx=ctx)).fit(TinyClassifier(), *loaders())
        (run,) = ctx.list_runs()

    documents = _run_documents(memory)
    assert [document["status"] for document in documents][-1] == "completed"
    assert {document["status"] for document in documents[:-1]} == {"open"}  # never ended before the end
    assert documents[-1]["config_snapshot"] == HPARAMS
    assert len({document["started_at"] for document in documents}) == 1
    assert run.status == "completed" and run.config_snapshot == HPARAMS
    assert run.started_at == documents[0]["started_at"]
    run_spans = [span for span in exporter.get_finished_spans() if span.name.startswith("run ")]
    assert len(run_spans) == 1


def test_the_stages_of_a_fit_open_once_when_hyperparameters_come_mid_fit(tmp_path: Path) -> None:
    """`self.logger.log_hyperparams(...)` during training: the train stage is not closed and
    reopened (its start would move, and it would read `completed` meanwhile)."""

    class LateHyperparameters(TinyClassifier):  # type: ignore[misc, valid-type]
        def on_train_epoch_start(self) -> None:
            if self.current_epoch == 1:
                self.logger.log_hyperparams({"schedule": {"epoch_1": "late"}})

    memory = InMemorySink()
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "review"}, sinks=[memory]) as ctx:
        make_trainer(ContextaLogger("fit", ctx=ctx)).fit(LateHyperparameters(), *loaders())
        (run,) = ctx.list_runs()

    stages = [line["payload"] for line in memory.lines("CONTEXT") if line["payload_type"] == "StageExecution"]
    train = [stage["status"] for stage in stages if stage["stage_name"] == "train"]
    assert train == ["open", "completed"]
    assert [document["status"] for document in _run_documents(memory)].count("completed") == 1
    assert run.config_snapshot == {**HPARAMS, "schedule": {"epoch_1": "late"}}


def test_system_metrics_sample_one_system_stage_through_the_fit(tmp_path: Path) -> None:
    """With system metrics on, the `system` stage of the fit is one stage, sampled on one clock: its
    steps (milliseconds since sampling began) never go back."""
    pytest.importorskip("psutil")
    memory = InMemorySink()
    with Contexta(
        workspace=tmp_path / "ws",
        config={"project_name": "review", "capture": {"system_metrics_interval_s": 0.01}},
        sinks=[memory],
    ) as ctx:
        make_trainer(ContextaLogger("fit", ctx=ctx)).fit(TinyClassifier(), *loaders())
        summaries = [s for s in ctx.get_metric_summaries("fit") if s.stage_name == "system"]
        assert summaries
        steps = [p.step for p in ctx.get_metric_series("fit", summaries[0].metric_key, stage="system").points]

    stages = [line["payload"] for line in memory.lines("CONTEXT") if line["payload_type"] == "StageExecution"]
    assert [stage["status"] for stage in stages if stage["stage_name"] == "system"] == ["open", "completed"]
    assert steps == sorted(steps)


class _UnicodeKeys(TinyClassifier):  # type: ignore[misc, valid-type]
    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        correct = (logits.argmax(1) == y).float()
        self.log_dict(
            {
                "train_loss": loss,
                "train/精度": correct.mean(),  # both become train/__ once refused characters go
                "train/召回": correct[:4].mean(),
                "train/acc@1": correct[:8].mean(),  # becomes train/acc_1, which is logged too
                "train/acc_1": correct[8:].mean(),
            }
        )
        return loss


def test_keys_that_lose_characters_alike_stay_separate_series(tmp_path: Path) -> None:
    recording = RecordingLogger()
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "review"}) as ctx:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make_trainer([ContextaLogger("fit", ctx=ctx), recording], max_epochs=1).fit(
                _UnicodeKeys(), *loaders()
            )
        stored = stored_series(ctx, "fit")

    reported: dict[str, list[Any]] = {}
    for step, metrics in recording.calls:
        for key, value in metrics.items():
            if key.startswith("train"):
                reported.setdefault(key, []).append((step, value))
    train = {key: points for (stage, key), points in stored.items() if stage == "train" and key != "epoch"}
    assert len(train) == len(reported) == 5  # five Lightning keys, five stored series
    assert sorted(train.values()) == sorted(reported.values())
    assert train["train/acc_1"] == reported["train/acc_1"]  # a key kept as logged is never the renamed one
    messages = " ".join(str(w.message) for w in caught if issubclass(w.category, CaptureWarning))
    assert "'train/精度' as" in messages and "'train/召回' as" in messages
