"""Loading anyio's machinery before the event loop is busy, so that no capture call imports on it.

anyio imports its submodules, and the backend for the running event loop, on first use. The first
use used to be closing a run: at the end of a service's busiest stretch, while the writer threads
hold the GIL, importing some thirty modules stalled the event loop for about 400 ms.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import anyio.to_thread

__all__ = ["load_event_loop_backend"]

# Attribute access is what makes anyio's lazy importer load these; do it once, at import.
_USED_LATER = (anyio.CancelScope, anyio.sleep, anyio.to_thread.run_sync)


def load_event_loop_backend() -> None:
    """Import the backend of the event loop running in this thread (cheap once it is loaded)."""
    try:
        anyio.lowlevel.current_token()
    except RuntimeError:  # no event loop in this thread: the first await will load the backend
        pass
