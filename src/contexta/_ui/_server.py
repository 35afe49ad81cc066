"""`contexta ui`: bind, say where, serve until Ctrl-C.

The socket is bound here, before uvicorn starts, so that port 0 (any free port) is resolved and the
printed URL is the real one. A server that other machines could reach (any address but a loopback
one) is refused without an access token. Ctrl-C first ends the open event streams (uvicorn waits for
open responses before it stops), then uvicorn shuts down and re-raises the signal, which the command
line turns into exit status 130 as for its other commands.
"""

from __future__ import annotations

import socket
import threading
import webbrowser
from collections.abc import Callable
from types import FrameType
from urllib.parse import quote

import uvicorn

from contexta._workspace_reader import Workspace
from contexta.errors import ConfigurationError

from ._app import build_app
from ._live import ChangeWatcher
from ._security import is_loopback, is_wildcard

__all__ = ["bind", "serve", "url_for"]


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, watcher: ChangeWatcher) -> None:
        super().__init__(config)
        self._watcher = watcher

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._watcher.end_streams()
        super().handle_exit(sig, frame)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (0: a free port)."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise ConfigurationError(
            f"cannot bind to {host!r}: {error.strerror}", code="ui_host_invalid"
        ) from None
    sock = socket.socket(family, kind, protocol)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {error.strerror}", code="ui_bind_failed"
        ) from None
    # Listening now, so a client that connects as soon as the URL is printed waits in the backlog
    # until uvicorn accepts, rather than being refused.
    sock.listen(128)
    return sock


def url_for(host: str, port: int, token: str | None) -> str:
    """The URL to open: the bound address (127.0.0.1 for a wildcard bind), with the token once."""
    shown = "127.0.0.1" if is_wildcard(host) else host.strip("[]")
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + ("" if token is None else f"?token={quote(token, safe='')}")


def serve(
    workspace: Workspace,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    open_browser: bool = False,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve `workspace` read-only at http://host:port/ until interrupted."""
    if not token and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to serve on {host}, reachable from other machines, without an access token: "
            "give --token or set CONTEXTA_UI_TOKEN (or bind 127.0.0.1)",
            code="ui_token_required",
        )
    sock = bind(host, port)
    try:
        app = build_app(workspace, token=token or None, bound_host=host)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=3
        )
        server = _Server(config, app.state.watcher)
        url = url_for(host, sock.getsockname()[1], token or None)
        announce(url)
        if open_browser:
            threading.Timer(0.5, webbrowser.open, [url]).start()
        server.run(sockets=[sock])
    finally:
        sock.close()
