"""Make docs/ui-run-view.png: the run view of the README quickstart's run, in Debian's Chromium.

    PYTHONPATH=src python tests/ui/screenshot.py [OUTPUT]

Runs examples/quickstart.py (a real classifier trained and captured) in a temporary directory,
starts `contexta ui` on the workspace it wrote, opens the run view of `sgd-logistic` and saves a
screenshot (default docs/ui-run-view.png), so the README shows what the quickstart's reader will
see. Needs /usr/bin/chromium, the playwright package and the `examples` extra (scikit-learn).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_workspaces import CHROMIUM_ARGS, start_ui

ROOT = Path(__file__).resolve().parents[2]


def take_run_view_screenshot(output: Path) -> Path:
    """Run the quickstart, serve its workspace, and save the run view of `sgd-logistic` to `output`."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        }
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "quickstart.py")],
            cwd=scratch,
            env=environment,
            check=True,
        )
        workspace = Path(scratch) / ".contexta"
        server = start_ui(workspace)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
                page.goto(server.base + "#/run/run%3Abreast-cancer.sgd-logistic")
                page.wait_for_selector(".chart[data-key='train/loss'] canvas")
                page.wait_for_timeout(300)
                output.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(output), full_page=False)
                browser.close()
        finally:
            server.stop()
    return output


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "ui-run-view.png"
    print(take_run_view_screenshot(target))
