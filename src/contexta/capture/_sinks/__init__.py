"""Sinks: the places the capture writer delivers batches to."""

from contexta.capture._sinks._base import Sink
from contexta.capture._sinks._composite import CompositeSink
from contexta.capture._sinks._jsonl import LocalJsonlSink
from contexta.capture._sinks._memory import InMemorySink
from contexta.capture._sinks._stdout import StdoutSink
from contexta.capture._sinks._store import StoreSink

__all__ = ["CompositeSink", "InMemorySink", "LocalJsonlSink", "Sink", "StdoutSink", "StoreSink"]
