"""Building many frozen read models at once, for listings that return thousands of them.

A frozen dataclass's `__init__` sets every field through `object.__setattr__`, one builtin call per
field; for `list_runs` over 10,000 runs that was a third of the query. `build_many` constructs an
unfrozen twin of the model (same fields, same slots, same base), whose `__init__` stores fields
directly, and then re-classes each instance to the model. The twin matches the model slot for slot, so
the result is an ordinary instance of the model: it compares, hashes, prints and refuses assignment
exactly like one made by calling the class.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["build_many", "collection_paused"]

Model = TypeVar("Model")

_twins: dict[type[Any], type[Any]] = {}


def _twin_of(model: type[Any]) -> type[Any]:
    twin = _twins.get(model)
    if twin is None:
        params = getattr(model, "__dataclass_params__", None)
        if params is None or not params.frozen or "__slots__" not in model.__dict__:
            raise TypeError(f"build_many needs a frozen slots dataclass, got {model.__name__}")
        fields = [
            (field.name, field.type, dataclasses.field(default=field.default))
            if field.default is not dataclasses.MISSING
            else (field.name, field.type)
            for field in dataclasses.fields(model)
        ]
        twin = dataclasses.make_dataclass(
            f"_Unfrozen{model.__name__}", fields, bases=model.__bases__, slots=True, eq=False
        )
        _twins[model] = twin
    return twin


def build_many(model: type[Model], rows: Iterable[Sequence[Any]]) -> list[Model]:
    """`[model(*row) for row in rows]` for a frozen slots dataclass, built about three times faster."""
    twin = _twin_of(model)
    with collection_paused():
        built = [twin(*row) for row in rows]
        for record in built:
            record.__class__ = model
    return built


_pause_lock = threading.Lock()
_pauses = 0
_resume_collection = False


@contextmanager
def collection_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a listing builds its result.

    Every object a listing allocates is still alive when it returns, so a collection pass in the middle
    only walks the young result and the whole heap behind it: with 10,000 runs, full passes doubled the
    time of some calls. Nested and concurrent pauses share one: the collector comes back when the last
    ends, and only if it was on when the first began.
    """
    global _pauses, _resume_collection
    with _pause_lock:
        if _pauses == 0:
            _resume_collection = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume_collection:
                gc.enable()
