"""``python -m reports compare ...`` and ``python -m reports gate ...``.

A thin shell over :mod:`reports.compare` and :mod:`reports.gate`: argument
parsing, messages and exit codes. Bad input ends with exit 2 and one clear
message on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from reports.gate import CI_RULES, GateInputError, load_rules, read_json, run_gate, save_baseline

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m reports",
        description="Compare SSE and WebSocket load runs, and gate a run on latency rules.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{compare,gate}")

    c = sub.add_parser(
        "compare", help="write report.md, report.html and summary.json from results directories",
        description="Build a comparison report from one or more results directories of `python -m load`. "
        "For each transport, the first directory that holds it supplies the side-by-side figures "
        "(so an SSE-only and a WS-only run can be compared); every directory is listed.",
    )
    c.add_argument("results", nargs="+", metavar="RESULTS_DIR", help="a results directory (or its summary.json)")
    c.add_argument("-o", "--out", required=True, metavar="OUT_DIR", help="directory to write the report to")
    c.add_argument("--conformance", metavar="FILE", help="a conformance report JSON to include as a table of rules")
    c.add_argument("--title", default=None, help="report title")
    c.add_argument("--rules", default=None, metavar="FILE",
                   help="gate rules ('ci': the packaged ones) whose verdicts the report shows (the exit status "
                        "stays the report's; `reports gate` decides a CI run)")
    c.add_argument("--baseline", default=None, metavar="FILE", help="a baseline for relative --rules")

    g = sub.add_parser(
        "gate", help="hold a run against rules; exit 0 pass, 1 fail, 2 bad input",
        description="Evaluate rules such as 'ws.ttfe.p95_ms <= 50', "
        "'sse.delivery.p99_ms <= baseline * 1.15' or 'ws.delivery.p50_ms / sse.delivery.p50_ms <= 1.2'. "
        "Exit 0 when every rule holds, 1 when one fails, 2 on bad input.",
    )
    g.add_argument("--current", required=True, metavar="SUMMARY",
                   help="summary.json of a load run or of `reports compare` (or a results directory)")
    g.add_argument("--baseline", metavar="FILE", help="a baseline saved with --save-baseline (or any summary.json)")
    g.add_argument("--rules", metavar="FILE",
                   help=f"YAML rules file ('ci' for the packaged CI rules, {CI_RULES.name})")
    g.add_argument("--rule", action="append", default=[], metavar="RULE",
                   help="a rule given inline; may be repeated, added to --rules")
    g.add_argument("--markdown", metavar="FILE",
                   help="append the verdict table as Markdown to FILE (e.g. \"$GITHUB_STEP_SUMMARY\")")
    g.add_argument("--save-baseline", metavar="FILE",
                   help="save the current run as a baseline to FILE (only when every rule holds)")
    return p


def _gate(args: argparse.Namespace) -> int:
    rules: list = []
    if args.rules:
        rules += load_rules(args.rules)
    rules += args.rule
    if not rules and not args.save_baseline:
        raise GateInputError("no rules: pass --rules FILE and/or --rule RULE (or only --save-baseline FILE)")
    current = read_json(args.current, "current summary")
    if not rules:
        path = save_baseline(current, args.save_baseline, source=args.current)
        print(f"baseline saved to {path}")
        return EXIT_OK
    result = run_gate(args.current, rules, baseline=args.baseline, markdown_out=args.markdown)
    print(result.table())
    if args.save_baseline:
        if result.ok:
            print(f"baseline saved to {save_baseline(current, args.save_baseline, source=args.current)}")
        else:
            print(f"baseline NOT saved to {args.save_baseline}: the gate failed")
    return EXIT_OK if result.ok else EXIT_FAIL


def _compare(args: argparse.Namespace) -> int:
    from reports.compare import ReportInputError, build_report

    try:
        html = build_report(args.results, args.out, conformance=args.conformance, title=args.title,
                            gate_rules=args.rules, baseline=args.baseline)
    except ReportInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = html.parent
    for name in ("report.md", "report.html", "summary.json"):
        print(out / name)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "gate":
            return _gate(args)
        return _compare(args)
    except GateInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
