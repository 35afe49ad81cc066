"""Ending a process's open scopes when the process ends.

Every `Contexta` hands its capture session to `watch`. At interpreter exit, before the session's
pipeline delivers what is queued (`CapturePipeline.close_at_exit`), the runs and deployments left
open are closed with the status that is true (capture/_exit_status.py); their closings, environment
snapshots and final events reach the sinks with everything else. Every wait is bounded by
`capture.exit_timeout_s`, and a forked child (a DataLoader worker) never ends the scopes it
inherited: they are its parent's.
"""

from __future__ import annotations

import functools
import os
import sys
import weakref

from contexta.capture import _exit_status
from contexta.capture._endings import Ending
from contexta.capture._session import CaptureSession
from contexta.errors import ClosedScopeError, LifecycleError

__all__ = ["end_open_scopes", "watch"]

_SESSIONS: weakref.WeakSet[CaptureSession] = weakref.WeakSet()


def watch(session: CaptureSession) -> None:
    """End `session`'s open scopes at interpreter exit."""
    _exit_status.install()
    _SESSIONS.add(session)
    # The pipeline holds this hook, and with it the session, until it closes: a Contexta and a run
    # the program dropped without closing are still ended at exit.
    session.pipeline.exit_hooks.append(functools.partial(_end_at_exit, session))


def end_open_scopes(session: CaptureSession, ending: Ending, deadline: float) -> None:
    """Close the runs and deployments this process left open (their open children first) with
    `ending`, waiting for nothing beyond `deadline`; the caller delivers them."""
    for scope in session.owned_top_level():
        if getattr(scope, "_status", None) != "open":
            continue  # closed meanwhile, or still being built by the interrupted thread
        try:
            scope._end(ending, deadline)
        except (ClosedScopeError, LifecycleError):
            pass  # closed by another thread, or its Contexta closed, in the meantime
        except Exception as error:
            print(f"contexta: could not close {scope.ref}: {type(error).__name__}: {error}", file=sys.stderr)


def _end_at_exit(session: CaptureSession, deadline: float) -> None:
    end_open_scopes(session, _exit_status.interpreter_ending(), deadline)


def _after_fork_in_child() -> None:
    for session in list(_SESSIONS):
        session.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
