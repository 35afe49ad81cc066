"""Contexta: local-first observability for ML systems."""

from contexta.errors import ContextaError
from contexta.facade import Contexta

__version__ = "0.1.0"

__all__ = ["Contexta", "ContextaError", "__version__"]
