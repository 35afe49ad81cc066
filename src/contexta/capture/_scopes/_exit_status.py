"""How the interpreter is ending, so that runs still open at exit close with the status that is true.

CPython tells `atexit` callbacks nothing about why the program ends, and by the time they run the
exception or `SystemExit` that ended it is gone. Two things can be seen from Python beforehand, and
this module watches both (installed once per process, by the first `Contexta`):

- an uncaught exception reaches `sys.excepthook`, which is chained: the previous hook still runs and
  still prints the traceback. If a hook installed later does not chain to ours, `sys.last_value`
  (which CPython sets before calling any hook) still tells;
- `sys.exit(code)` called in the main thread: `sys.exit` is wrapped to note the code, then behaves
  exactly as before.

What cannot be seen: `raise SystemExit(3)` or the `exit()` / `quit()` builtins at top level (they do
not call `sys.exit`; inside `with ctx.run()` the scope sees them), a `from sys import exit` taken
before the first `Contexta`, and `os._exit()`, which runs no hook at all (its runs stay `open` until
the next process that opens the workspace marks them interrupted). A `sys.exit(n)` whose `SystemExit`
the program caught and survived stays noted until a later `sys.exit()` replaces it. In an interactive
session errors at the prompt do not end the program, so there only the exit code counts.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn

from contexta.capture._scopes._endings import Ending, ending_for_error, process_exit_status

__all__ = ["install", "interpreter_ending", "note_exit"]

INTERPRETER_EXIT = Ending("completed", "interpreter_exit")

_installed = False
_previous_excepthook: Callable[[type[BaseException], BaseException, TracebackType | None], Any] | None = None
_original_exit: Callable[[Any], NoReturn] | None = None
_uncaught: BaseException | None = None  # the exception that reached sys.excepthook
_exit_note: Ending | None = None  # set by a non-zero sys.exit(), or a signal handler's SystemExit


def install() -> None:
    """Chain `sys.excepthook` and wrap `sys.exit`, once per process."""
    global _installed, _previous_excepthook, _original_exit
    if _installed:
        return
    _installed = True
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    original = _original_exit = sys.exit
    sys.exit = functools.wraps(original)(_exit)


def _excepthook(
    error_type: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> Any:
    global _uncaught
    _uncaught = error
    previous = _previous_excepthook if _previous_excepthook is not None else sys.__excepthook__
    return previous(error_type, error, traceback)


def _exit(status: object = None, /) -> NoReturn:
    # A thread's sys.exit() ends only that thread, so only the main thread's says how the program ends.
    if threading.current_thread() is threading.main_thread():
        code = process_exit_status(status)
        note_exit(None if code == 0 else Ending("failed", f"exit_status:{code}"))
    assert _original_exit is not None
    _original_exit(status)


def note_exit(ending: Ending | None) -> None:
    """Remember how the program asked to end (None: normally); the last request wins."""
    global _exit_note
    _exit_note = ending


def _uncaught_exception() -> BaseException | None:
    if sys.flags.interactive or hasattr(sys, "ps1"):
        return None
    if _uncaught is not None:
        return _uncaught
    if sys.excepthook is not _excepthook and "IPython" not in sys.modules:
        last = getattr(sys, "last_value", None)  # a later hook that does not chain to ours
        return last if isinstance(last, BaseException) else None
    return None


def interpreter_ending() -> Ending:
    """How runs still open at interpreter exit end: `failed` (uncaught exception, non-zero exit),
    `cancelled` (Ctrl-C, a signal), else `completed` with `end_reason = "interpreter_exit"`."""
    error = _uncaught_exception()
    if error is not None:
        return ending_for_error(error)
    if _exit_note is not None:
        return _exit_note
    return INTERPRETER_EXIT


def _forget_in_child() -> None:
    """A forked child ends on its own terms, not on how its parent was asked to."""
    global _uncaught, _exit_note
    _uncaught = None
    _exit_note = None


os.register_at_fork(after_in_child=_forget_in_child)
