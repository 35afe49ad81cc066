"""The compiled `metric()` call (`_metric_call.c`), or None where the package was built without it.

The package installs without it where there is no C compiler; then the Python method does everything.
`capture.compiled_metric = False` (or CONTEXTA_CAPTURE_COMPILED_METRIC=false) chooses the Python method
where it was built, so the same tests run against both.
"""

from __future__ import annotations

__all__ = ["MetricCall"]

try:
    from contexta.capture._scopes._metric_call import MetricCall
except ImportError:  # not compiled: the Python method is the whole implementation
    MetricCall = None  # type: ignore[assignment, misc]
