"""Helpers for your own tests: capture into memory and assert on what was captured.

```python
from contexta.testing import capture_in_memory

def test_training_reaches_the_target_accuracy():
    with capture_in_memory(project_name="demo") as captured:
        train(captured.ctx, epochs=5)           # your code, given a real Contexta
    loss = captured.metric("train/loss")
    assert loss.steps == [0, 1, 2, 3, 4]
    captured.assert_metric("accuracy", at_least=0.9)
    captured.assert_completed()                 # no run, stage or sample failed
```

Nothing is left on disk, and no signal handler or exit hook outlives the capture.
"""

from contexta.testing._memory_capture import MemoryCapture, capture_in_memory
from contexta.testing._views import (
    CapturedArtifact,
    CapturedEvent,
    CapturedMetric,
    CapturedPoint,
    CapturedScope,
)

__all__ = [
    "CapturedArtifact",
    "CapturedEvent",
    "CapturedMetric",
    "CapturedPoint",
    "CapturedScope",
    "MemoryCapture",
    "capture_in_memory",
]
