"""Keeping secrets out of the capture log and the store.

Training and evaluation code passes configuration around whole, and configuration holds API keys,
tokens and passwords. Attribute keys that name a secret (by word: `api_key`, `openaiApiKey`,
`db.password`, `auth_token`, `credentials`) have their text or structured values replaced by
`[redacted]` when captured; numbers and booleans are kept (`prompt_tokens: 12` is a count, not a
secret, and so is `token_count`). `CaptureConfig.redact_secrets = False` turns this off.
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import Any

__all__ = ["REDACTED", "looks_secret", "redact_secrets"]

REDACTED = "[redacted]"

# Whole words (after splitting snake_case, kebab-case, dots and camelCase) that name a secret.
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "apikey",
        "credential",
        "credentials",
        "authorization",
        "cookie",
        "privatekey",
        "accesskey",
        "secretkey",
        "sessionid",
        "dsn",
    }
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=4096)
def looks_secret(key: str) -> bool:
    """True when `key` names a secret: one of its words, or two adjacent ones (`api_key`), is a
    secret word."""
    words = [word for word in _SEPARATORS.split(_CAMEL.sub("_", key).lower()) if word]
    if any(word in _SECRET_WORDS for word in words):
        return True
    return any(first + second in _SECRET_WORDS for first, second in itertools.pairwise(words))


def _redacted(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        changed = False
        result = {}
        for key, item in value.items():
            if looks_secret(key) and isinstance(item, str | dict | list) and item != REDACTED:
                result[key] = REDACTED
                changed = True
            else:
                result[key], item_changed = _redacted(item)
                changed = changed or item_changed
        return (result, True) if changed else (value, False)
    if isinstance(value, list):
        items = [_redacted(item) for item in value]
        if any(changed for _, changed in items):
            return [item for item, _ in items], True
        return value, False
    return value, False


def redact_secrets(attributes: dict[str, Any] | None) -> dict[str, Any] | None:
    """`attributes` with the values of secret-looking keys replaced (the same object when none is)."""
    if attributes is None:
        return None
    redacted, _ = _redacted(attributes)
    return redacted  # type: ignore[no-any-return]
