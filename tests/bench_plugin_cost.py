"""What the conformance plugin adds to a pytest run that has nothing to do with it.

    python tests/bench_plugin_cost.py [RUNS]

Runs one trivial test file with pytest in fresh interpreters, alternately with
the plugin and with ``-p no:agentstream_conformance``, and prints the median wall
time of each and their difference (the machine is noisy: runs alternate, and
medians are quoted). Hypothesis's own pytest plugin is disabled in both arms
(``-p no:hypothesispytest``) because its import (~0.8 s here) would drown the
figure; it is printed separately, since installing this project brings it in.
Also prints the import time of ``conformance.plugin`` itself (``-X importtime``).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(args: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "test_one.py"],
                   cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main(runs: int = 15) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_one.py").write_text("def test_one():\n    assert True\n")
        arms = {"with the plugin": ["-p", "no:hypothesispytest"],
                "without (-p no:agentstream_conformance)": ["-p", "no:hypothesispytest", "-p", "no:agentstream_conformance"],
                "with hypothesis's plugin too": []}
        times: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(runs):
            for name, args in arms.items():
                times[name].append(_run(args, tmp))
    med = {name: statistics.median(values) for name, values in times.items()}
    for name, value in med.items():
        print(f"{name:45s} median {value * 1000:7.1f} ms over {runs} runs")
    plugin = med["with the plugin"] - med["without (-p no:agentstream_conformance)"]
    print(f"{'the plugin adds':45s} {plugin * 1000:+7.1f} ms")
    print(f"{'hypothesis plugin adds':45s} {(med['with hypothesis' + chr(39) + 's plugin too'] - med['with the plugin']) * 1000:+7.1f} ms")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pytest; import conformance.plugin"],
                         capture_output=True, text=True, check=True).stderr
    own = [line for line in out.splitlines() if line.rstrip().endswith(("conformance.plugin", "| conformance"))]
    total_us = sum(int(line.split("|")[1]) for line in own if line.rstrip().endswith("conformance.plugin"))
    print(f"{'import conformance.plugin (cumulative)':45s} {total_us / 1000:7.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
