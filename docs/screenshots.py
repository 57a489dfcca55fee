"""Make the README's screenshots of the demo page: ``python docs/screenshots.py``.

Starts the reference server on a free loopback port, opens its page in headless
Chromium (Debian's package, launched as the suite launches it), asks one question
over SSE, then the same question in "both" mode, and writes ``docs/img/demo-sse.png``
and ``docs/img/demo-both.png``. Run it again after changing the page.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.browser_options import DEFAULT_EXECUTABLE  # noqa: E402
from conformance.wire.browser import launch_chromium  # noqa: E402
from reference_server.embedded import EmbeddedServer  # noqa: E402

QUESTION = "incidents by region"


def shoot(page, transport: str, runs: int, path: Path) -> None:
    page.fill("#question", QUESTION)
    page.check(f'input[name="transport"][value="{transport}"]')
    page.click("#start")
    page.wait_for_function("(n) => window.agentDemo.idle && window.agentDemo.runs.length >= n", arg=runs,
                           timeout=60_000)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=DEFAULT_EXECUTABLE)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with EmbeddedServer(pace_ms=10) as server, tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = launch_chromium(p, args.chromium, profile)
        page = context.new_page()
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(server.base_url + "/")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        shoot(page, "sse", 1, args.out / "demo-sse.png")
        shoot(page, "both", 3, args.out / "demo-both.png")
        context.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
