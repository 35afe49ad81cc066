"""The `contexta` command: list, inspect, compare, diagnose, report on, verify and tail a workspace."""

from contexta.cli._main import main

__all__ = ["main"]
