"""The reference agent: the whole agent-stream/1 vocabulary from a deterministic run.

``agent_events`` is the sans-I/O core: a plain generator of event dicts (no
``seq``, no ``ts``, no pacing) that plans, writes pandas code, runs it, reflects
on a failure, verifies, and writes the analysis. It is lazy: the code runs when
the consumer reaches that point, so a consumer that stops iterating stops the
work. ``stream.py`` stamps and paces these events for both transports, which is
why SSE and WebSocket carry the very same events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pandas as pd

from .analysis import analysis_markdown, chart_spec, table_rows
from .datasets import TABLES, frames_for
from .params import StreamRequest
from .planner import Plan, make_plan, render_code
from .sandbox import run_code

Event = dict[str, Any]
OFFLOAD: Any = type("Offload", (), {"__repr__": lambda self: "OFFLOAD", "__slots__": ()})()
"""Yielded by ``agent_steps`` just before a step that runs pandas (milliseconds of
CPU): the driver runs the next step off the event loop. Every other step is a few
microseconds of string work, cheaper inline than a thread hop (which cost about a
third of the server's CPU per event when every step took one)."""
CHUNK_TYPES = frozenset({"code_chunk", "reflection_chunk", "analysis_chunk"})
TERMINAL_TYPES = frozenset({"complete", "error"})
STAGES = ("router", "planner", "coder", "executor", "verifier", "analyst")

_TOKEN_RE = re.compile(r"\s+|\w+|[^\w\s]")
_WORDS_RE = re.compile(r"\S+\s*|\s+")


def code_pieces(code: str, max_len: int = 12) -> list[str]:
    """Split code the way a model streams it: a few tokens at a time, never across lines."""
    pieces: list[str] = []
    for line in code.splitlines(keepends=True):
        current = ""
        for token in _TOKEN_RE.findall(line):
            if current and len(current) + len(token) > max_len and not token.isspace():
                pieces.append(current)
                current = ""
            current += token
        if current:
            pieces.append(current)
    return pieces


def text_pieces(text: str, words: int = 2) -> list[str]:
    """Split prose into pieces of a few words, white space kept, none empty."""
    tokens = _WORDS_RE.findall(text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def _describe_frames(dataset: str) -> str:
    frames = frames_for(dataset)
    parts = [f"{name} ({len(df)} rows; columns: {', '.join(map(str, df.columns))})" for name, df in frames.items()]
    return "Available data: " + "; ".join(parts) + "."


def _reflection_text(plan: Plan, error: BaseException) -> str:
    table = "the joined incidents and deployments table" if plan.target == "joined" else plan.target
    columns = (
        ", ".join(f"`{c}`" for c in ("service", "team"))
        if plan.target == "joined"
        else ", ".join(f"`{c}`" for c in TABLES[plan.target].categorical)
    )
    return (
        f"Attempt 1 failed with {type(error).__name__}: {error}. "
        f"The code grouped by `{plan.requested_group}`, but {table} has no such column. "
        f"The columns I can group by are {columns}. "
        f"The closest useful one is `{plan.group}`, so the next attempt groups by `{plan.group}` "
        "and the analysis says that the requested column does not exist."
    )


def _confidence(result: pd.DataFrame, plan: Plan, attempts: int) -> tuple[float, list[dict[str, Any]]]:
    checks = [
        {"check": "result is not empty", "passed": not result.empty},
        {"check": "no missing values", "passed": not bool(result.isna().any().any())},
        {"check": "answer column present", "passed": plan.value_column in result.columns},
        {"check": "first attempt succeeded", "passed": attempts == 1},
    ]
    penalties = {0: 0.5, 1: 0.15, 2: 0.3, 3: 0.2}
    confidence = 0.95 - sum(penalties[i] for i, c in enumerate(checks) if not c["passed"])
    return round(max(0.0, min(1.0, confidence)), 2), checks


def _code_events(code: str, attempt: int) -> Iterator[Event]:
    yield {"type": "progress", "stage": "coder", "message": f"Writing pandas code (attempt {attempt})"}
    for piece in code_pieces(code):
        yield {"type": "code_chunk", "chunk": piece, "attempt": attempt}
    yield {"type": "code_generated", "code": code, "attempt": attempt, "language": "python"}


def agent_events(request: StreamRequest) -> Iterator[Event]:
    """Every event of one run, in order, unstamped. Ends with complete or error
    (``stream_end`` is added by the streaming layer)."""
    return (step for step in agent_steps(request) if step is not OFFLOAD)


class Prepared(dict):
    """A cached event serialised once around its envelope (``json_head``:
    ``{"type":"..."``, ``json_rest``: ``,"k":v,...}``), so that a replay only writes
    ``seq`` and ``ts`` (``stream.dumps`` then does not encode it again)."""

    __slots__ = ("json_head", "json_rest")

    def __init__(self, event: Event) -> None:
        super().__init__(event)
        import json

        def text(value: Any) -> str:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)

        rest = text({k: v for k, v in event.items() if k != "type"})
        self.json_head = '{"type":' + text(event["type"])
        self.json_rest = "}" if rest == "{}" else "," + rest[1:]


class RunCache:
    """The events of finished runs by request, at most ``size`` of them (oldest out).

    The agent is deterministic (same request, same bundled data, same events), so a
    question asked again need not run pandas again: its events are replayed, still
    stamped and paced one by one, still stopped by a cancel or a disconnect. Only a
    run that reached its end is kept (a stopped one is not a full answer). The
    pandas work is most of the server's CPU per event otherwise (2.8 ms per stream,
    about 38 µs per event), which no transport choice changes; ``size=0`` turns the
    cache off.
    """

    def __init__(self, size: int = 256) -> None:
        from collections import OrderedDict

        self.size = size
        self._runs: OrderedDict[StreamRequest, tuple[Event, ...]] = OrderedDict()

    def steps(self, request: StreamRequest) -> Iterator[Any]:
        """``agent_steps(request)``, replayed when a full run of it is cached."""
        hit = self._runs.get(request)
        if hit is not None:
            self._runs.move_to_end(request)
            return (event for event in hit)  # a generator, closed like a run
        return self._record(request) if self.size > 0 else agent_steps(request)

    def _record(self, request: StreamRequest) -> Iterator[Any]:
        events: list[Event] = []
        for step in agent_steps(request):
            if step is not OFFLOAD:
                events.append(Prepared(step))
                if step["type"] in TERMINAL_TYPES:  # the run is whole (the consumer stops here)
                    self._runs[request] = tuple(events)
                    while len(self._runs) > self.size:
                        self._runs.popitem(last=False)
            yield step


def agent_steps(request: StreamRequest) -> Iterator[Any]:
    """``agent_events`` with an ``OFFLOAD`` marker before each heavy step."""
    yield {
        "type": "start",
        "message": "Analysing the question",
        "question": request.question,
        "dataset": request.dataset,
        "model": request.model,
    }
    yield {"type": "progress", "stage": "router", "message": f"Routing the question to data set '{request.dataset}'"}
    plan = make_plan(request.question, request.dataset)
    yield {"type": "chain_of_thought", "content": _describe_frames(request.dataset)}
    yield {"type": "chain_of_thought", "content": plan.reasons[0]}
    yield {"type": "progress", "stage": "planner", "message": "Planning the analysis"}
    for reason in plan.reasons[1:]:
        yield {"type": "chain_of_thought", "content": reason}
    if plan.top:
        yield {"type": "chain_of_thought", "content": f"Only the top {plan.top} rows are asked for."}
    yield {
        "type": "chain_of_thought",
        "content": f"The result will be a table of {plan.value_column} per {plan.key_column}, "
        f"shown as a {'line' if plan.kind == 'trend' else 'bar'} chart.",
    }

    frames = frames_for(request.dataset)
    attempt = 1
    substituted: str | None = None
    if plan.requested_group is not None:
        code = render_code(plan, plan.requested_group)
        yield from _code_events(code, attempt)
        yield {"type": "progress", "stage": "executor", "message": f"Running attempt {attempt}"}
        yield OFFLOAD
        try:
            run_code(code, frames)
        except Exception as exc:  # the real failure is what the agent reflects on
            failure = f"{type(exc).__name__}: {exc}"
            yield {"type": "progress", "stage": "executor", "message": f"Attempt {attempt} failed: {failure}"}
            yield {"type": "progress", "stage": "reflector", "message": "Analysing the error"}
            text = _reflection_text(plan, exc)
            for piece in text_pieces(text, words=4):
                yield {"type": "reflection_chunk", "chunk": piece, "attempt": attempt}
            yield {"type": "reflection", "content": text, "attempt": attempt, "error": failure}
        else:
            # The planner only asks for columns the table lacks, so this cannot
            # happen; if it did, the attempt's result would not fit the plan.
            yield {"type": "error", "code": "planner_error", "message": "attempt 1 unexpectedly succeeded"}
            return
        substituted = plan.requested_group
        attempt += 1
    code = render_code(plan, plan.group)
    yield from _code_events(code, attempt)
    yield {"type": "progress", "stage": "executor", "message": f"Running attempt {attempt}"}
    yield OFFLOAD
    try:
        result = run_code(code, frames)
    except Exception as exc:
        yield {"type": "error", "code": "execution_failed", "message": f"Attempt {attempt} failed: {type(exc).__name__}: {exc}"}
        return
    attempts = attempt
    yield {"type": "progress", "stage": "executor", "message": f"Attempt {attempts} returned {len(result)} rows"}

    yield {"type": "progress", "stage": "verifier", "message": "Checking the result"}
    yield {
        "type": "chain_of_thought",
        "content": f"The result has {len(result)} rows and columns {', '.join(map(str, result.columns))}; "
        "I check that it is not empty, has no missing values and holds the answer column.",
    }
    yield OFFLOAD
    confidence, checks = _confidence(result, plan, attempts)
    yield {"type": "verification", "confidence": confidence, "checks": checks, "attempts": attempts}

    yield OFFLOAD
    rows, columns = table_rows(result)
    yield {
        "type": "data_ready",
        "data": {"rows": rows, "columns": columns, "chart": chart_spec(plan, rows)},
    }

    yield {"type": "progress", "stage": "analyst", "message": "Writing the analysis"}
    yield OFFLOAD
    counted = frames.get(plan.target) if plan.kind == "count" else None
    text = analysis_markdown(plan, result, substituted, None if counted is None else len(counted))
    for piece in text_pieces(text):
        yield {"type": "analysis_chunk", "chunk": piece}
    yield {
        "type": "complete",
        "data": {
            "analysis": text,
            "rows": len(result),
            "columns": columns,
            "code": code,
            "attempts": attempts,
            "confidence": confidence,
            "dataset": request.dataset,
        },
    }
