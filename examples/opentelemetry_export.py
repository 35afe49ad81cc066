"""Export a real evaluation to OpenTelemetry: one span per scored sample, metrics as histograms.

Trains a logistic regression on the iris data, then evaluates it on the held-out flowers one by one,
each flower a contexta sample (its span) with a `correct` metric; a "train" stage records the fit.
The OpenTelemetry sink sends it all through the SDK, here to an in-memory span exporter and metric
reader so a reader can check the counts (swap in `OpenTelemetrySink(endpoint="http://collector:4318")`
to send the same to a collector). The capture log is kept beside it (`sinks=` replaces the default).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from contexta import Contexta
from contexta.capture import LocalJsonlSink
from contexta.integrations.opentelemetry import OpenTelemetrySink

WORKSPACE = Path(".contexta")

features, targets = load_iris(return_X_y=True)
train_x, test_x, train_y, test_y = train_test_split(features, targets, test_size=0.2, random_state=3)

spans = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
reader = InMemoryMetricReader()
sink = OpenTelemetrySink(
    tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
)

with Contexta(
    workspace=WORKSPACE,
    config={"project_name": "iris-otel"},
    sinks=[LocalJsonlSink(WORKSPACE / "cache" / "capture"), sink],
) as ctx:
    with ctx.run("logreg", dataset_ref="dataset:sklearn.iris", config_snapshot={"C": 1.0}) as run:
        with run.stage("train") as stage:
            model = LogisticRegression(C=1.0, max_iter=500).fit(train_x, train_y)
            stage.metric("train.accuracy", float(model.score(train_x, train_y)))
        with run.stage("evaluate") as stage, stage.batch("holdout") as batch:
            for index, (row, label) in enumerate(zip(test_x, test_y, strict=True)):
                with batch.sample(f"flower-{index}") as sample:
                    sample.metric("correct", float(model.predict(row.reshape(1, -1))[0] == label))
    stored = ctx.get_metric_series("logreg", "correct", stage="evaluate")
    print(f"Captured run: {run.ref}")
    print(f"Holdout accuracy from the store: {sum(p.value for p in stored.points) / len(stored.points):.4f}")

kinds = Counter(span.name.split(" ")[0] for span in spans.get_finished_spans())
per_kind = ", ".join(f"{kind}={count}" for kind, count in sorted(kinds.items()))
print(f"Spans exported: {len(spans.get_finished_spans())} ({per_kind})")
data = reader.get_metrics_data()
assert data is not None
for metric in (m for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics):
    for point in metric.data.data_points:
        print(f"Metric {metric.name}: count={point.count} sum={point.sum:g}")  # type: ignore[union-attr]
