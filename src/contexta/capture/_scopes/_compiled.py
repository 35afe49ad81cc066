"""The compiled `metric()` and `metrics()` calls (`_metric_call.c`), or None where the package was built
without them.

The package installs without them where there is no C compiler; then the Python methods do everything.
`capture.compiled_metric = False` (or CONTEXTA_CAPTURE_COMPILED_METRIC=false) chooses the Python methods
where they were built, so the same tests run against both.
"""

from __future__ import annotations

__all__ = ["Completed", "MetricCall", "MetricsCall"]

try:
    from contexta.capture._scopes._metric_call import Completed, MetricCall, MetricsCall
except ImportError:  # not compiled: the Python methods are the whole implementation
    Completed = MetricCall = MetricsCall = None  # type: ignore[assignment, misc]
