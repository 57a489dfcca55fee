"""The open load shape (load/open.py): arrivals on a timetable, independent of stream length."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from load.config import ConfigError, load_config
from load.live import arrivals_due

ROOT = Path(__file__).resolve().parents[1]


def test_the_timetable_is_fixed_by_the_rate_not_by_the_streams():
    assert arrivals_due(10.0, 9.0, 2.0, 0) == 0       # before the start
    assert arrivals_due(10.0, 10.0, 2.0, 0) == 1      # the first at t0
    assert arrivals_due(10.0, 12.6, 2.0, 1) == 5  # t0, +0.5, +1, +1.5, +2, +2.5: six due, one done
    assert arrivals_due(10.0, 12.6, 2.0, 6) == 0
    assert arrivals_due(10.0, 20.0, 2.0, 0) == 21     # a late scheduler catches up at once


@pytest.mark.parametrize("opt, value", [("arrival_rate", "0"), ("arrival_rate", "x"), ("max_in_flight", "0"),
                                        ("max_in_flight", "1.5")])
def test_bad_open_model_options_are_refused(opt, value):
    class Opts:
        pass

    o = Opts()
    setattr(o, opt, value)
    with pytest.raises(ConfigError, match=opt.replace("_", "-")):
        load_config(o, "http://127.0.0.1:1")


def test_an_open_run_starts_streams_at_the_rate_and_counts_what_the_cap_drops(tmp_path):
    """Streams of about 2 s at 2 arrivals/s per transport, at most 2 open: about half
    the arrivals cannot start; a closed run would just have slowed down."""
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "load", "--open", "--headless", "-t", "4s", "--arrival-rate", "4",
         "--max-in-flight", "2", "--pace-ms", "40", "--results-dir", str(results), "--stream-timeout", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((results / "summary.json").read_text())
    om = summary["open_model"]
    assert summary["config"]["shape"] == "open"
    assert 12 <= om["scheduled"] <= 20  # 4/s for 4 s, on a one-second shape tick
    assert om["dropped"] > 0 and om["started"] + om["dropped"] == om["scheduled"]
    assert om["most_in_flight"] <= 2 * 2
    assert sum(t["streams"] for t in summary["transports"].values()) == om["started"]
