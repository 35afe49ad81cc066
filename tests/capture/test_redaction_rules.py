"""The redaction rules, both sides of each: what names a secret and is hidden, and the ordinary data
that looks like it and is kept (contexta/capture/_scopes/_redaction.py states the rules)."""

from __future__ import annotations

from typing import Any

import pytest

from contexta.capture._scopes import _redaction
from contexta.capture._scopes._redaction import REDACTED, looks_secret, redact_secrets, redact_text

SECRET = "s3cr3t-VALUE-42"


@pytest.mark.parametrize(
    "key",
    [
        "openai_key",
        "OPENAI_KEY",
        "openaiKey",
        "OPENAIKey",
        "hf_key",
        "signing_key",
        "encryption-key",
        "stripe_keys",
        "passwords",
        "private_key",
        "aws_secret_access_key",
        "aws_access_key_id",
        "client_secret",
        "clientSecret",
        "x-api-key",
        "X-API-KEY",
        "bearer",
        "cookie",
        "Set-Cookie",
        "session_token",
        "access_token",
        "refresh_token",
        "HF_TOKEN",
        "githubToken",
        "webhook_secret",
        "db_password",
        "PGPASSWORD",
        "MYSQL_PWD",
        "auth",
        "proxy-authorization",
        "secret_key_base",
        "password_hash",
    ],
)
def test_keys_that_name_secrets(key: str) -> None:
    assert looks_secret(key)


@pytest.mark.parametrize(
    "key",
    [
        "keyboard",
        "monkey",
        "key",
        "keys",
        "key_count",
        "tokenizer",
        "tokenizer_name",
        "max_tokens",
        "num_tokens",
        "prompt_tokens",
        "token_count",
        "passage",
        "passes",
        "author",
        "keyword",
        "metric_key",
        "sort_keys",
        "primary_key",
        "partition_key",
        "input_key",
        "label_key",
        "public_key",
        "s3_key",
        "token_type",
        "password_length",
        "password_file",
        "secret_name",
        "api_key_env",
        "auth_method",
    ],
)
def test_ordinary_keys_that_look_like_secrets(key: str) -> None:
    assert not looks_secret(key)


def test_values_under_secret_keys_are_hidden_but_numbers_and_booleans_kept() -> None:
    attributes = {
        "openai_key": SECRET,
        "PGPASSWORD": SECRET,
        "cookie": {"session": SECRET},
        "passwords": [SECRET],
        "token": 3,
        "auth_enabled": True,
        "prompt_tokens": 12,
        "token_count": "7",
        "tokenizer": "bpe",
        "input_key": "question",
        "keyboard": "qwerty",
    }

    assert redact_secrets(attributes) == {
        "openai_key": REDACTED,
        "PGPASSWORD": REDACTED,
        "cookie": REDACTED,
        "passwords": REDACTED,
        "token": 3,
        "auth_enabled": True,
        "prompt_tokens": 12,
        "token_count": "7",
        "tokenizer": "bpe",
        "input_key": "question",
        "keyboard": "qwerty",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgresql://user:" + SECRET + "@db.internal:5432/prod",
            f"postgresql://user:{REDACTED}@db.internal:5432/prod",
        ),
        (
            "https://bot:" + SECRET + "@github.com/org/repo.git",
            f"https://bot:{REDACTED}@github.com/org/repo.git",
        ),
        ("redis://:" + SECRET + "@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0"),
        ("mysql://u:p@ss" + SECRET + "@host/db", f"mysql://u:{REDACTED}@host/db"),
        ("https://ghp_" + SECRET + "abcdef@github.com/o/r", f"https://{REDACTED}@github.com/o/r"),
        (
            "GET https://api.example.com/v1/items?token=" + SECRET + "&api_key=" + SECRET + "&page=2 failed",
            f"GET https://api.example.com/v1/items?token={REDACTED}&api_key={REDACTED}&page=2 failed",
        ),
        (
            "https://bucket.s3.amazonaws.com/x?X-Amz-Signature=" + SECRET + "&X-Amz-Expires=60",
            f"https://bucket.s3.amazonaws.com/x?X-Amz-Signature={REDACTED}&X-Amz-Expires=60",
        ),
        ("OPENAI_API_KEY=" + SECRET, f"OPENAI_API_KEY={REDACTED}"),
        ("train.py --lr 0.1 --api-key=" + SECRET, f"train.py --lr 0.1 --api-key={REDACTED}"),
        ('    client = OpenAI(api_key="' + SECRET + '")', f'    client = OpenAI(api_key="{REDACTED}")'),
        ("{'password': '" + SECRET + "', 'user': 'me'}", f"{{'password': '{REDACTED}', 'user': 'me'}}"),
        ('{"client_secret": "' + SECRET + '"}', f'{{"client_secret": "{REDACTED}"}}'),
        ("Authorization: Bearer " + SECRET, f"Authorization: Bearer {REDACTED}"),
    ],
)
def test_credentials_inside_text_are_hidden(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # redacting twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "ssh://git@github.com/org/repo.git",
        "https://example.com/a?page=2&sort=desc",
        "mailto me@example.com at 12:00:00",
        "max_tokens=256 token_count=12 lr=0.1",
        "the bearer of good news",
        "run:p.baseline ended at 2025-01-01T00:00:00Z",
        "{'tokenizer': 'bpe', 'author': 'me'}",
        "a == b, x=y",
    ],
)
def test_ordinary_text_is_left_as_it_is(text: str) -> None:
    assert redact_text(text) is text


def test_any_key_holding_a_url_with_credentials_is_redacted_in_place() -> None:
    attributes = {
        "db": "postgresql://alice:" + SECRET + "@db.internal/prod",
        "remotes": ["https://alice:" + SECRET + "@github.com/o/r.git", "ssh://git@github.com/o/r.git"],
    }

    assert redact_secrets(attributes) == {
        "db": f"postgresql://alice:{REDACTED}@db.internal/prod",
        "remotes": [f"https://alice:{REDACTED}@github.com/o/r.git", "ssh://git@github.com/o/r.git"],
    }


def test_name_value_pairs_are_redacted_by_their_name() -> None:
    attributes: dict[str, Any] = {
        "env": [
            {"name": "OPENAI_API_KEY", "value": SECRET},
            {"name": "LEARNING_RATE", "value": "0.1"},
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
        ],
        "aws_tags": [{"Key": "password", "Value": SECRET}, {"Key": "team", "Value": "vision"}],
        "headers": [["Authorization", "Bearer " + SECRET], ["Accept", "application/json"]],
        "environment": ["OPENAI_API_KEY=" + SECRET, "CUDA_VISIBLE_DEVICES=0"],
        "argv": ["train.py", "--hf-token", SECRET, "--epochs", "3"],
        "counts": [["token", 3]],
    }

    assert redact_secrets(attributes) == {
        "env": [
            {"name": "OPENAI_API_KEY", "value": REDACTED},
            {"name": "LEARNING_RATE", "value": "0.1"},
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
        ],
        "aws_tags": [{"Key": "password", "Value": REDACTED}, {"Key": "team", "Value": "vision"}],
        "headers": [["Authorization", REDACTED], ["Accept", "application/json"]],
        "environment": [f"OPENAI_API_KEY={REDACTED}", "CUDA_VISIBLE_DEVICES=0"],
        "argv": ["train.py", "--hf-token", REDACTED, "--epochs", "3"],
        "counts": [["token", 3]],
    }


def test_attributes_without_secrets_are_returned_as_they_are() -> None:
    attributes = {"lr": 0.1, "layers": [64, 32], "url": "https://example.com/data.csv", "note": "a=b"}

    assert redact_secrets(attributes) is attributes


def test_text_is_searched_for_every_name_the_key_rule_knows() -> None:
    """Text is searched for a few stems, not every secret word: each word must hold one."""
    words = [*_redaction._SECRET_WORDS, *_redaction._SECRET_ENDINGS, *_redaction._KEY_WORDS, "sig"]

    assert [word for word in words if not any(stem in word for stem in _redaction._STEMS)] == []
