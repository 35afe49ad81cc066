"""Work that would stall a busy event loop must not happen on it when an async run closes.

Importing on the loop thread is such work: while the writer threads hold the GIL, loading anyio's
backend (some thirty modules) at the first close stalled a busy service's loop for about 400 ms.
Each check runs in a fresh interpreter, where nothing has been imported yet.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROGRAM = textwrap.dedent(
    """
    import json, sys
    from contexta import Contexta

    async def main():
        ctx = Contexta(workspace=sys.argv[2], config={"project_name": "p"})
        async with ctx.arun("service") as run:
            async with run.stage("answer") as stage:
                for step in range(100):
                    await stage.metric("latency.ms", float(step), step=step)
            before = set(sys.modules)
        after_run = set(sys.modules)
        await ctx.aclose()
        print(json.dumps({
            "run": sorted(after_run - before),
            "aclose": sorted(set(sys.modules) - after_run),
        }))

    if sys.argv[1] == "asyncio":
        import asyncio
        asyncio.run(main())
    else:
        import trio
        trio.run(main)
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_closing_an_async_run_and_the_contexta_imports_nothing(tmp_path: Path, backend: str) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", PROGRAM, backend, str(tmp_path / ".contexta")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    imported = json.loads(finished.stdout.strip().splitlines()[-1])
    assert imported == {"run": [], "aclose": []}
