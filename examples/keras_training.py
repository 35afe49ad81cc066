"""Train a small Keras 3 network on scikit-learn's handwritten digits and capture it with Contexta.

`ContextaCallback` records `fit` (the `train` stage: per-epoch and per-batch logs; the `validate`
stage: the `val_*` logs) and the `evaluate` call after it (the `evaluate` stage) into one run, with
the model's and optimizer's config as the run's config snapshot. The saved model is registered as an
artifact. Everything lands in ./.contexta/ (run it from a scratch directory); the script then reads
the run back from the store and prints what a reader can check against Keras's own numbers.

Keras needs a backend: this uses PyTorch unless KERAS_BACKEND says otherwise
(`pip install 'contexta[keras]' torch scikit-learn`).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported

import keras
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from contexta import Contexta
from contexta.integrations.keras import ContextaCallback

EPOCHS, BATCH_SIZE, SEED = 5, 64, 7

images, digits = load_digits(return_X_y=True)
images = (images / 16.0).astype("float32")  # pixel intensities are 0..16
train_x, test_x, train_y, test_y = train_test_split(
    images, digits, test_size=0.25, stratify=digits, random_state=SEED
)

keras.utils.set_random_seed(SEED)
model = keras.Sequential(
    [
        keras.Input((64,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ],
    name="digits-mlp",
)
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=0.01),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)

with (
    Contexta(workspace=".contexta", config={"project_name": "keras-digits"}) as ctx,
    ContextaCallback(ctx=ctx, dataset_ref="dataset:sklearn.digits", tags={"framework": "keras"}) as callback,
):
    history = model.fit(
        train_x,
        train_y,
        validation_split=0.2,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        callbacks=[callback],
        verbose=0,
    )
    result = model.evaluate(
        test_x, test_y, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0, return_dict=True
    )
    model.save("digits-mlp.keras")
    assert callback.run is not None
    registered = callback.run.register_artifact("model", "digits-mlp.keras", attributes={"format": "keras"})
run_id = callback.run.run_id

# Read back from the store (the run is closed and flushed): the same numbers Keras reported.
with Contexta(workspace=".contexta", config={"project_name": "keras-digits"}) as ctx:
    val_accuracy = ctx.get_metric_series(run_id, "val_accuracy", stage="validate").points
    test_accuracy = ctx.get_metric_series(run_id, "accuracy", stage="evaluate").points
    batch_losses = ctx.get_metric_series(run_id, "batch/loss", stage="train").points
    [run] = [run for run in ctx.list_runs() if run.run_id == run_id]
    [artifact] = ctx.list_artifacts(run_id)
    stages = [stage.name for stage in ctx.list_stages(run_id)]

print(f"Captured run: {run_id} ({run.status})")
print(f"Stages: {', '.join(stages)}")
print(f"val_accuracy by epoch in the store: {[round(point.value, 4) for point in val_accuracy]}")
print(f"val_accuracy by epoch from Keras:   {[round(value, 4) for value in history.history['val_accuracy']]}")
print(f"Test accuracy in the store: {test_accuracy[-1].value:.4f} (Keras evaluate: {result['accuracy']:.4f})")
print(f"batch/loss in the store: {len(batch_losses)} points")
print(f"Optimizer in the config snapshot: {run.config_snapshot['optimizer']['class_name']}")
print(f"Model artifact: {registered.payload['manifest'].artifact_ref} blake3 {artifact.hash_value}")
