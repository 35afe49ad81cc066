"""Contexta: local-first observability for ML systems."""

from contexta._facade import Contexta
from contexta._workspace_reader import Workspace
from contexta.errors import ContextaError

__version__ = "0.1.0"

__all__ = ["Contexta", "ContextaError", "Workspace", "__version__"]
