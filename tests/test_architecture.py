"""The seams of the architecture hold: rules are registered functions, transports
plug in, requests are values that replay, the profile is the one source of its
defaults, the session records only what the selected rules need, and the pytest
plugin is a good neighbour (light to import, sharing --base-url with
pytest-base-url)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from backends.serve import serve
from backends.suite_run import run_suite
from conformance import profile as profile_mod
from conformance import plugin
from conformance.profile import BINDING_SCHEMAS, BINDINGS, META_SCHEMA, load_profile
from conformance.request import ClientMessage, Request
from conformance.rules import RULES, check_stream
from conformance.rules.__main__ import markdown
from conformance.session import Session, Settings, needs
from conformance.stimuli import STIMULI
from conformance.wire import TRANSPORTS, record_sse

ROOT = Path(__file__).resolve().parents[1]
TRANSPORT_PLUGINS = Path(__file__).resolve().parent / "transports"


def _pytest(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env)


# --- rules -------------------------------------------------------------------

def test_every_rule_is_a_registered_function_with_its_requirement() -> None:
    assert len(RULES) == 57  # 53 + 4 BROWSER-* rules that exist only with --browser
    for rule in RULES.values():
        assert re.fullmatch(r"[A-Z0-9]+(-[A-Z0-9]+)+", rule.id), rule.id
        assert rule.level in ("MUST", "SHOULD") and rule.section and rule.requirement
        assert rule.requirement == (rule.check.__doc__ or "").strip().splitlines()[0]
        assert all(name in STIMULI for name in rule.needs), (rule.id, rule.needs)
    # no rule module is a pytest test module
    assert not list((ROOT / "conformance").rglob("test_*.py"))


def test_docs_rule_table_is_the_registry() -> None:
    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == markdown(), \
        "docs/rules.md is stale: python -m conformance.rules > docs/rules.md"


def test_one_item_per_rule_and_target(tmp_path: Path) -> None:
    proc = _pytest(["--pyargs", "conformance", "--co", "--base-url", "http://127.0.0.1:9"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = [line.split("::", 1)[1] for line in proc.stdout.splitlines() if "::" in line]
    assert "ORDER-SEQ[sse]" in names and "PARITY-STRICT[sse-ws]" in names and "WS-CANCEL[ws]" in names
    assert {n.split("[")[0] for n in names} == {r for r, rule in RULES.items() if not rule.only_with}
    one = _pytest(["--pyargs", "conformance", "--co", "--base-url", "http://127.0.0.1:9", "-k", "ORDER-SEQ"], tmp_path)
    assert [line.split("::")[1] for line in one.stdout.splitlines() if "::" in line] == ["ORDER-SEQ[sse]", "ORDER-SEQ[ws]"]


def test_selected_rules_record_only_their_stimuli(reference_url: str) -> None:
    session = Session(Settings(reference_url, load_profile()))
    order_seq = RULES["ORDER-SEQ"]
    wanted = [n for t in ("sse", "ws") for n in needs(order_seq, session, t)]
    assert wanted == [("baseline", "sse"), ("baseline", "ws")]
    session.prefetch(wanted)
    assert set(session._cache) == {("baseline", "sse"), ("baseline", "ws")}
    assert all(r.ok and r.events for t in ("sse", "ws") for r in session.recordings("baseline", t))


def test_rules_run_without_pytest_on_one_stream(reference_url: str) -> None:
    """check_stream runs the stream rules and the binding's rules on one recording;
    a stream without its SSE headers breaks the SSE header rules by ID."""
    profile = load_profile()
    good = record_sse(reference_url + "/agent/stream", params={"question": "Show top incidents"}, end_types=("stream_end",))
    assert good.ok and check_stream(good, profile) == []
    bare = dataclasses.replace(good, response_headers=[("content-type", "text/event-stream")])
    assert {f.rule for f in check_stream(bare, profile)} == {"SSE-CACHE-CONTROL", "SSE-X-ACCEL-BUFFERING"}
    per_stream = {r.id for r in RULES.values() if r.per_stream}
    assert {"SCHEMA-EVENT", "ORDER-SEQ", "SSE-NOT-BUFFERED", "WS-CLOSE-1000"} <= per_stream


# --- requests as values, and their replay ---------------------------------------

def test_request_is_a_value_that_round_trips_through_json() -> None:
    r = Request.make("ws", "http://127.0.0.1:1/ws", params={"question": "q \u2028 \U0001F600"}, headers={"X-A": "1"},
                     messages=(ClientMessage.json({"type": "cancel"}, on_type="complete"),), close_after=3,
                     compression=True, end_types=("stream_end",))
    assert Request.from_json(json.loads(json.dumps(r.to_json()))) == r
    assert hash(r) == hash(Request.from_json(r.to_json()))
    with pytest.raises(ValueError, match="transport"):
        Request.from_json({"url": "http://x"})


def test_reproduction_sends_the_client_message_and_replay_sends_the_same_request(tmp_path: Path) -> None:
    """WS-IGNORE-CLIENT-MESSAGES on a backend that cancels on any message: the
    printed command sends the client message, and replaying the report's request
    shows the same defect."""
    with serve("aiohttp", "any-message-cancels") as url:
        run = run_suite(url, tmp_path / "report.json", select="WS-IGNORE-CLIENT-MESSAGES")
        assert run.verdicts("WS-IGNORE-CLIENT-MESSAGES") == ["fail"], run.explain()
        entry = run.entries("WS-IGNORE-CLIENT-MESSAGES")[0]
        line = entry["reproduce"][0]
        assert "--send" in line and "conformance-suite-hello" in line and "--after 1" in line
        assert "reproduce: python -m conformance.recorders ws" in entry["message"]
        replay = subprocess.run([sys.executable, "-m", "conformance.recorders", "replay", str(tmp_path / "report.json"),
                                 "--rule", "WS-IGNORE-CLIENT-MESSAGES", "--timeout", "20"],
                                capture_output=True, text=True, timeout=60)
        venv_first = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
        by_shell = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=60, env=venv_first)
    for out in (replay.stdout, by_shell.stdout):
        events = [json.loads(x) for x in out.splitlines() if not x.startswith("#")]
        assert {"type": "error", "code": "cancelled"}.items() <= next(e for e in events if e["type"] == "error").items(), out
    assert replay.stdout.startswith("# replaying: python -m conformance.recorders ws")
    bad = subprocess.run([sys.executable, "-m", "conformance.recorders", "replay", str(tmp_path / "report.json"),
                          "--rule", "ORDER-SEQ"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "no request recorded for rule ORDER-SEQ" in bad.stderr and "Traceback" not in bad.stderr


# --- transports as plug-ins -----------------------------------------------------

def test_a_third_transport_plugs_in_with_one_module_and_a_profile_entry(tmp_path: Path) -> None:
    """SSE read from a raw socket (tests/transports/raw_sse.py) is registered by
    `-p raw_sse`; a profile naming it gets every rule of the sse binding and of all
    transports on it, and parity with the WebSocket, with no other change."""
    doc = load_profile().raw
    doc = {**doc, "transports": {**doc["transports"], "sse-raw": {**doc["transports"]["sse"], "binding": "sse"}},
           "parity": [["sse", "ws"], ["sse-raw", "ws"]]}
    path = tmp_path / "three.yaml"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TRANSPORT_PLUGINS), os.environ.get("PYTHONPATH", "")])}
    report = tmp_path / "report.json"
    proc = _pytest(["--pyargs", "conformance", "-p", "raw_sse", "--profile", str(path), "--assert=plain",
                    "--conformance-report", str(report), "--embedded-pace-ms", "5",
                    "-k", "sse-raw or PARITY"], tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    entries = json.loads(report.read_text())["rules"]
    on_raw = {e["id"] for e in entries if e["transport"] == "sse-raw"}
    expected = {r.id for r in RULES.values() if r.scope == "transport" and r.binding in (None, "sse") and not r.only_with}
    assert on_raw == expected
    assert {(e["id"], e["transport"]) for e in entries if e["id"].startswith("PARITY-STRUCTURAL")} == \
        {("PARITY-STRUCTURAL", "sse-ws"), ("PARITY-STRUCTURAL", "sse-raw-ws")}
    # every rule passes but those of other protocols (no runs, spans, sentinel ... in agent-stream/1)
    assert [e for e in entries if e["verdict"] != "pass" and not e["message"].startswith("the profile ")] == []


def test_a_profile_transport_without_a_plugin_is_skipped_with_the_reason(tmp_path: Path) -> None:
    doc = load_profile().raw
    doc = {**doc, "transports": {**doc["transports"], "sse-h3": {"binding": "sse"}}, "parity": [["sse", "ws"]]}
    path = tmp_path / "h3.yaml"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    proc = _pytest(["--pyargs", "conformance", "--profile", str(path), "--base-url", "http://127.0.0.1:9", "-rs",
                    "-k", "SSE-STATUS and sse-h3"], tmp_path)
    assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout
    assert "no transport named 'sse-h3' is registered" in proc.stdout


def test_no_transport_name_dispatch_outside_the_transport_modules() -> None:
    pattern = re.compile(r"""(transport|\.name)\s*[!=]=\s*["'](sse|ws)["']|["'](sse|ws)["']\s*if\s""")
    offenders = []
    for folder in ("conformance", "load", "reports"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.parent.name == "wire":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    assert set(TRANSPORTS) >= {"sse", "ws"}


# --- the profile is the one source of its defaults ------------------------------

def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init}


def test_typed_sections_match_the_meta_schema_and_the_docs() -> None:
    props = META_SCHEMA["properties"]
    assert _fields(profile_mod.Order) == set(props["order"]["properties"])
    assert _fields(profile_mod.RequestSpec) == set(props["request"]["properties"])
    assert _fields(profile_mod.ParamSpec) == set(props["request"]["properties"]["params"]["additionalProperties"]["properties"])
    assert _fields(profile_mod.Disconnect) == set(props["disconnect"]["properties"])
    assert _fields(profile_mod.Aggregate) == set(props["aggregates"]["items"]["properties"])
    assert _fields(profile_mod.Runs) == set(props["runs"]["properties"])
    assert _fields(profile_mod.Span) == set(props["spans"]["items"]["properties"])
    assert _fields(profile_mod.Echo) == set(props["echoes"]["items"]["properties"])
    assert _fields(profile_mod.Reference) == set(props["references"]["items"]["properties"])
    assert _fields(profile_mod.StateSpec) == set(props["state"]["properties"])
    assert _fields(profile_mod.Source) == set(props["source"]["properties"])
    assert _fields(profile_mod.Case) == set(props["request"]["properties"]["invalid"]["items"]["properties"])
    assert set(BINDINGS) == set(BINDING_SCHEMAS)
    for name, cls in BINDINGS.items():
        assert _fields(cls) == set(BINDING_SCHEMAS[name]["properties"]), name
    docs = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    nested = [props[k]["properties"] for k in ("order", "request", "disconnect", "runs", "state", "source")] + \
        [props[k]["items"]["properties"] for k in ("aggregates", "spans", "echoes", "references")] + \
        [props["request"]["properties"]["invalid"]["items"]["properties"]]
    keys = set(props) | {k for n in nested for k in n} | {k for s in BINDING_SCHEMAS.values() for k in s["properties"]}
    undocumented = sorted(k for k in keys if f"`{k}`" not in docs)
    assert not undocumented, f"keys missing from docs/profiles.md: {undocumented}"
    assert plugin.DEFAULT_PROFILE == profile_mod.DEFAULT_PROFILE


def test_defaults_come_from_the_typed_sections() -> None:
    p = load_profile()
    bare = {"profile": "x", "type_field": "kind", "events": {"hi": {"type": "object"}}, "order": {"first": "hi", "last": "hi"}}
    q = profile_mod.Profile("x", None, bare)
    assert q.transports == {"sse": profile_mod.SSEBinding(), "ws": profile_mod.WSBinding()}
    assert q.parity == (("sse", "ws"),) and q.disconnect == profile_mod.Disconnect()
    assert q.request == profile_mod.RequestSpec() and q.end_types == ("hi",)
    assert p.transports["ws"].cancel.expect == {"type": "error", "code": "cancelled"}


# --- a plugin that is a good neighbour -------------------------------------------

def test_the_plugin_imports_nothing_heavy() -> None:
    code = ("import sys, pytest; import conformance.plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'conformance', 'httpx', 'httpcore', 'websockets', 'jsonschema', 'yaml', 'reference_server', 'load', 'reports'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "['conformance', 'conformance.plugin']", out.stdout + out.stderr


def test_an_unrelated_pytest_run_loads_no_suite_module(tmp_path: Path) -> None:
    (tmp_path / "test_other.py").write_text(
        "import sys\n\ndef test_other():\n"
        "    loaded = sorted(m for m in sys.modules if m.startswith('conformance.')\n"
        "                    and m not in ('conformance.plugin', 'conformance.browser_options'))\n"
        "    assert loaded == [], loaded\n", encoding="utf-8")
    proc = _pytest(["test_other.py"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_it_shares_base_url_with_pytest_base_url_and_playwright(tmp_path: Path, reference_url: str) -> None:
    """pytest-base-url (pulled in by pytest-playwright, both in the test extra) owns
    --base-url; a browser-test project's own tests and the conformance suite both
    run in this environment and read the same option."""
    import pytest_base_url  # noqa: F401 - installed by the project's test extra
    import pytest_playwright  # noqa: F401

    (tmp_path / "test_browserish.py").write_text(
        "def test_base_url(base_url):\n    assert base_url == 'http://127.0.0.1:9'\n\n"
        "def test_playwright_is_loaded(pytestconfig):\n    assert pytestconfig.pluginmanager.has_plugin('playwright')\n",
        encoding="utf-8")
    own = _pytest(["test_browserish.py", "--base-url", "http://127.0.0.1:9"], tmp_path)
    assert own.returncode == 0 and "2 passed" in own.stdout, own.stdout + own.stderr
    report = tmp_path / "report.json"
    suite = _pytest(["--pyargs", "conformance", "--base-url", reference_url, "-k", "ORDER-SEQ",
                     "--conformance-report", str(report)], tmp_path)
    assert suite.returncode == 0 and "2 passed" in suite.stdout, suite.stdout + suite.stderr
    assert json.loads(report.read_text())["backend"] == reference_url
    (tmp_path / "pytest.ini").write_text(f"[pytest]\nbase_url = {reference_url}\n", encoding="utf-8")
    from_ini = _pytest(["--pyargs", "conformance", "-k", "ORDER-SEQ", "--conformance-report", str(report)], tmp_path)
    assert from_ini.returncode == 0 and json.loads(report.read_text())["backend"] == reference_url, from_ini.stdout


def test_drawn_inputs_are_a_function_of_the_seed() -> None:
    from conformance import draw

    assert draw.drawn_values(0) == draw.drawn_values(0) and draw.drawn_questions(7) == draw.drawn_questions(7)
    assert draw.drawn_values(0) != draw.drawn_values(1) and draw.drawn_questions(0) != draw.drawn_questions(1)
    assert all(q.strip() and 1 <= len(q) <= 200 for q in draw.drawn_questions(3, 50))
    code = "import sys; from conformance import draw, stimuli, session; print('hypothesis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_a_request_document_with_wrong_types_is_refused() -> None:
    good = Request.make("ws", "http://127.0.0.1:1/ws", close_after=3).to_json()
    for field, bad in (("close_after", "3"), ("end_types", "stream_end"), ("query", [["a"]]),
                       ("messages", [{"text": "x", "after_events": "1"}])):
        with pytest.raises(ValueError, match=field.split("_")[0]):
            Request.from_json({**good, field: bad})


def _recording(transport: str, types: list[str], **fields) -> "object":
    from conformance.recording import RecordedEvent, Recording, SSEDetail, WSDetail

    rec = Recording(request=Request(transport, "http://127.0.0.1:1/x"),
                    detail=SSEDetail() if transport == "sse" else WSDetail(), **fields)
    for i, t in enumerate(types):
        data = {"type": t, **({"data": {}} if t == "complete" else {})}
        rec.events.append(RecordedEvent(i, json.dumps(data).encode(), json.dumps(data), data))
    return rec


def test_an_accepted_stream_that_ends_abnormally_is_a_finding() -> None:
    """A complete WebSocket stream closed with 1011 breaks a rule that needs a valid stream."""
    from conformance.rules.common import stream_problems
    from conformance.session import Context

    rec = _recording("ws", ["start", "complete", "stream_end"], status=101)
    rec.detail.close_code, rec.detail.close_frame_received = 1011, True
    ctx = Context(None, load_profile(), RULES["INPUT-ACCEPT"], "ws")
    problems = stream_problems("INPUT-ACCEPT", rec, ctx, "case")
    assert [f.message for f, _ in problems] == ["case: close code 1011"]


def test_sse_ends_response_needs_a_stream_that_reached_its_end() -> None:
    from conformance.session import judge_rule

    session = Session(Settings("http://127.0.0.1:1", load_profile()))
    empty = _recording("sse", [], status=200, response_headers=[("content-type", "text/event-stream")])
    empty.error_kind, empty.error = "timeout", "no event within 1 s"
    session._cache[("baseline", "sse")] = [empty]
    assert judge_rule(RULES["SSE-ENDS-RESPONSE"], session, "sse").verdict == "skip"
