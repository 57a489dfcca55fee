"""Shared fixtures for the project's own tests.

``reference_url`` is one reference server for the whole session (a child
process on a free loopback port, small pace so streams are quick but still
streamed). Tests that need a different pace start their own ``EmbeddedServer``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reference_server.embedded import EmbeddedServer

REFERENCE_PACE_MS = 1.0


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed by the tests' own set-up the first time (no browser
    download): the browser tests run, never skip, on a fresh machine."""
    from provision import debian

    return debian("chromium", "chromium")


@pytest.fixture(scope="session")
def reference_server() -> Iterator[EmbeddedServer]:
    """The session's reference server (``pace_ms=1``)."""
    with EmbeddedServer(pace_ms=REFERENCE_PACE_MS) as server:
        yield server


@pytest.fixture(scope="session")
def reference_url(reference_server: EmbeddedServer) -> str:
    """Base URL of the session's reference server, e.g. ``http://127.0.0.1:41234``."""
    return reference_server.base_url
