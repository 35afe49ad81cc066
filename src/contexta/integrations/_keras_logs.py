"""Keras `logs` dicts recorded as metrics on a stage, at one step per call.

Keras hands every hook a dict of metric name to number (Python floats in Keras 3). A training loop
calls the batch hooks thousands of times, so the common call is one dict comprehension over cached
key names and one `stage.metrics(...)`. A name Contexta refuses as a metric key (a custom metric
named with a space) or a value it cannot store (a per-class array) must never stop training: it is
warned about once and left out from then on; the other values of the same call are still recorded.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from contexta.errors import CaptureWarning, ValidationError

if TYPE_CHECKING:
    from contexta.capture import StageScope

__all__ = ["LogRecorder"]


class LogRecorder:
    """Records Keras logs onto a stage, naming each metric `prefix + keras_name`.

    One recorder serves one kind of log (train batches, epochs, validation batches, ...); the stage
    is passed per call because Keras reopens some stages (each `evaluate` call) while the key names
    stay the same.
    """

    __slots__ = ("_excluded", "_keys", "_prefix", "_warned")

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self._keys: dict[str, str] = {}  # Keras name -> metric key, for names that were accepted
        self._excluded: set[str] = set()
        self._warned: set[tuple[str, str]] = set()

    def key(self, name: str) -> str:
        """The metric key a Keras log name is recorded under."""
        return self._prefix + name

    def record(self, stage: StageScope, logs: Mapping[str, Any], step: int) -> None:
        """Record every recordable value of `logs` on `stage` at `step`."""
        keys = self._keys
        try:
            values = {keys[name]: value for name, value in logs.items()}
        except KeyError:
            values = self._values_with_new_names(logs)
        if not values:
            return
        try:
            stage.metrics(values, step=step)
        except ValidationError as error:
            if error.code not in ("metrics_partly_invalid", "metrics_invalid"):
                raise  # the step, or the call itself: a bug here, not a value from Keras
            self._refused(error, values)

    def _values_with_new_names(self, logs: Mapping[str, Any]) -> dict[str, Any]:
        """The values to record when `logs` holds a name not seen before or one left out."""
        values: dict[str, Any] = {}
        for name, value in logs.items():
            if name in self._excluded:
                continue
            key = self._keys.get(name)
            if key is None:
                key = self._keys[name] = self.key(name)
            values[key] = value
        return values

    def _refused(self, error: ValidationError, values: Mapping[str, Any]) -> None:
        """Warn once per name and reason; leave out for good a name refused as a key, or whose value
        is not a number at all. A float refused (a NaN under `capture.non_finite = "raise"`) is one
        bad moment, not a bad metric: it is tried again next time."""
        names = {key: name for name, key in self._keys.items()}
        for refusal in error.details.get("refused", ()):
            key, code, message = refusal["key"], refusal["code"], refusal["message"]
            name = names.get(key, key)
            permanent = code == "metric_key_invalid" or (
                code == "metric_value_invalid" and type(values.get(key)) is not float
            )
            if permanent:
                self._excluded.add(name)
                self._keys.pop(name, None)
            if (name, code) not in self._warned:
                self._warned.add((name, code))
                what = "left out from now on" if permanent else "not recorded this time"
                warnings.warn(f"Keras log {name!r} is {what}: {message}", CaptureWarning, stacklevel=4)
