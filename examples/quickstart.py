"""Train a real classifier and capture what it measured with Contexta.

Demonstrates the sync capture API: a run carrying its dataset, tags and config; a dataset event; a
per-epoch training loss recorded with ``step=``; an evaluation stage with a holdout batch and one
sample; and the pickled model registered as a BLAKE3-hashed artifact. Everything lands in
./.contexta/ (run it from a scratch directory to keep that apart from real project history).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import orjson
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from contexta import Contexta
from contexta.capture import LocalJsonlSink

EPOCHS, SEED = 20, 7
PARAMS = {"loss": "log_loss", "learning_rate": "constant", "eta0": 0.01, "random_state": SEED}

features, targets = load_breast_cancer(return_X_y=True)
train_x, test_x, train_y, test_y = train_test_split(
    features, targets, test_size=0.25, stratify=targets, random_state=SEED
)
scaler = StandardScaler().fit(train_x)
train_x, test_x = scaler.transform(train_x), scaler.transform(test_x)
classes = np.unique(targets)
model = SGDClassifier(**PARAMS)

workspace = Path(".contexta")
ctx = Contexta(workspace=str(workspace), config={"project_name": "breast-cancer"})
local_sink = next(sink for sink in ctx.sinks if isinstance(sink, LocalJsonlSink))
records_path = local_sink.file_path_for("RECORD")
# The capture log keeps earlier runs; remember where this one starts so the count below is this run's.
records_offset = records_path.stat().st_size if records_path.exists() else 0

with ctx.run(
    "sgd-logistic",
    dataset_ref="dataset:sklearn.breast-cancer",
    tags={"framework": "scikit-learn"},
    config_snapshot={"model": "SGDClassifier", **PARAMS, "epochs": EPOCHS, "test_size": 0.25},
) as run:
    run.event(
        "dataset.loaded",
        message="Loaded the scikit-learn breast-cancer dataset",
        attributes={"rows": len(targets), "features": features.shape[1], "test_rows": len(test_y)},
    )
    with run.stage("train") as stage:
        for epoch in range(1, EPOCHS + 1):
            model.partial_fit(train_x, train_y, classes=classes)
            stage.metric("train/loss", log_loss(train_y, model.predict_proba(train_x)), step=epoch)
    with run.stage("evaluate") as stage:
        predictions = model.predict(test_x)
        accuracy = float(accuracy_score(test_y, predictions))
        stage.metric("accuracy", accuracy, unit="ratio")
        wrong = np.flatnonzero(predictions != test_y)
        row = int(wrong[0]) if len(wrong) else 0
        with stage.batch("holdout") as batch:
            batch.metric("errors", len(wrong))
            with batch.sample("first-misclassified" if len(wrong) else "first-test-row") as sample:
                sample.metric("correct", float(predictions[row] == test_y[row]), unit="ratio")
                sample.event(
                    "prediction.made",
                    message=f"Test row {row}: predicted {predictions[row]}, actual {test_y[row]}",
                    attributes={"row": row, "predicted": int(predictions[row]), "actual": int(test_y[row])},
                )
    model_path = workspace / "models" / "sgd-logistic.pkl"
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(pickle.dumps(make_pipeline(scaler, model)))
    registration = run.register_artifact("model", str(model_path), attributes={"format": "pickle"})

# Leaving the run flushed it into the workspace's store: it can be queried straight away.
loss_series = ctx.get_metric_series(run.ref, "train/loss")
stages = [f"{stage.name} ({stage.status})" for stage in ctx.list_stages(run.ref)]
ctx.close()

with records_path.open("rb") as log:
    log.seek(records_offset)
    rows = [orjson.loads(line) for line in log if line.strip()]
metric_keys = [
    row["payload"]["payload"]["metric_key"]
    for row in rows
    if row.get("payload_type") == "MetricRecord" and row["payload"]["envelope"]["run_ref"] == run.ref
]
print(f"Captured run: {run.ref}")
print(f"Measured accuracy: {accuracy:.3f}")
print(f"Registered artifact: {registration.payload['manifest'].artifact_ref}")
print(f"Records: {Path(os.path.relpath(records_path)).as_posix()}")
print(f"Artifacts: {Path(os.path.relpath(local_sink.file_path_for('ARTIFACT'))).as_posix()}")
loss_lines = metric_keys.count("train/loss")
print(f"Metric lines from this run in record.jsonl: {len(metric_keys)} ({loss_lines} of them train/loss)")
print(f"Stages in the store: {', '.join(stages)}")
print(
    f"train/loss in the store: {len(loss_series.points)} points, "
    f"{loss_series.points[0].value:.4f} at step 1 -> {loss_series.points[-1].value:.4f} at step {EPOCHS}"
)
