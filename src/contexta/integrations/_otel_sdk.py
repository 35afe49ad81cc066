"""Loading the OpenTelemetry SDK and building the providers the sink uses when the user gives none.

Kept apart so the sink's module reads as the sink, and so the one place that imports the SDK and the
OTLP exporter turns a missing package into a `ConfigurationError` with the install line, at the
constructor call that needed it, rather than an ImportError from deep inside.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING

from contexta.errors import MissingDependencyError

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from contexta.integrations._otel_retain import RetainingSpanExporter

__all__ = ["INSTALL_HINT", "build_meter_provider", "build_tracer_provider", "require"]

INSTALL_HINT = "pip install 'contexta[opentelemetry]'"

# The SDK's own default (2,048) is one second of per-sample spans in an evaluation service; while
# the collector is down each export attempt can take the exporter's whole timeout, and spans that
# do not fit the processor's queue meanwhile are dropped by the SDK. Used only when
# OTEL_BSP_MAX_QUEUE_SIZE does not say otherwise.
_OWN_QUEUE_SIZE = 65_536
# The longest attribute value (characters) on the sink's own spans and span events, used only when
# OTEL_[SPAN_]ATTRIBUTE_VALUE_LENGTH_LIMIT does not say otherwise. The SDK's default is no limit: one
# value of megabytes (a dumped config, a long prompt) makes a request a collector refuses (413), and
# the retaining exporter would then send that refused chunk first forever, so no later span would ever
# arrive. The capture log and the store keep every value whole.
_OWN_ATTRIBUTE_LENGTH = 16_384


def require(module: str, what: str) -> ModuleType:
    """`module`, imported; `MissingDependencyError(dependency_missing)` (an ImportError, as for every
    optional feature) with the install line if not."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"OpenTelemetrySink needs {what} ({module}), which is not installed: {INSTALL_HINT}",
            code="dependency_missing",
            details={"module": module, "extra": "opentelemetry", "reason": str(error)},
        ) from None


def _signal_endpoint(endpoint: str | None, signal: str) -> str | None:
    """The OTLP/HTTP URL of one signal under a base endpoint (as OTEL_EXPORTER_OTLP_ENDPOINT is
    read); None lets the exporter read the environment itself."""
    if endpoint is None:
        return None
    return f"{endpoint.rstrip('/')}/v1/{signal}"


def build_tracer_provider(
    *,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    timeout_s: float | None,
    service_name: str | None,
    max_retained_spans: int,
) -> tuple[TracerProvider, RetainingSpanExporter]:
    """A TracerProvider exporting over OTLP/HTTP through a batch processor, the exporter wrapped so
    spans an export could not deliver are kept and sent again (see _otel_retain.py)."""
    trace_sdk = require("opentelemetry.sdk.trace", "the OpenTelemetry SDK")
    export = require("opentelemetry.sdk.trace.export", "the OpenTelemetry SDK")
    otlp = require("opentelemetry.exporter.otlp.proto.http.trace_exporter", "the OTLP/HTTP exporter")
    from contexta.integrations._otel_retain import RetainingSpanExporter

    inner = otlp.OTLPSpanExporter(
        endpoint=_signal_endpoint(endpoint, "traces"),
        headers=dict(headers) if headers is not None else None,
        timeout=timeout_s,
    )
    exporter = RetainingSpanExporter(inner, max_retained=max_retained_spans)
    queue = None if os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE") else _OWN_QUEUE_SIZE
    length_set = any(
        os.environ.get(name)
        for name in ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT")
    )
    limits = trace_sdk.SpanLimits(max_attribute_length=None if length_set else _OWN_ATTRIBUTE_LENGTH)
    provider: TracerProvider = trace_sdk.TracerProvider(resource=_resource(service_name), span_limits=limits)
    provider.add_span_processor(export.BatchSpanProcessor(exporter, max_queue_size=queue))
    return provider, exporter


def build_meter_provider(
    *,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    timeout_s: float | None,
    service_name: str | None,
) -> MeterProvider:
    """A MeterProvider exporting over OTLP/HTTP on the SDK's periodic reader (its interval comes from
    OTEL_METRIC_EXPORT_INTERVAL, 60 s by default). The OTLP default temporality is cumulative, so an
    export that fails is made good by the next one that succeeds."""
    metrics_sdk = require("opentelemetry.sdk.metrics", "the OpenTelemetry SDK")
    reader_module = require("opentelemetry.sdk.metrics.export", "the OpenTelemetry SDK")
    otlp = require("opentelemetry.exporter.otlp.proto.http.metric_exporter", "the OTLP/HTTP exporter")
    exporter = otlp.OTLPMetricExporter(
        endpoint=_signal_endpoint(endpoint, "metrics"),
        headers=dict(headers) if headers is not None else None,
        timeout=timeout_s,
    )
    reader = reader_module.PeriodicExportingMetricReader(exporter)
    provider: MeterProvider = metrics_sdk.MeterProvider(
        resource=_resource(service_name), metric_readers=[reader]
    )
    return provider


def _resource(service_name: str | None) -> object:
    """service.name from the argument, else OTEL_SERVICE_NAME, else "contexta" (the SDK merges
    OTEL_RESOURCE_ATTRIBUTES in)."""
    resources: ModuleType = require("opentelemetry.sdk.resources", "the OpenTelemetry SDK")
    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "contexta"
    return resources.Resource.create({"service.name": name})
