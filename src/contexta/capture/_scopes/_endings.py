"""How a scope ended: its terminal status, a short reason, and what went wrong when an exception did it.

A scope's close document carries `end_reason` and, when an exception ended it, `failure` (its type, its
message and the innermost part of its traceback), so a failed run says what failed without anyone
reading the job's stderr. The reasons are fixed strings, so they can be queried:

- `exception`: an exception (an `Exception` subclass) left the scope;
- `keyboard_interrupt`: Ctrl-C;
- `cancelled`: the task was cancelled (asyncio, trio), or another `BaseException` left the scope;
- `signal:SIGTERM`, `signal:SIGHUP`: the process was told to stop;
- `exit_status:N`: `SystemExit` with a non-zero code, or a non-zero `sys.exit()` at interpreter exit;
- `interpreter_exit`: the program ended normally with the scope still open;
- `contexta_closed`: `ctx.close()` closed it while it was open.

A scope closed by its `with` block ending normally, or by an explicit `scope.close(...)`, has none.

An exception's text is what a library said, and libraries put URLs and arguments in it: the message
and the traceback (whose source lines may hold `api_key="..."`) are always scrubbed of credentials
(URL passwords, `name=value` secrets; `_redaction.redact_text`) before they are cut to size, so a cut
never leaves half a secret behind.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contexta.capture._scopes._redaction import redact_text
from contexta.contract._checks import plain_text

__all__ = [
    "COMPLETED",
    "Ending",
    "ending_for_error",
    "failure_of",
    "mark_signal",
    "process_exit_status",
    "short_traceback",
]

# A failure's traceback keeps at most this many lines and bytes, innermost frames last: enough to
# see where it broke, small enough to store on every failed sample of a large evaluation.
TRACEBACK_LINES = 20
TRACEBACK_BYTES = 4096
MESSAGE_CHARS = 1000

# Set on an exception raised by a signal handler that Contexta called, so the scopes it leaves
# record the signal as the reason rather than the exception's kind.
_SIGNAL_REASON = "_contexta_end_reason"

# Frames of Contexta's that an exception only passes through on its way from the program's code: the
# `sys.exit` wrapper and the signal handler that calls the program's own. They are left out of a
# failure's traceback, which shows the program's frames.
_HERE = os.path.dirname(os.path.abspath(__file__))
_PASS_THROUGH = frozenset(
    ((os.path.join(_HERE, "_exit_status.py"), "_exit"), (os.path.join(_HERE, "_signals.py"), "_handle"))
)


@dataclass(frozen=True, slots=True)
class Ending:
    """A terminal status and why; `details()` is what goes into the scope's close document."""

    status: str
    end_reason: str | None = None
    failure: Mapping[str, str] | None = None

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.end_reason is not None:
            details["end_reason"] = self.end_reason
        if self.failure is not None:
            details["failure"] = dict(self.failure)
        return details

    def describe(self) -> str:
        """A sentence for the `{kind}.failed` / `{kind}.cancelled` event."""
        if self.failure is not None:
            kind, message = self.failure["type"], self.failure["message"]
            return f"{kind}: {message}" if message else kind
        reason = self.end_reason or self.status
        what, _, detail = reason.partition(":")
        if what == "signal":
            return f"the process received {detail}"
        if what == "exit_status":
            return f"the program exited with status {detail}"
        return _DESCRIPTIONS.get(reason, reason)

    def for_children(self) -> Ending:
        """What open children get when their parent closes this way: a failure fails them too,
        anything else cancels them (their own work did not complete); the reason is the parent's."""
        status = "failed" if self.status == "failed" else "cancelled"
        return self if status == self.status else Ending(status, self.end_reason, self.failure)


COMPLETED = Ending("completed")

_DESCRIPTIONS = {
    "interpreter_exit": "the program ended while it was open",
    "contexta_closed": "ctx.close() was called while it was open",
}


def process_exit_status(code: object) -> int:
    """The process exit status `SystemExit(code)` leads to: None is 0, an int is itself, anything
    else (a message) is printed and gives 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return int(code)
    return 1


def mark_signal(error: BaseException, reason: str) -> None:
    """Remember on `error` that a signal handler raised it (the scopes it leaves were cancelled)."""
    try:
        setattr(error, _SIGNAL_REASON, reason)
    except Exception:  # an exception type without a __dict__: it keeps its own reason
        pass


def ending_for_error(error: BaseException | None) -> Ending:
    """How a scope ends when `error` leaves it (None: it ended normally)."""
    if error is None:
        return COMPLETED
    signal_reason = getattr(error, _SIGNAL_REASON, None)
    if isinstance(signal_reason, str):
        return Ending("cancelled", signal_reason, failure_of(error))
    if isinstance(error, SystemExit):
        status = process_exit_status(error.code)
        if status == 0:
            return COMPLETED
        return Ending("failed", f"exit_status:{status}", failure_of(error))
    if isinstance(error, KeyboardInterrupt):
        return Ending("cancelled", "keyboard_interrupt", failure_of(error))
    if isinstance(error, Exception):
        return Ending("failed", "exception", failure_of(error))
    return Ending("cancelled", "cancelled", failure_of(error))


def failure_of(error: BaseException) -> dict[str, str]:
    """`{"type", "message", "traceback"}` of `error`, each bounded; never raises. Text UTF-8 cannot
    hold (an exception quoting a string with a lone surrogate) is kept as `plain_text` gives it, so
    the scope's closing can always be written."""
    return {
        "type": plain_text(type(error).__name__),
        "message": plain_text(_message(error)),
        "traceback": plain_text(short_traceback(error)),
    }


def _message(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception as broken:  # a __str__ that raises must not cost the scope its close
        text = f"<message unavailable: {type(broken).__name__}>"
    return _cut(redact_text(text), MESSAGE_CHARS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_traceback(error: BaseException) -> str:
    """The last `TRACEBACK_LINES` lines (at most `TRACEBACK_BYTES` bytes) of `error`'s formatted
    traceback: the innermost frames and the exception line, which say where it broke."""
    try:
        formatted = traceback.TracebackException.from_exception(error)
        _drop_pass_through(formatted, set())
        chunks = [redact_text(chunk) for chunk in formatted.format()]
        last = [redact_text(chunk) for chunk in formatted.format_exception_only()]
    except Exception as broken:
        return f"<traceback unavailable: {type(broken).__name__}>"
    if chunks[-len(last) :] == last:  # a huge message must not push the frames out
        chunks[-len(last) :] = [_cut("".join(last), MESSAGE_CHARS)]
    lines = "".join(chunks).splitlines()
    omitted = 0
    if len(lines) > TRACEBACK_LINES:
        omitted = len(lines) - (TRACEBACK_LINES - 1)
        lines = lines[omitted:]
    text = "\n".join(lines)
    encoded = text.encode("utf-8", "replace")
    if len(encoded) > TRACEBACK_BYTES - 64:
        tail = encoded[-(TRACEBACK_BYTES - 64) :].decode("utf-8", "ignore")
        kept = tail.partition("\n")[2] or tail  # from the first whole line on
        omitted += text.count("\n") - kept.count("\n")
        text = kept
    if omitted:
        text = f"... ({omitted} earlier lines not kept)\n{text}"
    return text


def _drop_pass_through(formatted: traceback.TracebackException, seen: set[int]) -> None:
    if id(formatted) in seen:
        return
    seen.add(id(formatted))
    stack = formatted.stack
    kept = [frame for frame in stack if (frame.filename, frame.name) not in _PASS_THROUGH]
    if len(kept) != len(stack):
        formatted.stack = traceback.StackSummary.from_list(kept)
    for linked in (formatted.__cause__, formatted.__context__):
        if linked is not None:
            _drop_pass_through(linked, seen)
