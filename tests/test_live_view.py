"""What a person sees while the work runs: Locust's web UI and --help show the
project's options (the results directory among them), the suite prints rules
done out of total, a headless load run prints streams per second, errors and
time left."""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from load.config import add_arguments
from load.live import progress_line, stream_counts

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "load" / "locustfile.py"


def own_options() -> dict[str, str]:
    """dest -> --flag of every option load.config adds."""
    p = argparse.ArgumentParser()
    add_arguments(p)
    return {a.dest: a.option_strings[0] for a in p._actions if a.option_strings and a.dest != "help"}


def test_help_lists_every_option():
    """``python -m load --help`` (Locust's own --help runs before any locustfile is read)."""
    out = subprocess.run([sys.executable, "-m", "load", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60).stdout
    missing = [flag for flag in own_options().values() if flag not in out]
    assert not missing and "--results-dir DIR" in out and "--spawn-rate" in out  # and Locust's


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_web_ui_shows_every_option_and_the_results_directory():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", "http://127.0.0.1:9",
                             "--web-host", "127.0.0.1", "--web-port", str(port), "--results-dir", "out/here"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    page = r.read(2_000_000).decode("utf-8")
                break
            except OSError:
                time.sleep(0.3)
        m = re.search(r'"extra_options": (\{.*?\}\}),', page)
        assert m, "no extra_options in the web UI page"
        extra = json.loads(m.group(1))
        assert set(own_options()) <= set(extra)
        assert extra["results_dir"]["default_value"] == "out/here"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_suite_shows_rules_done_out_of_total():
    proc = subprocess.run([sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider",
                           "-k", "ORDER-SEQ or SCHEMA-EVENT"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "[conformance] recording the streams of 2 rules" in proc.stdout
    assert re.search(r"\[conformance\] 2/2 rules done \(\d+ checks", proc.stdout), proc.stdout


def test_the_load_progress_line():
    now = {"sse": (40, 1), "ws": (38, 0)}
    line = progress_line(12.0, 60.0, now, {"sse": (30, 1), "ws": (30, 0)}, 5.0)
    assert line == ("[agentstream] 12 s of 60 s, 48 s left: sse 2.0 streams/s, 1 error (40 streams); "
                    "ws 1.6 streams/s, 0 errors (38 streams)")
    assert "no time limit" in progress_line(3.0, None, {}, {}, 5.0)
    wire = {"all": {"sse": {"streams": 5, "streams_ok": 4, "violations": 2}},
            "10": {"sse": {"streams": 1, "streams_ok": 1, "violations": 0}}}
    assert stream_counts(wire) == {"sse": (6, 3)}


def test_a_headless_run_prints_its_progress(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "load", "--headless", "-u", "2", "-r", "2", "-t", "7s",
                           "--pace-ms", "5", "--results-dir", str(tmp_path / "r"), "--only-summary"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if " s left: " in ln]
    assert lines and all(re.search(rf"{t} \d+\.\d streams/s, \d+ errors? \(\d+ streams\)", lines[0])
                         for t in ("sse", "ws"))
