"""A real `Contexta` for a test, whose capture goes to memory and whose workspace is gone afterwards.

The pipeline is the real one (queue, writer, validation, the store), so the code under test behaves
as it does in production; only the capture log is replaced by an `InMemorySink`, and the workspace
(the store file and its directories) lives in a temporary directory removed when the capture
closes. Nothing outlives it: no SIGTERM/SIGHUP handler is installed (`capture.handle_signals` is
off), its writer threads end with it, and closing it drops its exit hook. (The passive observer of
`sys.exit` and uncaught exceptions that the first `Contexta` of a process installs stays, as it does
for every `Contexta`; with no capture open it does nothing.)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.to_thread

from contexta import Contexta
from contexta.capture import CapturedEntry, InMemorySink
from contexta.config import WorkspaceConfig, load_config
from contexta.errors import ConfigurationError, LifecycleError
from contexta.testing._inspection import CaptureInspection

__all__ = ["MemoryCapture", "capture_in_memory"]

_NEW, _OPEN, _CLOSED = "new", "open", "closed"
_WORKSPACE_PATHS = (
    "root",
    "cache_dir",
    "metadata_dir",
    "records_dir",
    "artifacts_dir",
    "reports_dir",
    "exports_dir",
)


def capture_in_memory(
    project_name: str = "test", *, capture: Mapping[str, Any] | None = None
) -> MemoryCapture:
    """A capture for one test: `with capture_in_memory() as captured:` (or `async with`), then pass
    `captured.ctx` to the code under test and read `captured.metric(...)`, `captured.runs`, ...

    `capture` holds capture settings as `config={"capture": {...}}` takes them (for example
    `{"non_finite": "raise"}`); `CONTEXTA_CAPTURE_*` environment variables apply as usual.
    """
    return MemoryCapture(project_name, capture=capture)


class MemoryCapture(CaptureInspection):
    """A `Contexta` (`ctx`) capturing into memory, and what it captured.

    Open it with `with` / `async with` (or `open()` and `close()`, for a fixture). Inside, every
    accessor first waits until what was captured so far reached memory; after it closes, they read
    what was captured, for good. It is used once.
    """

    def __init__(self, project_name: str = "test", *, capture: Mapping[str, Any] | None = None):
        settings = dict(capture or {})
        if settings.get("handle_signals", False) is not False:
            raise ConfigurationError(
                "capture_in_memory never handles SIGTERM/SIGHUP: a test's handler would outlive it; "
                "leave capture.handle_signals out",
                code="config_value_invalid",
                details={"key": "capture.handle_signals"},
            )
        self._project_name = project_name
        self._settings = {**settings, "handle_signals": False}
        self._sink = InMemorySink("memory")
        self._state = _NEW
        self._directory: Path | None = None
        self._ctx: Contexta | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> Self:
        """Make the temporary workspace and the `Contexta` capturing into memory."""
        if self._state != _NEW:
            raise LifecycleError(
                "this capture was already opened; make a new one with capture_in_memory()",
                code="capture_reused",
            )
        # mkdtemp, not TemporaryDirectory: that registers a finalizer to run at exit.
        directory = Path(tempfile.mkdtemp(prefix="contexta-test-"))
        try:
            config = {
                "project_name": self._project_name,
                "workspace": {"root_path": directory},
                "capture": self._settings,
            }
            _refuse_lasting_config(config, directory)
            self._ctx = Contexta(config=config, sinks=[self._sink])
        except BaseException:
            shutil.rmtree(directory)
            raise
        self._directory = directory
        self._state = _OPEN
        return self

    def close(self) -> None:
        """Close the `Contexta` (runs still open close `cancelled`, `contexta_closed`) and remove the
        temporary workspace; idempotent."""
        if self._state != _OPEN:
            self._state = _CLOSED
            return
        self._state = _CLOSED
        try:
            if self._ctx is not None:
                self._ctx.close()
        finally:
            if self._directory is not None:
                shutil.rmtree(self._directory)

    async def aopen(self) -> Self:
        """`open()` without blocking the event loop."""
        return await anyio.to_thread.run_sync(self.open)

    async def aclose(self) -> None:
        """`close()` without blocking the event loop; shielded, so a cancelled test still cleans up."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.close)

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return await self.aopen()

    async def __aexit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- what the test uses --------------------------------------------------------------------

    @property
    def ctx(self) -> Contexta:
        """The `Contexta` to hand to the code under test; only while the capture is open."""
        if self._state != _OPEN or self._ctx is None:
            state = "not open yet" if self._state == _NEW else "closed (its workspace is gone)"
            raise LifecycleError(
                f"this capture is {state}: use captured.ctx inside `with capture_in_memory() as captured:`; "
                "what it captured stays readable (captured.runs, captured.metric(...))",
                code="capture_not_open",
            )
        return self._ctx

    @property
    def sink(self) -> InMemorySink:
        """The sink that received every record (`lines()` gives capture-log lines)."""
        return self._sink

    def _entries(self) -> list[CapturedEntry]:
        if self._state == _OPEN and self._ctx is not None:
            self._ctx.flush()
        return self._sink.entries


def _refuse_lasting_config(config: Mapping[str, Any], root: Path) -> None:
    """Refuse environment variables that would make this test's capture outlast it:
    `CONTEXTA_WORKSPACE_*` paths (a real workspace, or a directory nobody removes) and
    `CONTEXTA_CAPTURE_HANDLE_SIGNALS` (a signal handler)."""
    effective = load_config(config)
    expected = WorkspaceConfig(root_path=root)
    moved = [
        name for name in _WORKSPACE_PATHS if getattr(effective.workspace, name) != getattr(expected, name)
    ]
    if moved:
        variables = sorted(key for key in os.environ if key.startswith("CONTEXTA_WORKSPACE_"))
        raise ConfigurationError(
            f"capture_in_memory keeps its workspace in a temporary directory, but {', '.join(variables)} "
            "moves it; unset it for these tests",
            code="config_env_conflict",
            details={"variables": variables},
        )
    if effective.capture.handle_signals:
        raise ConfigurationError(
            "capture_in_memory never handles SIGTERM/SIGHUP (a test's handler would outlive it), but "
            "CONTEXTA_CAPTURE_HANDLE_SIGNALS turns it on; unset it for these tests",
            code="config_env_conflict",
            details={"variables": ["CONTEXTA_CAPTURE_HANDLE_SIGNALS"]},
        )
