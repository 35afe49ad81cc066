"""Seeing a training fail. The Trainer has no exception hook for callbacks (`on_train_end` runs only
when training finishes), so the callback finds the Trainer that called `on_init_end` and guards that
instance's `train`: an exception escaping it reaches the callback, which closes the run `failed`,
and is raised on unchanged."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["find_trainer", "guard_train"]

# How many frames up from the callback's hook to look for the Trainer: hook <- CallbackHandler.call_event
# <- CallbackHandler.on_init_end <- Trainer.__init__ (a subclass's __init__ adds one or two).
_MAX_DEPTH = 8
_GUARD_MARK = "__contexta_guard__"


def find_trainer(callback: object, trainer_type: type[Any]) -> Any | None:
    """The `trainer_type` instance whose callback handler holds `callback` and whose code is on the
    stack above the caller, or None (the callback was added some other way)."""
    frame = inspect.currentframe()
    try:
        for _ in range(_MAX_DEPTH):
            if frame is None:
                return None
            frame = frame.f_back
            candidate = None if frame is None else frame.f_locals.get("self")
            if isinstance(candidate, trainer_type) and _holds(candidate, callback):
                return candidate
        return None
    finally:
        del frame  # frames refer to their locals: drop the reference rather than keep a cycle


def _holds(trainer: Any, callback: object) -> bool:
    handler = getattr(trainer, "callback_handler", None)
    return any(item is callback for item in getattr(handler, "callbacks", ()))


def guard_train(trainer: Any, on_error: Callable[[BaseException], None]) -> None:
    """Make `trainer.train` call `on_error(error)` when an exception escapes it, then re-raise it.
    A trainer is wrapped once; each further handler (a second callback) joins that one guard."""
    handlers: list[Callable[[BaseException], None]] | None = getattr(trainer.train, _GUARD_MARK, None)
    if handlers is not None:
        handlers.append(on_error)
        return
    train = trainer.train
    handlers = [on_error]

    @functools.wraps(train)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return train(*args, **kwargs)
        except BaseException as error:
            for handler in handlers:
                handler(error)
            raise

    setattr(guarded, _GUARD_MARK, handlers)
    trainer.train = guarded  # on the instance: the class and other trainers are untouched
