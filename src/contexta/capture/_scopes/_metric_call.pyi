from collections import deque
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")

class MetricCall:
    """`Scope.metric` for one open scope: the common call in C, every other call to `fallback`."""

    closed: bool
    __wrapped__: Callable[..., Any]
    def __init__(
        self,
        fallback: Callable[..., Any],
        items: deque[tuple[Any, ...]],
        queue: object,
        fields: tuple[Any, ...],
        known_keys: set[str],
        kind: object,
        accepted: object,
        default_scope: str,
    ) -> None: ...
    def __call__(self, key: str, value: float | int, **options: Any) -> Any: ...
    def close(self) -> None: ...

class MetricsCall:
    """`Scope.metrics` for one open scope: the common call in C, every other call to `fallback`."""

    closed: bool
    __wrapped__: Callable[..., Any]
    def __init__(
        self,
        fallback: Callable[..., Any],
        items: deque[tuple[Any, ...]],
        queue: object,
        fields: tuple[Any, ...],
        known_keys: set[str],
        kind: object,
        accepted: object,
    ) -> None: ...
    def __call__(self, values: Any, **options: Any) -> Any: ...
    def close(self) -> None: ...

class Completed(Generic[_T]):
    """An awaitable already done: `await` gives `value` at once."""

    value: _T
    def __init__(self, value: _T) -> None: ...
    def __await__(self) -> Generator[Any, None, _T]: ...
    def __next__(self) -> Any: ...
    def send(self, value: object, /) -> Any: ...
    def throw(self, error: BaseException | type[BaseException], /, *args: Any) -> Any: ...
    def close(self) -> None: ...
