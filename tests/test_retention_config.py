"""`capture.retention` and `capture.min_free_bytes`: accepted from a mapping, a string, a
RetentionPolicy and the environment; refused with `config_value_invalid` and a message saying what
to write instead."""

from __future__ import annotations

import pytest

from contexta.config import RetentionPolicy, load_config
from contexta.errors import ConfigurationError


def test_the_default_keeps_everything_and_warns_below_one_gib() -> None:
    config = load_config(environ={})

    assert config.capture.retention == RetentionPolicy()
    assert config.capture.retention.keeps_everything
    assert config.capture.min_free_bytes == 1 << 30


@pytest.mark.parametrize(
    "given",
    [
        "age=30d,size=50GB,executions=5",
        " age = 30d , size=50GB ,executions=5 ",
        {"age": "30d", "size": "50GB", "executions": 5},
        {"age": 30 * 86400, "size": 50 * 10**9, "executions": "5"},
        RetentionPolicy(max_age_s=30 * 86400, max_bytes=50 * 10**9, keep_executions=5),
    ],
)
def test_a_policy_reads_the_same_in_every_form(given: object) -> None:
    policy = load_config({"capture": {"retention": given}}, environ={}).capture.retention

    assert policy == RetentionPolicy(max_age_s=2_592_000.0, max_bytes=50_000_000_000, keep_executions=5)
    assert policy.describe() == "age=30d,size=50000000000,executions=5"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("age=12h", RetentionPolicy(max_age_s=43_200.0)),
        ("age=2w", RetentionPolicy(max_age_s=1_209_600.0)),
        ("age=90m", RetentionPolicy(max_age_s=5_400.0)),
        ("size=500MiB", RetentionPolicy(max_bytes=500 * 2**20)),
        ("size=1.5GB", RetentionPolicy(max_bytes=1_500_000_000)),
        ("size=4096", RetentionPolicy(max_bytes=4096)),
        ("executions=1", RetentionPolicy(keep_executions=1)),
        ("keep", RetentionPolicy()),
        ("", RetentionPolicy()),
    ],
)
def test_units(text: str, expected: RetentionPolicy) -> None:
    assert load_config({"capture": {"retention": text}}, environ={}).capture.retention == expected


def test_the_environment_sets_both() -> None:
    config = load_config(
        environ={"CONTEXTA_CAPTURE_RETENTION": "executions=3,age=7d", "CONTEXTA_CAPTURE_MIN_FREE_BYTES": "0"}
    )

    assert config.capture.retention == RetentionPolicy(max_age_s=604_800.0, keep_executions=3)
    assert config.capture.min_free_bytes == 0


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("age=30", "needs a unit"),
        ("age=0d", "longer than zero"),
        ("size=5XB", "takes B, KB"),
        ("size=0", "at least one byte"),
        ("executions=0", "latest execution of a name is always kept"),
        ("executions=two", "whole number"),
        ("forever=1", "unknown limit forever"),
        ("age", "name=value pairs"),
        ("age=1d,age=2d", "given twice"),
        (12, "must be a string"),
        ({"age": [1]}, "duration"),
    ],
)
def test_bad_policies_say_what_is_wrong(given: object, says: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_config({"capture": {"retention": given}}, environ={})

    assert raised.value.code == "config_value_invalid"
    assert says in raised.value.message
    assert raised.value.details["key"].startswith("capture.retention")


def test_a_bad_policy_in_the_environment_is_refused() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_config(environ={"CONTEXTA_CAPTURE_RETENTION": "size=lots"})

    assert raised.value.code == "config_value_invalid"


@pytest.mark.parametrize("bad", [-1, 1.5, "1GiB", True])
def test_min_free_bytes_is_a_whole_number_of_bytes(bad: object) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_config({"capture": {"min_free_bytes": bad}}, environ={})

    assert raised.value.code == "config_value_invalid"
    assert raised.value.details == {"key": "capture.min_free_bytes"}
