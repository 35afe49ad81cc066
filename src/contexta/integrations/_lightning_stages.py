"""Which stage a Lightning metric key belongs to, and the key it is stored under (no framework import).

Lightning hands a logger flat dicts (`{"train_loss": 0.4, "epoch": 0.0}`) without saying which loop
produced them; users say it in the key: `train_loss`, `train/loss`, `val_loss`, `val/acc`,
`test_acc`, `valid.f1`. A key whose first word is one of those prefixes goes to that stage; a key
without one (Lightning's own `epoch`, a learning rate, a bare `loss`) goes where the other keys of
the same call go, or to `train` when they disagree or there are none (training is where unnamed
metrics are logged from). Keys keep their spelling; only characters the capture contract refuses
(`[A-Za-z0-9_./-]`, at most 200) are replaced by `_`, so a key like `acc@1` never stops training.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["MetricRouter", "RoutedKey"]

TRAIN, VALIDATE, TEST, PREDICT = "train", "validate", "test", "predict"
_PREFIXES = {
    "train": TRAIN,
    "training": TRAIN,
    "trn": TRAIN,
    "val": VALIDATE,
    "valid": VALIDATE,
    "validation": VALIDATE,
    "validate": VALIDATE,
    "test": TEST,
    "testing": TEST,
    "predict": PREDICT,
    "prediction": PREDICT,
}
_FIRST_WORD = re.compile(r"[A-Za-z]+")
_REFUSED = re.compile(r"[^A-Za-z0-9_./-]")
_MAX_KEY = 200


class RoutedKey(NamedTuple):
    """Where one Lightning key goes: its stage (None: follow the call's other keys) and stored key."""

    stage: str | None
    key: str
    renamed: bool  # the stored key differs from Lightning's (characters replaced)


def route_key(key: str) -> RoutedKey:
    """The stage named by `key`'s first word, and `key` as the capture contract accepts it."""
    match = _FIRST_WORD.match(key)
    stage = None
    if match is not None:
        stage = _PREFIXES.get(match.group(0).lower())
        end = match.end()
        if stage is not None and end < len(key) and key[end] not in "_/.-":
            stage = None  # `trainable_params`, `testosterone`: a word that only starts like a stage
    stored = _REFUSED.sub("_", key)[:_MAX_KEY] or "_"
    if stored[0] in "./-":
        stored = "_" + stored[: _MAX_KEY - 1]
    return RoutedKey(stage, stored, stored != key)


class MetricRouter:
    """Splits each `log_metrics` call into one mapping per stage; the routing of each key is worked
    out once and remembered (a training run logs the same few keys thousands of times).

    Two keys never share a stored key: a renamed key whose name is taken (`train/精度` and
    `train/召回` both read `train/__`; `acc@1` reads as the `acc_1` also logged) ends in `-` and
    digits of its own digest. Keys kept as logged are settled first in each call."""

    def __init__(self) -> None:
        self._routes: dict[str, RoutedKey] = {}
        self._owners: dict[str, str] = {}  # stored key -> the Lightning key stored under it

    def _route_new(self, keys: list[str], renamed: list[tuple[str, str]]) -> None:
        routes, owners = self._routes, self._owners
        first = [(key, route_key(key)) for key in keys]
        for key, route in sorted(first, key=lambda pair: (pair[1].renamed, pair[0])):  # kept first
            if route.renamed and owners.get(route.key, key) != key:
                digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
                width = 8
                stored = route.key
                while owners.get(stored, key) != key:
                    stored = f"{route.key[: _MAX_KEY - width - 1]}-{digest[:width]}"
                    width += 1
                route = route._replace(key=stored)
            owners.setdefault(route.key, key)
            routes[key] = route
            if route.renamed:
                renamed.append((key, route.key))

    def split(self, metrics: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
        """`{stage: {stored key: value}}` for one call, and the `(key, stored key)` pairs renamed for
        the first time (so the caller can say so once)."""
        routes = self._routes
        named: dict[str, dict[str, Any]] = {}
        unnamed: dict[str, Any] = {}
        renamed: list[tuple[str, str]] = []
        unseen = [key for key in metrics if key not in routes]  # Lightning's keys are text
        if unseen:
            self._route_new(unseen, renamed)
        for key, value in metrics.items():
            route = routes[key]
            if route.stage is None:
                unnamed[route.key] = value
            else:
                named.setdefault(route.stage, {})[route.key] = value
        if unnamed:
            target = next(iter(named)) if len(named) == 1 else TRAIN
            named.setdefault(target, {}).update(unnamed)
        return named, renamed
