"""The suite's browser options (``--browser chromium``, the origins), and their value.

Kept apart from ``plugin.py`` (one call from its ``pytest_addoption`` and one from
its settings) and importing only the standard library, like the plugin itself:
every pytest run of the environment pays for this module, none pays for
Playwright unless ``--browser`` is given.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

BROWSERS = ("chromium",)
DEFAULT_EXECUTABLE = "/usr/bin/chromium"
"""Debian's Chromium (``apt-get install chromium``): no browser download at install time."""
DEFAULT_ORIGIN_ALLOWED = "http://localhost:5173"
"""A frontend dev server on its own port (Vite's default): the seed's own setup."""
DEFAULT_ORIGIN_FOREIGN = "http://foreign-origin.example"
"""A site that must not be able to open the backend's WebSocket (http, so that a page of it may
open ws:// without being mixed content)."""


@dataclass(frozen=True)
class BrowserSpec:
    """Which browser records the streams a second time, and from which origins."""

    name: str = "chromium"
    executable: str = DEFAULT_EXECUTABLE
    origin_allowed: str = DEFAULT_ORIGIN_ALLOWED
    origin_foreign: str = DEFAULT_ORIGIN_FOREIGN


def browser_elsewhere() -> bool:
    """Whether pytest-playwright is installed: it then owns ``--browser`` (a list,
    ``--browser chromium`` as well), and the suite reads it, as with ``--base-url``."""
    return importlib.util.find_spec("pytest_playwright") is not None


def add_options(group: Any) -> None:
    if not browser_elsewhere():
        group.addoption("--browser", default=None, choices=BROWSERS,
                        help="also record the streams through a real browser's EventSource and WebSocket "
                             "(browser rules BROWSER-*; needs Playwright and Debian's chromium)")
    group.addoption("--browser-executable", default=None, metavar="PATH",
                    help=f"the browser binary (default {DEFAULT_EXECUTABLE}, else chromium on PATH)")
    group.addoption("--origin-allowed", default=DEFAULT_ORIGIN_ALLOWED, metavar="ORIGIN",
                    help=f"an origin the backend allows: its page must read SSE (CORS) and open the WebSocket "
                         f"(default {DEFAULT_ORIGIN_ALLOWED})")
    group.addoption("--origin-foreign", default=DEFAULT_ORIGIN_FOREIGN, metavar="ORIGIN",
                    help=f"an origin the backend does not allow: its WebSocket handshake should be refused "
                         f"(default {DEFAULT_ORIGIN_FOREIGN})")


def _origin(value: str, option: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment:
        raise ValueError(f"{option} {value!r} must be an origin: scheme://host[:port], like http://localhost:5173")
    return f"{parts.scheme}://{parts.netloc}".lower()


def spec_from(getoption: Any) -> BrowserSpec | None:
    """The browser spec the options ask for (None: no ``--browser``); ValueError
    says what is wrong (a bad origin, no browser binary, no Playwright)."""
    try:
        chosen = getoption("browser")
    except ValueError:  # pytest-playwright installed but disabled (-p no:playwright)
        chosen = None
    names = chosen if isinstance(chosen, (list, tuple)) else [chosen] if chosen else []
    if not names:
        return None
    unknown = [n for n in names if n not in BROWSERS]
    if unknown:
        raise ValueError(f"--browser {unknown[0]}: the suite drives {', '.join(BROWSERS)} only")
    name = names[0]
    allowed = _origin(getoption("origin_allowed"), "--origin-allowed")
    foreign = _origin(getoption("origin_foreign"), "--origin-foreign")
    if allowed == foreign:
        raise ValueError("--origin-allowed and --origin-foreign must differ")
    executable = getoption("browser_executable")
    if executable is None:
        executable = DEFAULT_EXECUTABLE if os.access(DEFAULT_EXECUTABLE, os.X_OK) else shutil.which("chromium")
    if not executable or not os.access(executable, os.X_OK):
        raise ValueError(f"--browser {name}: no browser binary at {executable or DEFAULT_EXECUTABLE}; install "
                         "Debian's package (apt-get install chromium) or give --browser-executable")
    if importlib.util.find_spec("playwright") is None:
        raise ValueError(f"--browser {name} needs Playwright: pip install playwright (no browser download needed)")
    return BrowserSpec(name, executable, allowed, foreign)
