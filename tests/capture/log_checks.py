"""Checks shared by the tests of the capture log's fast formatting, in this process or the log-writer."""

from __future__ import annotations

from typing import Any

import orjson

from contexta.capture import InMemorySink, LocalJsonlSink, read_capture_log


def assert_log_matches_generic_encoding(memory: InMemorySink, log: LocalJsonlSink) -> list[dict[str, Any]]:
    """Every RECORD line of the log equals the generic encoding of the memory sink's entry, in order;
    returns the metric lines. The expected line is built here, not by the encoder under test."""
    entries = [entry for entry in memory.entries if entry.family == "RECORD"]
    lines = read_capture_log(log.file_path_for("RECORD")).lines
    assert len(lines) == len(entries)
    for entry, line in zip(entries, lines, strict=True):
        generic = {
            "captured_at": entry.captured_at,
            "family": "RECORD",
            "payload_type": entry.payload_type,
            "payload_ref": entry.payload_ref,
            "sink_name": log.name,
            "payload": entry.payload,
        }
        assert line == orjson.loads(orjson.dumps(generic))
    return [line for line in lines if line["payload_type"] == "MetricRecord"]
