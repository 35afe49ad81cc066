"""Configuration: typed sections with defaults, mapping input, named profiles and environment overrides.

Resolution order (later wins): defaults, the profile, the mapping or `UnifiedConfig` given in code,
then `CONTEXTA_<SECTION>_<FIELD>` environment variables, so an operator can change capture behaviour
of a job without editing it.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from contexta._retention import RetentionPolicy, retention_policy
from contexta.contract._refs import normalize_name
from contexta.errors import ConfigurationError, ValidationError

__all__ = [
    "CAPTURE_LOG_FILES",
    "PROFILES",
    "STORE_FILE_NAME",
    "ArtifactsConfig",
    "CaptureConfig",
    "RetentionPolicy",
    "StoreConfig",
    "UnifiedConfig",
    "WorkspaceConfig",
    "load_config",
    "redacted_url",
]

OVERFLOW_POLICIES = ("block", "drop_newest", "drop_oldest")
DURABILITY_MODES = ("flush", "fsync")
NON_FINITE_POLICIES = ("record", "raise")
# The shortest system-metrics sampling interval (capture/_system_metrics.py): shorter would be a busy loop.
MIN_SYSTEM_METRICS_INTERVAL_S = 0.01

# The names of a workspace's files, given here once (their directories are configurable, below).
# The store, in `metadata_dir`:
STORE_FILE_NAME = "contexta.db"
# The capture log's files in `capture_dir`, by record family: scopes first, the order a repair reads
# them in when times tie (a record never comes before the scope it belongs to).
CAPTURE_LOG_FILES: Mapping[str, str] = MappingProxyType(
    {"CONTEXT": "context.jsonl", "RECORD": "record.jsonl", "ARTIFACT": "artifact.jsonl"}
)


def capture_log_file_name(family: str) -> str:
    """The name of the capture log's file of a record family; ValidationError for another name."""
    try:
        return CAPTURE_LOG_FILES[family.upper()]
    except (KeyError, AttributeError):
        raise ValidationError(
            f"unknown record family {family!r}; use one of {', '.join(CAPTURE_LOG_FILES)}",
            code="family_unknown",
        ) from None


def capture_log_family(file_name: str) -> str | None:
    """The record family whose active capture-log file is named `file_name`, or None."""
    for family, name in CAPTURE_LOG_FILES.items():
        if name == file_name:
            return family
    return None


@dataclass(frozen=True, slots=True)
class WorkspaceConfig:
    """Where a workspace keeps things; unset paths live under `root_path`."""

    root_path: Path = Path(".contexta")
    metadata_path: Path | None = None
    records_path: Path | None = None
    artifacts_path: Path | None = None
    reports_path: Path | None = None
    exports_path: Path | None = None
    cache_path: Path | None = None
    create_missing_dirs: bool = True

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name != "create_missing_dirs" and value is not None:
                if not isinstance(value, (str, os.PathLike)):
                    raise ConfigurationError(
                        f"workspace.{item.name} must be a path, got {value!r}",
                        code="config_value_invalid",
                        details={"key": f"workspace.{item.name}"},
                    )
                # Absolute once, here: a later chdir must not move the workspace under the running sinks.
                object.__setattr__(self, item.name, Path(os.path.abspath(value)))

    @property
    def root(self) -> Path:
        """The absolute workspace root."""
        return Path(os.path.abspath(self.root_path))

    def _under_root(self, value: Path | None, default: str) -> Path:
        return Path(os.path.abspath(value)) if value is not None else self.root / default

    @property
    def cache_dir(self) -> Path:
        return self._under_root(self.cache_path, "cache")

    @property
    def capture_dir(self) -> Path:
        return self.cache_dir / "capture"

    @property
    def outbox_dir(self) -> Path:
        return self.cache_dir / "outbox"

    @property
    def live_dir(self) -> Path:
        """Where each capturing process holds a lock per open run (see contexta/_liveness.py)."""
        return self.cache_dir / "live"

    def capture_log_file(self, family: str) -> Path:
        """The capture log's file of a record family (`RECORD`, `ARTIFACT` or `CONTEXT`)."""
        return self.capture_dir / capture_log_file_name(family)

    @property
    def metadata_dir(self) -> Path:
        return self._under_root(self.metadata_path, "metadata")

    @property
    def store_file(self) -> Path:
        """The canonical store (SQLite)."""
        return self.metadata_dir / STORE_FILE_NAME

    @property
    def records_dir(self) -> Path:
        return self._under_root(self.records_path, "records")

    @property
    def artifacts_dir(self) -> Path:
        return self._under_root(self.artifacts_path, "artifacts")

    @property
    def reports_dir(self) -> Path:
        return self._under_root(self.reports_path, "reports")

    @property
    def exports_dir(self) -> Path:
        return self._under_root(self.exports_path, "exports")


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """How the capture pipeline trades memory, latency and loss.

    `block_timeout_s` bounds how long a `block` caller waits on a stuck writer before its record is
    dropped (counted, marked degraded, warned): a dead disk must not freeze a training loop forever.
    """

    # Six full batches. With the lanes' eight, a burst of about 200,000 calls fits while the capture
    # log's writer process starts (tens of ms, during which nothing is written): at 65,536 such a
    # burst filled the queue and the loop blocked for milliseconds per call (docs/benchmarks.md,
    # "A caller that never stalls"). Still "in the tens of thousands" (SPEC section 4).
    queue_capacity: int = 98_304
    # The most records one batch takes from the queue. The writer wakes at a few hundred, so only a
    # backlog makes batches this big; then each batch's fixed costs (a store transaction, a few
    # statements, a message to the log-writer process) are spread over more records: 100 async tasks
    # captured 157-175k records/s at 4,096 and 251-254k at 16,384.
    max_batch_size: int = 16_384
    flush_interval_s: float = 0.2
    overflow: str = "block"
    durability: str = "flush"
    persist: bool = True
    block_timeout_s: float = 30.0
    exit_timeout_s: float = 5.0
    # Values of attribute keys that name secrets (api_key, password, token, ...) are captured as
    # "[redacted]" (capture/_scopes/_redaction.py); False keeps them as given.
    redact_secrets: bool = True
    # Under sustained load the capture log's metric lines are assembled and appended by a child
    # process (capture/_log/_process.py); False keeps all writing in this process.
    log_process: bool = True
    # `metric()` runs as compiled code (capture/_scopes/_metric_call.c) when the package was built with a C
    # compiler; False uses the Python method alone. Both apply the same rules and queue the same items.
    compiled_metric: bool = True
    # A NaN or infinite metric value is recorded (and read back as the same float) by default: a
    # diverging loss must never kill the job that logs it. "raise" refuses it at the call instead.
    non_finite: str = "record"
    # On SIGTERM and SIGHUP (how Slurm, Kubernetes and `docker stop` end a job) deliver what was
    # captured and close open scopes `cancelled` before the process ends (capture/_scopes/_signals.py);
    # False leaves both signals alone.
    handle_signals: bool = True
    # The capture log's active file (`record.jsonl`, ...) is sealed into a numbered segment and
    # compressed with zstd (about 35 times smaller) once it holds `segment_bytes`, or once its first
    # line is `segment_age_s` old (capture/_log/_segments.py); 0 turns either limit off.
    segment_bytes: int = 16 * 1024 * 1024
    segment_age_s: float = 3600.0
    # Which earlier executions `contexta gc` reclaims (contexta/_retention.py): everything is kept by
    # default. A mapping, a RetentionPolicy or a string (CONTEXTA_CAPTURE_RETENTION="age=30d,size=50GB").
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    # Capture warns (CaptureWarning, once per crossing) when the capture log's file system has less
    # free space than this, before anything is lost (capture/_sinks/_disk_space.py); 0 turns it off.
    min_free_bytes: int = 1 << 30
    # Every run samples CPU, memory, disk, network (psutil) and GPUs (NVML) this often, in seconds, into
    # its `system` stage (capture/_system_metrics.py); 0 (the default) is off unless a run asks for it
    # with `ctx.run(..., system_metrics=True)`, which then samples every second.
    system_metrics_interval_s: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "retention", retention_policy(self.retention))
        interval = self.system_metrics_interval_s
        if (
            isinstance(interval, bool)
            or not isinstance(interval, (int, float))
            or not (interval == 0 or MIN_SYSTEM_METRICS_INTERVAL_S <= interval < float("inf"))
        ):
            raise ConfigurationError(
                f"capture.system_metrics_interval_s must be 0 (off) or a number of seconds of at least "
                f"{MIN_SYSTEM_METRICS_INTERVAL_S}, got {interval!r}",
                code="config_value_invalid",
                details={"key": "capture.system_metrics_interval_s"},
            )
        if type(self.min_free_bytes) is not int or self.min_free_bytes < 0:
            raise ConfigurationError(
                f"capture.min_free_bytes must be a whole number of bytes (0 turns the low-disk warning "
                f"off), got {self.min_free_bytes!r}",
                code="config_value_invalid",
                details={"key": "capture.min_free_bytes"},
            )
        for name in ("queue_capacity", "max_batch_size"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigurationError(
                    f"capture.{name} must be a positive int, got {value!r}",
                    code="config_value_invalid",
                    details={"key": f"capture.{name}"},
                )
        if type(self.segment_bytes) is not int or self.segment_bytes < 0:
            raise ConfigurationError(
                f"capture.segment_bytes must be a whole number of bytes (0 for no size limit), "
                f"got {self.segment_bytes!r}",
                code="config_value_invalid",
                details={"key": "capture.segment_bytes"},
            )
        if (
            isinstance(self.segment_age_s, bool)
            or not isinstance(self.segment_age_s, (int, float))
            or not self.segment_age_s >= 0
        ):
            raise ConfigurationError(
                f"capture.segment_age_s must be a number of seconds (0 for no age limit), "
                f"got {self.segment_age_s!r}",
                code="config_value_invalid",
                details={"key": "capture.segment_age_s"},
            )
        for name in ("flush_interval_s", "block_timeout_s", "exit_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigurationError(
                    f"capture.{name} must be a positive number of seconds, got {value!r}",
                    code="config_value_invalid",
                    details={"key": f"capture.{name}"},
                )
        if self.overflow not in OVERFLOW_POLICIES:
            raise ConfigurationError(
                f"capture.overflow must be one of {', '.join(OVERFLOW_POLICIES)}, got {self.overflow!r}",
                code="config_value_invalid",
                details={"key": "capture.overflow"},
            )
        if self.durability not in DURABILITY_MODES:
            raise ConfigurationError(
                f"capture.durability must be 'flush' or 'fsync', got {self.durability!r}",
                code="config_value_invalid",
                details={"key": "capture.durability"},
            )
        if self.non_finite not in NON_FINITE_POLICIES:
            raise ConfigurationError(
                f"capture.non_finite must be 'record' or 'raise', got {self.non_finite!r}",
                code="config_value_invalid",
                details={"key": "capture.non_finite"},
            )
        for name in ("persist", "redact_secrets", "log_process", "handle_signals"):
            if type(getattr(self, name)) is not bool:
                raise ConfigurationError(
                    f"capture.{name} must be true or false",
                    code="config_value_invalid",
                    details={"key": f"capture.{name}"},
                )


def redacted_url(url: str) -> str:
    """`url` with the password of its user part replaced by `***`: safe to print, log or store."""
    scheme, separator, rest = url.partition("://")
    user_part, at, host_part = rest.rpartition("@")
    if not separator or not at or ":" not in user_part:
        return url
    return f"{scheme}://{user_part.partition(':')[0]}:***@{host_part}"


def _url_with_scheme(url: str | None, schemes: tuple[str, ...], key: str, example: str) -> str | None:
    """`url` unchanged when it is None or starts with one of `schemes`; ConfigurationError otherwise."""
    if url is None:
        return None
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(
            f"{key} must be a URL such as {example!r}, got {url!r}",
            code="config_value_invalid",
            details={"key": key},
        )
    scheme = url.partition("://")[0].lower()
    if "://" not in url or scheme not in schemes:
        raise ConfigurationError(
            f"{key} must start with {' or '.join(s + '://' for s in schemes)} (for example {example!r}), "
            f"got {redacted_url(url)!r}",
            code="config_value_invalid",
            details={"key": key},
        )
    return url


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where the canonical store lives: unset is the embedded SQLite file in the workspace (no server);
    `url = "postgresql://user@host/db"` (or CONTEXTA_STORE_URL) puts it in PostgreSQL, shared by every
    machine that points at it. A password in the URL is used to connect and never written anywhere;
    libpq's PGPASSWORD / ~/.pgpass keep it out of the configuration altogether."""

    url: str | None = None

    def __post_init__(self) -> None:
        _url_with_scheme(self.url, ("postgresql", "postgres"), "store.url", "postgresql://localhost/contexta")


@dataclass(frozen=True, slots=True)
class ArtifactsConfig:
    """Where artifact copies are kept: unset is `<workspace>/artifacts/`; `url = "s3://bucket/prefix"`
    (or CONTEXTA_ARTIFACTS_URL) keeps them content-addressed in S3-compatible storage. The endpoint and
    credentials come from the usual AWS environment variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_REGION), never from the workspace or the store."""

    url: str | None = None

    def __post_init__(self) -> None:
        _url_with_scheme(self.url, ("s3",), "artifacts.url", "s3://my-bucket/contexta")


@dataclass(frozen=True, slots=True)
class UnifiedConfig:
    """Everything a `Contexta` needs to know, in one immutable value."""

    project_name: str = "default"
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    artifacts: ArtifactsConfig = field(default_factory=ArtifactsConfig)

    def __post_init__(self) -> None:
        try:
            normalize_name(self.project_name, "project_name")
        except ValidationError as error:
            raise ConfigurationError(
                error.message, code="config_value_invalid", details={"key": "project_name"}
            ) from None
        if not isinstance(self.workspace, WorkspaceConfig):
            raise ConfigurationError("workspace must be a WorkspaceConfig", code="config_value_invalid")
        if not isinstance(self.capture, CaptureConfig):
            raise ConfigurationError("capture must be a CaptureConfig", code="config_value_invalid")
        if not isinstance(self.store, StoreConfig):
            raise ConfigurationError("store must be a StoreConfig", code="config_value_invalid")
        if not isinstance(self.artifacts, ArtifactsConfig):
            raise ConfigurationError("artifacts must be an ArtifactsConfig", code="config_value_invalid")


PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    # fsync at every flush barrier: survives power loss, costs a disk sync per run exit.
    "durable": {"capture": {"durability": "fsync"}},
    # never make the training loop wait: a full queue drops the oldest records (counted, marked).
    "nonblocking": {"capture": {"overflow": "drop_oldest"}},
}

_SECTIONS: dict[str, type[Any]] = {
    "workspace": WorkspaceConfig,
    "capture": CaptureConfig,
    "store": StoreConfig,
    "artifacts": ArtifactsConfig,
}


def _as_mapping(config: UnifiedConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, UnifiedConfig):
        return {
            "project_name": config.project_name,
            **{name: _section_values(getattr(config, name)) for name in _SECTIONS},
        }
    if not isinstance(config, Mapping):
        raise ConfigurationError(
            f"config must be a mapping or a UnifiedConfig, got {type(config).__name__}", code="config_invalid"
        )
    result: dict[str, Any] = {}
    for key, value in config.items():
        section_type = _SECTIONS.get(key)
        if key == "project_name":
            result[key] = value
        elif section_type is not None:
            if isinstance(value, section_type):
                value = _section_values(value)
            elif key == "workspace" and not isinstance(value, Mapping):
                value = {"root_path": value}
            elif key in ("store", "artifacts") and (value is None or isinstance(value, str)):
                value = {"url": value}  # config={"store": "postgresql://..."} says the same
            if not isinstance(value, Mapping):
                raise ConfigurationError(
                    f"config[{key!r}] must be a mapping of {key} settings",
                    code="config_invalid",
                    details={"key": key},
                )
            result[key] = dict(value)
        else:
            raise ConfigurationError(
                f"unknown config key {key!r}; known keys are project_name, {', '.join(_SECTIONS)}",
                code="config_key_unknown",
                details={"key": key},
            )
    return result


def _section_values(section: Any) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _parse_env_value(raw: str, template: Any, key: str) -> Any:
    kind: type[Any] = type(template) if template is not None else str
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise ConfigurationError(
            f"environment variable {key}={raw!r} is not a valid {kind.__name__}",
            code="config_env_invalid",
            details={"key": key},
        ) from None
    return Path(raw) if isinstance(template, Path) or key.endswith("_PATH") else raw


def _environment_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith("CONTEXTA_"):
            continue
        name = key[len("CONTEXTA_") :].lower()
        if name == "project_name":
            overrides["project_name"] = raw
            continue
        section, _, field_name = name.partition("_")
        section_type = _SECTIONS.get(section)
        fields = {f.name: f for f in dataclasses.fields(section_type)} if section_type else {}
        if field_name not in fields:
            warnings.warn(f"contexta: ignoring unknown environment variable {key}", stacklevel=3)
            continue
        default = fields[field_name].default
        overrides.setdefault(section, {})[field_name] = _parse_env_value(
            raw, None if default is dataclasses.MISSING else default, key
        )
    return overrides


def _build_section(section_type: type[Any], values: Mapping[str, Any], section: str) -> Any:
    known = {f.name for f in dataclasses.fields(section_type)}
    for key in values:
        if key not in known:
            raise ConfigurationError(
                f"unknown config key {section}.{key}; known keys are {', '.join(sorted(known))}",
                code="config_key_unknown",
                details={"key": f"{section}.{key}"},
            )
    try:
        return section_type(**values)
    except TypeError as error:
        raise ConfigurationError(f"config section {section}: {error}", code="config_invalid") from None


def load_config(
    config: UnifiedConfig | Mapping[str, Any] | None = None,
    *,
    workspace: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> UnifiedConfig:
    """The effective configuration: profile, then `config`, then `workspace=` (only if the config has
    none), then environment overrides."""
    if profile is not None and profile not in PROFILES:
        raise ConfigurationError(
            f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}",
            code="config_profile_unknown",
            details={"profile": profile},
        )
    values = _merge(PROFILES[profile or "default"], _as_mapping(config))
    if workspace is not None and "root_path" not in values.get("workspace", {}):
        values.setdefault("workspace", {})["root_path"] = workspace
    values = _merge(values, _environment_overrides(os.environ if environ is None else environ))
    return UnifiedConfig(
        project_name=values.get("project_name", "default"),
        workspace=_build_section(WorkspaceConfig, values.get("workspace", {}), "workspace"),
        capture=_build_section(CaptureConfig, values.get("capture", {}), "capture"),
        store=_build_section(StoreConfig, values.get("store", {}), "store"),
        artifacts=_build_section(ArtifactsConfig, values.get("artifacts", {}), "artifacts"),
    )
