"""SIGTERM and SIGHUP: how Slurm, Kubernetes, `docker stop` and a closed terminal end a job.

Python's default for both is to die on the spot: records captured in the last moments are still in
the queue, and open runs stay `open`. The handler installed here first hands everything captured
before the signal to every sink and closes the open scopes `cancelled` with `end_reason` naming the
signal, then lets the process end exactly as it would have: the default is restored and the signal
sent again, so the exit status is the signal's.

A handler the program installed before Contexta keeps deciding what happens: it is called after the
flush, and the scopes are left open for it, since a handler that only sets a flag (stop after this
epoch, save a checkpoint) expects capture to go on. If it raises (`sys.exit()`, an exception), the
scopes that exception leaves, and the runs still open at exit, record the signal as their reason.

Installed once per process, from the main thread only (Python allows no other), and only over the
default or a Python handler: a signal the program ignores (SIG_IGN) or handles in C is left alone.
The handler runs in the main thread between two bytecodes, possibly while that thread holds a lock
or waits in the capture queue; the locks it takes are re-entrant and every wait is bounded by
`capture.exit_timeout_s`.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from contexta.capture._scopes import _exit_status
from contexta.capture._scopes._endings import Ending, mark_signal

__all__ = ["SIGNAL_NAMES", "install", "say"]

SIGNAL_NAMES = ("SIGTERM", "SIGHUP")

# What each signal did before: SIG_DFL or the program's own Python handler.
_previous: dict[int, Any] = {}
_decided: set[int] = set()
# Called with the signal's end_reason and whether the process ends right after (no handler of the
# program's to pass the signal on to): hands captured records to the sinks and closes scopes.
_respond: Callable[[str, bool], None] | None = None
_handling = False


def install(respond: Callable[[str, bool], None]) -> None:
    """Handle SIGTERM and SIGHUP with `respond`; each signal is decided once, from the main thread."""
    global _respond
    _respond = respond
    if threading.current_thread() is not threading.main_thread():
        return  # a later Contexta opened in the main thread installs them
    for name in SIGNAL_NAMES:
        signum = getattr(signal, name, None)
        if signum is None or signum in _decided:
            continue
        _decided.add(signum)
        current = signal.getsignal(signum)
        if current is not signal.SIG_DFL and not callable(current):
            continue  # ignored (SIG_IGN), or handled outside Python: not ours to change
        _previous[signum] = current  # before the handler exists: it may run at once
        try:
            signal.signal(signum, _handle)
        except (ValueError, OSError):  # not the main interpreter, or the platform refuses
            del _previous[signum]


def _handle(signum: int, frame: FrameType | None) -> Any:
    global _handling
    name = signal.Signals(signum).name
    reason = f"signal:{name}"
    previous = _previous.get(signum, signal.SIG_DFL)
    if _handling:
        return None  # another signal while one is handled: the first one decides how this ends
    _handling = True
    passes_on = callable(previous)
    try:
        if _respond is not None:
            _respond(reason, not passes_on)
    except BaseException as error:  # never a traceback of ours on the way out, whatever happened
        say(f"contexta: on {name}: {type(error).__name__}: {error}")
    if not passes_on:
        # The process ends as it would have without us, with the signal's exit status. `_handling`
        # stays set: a second signal arriving meanwhile must not start over.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return None
    _handling = False
    try:
        return previous(signum, frame)
    except BaseException as error:
        mark_signal(error, reason)
        if isinstance(error, SystemExit):
            _exit_status.note_exit(Ending("cancelled", reason))
        raise


def say(text: str) -> None:
    """One line on stderr, written directly: the handler may have interrupted a print in progress,
    and a re-entrant write to `sys.stderr` raises."""
    try:
        os.write(2, (text + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def _reset_in_child() -> None:
    global _handling
    _handling = False


os.register_at_fork(after_in_child=_reset_in_child)
