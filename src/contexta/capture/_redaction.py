"""Keeping secrets out of the capture log and the store.

Training and evaluation code passes configuration around whole, and configuration holds API keys,
tokens and passwords: under a key that names them, inside a connection URL, in a list of headers or
environment variables, in the text of an exception. What is captured is scrubbed by three rules,
written down here so both their reach and their limits can be read (and are tested both ways):

1. **By key.** A mapping key names a secret when, split into lower-case words (snake_case, kebab-case,
   dots, camelCase and ACRONYMCase all split), it holds

   - a secret word (`password`, `passwords`, `passwd`, `pwd`, `passphrase`, `secret`, `secrets`,
     `token`, `auth`, `authorization`, `bearer`, `cookie`, `cookies`, `credential(s)`, `dsn`), or two
     adjacent words that make one (`api_key`, `access_key`, `private_key`, `secret_key`, `session_id`);
   - a word that *ends* in a distinctive one (`PGPASSWORD`, `clientsecret`, `githubtoken`);
   - or ends in `key` / `keys` after a qualifier that is not an ordinary one: `openai_key`, `hf_key`,
     `signing_key`, `OPENAI_KEY` are secrets; `metric_key`, `sort_key`, `primary_key`, `input_key`,
     `label_key`, `public_key` ... (`_ORDINARY_KEY_QUALIFIERS`) and `key` alone are not;

   unless every word after the secret one only describes it (`_DESCRIPTIVE_WORDS`: `token_count`,
   `password_length`, `secret_name`, `api_key_env`, `password_file`, `secretKeyRef` hold a count, a
   name, a path or a reference, not the secret). Plurals of counted things are no secret words, so
   `max_tokens`, `num_tokens`, `prompt_tokens`, `tokenizer`, `keyboard`, `monkey`, `key_count`,
   `passage` and `author` are ordinary. The text, list or mapping under a secret key becomes
   `[redacted]`; numbers and booleans are kept (`token: 3`, `auth_enabled: true` are a count and a
   switch, never a credential).
2. **By name, in name/value pairs**: `{"name": "API_KEY", "value": ...}` and `{"Key": "password",
   "Value": ...}` (Kubernetes, AWS, HAR), lists of pairs (`[["Authorization", "Bearer ..."]]`, what
   `headers.items()` gives), and argument lists (`["--api-key", "sk-..."]`, `sys.argv`): the value of
   a pair whose name is a secret key by rule 1 is redacted.
3. **In any text** (every string under any key, event messages, a run's `dataset_ref`, and an
   exception's message and traceback, see `_endings.py`):

   - a URL's password: `postgresql://user:[redacted]@host/db`; a user name alone is kept unless it
     is 16 characters or longer (a token used as the user, as GitHub and GitLab accept);
   - `name=value` where the name is a secret key by rule 1 (environment lines `OPENAI_API_KEY=sk-...`,
     query parameters `?token=...&api_key=...`, options `--password=...`, `api_key="..."` in a line of
     source code in a traceback), plus the URL signature parameters `sig` and `*signature`;
   - `'name': 'value'` and `"name": "value"` (a dict's repr or JSON in a message) with a secret name;
   - `Bearer <token>` (a token of at least 8 characters with a digit in it).

`CaptureConfig.redact_secrets = False` turns rules 1-3 off for attributes and event messages. An
exception's message and traceback are always scrubbed by rule 3: they are what a library said, not
data the program chose to record.

Cost: this runs at the call, on attributes and messages only (never on the metric hot path). The
patterns are compiled once, key verdicts are cached, and a string is scanned only when it holds one of
the characters a secret in text needs (`=`, `:`, or the word bearer).
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import Any

__all__ = ["REDACTED", "looks_secret", "redact_secrets", "redact_text"]

REDACTED = "[redacted]"

# Whole words that name a secret.
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "secrets",
        "token",
        "auth",
        "authorization",
        "bearer",
        "cookie",
        "cookies",
        "credential",
        "credentials",
        "dsn",
        # Two words written as one (`apikey`), or two adjacent words joined (`api_key`).
        "apikey",
        "apikeys",
        "accesskey",
        "secretkey",
        "privatekey",
        "sessionid",
    }
)
# A word ending in one of these is a secret word too: `pgpassword`, `clientsecret`, `openaiapikey`.
_SECRET_ENDINGS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "secretkey")
# `<qualifier>_key` names a secret unless the qualifier says the key is a lookup or a field name.
_ORDINARY_KEY_QUALIFIERS = frozenset(
    {
        # data structures and databases
        "primary",
        "foreign",
        "partition",
        "sort",
        "range",
        "hash",
        "cache",
        "dict",
        "map",
        "lookup",
        "group",
        "join",
        "index",
        "row",
        "column",
        "field",
        "unique",
        "composite",
        "natural",
        "surrogate",
        "candidate",
        "shard",
        "routing",
        "idempotency",
        "dedup",
        "object",
        "s3",
        "config",
        "public",
        "state",
        "search",
        # records of this library and of ML configs (which field of a dataset example holds what)
        "metric",
        "event",
        "record",
        "run",
        "stage",
        "batch",
        "sample",
        "id",
        "name",
        "input",
        "output",
        "text",
        "label",
        "target",
        "feature",
        "prompt",
        "question",
        "answer",
        "context",
        "response",
        "instruction",
        "document",
        "query",
        "image",
        "audio",
        "memory",
        "message",
        "score",
        "reward",
        "chosen",
        "rejected",
        "split",
        "dataset",
        "translation",
    }
)
# Words that, after a secret word, say the value describes the secret rather than being it.
_DESCRIPTIVE_WORDS = frozenset(
    {
        "count",
        "counts",
        "num",
        "number",
        "len",
        "length",
        "size",
        "limit",
        "limits",
        "max",
        "min",
        "budget",
        "type",
        "types",
        "kind",
        "method",
        "mode",
        "scheme",
        "provider",
        "policy",
        "name",
        "names",
        "field",
        "fields",
        "env",
        "var",
        "variable",
        "file",
        "path",
        "dir",
        "url",
        "uri",
        "endpoint",
        "ref",
        "refs",
        "reference",
        "arn",
        "enabled",
        "required",
        "expiry",
        "expires",
        "ttl",
    }
)
_KEY_WORDS = ("key", "keys")

_ACRONYM = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])")  # `OPENAIKey` -> `OPENAI_Key`
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")  # `apiKey` -> `api_Key`
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def _words(key: str) -> list[str]:
    split = _CAMEL.sub("_", _ACRONYM.sub("_", key)).lower()
    return [word for word in _SEPARATORS.split(split) if word]


def _is_secret_word(word: str) -> bool:
    return word in _SECRET_WORDS or word.endswith(_SECRET_ENDINGS)


@functools.lru_cache(maxsize=4096)
def looks_secret(key: str) -> bool:
    """True when the mapping key `key` names a secret (rule 1 of this module's docstring)."""
    words = _words(key)
    if not words:
        return False
    last = -1  # the position of the last word that makes the key a secret
    for index, word in enumerate(words):
        if _is_secret_word(word):
            last = index
    for index, (first, second) in enumerate(itertools.pairwise(words), start=1):
        if first + second in _SECRET_WORDS:
            last = max(last, index)
    if (
        len(words) > 1
        and words[-1] in _KEY_WORDS
        and words[-2] not in _ORDINARY_KEY_QUALIFIERS
        and words[-2] not in _KEY_WORDS
    ):
        last = len(words) - 1
    if last < 0:
        return False
    described = words[last + 1 :]
    return not described or not all(word in _DESCRIPTIVE_WORDS for word in described)


# -- secrets inside text ---------------------------------------------------------------------------

_NAME_CHARS = r"A-Za-z0-9_.\-"
_SECRET_TEXT = re.compile(
    # scheme://userinfo@ (the userinfo runs to the last @ before the host: passwords hold @ too)
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]{0,30}://)(?P<userinfo>[^\s/?#@]*(?:@[^\s/?#@]*)*)@"
    # Bearer <token>
    r"|(?P<bearer>(?i:\bbearer)[ \t]+)(?P<token>(?=[A-Za-z0-9._~+/\-]*\d)[A-Za-z0-9._~+/\-]{8,}=*)"
    # 'name': 'value' / "name": "value"
    r"|(?P<quote>[\"'])(?P<quoted_name>[" + _NAME_CHARS + r"]{1,64})(?P=quote)[ \t]*:[ \t]*"
    r"(?P<quoted_value>\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')"
    # name=value
    r"|(?<![A-Za-z0-9_.])(?P<name>[A-Za-z_][" + _NAME_CHARS + r"]{0,63})[ \t]?=[ \t]?"
    r"(?P<value>\[redacted\]|\"[^\"\n]*\"|'[^'\n]*'|[^\s&;,'\")\]}=]+=*)"
)
_LONG_USER = 16  # a URL user name at least this long is taken for a token


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return looks_secret(name) or lowered == "sig" or lowered.endswith("signature")


def _quoted(value: str) -> str:
    """`[redacted]` in the quotes `value` had, if any."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return f"{value[0]}{REDACTED}{value[0]}"
    return REDACTED


def _replacement(match: re.Match[str]) -> tuple[str | None, int]:
    """What replaces `match` (None: it holds no secret), and where the scan goes on from when
    nothing is replaced (inside a value that is no secret, an assignment that is one may follow:
    `client = OpenAI(api_key="...")`)."""
    groups = match.groupdict()
    if groups["scheme"] is not None:
        user, colon, _ = groups["userinfo"].partition(":")
        if colon:
            return f"{groups['scheme']}{user}:{REDACTED}@", match.end()
        if len(user) >= _LONG_USER:
            return f"{groups['scheme']}{REDACTED}@", match.end()
        return None, match.end()
    if groups["bearer"] is not None:
        return f"{groups['bearer']}{REDACTED}", match.end()
    name, value = ("quoted_name", "quoted_value") if groups["quoted_name"] is not None else ("name", "value")
    if not _secret_name(groups[name]):
        return None, match.start(value)
    head = match.group(0)[: match.start(value) - match.start()]
    return head + _quoted(groups[value]), match.end()


def _may_hold_secret(text: str) -> bool:
    return "=" in text or ":" in text or "earer" in text or "EARER" in text


def redact_text(text: str) -> str:
    """`text` with the secrets rule 3 finds replaced by `[redacted]` (the same object when none is)."""
    if not _may_hold_secret(text):
        return text
    parts: list[str] = []
    done = position = 0
    while (match := _SECRET_TEXT.search(text, position)) is not None:
        replacement, position = _replacement(match)
        if replacement is not None and replacement != match.group(0):
            parts += [text[done : match.start()], replacement]
            done = match.end()
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


# -- attributes ------------------------------------------------------------------------------------

_PAIR_NAMES = ("name", "key")
_PAIR_VALUES = ("value",)


def _hides(item: Any) -> bool:
    """Whether a value under a secret name is redacted: text and structures are, numbers and
    booleans (counts, switches) are not."""
    return isinstance(item, str | dict | list) and item != REDACTED


def _pair_value_field(mapping: dict[str, Any]) -> str | None:
    """The value field of a `{"name": <secret name>, "value": ...}` mapping, or None."""
    if len(mapping) > 8:
        return None
    name = value_field = None
    for field, item in mapping.items():
        lowered = field.lower()
        if lowered in _PAIR_NAMES and isinstance(item, str):
            name = item
        elif lowered in _PAIR_VALUES:
            value_field = field
    if name is None or value_field is None or not _hides(mapping[value_field]):
        return None
    return value_field if looks_secret(name) else None


def _redacted_mapping(value: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    changed = False
    result: dict[str, Any] = {}
    hidden = _pair_value_field(value)
    for key, item in value.items():
        new_key = redact_text(key) if isinstance(key, str) else key
        changed = changed or new_key is not key
        if key == hidden or (looks_secret(key) and _hides(item)):
            result[new_key] = REDACTED
            changed = True
        else:
            result[new_key], item_changed = _redacted(item)
            changed = changed or item_changed
    return (result, True) if changed else (value, False)


def _is_pair(item: Any) -> bool:
    return type(item) is list and len(item) == 2 and isinstance(item[0], str)


def _is_option(item: Any) -> bool:
    return isinstance(item, str) and item.startswith("-") and len(item) > 1 and "=" not in item


def _redacted_list(value: list[Any]) -> tuple[list[Any], bool]:
    items = [_redacted(item) for item in value]
    result = [item for item, _ in items]
    changed = any(item_changed for _, item_changed in items)
    if value and all(_is_pair(item) for item in value):  # [["Authorization", "Bearer ..."], ...]
        for index, (name, item) in enumerate(value):
            if looks_secret(name) and _hides(item):
                result[index] = [result[index][0], REDACTED]
                changed = True
    for index in range(len(value) - 1):  # ["--api-key", "sk-...", ...]
        option, item = value[index], value[index + 1]
        if _is_option(option) and looks_secret(option.lstrip("-")) and _hides(item) and not _is_option(item):
            result[index + 1] = REDACTED
            changed = True
    return (result, True) if changed else (value, False)


def _redacted(value: Any) -> tuple[Any, bool]:
    if isinstance(value, str):
        redacted = redact_text(value)
        return redacted, redacted is not value
    if isinstance(value, dict):
        return _redacted_mapping(value)
    if isinstance(value, list):
        return _redacted_list(value)
    return value, False


def redact_secrets(attributes: dict[str, Any] | None) -> dict[str, Any] | None:
    """`attributes` with secrets replaced by `[redacted]` by the rules of this module's docstring
    (the same object when none is found)."""
    if attributes is None:
        return None
    redacted, _ = _redacted(attributes)
    return redacted  # type: ignore[no-any-return]
