"""Sinks: the places the capture writer delivers batches to."""

from contexta.capture.sinks.base import Sink
from contexta.capture.sinks.composite import CompositeSink
from contexta.capture.sinks.jsonl import LocalJsonlSink
from contexta.capture.sinks.memory import InMemorySink
from contexta.capture.sinks.stdout import StdoutSink

__all__ = ["CompositeSink", "InMemorySink", "LocalJsonlSink", "Sink", "StdoutSink"]
