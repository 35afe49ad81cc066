"""The Starlette application: routes, error mapping, the change watcher's life, and static files.

`build_app(workspace)` is all a test or the server needs. One read-only `StoreDatabase` answers every
request: each worker thread gets its own SQLite connection from it, so requests never share one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from contexta._workspace_reader import Workspace
from contexta.errors import ContextaError, NotFoundError, StoreError, ValidationError
from contexta.store import open_store_database

from . import _api
from ._live import POLL_S, ChangeWatcher, Watch, event_stream
from ._security import Guard, allowed_host_names

__all__ = ["STATIC_DIR", "build_app"]

STATIC_DIR = Path(__file__).parent / "static"
_MAX_BODY = 64 * 1024


class _JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def _error(status: int, code: str, message: str) -> Response:
    return _JSON({"error": {"code": code, "message": message}}, status_code=status)


def _error_response(error: ContextaError) -> Response:
    if isinstance(error, NotFoundError):
        status = 404
    elif isinstance(error, StoreError):
        status = 503
    else:
        status = 400
    return _error(status, error.code, error.message)


async def _answer(work: Callable[[], Any]) -> Response:
    """Run a query in a worker thread; a ContextaError is the client's to read, as JSON."""
    try:
        return _JSON(await run_in_threadpool(work))
    except ContextaError as error:
        return _error_response(error)


def build_app(
    workspace: Workspace, *, token: str | None = None, bound_host: str = "127.0.0.1", poll_s: float = POLL_S
) -> Starlette:
    """The dashboard over `workspace` (read only), guarded for a server bound to `bound_host`."""
    config = workspace.config
    database = open_store_database(config.workspace.store_file, config.store.url, read_only=True)
    watcher = ChangeWatcher(database, poll_s=poll_s)

    def params(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    async def runs(request: Request) -> Response:
        return await _answer(lambda: _api.runs_page(database, params(request)))

    async def fields(request: Request) -> Response:
        return await _answer(lambda: _api.fields(database))

    async def run(request: Request) -> Response:
        return await _answer(lambda: _api.run_detail(database, workspace, request.path_params["run_id"]))

    async def series(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        return await _answer(lambda: _api.series(database, run_id, params(request)))

    async def samples(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        return await _answer(lambda: _api.samples_page(database, run_id, params(request)))

    async def compare(request: Request) -> Response:
        return await _answer(lambda: _api.compare(database, params(request)))

    async def verify(request: Request) -> Response:
        # A custom header: a form or a simple cross-site request cannot send it, and the preflight
        # a script would need is never answered.
        if request.headers.get("x-contexta") != "1":
            return _error(403, "header_required", "send the header X-Contexta: 1")
        body = await request.body()
        if len(body) > _MAX_BODY:
            return _error(413, "body_too_large", "the request body is too large")
        try:
            payload = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            return _error(400, "body_invalid", "the body must be JSON")
        return await _answer(lambda: _api.verify(workspace, payload))

    async def stream(request: Request) -> Response:
        try:
            watch = Watch.parse(request.query_params.get("runs"), request.query_params.getlist("series"))
        except ValidationError as error:
            return _error_response(error)
        return StreamingResponse(
            event_stream(database, watcher, watch),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def api_not_found(request: Request) -> Response:
        return _error(404, "not_found", f"no such API endpoint: {request.url.path}")

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(watcher.start)
        try:
            yield
        finally:
            await run_in_threadpool(watcher.stop)
            database.close_all()

    routes = [
        Route("/", index),
        Route("/api/runs", runs),
        Route("/api/fields", fields),
        Route("/api/compare", compare),
        Route("/api/stream", stream),
        Route("/api/artifacts/verify", verify, methods=["POST"]),
        Route("/api/runs/{run_id:path}/series", series),
        Route("/api/runs/{run_id:path}/samples", samples),
        Route("/api/runs/{run_id:path}", run),
        Route("/api/{rest:path}", api_not_found),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, allowed_hosts=allowed_host_names(bound_host), token=token)],
        lifespan=lifespan,
    )
    app.state.watcher = watcher
    return app
