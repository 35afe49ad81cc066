"""`contexta ui`: the live dashboard. Starlette and uvicorn are imported here, when it runs, never by
the other commands."""

from __future__ import annotations

import argparse
import os

from contexta.cli._output import Output
from contexta.cli._workspace import open_workspace

__all__ = ["TOKEN_ENVIRONMENT", "ui_command"]

TOKEN_ENVIRONMENT = "CONTEXTA_UI_TOKEN"


def ui_command(args: argparse.Namespace, output: Output) -> int:
    from contexta._ui._server import serve

    token: str | None = args.token or os.environ.get(TOKEN_ENVIRONMENT) or None
    with open_workspace(args) as workspace:

        def announce(url: str) -> None:
            output.line(f"Contexta UI serving {workspace.workspace} at {url} (Ctrl-C stops)")
            output.flush()

        serve(
            workspace,
            host=args.host,
            port=args.port,
            token=token,
            open_browser=args.open,
            announce=announce,
        )
    return 0
