"""Configuration: mappings and `UnifiedConfig`, profiles, the workspace argument and environment overrides."""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta, ContextaError
from contexta.config import PROFILES, CaptureConfig, UnifiedConfig, WorkspaceConfig, load_config
from contexta.errors import ConfigurationError, ValidationError


@pytest.fixture(autouse=True)
def _no_contexta_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the caller's own CONTEXTA_* variables out of these tests."""
    for key in list(os.environ):
        if key.startswith("CONTEXTA_"):
            monkeypatch.delenv(key)


# -- mapping configs -----------------------------------------------------------------------------


def test_mapping_config_sets_project_and_capture_settings(tmp_path: Path) -> None:
    ctx = Contexta(
        workspace=tmp_path / ".contexta",
        config={
            "project_name": "iris-svm",
            "capture": {
                "queue_capacity": 256,
                "max_batch_size": 32,
                "flush_interval_s": 0.05,
                "overflow": "drop_newest",
                "block_timeout_s": 2.0,
                "exit_timeout_s": 1.0,
                "durability": "fsync",
            },
        },
    )
    try:
        assert ctx.project_name == "iris-svm"
        capture = ctx.config.capture
        assert (capture.queue_capacity, capture.max_batch_size, capture.flush_interval_s) == (256, 32, 0.05)
        assert (capture.overflow, capture.durability) == ("drop_newest", "fsync")
        assert (capture.block_timeout_s, capture.exit_timeout_s) == (2.0, 1.0)
    finally:
        ctx.close()


def test_capture_defaults() -> None:
    capture = load_config({"project_name": "p"}, environ={}).capture
    assert capture.overflow == "block"
    assert capture.durability == "flush"
    assert capture.persist is True
    assert capture.queue_capacity >= 10_000  # "in the tens of thousands"
    assert capture == CaptureConfig()


@pytest.mark.parametrize("key", ["colour", "projectname", "sinks", "Project_Name"])
def test_unknown_top_level_key_is_named_in_the_error(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p", key: "x"})
    assert excinfo.value.code == "config_key_unknown"
    assert key in excinfo.value.message


@pytest.mark.parametrize("key", ["queue_size", "overflow_policy", "fsync"])
def test_unknown_capture_key_is_named_in_the_error(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p", "capture": {key: 1}})
    assert excinfo.value.code == "config_key_unknown"
    assert key in excinfo.value.message


def test_unknown_workspace_key_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        load_config({"workspace": {"root_path": tmp_path, "data_dir": tmp_path}}, environ={})
    assert excinfo.value.code == "config_key_unknown"
    assert "data_dir" in excinfo.value.message


@pytest.mark.parametrize("overflow", ["drop", "Block", "", None, 1])
def test_bad_overflow_value_is_rejected(tmp_path: Path, overflow: Any) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        Contexta(
            workspace=tmp_path / ".contexta", config={"project_name": "p", "capture": {"overflow": overflow}}
        )
    assert excinfo.value.code == "config_value_invalid"
    assert "overflow" in excinfo.value.message


@pytest.mark.parametrize("overflow", ["block", "drop_newest", "drop_oldest"])
def test_every_overflow_policy_is_accepted(overflow: str) -> None:
    assert load_config({"capture": {"overflow": overflow}}, environ={}).capture.overflow == overflow


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("queue_capacity", 0),
        ("queue_capacity", -5),
        ("queue_capacity", "128"),
        ("queue_capacity", 1.5),
        ("max_batch_size", 0),
        ("flush_interval_s", 0),
        ("flush_interval_s", -0.1),
        ("block_timeout_s", "1"),
        ("exit_timeout_s", True),
        ("durability", "sometimes"),
        ("persist", "yes"),
    ],
)
def test_bad_capture_values_are_rejected(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        load_config({"capture": {key: value}}, environ={})
    assert key in excinfo.value.message


def test_config_must_be_a_mapping_or_unified_config() -> None:
    with pytest.raises(ConfigurationError):
        load_config(["project_name", "p"], environ={})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        load_config({"capture": 5}, environ={})


@pytest.mark.parametrize("name", ["", "!!!", "x" * 64])
def test_project_name_must_give_a_valid_ref_component(name: str) -> None:
    with pytest.raises(ConfigurationError):
        UnifiedConfig(project_name=name)


def test_configuration_error_is_a_contexta_error() -> None:
    with pytest.raises(ContextaError):
        load_config({"nope": 1}, environ={})


# -- workspace -----------------------------------------------------------------------------------


def test_explicit_workspace_applies_when_the_mapping_has_none(tmp_path: Path) -> None:
    ctx = Contexta(workspace=tmp_path / "from-argument", config={"project_name": "p"})
    try:
        assert ctx.workspace == tmp_path / "from-argument"
    finally:
        ctx.close()


@pytest.mark.parametrize("form", ["path", "mapping", "WorkspaceConfig"])
def test_workspace_in_the_mapping_wins_over_the_argument(tmp_path: Path, form: str) -> None:
    root = tmp_path / "from-mapping"
    value: Any = {
        "path": str(root),
        "mapping": {"root_path": root},
        "WorkspaceConfig": WorkspaceConfig(root),
    }[form]
    ctx = Contexta(workspace=tmp_path / "from-argument", config={"project_name": "p", "workspace": value})
    try:
        assert ctx.workspace == root
        assert (root / "cache" / "capture").is_dir()
        assert not (tmp_path / "from-argument").exists()
    finally:
        ctx.close()


def test_unified_config_is_accepted_by_contexta(tmp_path: Path) -> None:
    config = UnifiedConfig(
        project_name="churn-prediction", workspace=WorkspaceConfig(root_path=tmp_path / ".contexta")
    )
    ctx = Contexta(config=config)
    try:
        assert ctx.project_name == "churn-prediction"
        assert ctx.workspace == tmp_path / ".contexta"
        assert ctx.config.workspace.root_path == tmp_path / ".contexta"
        assert ctx.config.capture == CaptureConfig()
    finally:
        ctx.close()


def test_unified_config_workspace_wins_over_the_argument(tmp_path: Path) -> None:
    config = UnifiedConfig(project_name="p", workspace=WorkspaceConfig(root_path=tmp_path / "configured"))
    ctx = Contexta(workspace=tmp_path / "argument", config=config)
    try:
        assert ctx.workspace == tmp_path / "configured"
    finally:
        ctx.close()


def test_relative_workspace_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ctx = Contexta(workspace=".contexta", config={"project_name": "iris-svm"})
    try:
        assert ctx.workspace.is_absolute()
        assert ctx.workspace.resolve() == (tmp_path / ".contexta").resolve()
        assert ctx.project_name == "iris-svm"
        # moving elsewhere afterwards does not move the workspace
        monkeypatch.chdir(tmp_path.parent)
        assert ctx.workspace.resolve() == (tmp_path / ".contexta").resolve()
    finally:
        ctx.close()


def test_contexta_open_is_an_alias(tmp_path: Path) -> None:
    ctx = Contexta.open(workspace=tmp_path / ".contexta", config={"project_name": "p"})
    try:
        assert isinstance(ctx, Contexta)
        assert ctx.project_name == "p"
    finally:
        ctx.close()


def test_config_is_immutable() -> None:
    config = load_config({"project_name": "p"}, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.project_name = "q"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.capture.queue_capacity = 1  # type: ignore[misc]


# -- environment overrides -----------------------------------------------------------------------


def test_environment_overrides_are_applied() -> None:
    config = load_config(
        {"project_name": "p"},
        environ={"CONTEXTA_CAPTURE_QUEUE_CAPACITY": "128", "CONTEXTA_PROJECT_NAME": "envproj"},
    )
    assert config.capture.queue_capacity == 128
    assert config.project_name == "envproj"


def test_environment_overrides_win_over_code_and_profile() -> None:
    config = load_config(
        {"capture": {"overflow": "drop_newest", "durability": "flush"}},
        profile="durable",
        environ={
            "CONTEXTA_CAPTURE_OVERFLOW": "drop_oldest",
            "CONTEXTA_CAPTURE_DURABILITY": "fsync",
            "CONTEXTA_CAPTURE_FLUSH_INTERVAL_S": "0.5",
            "CONTEXTA_CAPTURE_PERSIST": "false",
        },
    )
    assert config.capture.overflow == "drop_oldest"
    assert config.capture.durability == "fsync"
    assert config.capture.flush_interval_s == 0.5
    assert config.capture.persist is False


def test_workspace_environment_override(tmp_path: Path) -> None:
    config = load_config(
        {"project_name": "p"}, environ={"CONTEXTA_WORKSPACE_ROOT_PATH": str(tmp_path / "env")}
    )
    assert config.workspace.root == tmp_path / "env"


def test_contexta_reads_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTA_CAPTURE_QUEUE_CAPACITY", "128")
    monkeypatch.setenv("CONTEXTA_PROJECT_NAME", "envproj")
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"})
    try:
        assert ctx.config.capture.queue_capacity == 128
        assert ctx.project_name == "envproj"
    finally:
        ctx.close()


@pytest.mark.parametrize("key", ["CONTEXTA_FOO_BAR", "CONTEXTA_CAPTURE_QUEUE_SIZE", "CONTEXTA_WORKSPACE"])
def test_unknown_environment_variable_is_ignored_with_a_warning(key: str) -> None:
    with pytest.warns(Warning, match=key):
        config = load_config({"project_name": "p"}, environ={key: "1"})
    assert config == load_config({"project_name": "p"}, environ={})


def test_other_environment_variables_are_ignored_silently() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = load_config(environ={"PATH": "/usr/bin", "CONTEXTAFOO": "1", "HOME": "/root"})
    assert config == load_config(environ={})


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("CONTEXTA_CAPTURE_QUEUE_CAPACITY", "lots"),
        ("CONTEXTA_CAPTURE_QUEUE_CAPACITY", "1.5"),
        ("CONTEXTA_CAPTURE_MAX_BATCH_SIZE", ""),
        ("CONTEXTA_CAPTURE_FLUSH_INTERVAL_S", "soon"),
        ("CONTEXTA_CAPTURE_PERSIST", "maybe"),
    ],
)
def test_unparseable_environment_value_is_config_env_invalid(key: str, raw: str) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        load_config({"project_name": "p"}, environ={key: raw})
    assert excinfo.value.code == "config_env_invalid"
    assert key in excinfo.value.message


def test_bad_environment_value_fails_contexta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTA_CAPTURE_QUEUE_CAPACITY", "lots")
    with pytest.raises(ConfigurationError) as excinfo:
        Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"})
    assert excinfo.value.code == "config_env_invalid"


# -- profiles ------------------------------------------------------------------------------------


def test_durable_profile_fsyncs(tmp_path: Path) -> None:
    assert "durable" in PROFILES
    assert load_config(profile="durable", environ={}).capture.durability == "fsync"
    ctx = Contexta(workspace=tmp_path / ".contexta", profile="durable", config={"project_name": "p"})
    try:
        assert ctx.config.capture.durability == "fsync"
    finally:
        ctx.close()


def test_code_config_wins_over_the_profile() -> None:
    config = load_config({"capture": {"durability": "flush"}}, profile="durable", environ={})
    assert config.capture.durability == "flush"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_named_profile_loads(profile: str) -> None:
    assert isinstance(load_config(profile=profile, environ={}), UnifiedConfig)


@pytest.mark.parametrize("profile", ["fast", "Durable", ""])
def test_unknown_profile_is_config_profile_unknown(tmp_path: Path, profile: str) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        Contexta(workspace=tmp_path / ".contexta", profile=profile, config={"project_name": "p"})
    assert excinfo.value.code == "config_profile_unknown"


def test_the_workspace_names_the_files_contexta_writes(tmp_path: Path) -> None:
    """`WorkspaceConfig.store_file` and `capture_log_file(family)` are where a capture really went,
    also with the store and the cache moved out of the workspace root."""
    config = {
        "project_name": "p",
        "workspace": {"metadata_path": str(tmp_path / "meta"), "cache_path": str(tmp_path / "cache")},
    }
    with Contexta(workspace=tmp_path / "ws", config=config) as ctx:
        with ctx.run("r") as run:
            run.metric("loss", 0.25)
        layout = ctx.config.workspace
    assert layout.store_file.parent == tmp_path / "meta" and layout.store_file.is_file()
    record_log = layout.capture_log_file("record").read_text()
    assert '"metric_key":"loss"' in record_log
    assert layout.capture_log_file("CONTEXT").read_text().count(run.ref) >= 2  # opened, then closed
    with pytest.raises(ValidationError) as refused:
        layout.capture_log_file("metrics")
    assert refused.value.code == "family_unknown"


def test_store_and_artifact_urls_come_from_config_or_the_environment() -> None:
    config = load_config({"store": {"url": "postgresql://team@db.internal/contexta"}})
    assert config.store.url == "postgresql://team@db.internal/contexta"
    assert config.artifacts.url is None  # unset: the workspace's own artifacts directory
    from_env = load_config(
        environ={"CONTEXTA_STORE_URL": "postgres://db/x", "CONTEXTA_ARTIFACTS_URL": "s3://bucket/runs"}
    )
    assert (from_env.store.url, from_env.artifacts.url) == ("postgres://db/x", "s3://bucket/runs")
    assert load_config({"store": "postgresql://db/y"}).store.url == "postgresql://db/y"  # shorthand
    assert load_config(from_env).store.url == "postgres://db/x"  # a UnifiedConfig round-trips


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"store": {"url": "mysql://root:hunter2@db/x"}}, "store.url"),
        ({"store": {"url": ""}}, "store.url"),
        ({"artifacts": {"url": "/data/artifacts"}}, "artifacts.url"),
        ({"artifacts": {"url": "gs://bucket"}}, "artifacts.url"),
    ],
)
def test_a_url_of_the_wrong_kind_is_refused_without_echoing_its_password(config: Any, key: str) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        load_config(config)
    assert excinfo.value.code == "config_value_invalid"
    assert excinfo.value.details["key"] == key
    assert "hunter2" not in str(excinfo.value)
