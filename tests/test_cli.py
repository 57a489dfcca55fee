"""``agentstream run``: bad input is refused before anything starts. (The whole
job runs in .ci/run against the embedded server.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reports.cli import _is_loopback


@pytest.mark.parametrize("url,ok", [("http://127.0.0.1:8000", True), ("http://127.9.9.9", True),
                                    ("http://localhost:1", True), ("http://[::1]:8000", True),
                                    ("http://10.0.0.1:8000", False), ("https://example.com", False)])
def test_only_loopback_backends_get_load(url: str, ok: bool) -> None:
    assert _is_loopback(url) is ok


@pytest.mark.parametrize("args,words", [
    (["--base-url", "http://192.168.1.10:8000"], "only sent to loopback"),
    (["--base-url", "127.0.0.1:8000"], "must start with http"),
    (["--duration", "0"], "--duration must be > 0"),
    (["--network", "satellite"], "no such condition"),
    (["--network", "wan+wan"], "named twice"),
    (["--proxy", "squid"], "--proxy 'squid'"),
])
def test_bad_input_exits_2_with_a_message(tmp_path: Path, args: list[str], words: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "reports.cli", "run", "--out", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
