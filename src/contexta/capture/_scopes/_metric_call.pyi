from collections import deque
from collections.abc import Callable
from typing import Any

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
