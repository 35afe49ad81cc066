"""Make docs/ui-run-view.png: the run view of the quickstart-like demo data, in Debian's Chromium.

    PYTHONPATH=src python tests/ui/screenshot.py [OUTPUT]

Captures the demo runs (tests/ui/ui_workspaces.py, without the hostile one) into a temporary
workspace, starts `contexta ui` on it, opens the run view of `baseline` with smoothing on and saves a
screenshot (default docs/ui-run-view.png). Needs /usr/bin/chromium and the playwright package.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_workspaces import capture_demo, start_ui

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def take_run_view_screenshot(output: Path) -> Path:
    """Capture the demo, serve it, and save the run view of `baseline` to `output`."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        workspace = capture_demo(Path(scratch) / ".contexta", hostile=False)
        server = start_ui(workspace)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
                page.goto(server.base + "#/run/run%3Ademo.baseline")
                page.wait_for_selector(".chart[data-key='loss'] canvas")
                page.fill("#smoothing", "0.9")
                page.dispatch_event("#smoothing", "input")
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
