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

Cost: this runs at the call, on attributes and messages only (never on the metric hot path). Key
verdicts are cached, patterns compiled once, and text is searched with `str.find` for `://` and a
few stems of secret names; only the characters around a hit are looked at (see below).
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
#
# A secret in text sits in a URL (`://` before an `@`) or after a name that holds one of a few
# stems (`pass`, `token`, `key`, ...). Both are found with `str.find`, which runs at memory speed, and
# only the few characters around each hit are looked at: text with neither costs a few passes in C,
# whatever its length, and JSON or prose full of `=` and `":` costs nothing more unless a name in it
# could be a secret's.

# Every secret word, secret ending and `<qualifier>_key` of rule 1 holds one of these (a test checks).
_STEMS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "auth",
    "bearer",
    "cookie",
    "credential",
    "dsn",
    "key",
    "session",
    "sig",
)
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_NAME_TAIL = re.compile(r"[A-Za-z0-9_.\-]*+")
_MAX_NAME = 64
_USERINFO = re.compile(r"[^\s/?#]*@")  # to the last @ before the host: a password may hold @ too
_VALUE = re.compile(r"\[redacted\]|\"[^\"\n]*+\"|'[^'\n]*+'|[^\s&;,'\")\]}=]++=*+")
_QUOTED_VALUE = re.compile(r"[ \t]*+(\"(?:[^\"\\\n]|\\.)*+\"|'(?:[^'\\\n]|\\.)*+')")
_TOKEN = re.compile(r"[ \t]++((?=[A-Za-z0-9._~+/\-]*\d)[A-Za-z0-9._~+/\-]{8,}+=*+)")
_LONG_USER = 16  # a URL user name at least this long is taken for a token
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# A secret found in text: where it starts and ends, and what replaces it.
_Found = tuple[int, int, str]


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return looks_secret(name) or lowered == "sig" or lowered.endswith("signature")


def _quoted(value: str) -> str:
    """`[redacted]` in the quotes `value` had, if any."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return f"{value[0]}{REDACTED}{value[0]}"
    return REDACTED


def _url_passwords(text: str) -> list[_Found]:
    """A URL's password (`scheme://user:[redacted]@host`), or a long user name alone (a token)."""
    found: list[_Found] = []
    position = text.find("://")
    while position >= 0:
        start = position + 3
        userinfo = _USERINFO.match(text, start)
        if userinfo is not None:
            end = userinfo.end() - 1
            user, colon, password = text[start:end].partition(":")
            if colon and password != REDACTED:
                found.append((start + len(user) + 1, end, REDACTED))
            elif len(user) >= _LONG_USER:
                found.append((start, end, REDACTED))
        position = text.find("://", start)
    return found


def _value_after(text: str, name: str, start: int, end: int) -> _Found | None:
    """The secret that follows the name `text[start:end]`: `name=value`, `'name': 'value'`,
    `Bearer <token>`; None when nothing follows it or the name is no secret's."""
    follower = text[end : end + 1]
    if follower in ("'", '"') and text[end + 1 : end + 2] == ":" and start and text[start - 1] == follower:
        value = _QUOTED_VALUE.match(text, end + 2)
        if value is None or value.group(1)[1:-1] == REDACTED or not _secret_name(name):
            return None
        return value.start(1), value.end(1), _quoted(value.group(1))
    equals = end + 1 if follower in (" ", "\t") else end
    if text[equals : equals + 1] == "=" and text[equals + 1 : equals + 2] != "=":
        if not _secret_name(name):  # (`name == value` is a comparison, and was passed over)
            return None
        value_start = equals + 2 if text[equals + 1 : equals + 2] in (" ", "\t") else equals + 1
        value = _VALUE.match(text, value_start)
        if value is None or value.group(0) == REDACTED:
            return None
        return value.start(), value.end(), _quoted(value.group(0))
    if follower in (" ", "\t") and name.lower() == "bearer":
        token = _TOKEN.match(text, end)
        return None if token is None else (token.start(1), token.end(1), REDACTED)
    return None


def _named_secrets(text: str) -> list[_Found]:
    """The values after names that could be a secret's: each hit of a stem is widened to the name
    around it, and only a name followed by `=`, `':` / `":` or (bearer) a token is judged."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters lower to two; positions must stay the same
        lowered = text.translate(_ASCII_LOWER)
    found: list[_Found] = []
    seen: set[int] = set()
    for stem in _STEMS:
        position = lowered.find(stem)
        while position >= 0:
            start, floor = position, max(position - _MAX_NAME, 0)
            while start > floor and text[start - 1] in _NAME_CHARS:
                start -= 1
            tail = _NAME_TAIL.match(text, position)
            end = position if tail is None else tail.end()
            if start not in seen:
                seen.add(start)
                secret = _value_after(text, text[start:end], start, end)
                if secret is not None:
                    found.append(secret)
            position = lowered.find(stem, max(end, position + 1))
    return found


def _may_follow_a_name(text: str) -> bool:
    """Whether `text` holds what follows a secret's name: `=`, `":` / `':`, or the word bearer."""
    return "=" in text or '":' in text or "':" in text or "earer" in text or "EARER" in text


def redact_text(text: str) -> str:
    """`text` with the secrets rule 3 finds replaced by `[redacted]` (the same object when none is)."""
    found = _url_passwords(text) if "@" in text and "://" in text else []
    if _may_follow_a_name(text):
        found += _named_secrets(text)
    if not found:
        return text
    parts: list[str] = []
    done = 0
    for start, end, replacement in sorted(found):
        if start < done:
            continue  # inside a secret already replaced
        parts += [text[done:start], replacement]
        done = end
    parts.append(text[done:])
    return "".join(parts)


# -- attributes ------------------------------------------------------------------------------------

# The fields of a `{"name": ..., "value": ...}` pair, as Kubernetes, AWS and HAR spell them.
_PAIR_NAME_FIELDS = ("name", "Name", "NAME", "key", "Key", "KEY")
_PAIR_VALUE_FIELDS = ("value", "Value", "VALUE")
_ATOMS = frozenset((int, float, bool))
_STRUCTURED = (str, dict, list)  # a tuple: `isinstance` with `str | dict | list` builds the union each call


def _hides(item: Any) -> bool:
    """Whether a value under a secret name is redacted: text and structures are, numbers and
    booleans (counts, switches) are not."""
    return isinstance(item, _STRUCTURED) and item != REDACTED


def _text_may_hold_secret(text: str) -> bool:
    """A cheap first look (each test runs in C): a secret in text follows `://`, `=`, `:` or bearer."""
    return ":" in text or "=" in text or "earer" in text or "EARER" in text


def _pair_value_field(mapping: dict[str, Any]) -> str | None:
    """The value field of a `{"name": <secret name>, "value": ...}` mapping, or None."""
    for value_field in _PAIR_VALUE_FIELDS:
        if value_field in mapping:
            break
    else:
        return None
    if not _hides(mapping[value_field]):
        return None
    for name_field in _PAIR_NAME_FIELDS:
        name = mapping.get(name_field)
        if isinstance(name, str) and looks_secret(name):
            return value_field
    return None


def _redacted_mapping(value: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    changed = False
    result: dict[str, Any] = {}
    hidden = _pair_value_field(value)
    for key, item in value.items():
        new_key = redact_text(key) if isinstance(key, str) and _text_may_hold_secret(key) else key
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
    result = list(value)
    changed = options = False
    pairs = bool(value)
    for index, item in enumerate(value):
        if item is None or type(item) in _ATOMS:  # numbers: nothing to look at, and no pair list
            pairs = False
            continue
        result[index], item_changed = _redacted(item)
        changed = changed or item_changed
        pairs = pairs and _is_pair(item)
        options = options or _is_option(item)
    if pairs:  # [["Authorization", "Bearer ..."], ...]
        for index, (name, item) in enumerate(value):
            if looks_secret(name) and _hides(item):
                result[index] = [result[index][0], REDACTED]
                changed = True
    if options:  # ["--api-key", "sk-...", ...]
        for index in range(len(value) - 1):
            option, item = value[index], value[index + 1]
            if (
                _is_option(option)
                and looks_secret(option.lstrip("-"))
                and _hides(item)
                and not _is_option(item)
            ):
                result[index + 1] = REDACTED
                changed = True
    return (result, True) if changed else (value, False)


def _redacted(value: Any) -> tuple[Any, bool]:
    if value is None or type(value) in _ATOMS:
        return value, False
    if isinstance(value, str):
        if not _text_may_hold_secret(value):
            return value, False
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
