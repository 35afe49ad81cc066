"""Ending a process's open scopes when the process ends: at interpreter exit, and on SIGTERM/SIGHUP.

Every `Contexta` hands its capture session to `watch`. At interpreter exit, before the session's
pipeline delivers what is queued (`CapturePipeline.close_at_exit`), the runs and deployments left
open are closed with the status that is true (capture/_scopes/_exit_status.py); their closings, environment
snapshots and final events reach the sinks with everything else. On SIGTERM or SIGHUP
(capture/_scopes/_signals.py) everything captured is delivered and open scopes are closed `cancelled`.
Either way every wait is bounded by `capture.exit_timeout_s`, and a forked child (a DataLoader
worker) never ends the scopes it inherited: they are its parent's.
"""

from __future__ import annotations

import functools
import os
import time
import weakref

from contexta.capture._scopes import _exit_status, _signals
from contexta.capture._scopes._endings import Ending
from contexta.capture._scopes._session import CaptureSession
from contexta.errors import ClosedScopeError, LifecycleError

__all__ = ["end_open_scopes", "watch"]

_SESSIONS: weakref.WeakSet[CaptureSession] = weakref.WeakSet()
_SIGNAL_SESSIONS: weakref.WeakSet[CaptureSession] = weakref.WeakSet()


def watch(session: CaptureSession, *, handle_signals: bool) -> None:
    """End `session`'s open scopes at interpreter exit, and on SIGTERM/SIGHUP if `handle_signals`."""
    _exit_status.install()
    _SESSIONS.add(session)
    # The pipeline holds this hook, and with it the session, until it closes: a Contexta and a run
    # the program dropped without closing are still ended at exit.
    session.pipeline.exit_hooks.append(functools.partial(_end_at_exit, session))
    if handle_signals:
        _SIGNAL_SESSIONS.add(session)
        _signals.install(_end_on_signal)


def end_open_scopes(session: CaptureSession, ending: Ending, deadline: float) -> None:
    """Close the runs and deployments this process left open (their open children first) with
    `ending`, waiting for nothing beyond `deadline`; the caller delivers them."""
    for scope, end in session.owned_top_level():
        if scope.status != "open":
            continue  # closed meanwhile
        try:
            end(ending, deadline)
        except (ClosedScopeError, LifecycleError):
            pass  # closed by another thread, or its Contexta closed, in the meantime
        except Exception as error:
            _signals.say(f"contexta: could not close {scope.ref}: {type(error).__name__}: {error}")


def _end_at_exit(session: CaptureSession, deadline: float) -> None:
    end_open_scopes(session, _exit_status.interpreter_ending(), deadline)


def _end_on_signal(reason: str, process_ends: bool) -> None:
    """Deliver everything captured before the signal; when the process ends now, close open scopes
    and deliver their closings too. Delivering first keeps the window short in which other threads,
    still capturing, would meet closed scopes."""
    sessions = [session for session in list(_SIGNAL_SESSIONS) if not session.pipeline.closed]
    start = time.monotonic()
    _deliver(sessions, start, reason)
    if process_ends:
        ending = Ending("cancelled", reason)
        for session in sessions:
            end_open_scopes(session, ending, start + session.pipeline.config.exit_timeout_s)
        _deliver(sessions, start, reason)


def _deliver(sessions: list[CaptureSession], start: float, reason: str) -> None:
    for session in sessions:
        pipeline = session.pipeline
        timeout = pipeline.config.exit_timeout_s
        try:
            delivered = pipeline.wait_until_delivered(max(0.0, start + timeout - time.monotonic()))
        except LifecycleError:  # closed by another thread meanwhile: close() delivered it
            continue
        if not delivered:
            _signals.say(
                f"contexta: on {reason.partition(':')[2]}: the capture writer did not finish within "
                f"{timeout}s; {pipeline.undelivered} captured items were abandoned "
                "(a sink is stuck or too slow)."
            )


def _after_fork_in_child() -> None:
    for session in list(_SESSIONS):
        session.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
