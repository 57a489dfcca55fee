"""Load scenarios: what the streams of each transport cost, measured with Locust.

``load.metrics`` (figures per stream, HdrHistograms, exact merges) and
``load.results`` (summary.json, docs/results-format.md) are pure and importable
anywhere; ``load.locustfile`` and ``load.sweep`` are Locust files (importing
them monkey-patches the process with gevent); ``python -m load`` runs Locust,
against the embedded reference server when no ``--host`` is given;
``python -m load.bench_harness`` measures the harness itself.
"""
