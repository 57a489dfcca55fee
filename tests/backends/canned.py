"""The canned agent-stream/1 stream every test backend serves, and its defects (sans-I/O).

Pure functions and small classes on data: request checking, the list of events
a question gets, the stamping with ``seq``/``ts``, and the cancel tail. The three
server stacks (``fastapi_app``, ``aiohttp_app``, ``starlette_app``) only move
these events over their transport, so a defect that changes the stream changes
it identically on every stack and on both transports, unless the defect is
about one transport.

The defects that change the events themselves (and the request checking) live
here, keyed by name; the binding defects (headers, framing, closing,
rejection...) live in the stack that has them. Each stack lists the defects it
accepts in its ``DEFECTS``.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_QUESTION = 2000
DATASETS = ("all", "incidents", "deployments")
DEFAULT_PACE_MS = 25.0
MAX_PACE_MS = 2000.0
TERMINAL = ("complete", "error")


@dataclass(frozen=True)
class Request:
    question: str
    dataset: str
    pace_s: float


@dataclass(frozen=True)
class Rejection:
    param: str
    message: str

    def body(self) -> dict[str, str]:
        """JSON body of an SSE rejection (4xx, application/json)."""
        return {"error": "invalid_request", "param": self.param, "message": self.message}

    def ws_event(self) -> dict[str, str]:
        """The lone error event a WebSocket rejection may send before close 1008."""
        return {"type": "error", "code": "invalid_request", "message": self.message}


def parse(query: Mapping[str, str], defect: str | None = None) -> Request | Rejection:
    """Check the query as PROTOCOL section 1 says. ``pace_ms`` is this backend's own
    extra parameter (ms between events) so a test can make streams long."""
    raw = query.get("question")
    if raw is None:
        return Rejection("question", "the 'question' parameter is required")
    question = raw.strip()
    if defect == "control-characters-crash" and any(ord(c) < 32 or ord(c) == 127 for c in question):
        raise RuntimeError("control character in the question")  # the stack answers 500 / close 1011
    if defect == "rejects-one-character" and len(question) == 1:
        return Rejection("question", "'question' is too short")
    if not question and defect != "accepts-empty-question":
        return Rejection("question", "'question' must not be empty")
    # the limit counts code points; the defects count UTF-8 bytes or nothing
    length = len(question.encode()) if defect == "question-limit-in-bytes" else len(question)
    if length > MAX_QUESTION and defect != "accepts-too-long-question":
        return Rejection("question", f"'question' has {length} characters, at most {MAX_QUESTION}")
    dataset = query.get("dataset", "all")
    if dataset not in DATASETS:
        return Rejection("dataset", f"unknown dataset {dataset[:40]!r}; known: {', '.join(DATASETS)}")
    try:
        pace_ms = float(query.get("pace_ms", DEFAULT_PACE_MS))
    except ValueError:
        return Rejection("pace_ms", "'pace_ms' must be a number")
    if not 0 <= pace_ms <= MAX_PACE_MS:
        return Rejection("pace_ms", f"'pace_ms' must be between 0 and {MAX_PACE_MS:g}")
    return Request(question=question, dataset=dataset, pace_s=pace_ms / 1000.0)


def plan(request: Request, transport: str, defect: str | None = None, variable: bool = False) -> list[dict[str, Any]]:
    """The unstamped events of one stream, ``stream_end`` included. ``variable``:
    like an LLM, every stream differs in its texts and in how many chunks carry
    them (1 to 60 analysis chunks), within what structural parity allows."""
    q = request.question
    code = ["import pandas as pd\n", "df = load('%s')\n" % request.dataset, "print(df.head())\n"]
    analysis = ["## Answer\n", f"The question was {len(q)} characters long. ", "Nothing unusual was found."]
    if variable:
        rng = random.Random()
        words = ["incidents", "rose", "fell", "by", "team", "week", "mostly", "in", "the", "north", "region"]
        analysis = [rng.choice(words) + " " for _ in range(rng.randint(1, 60))]
        whole = "".join(code)
        cuts = sorted(rng.sample(range(1, len(whole)), rng.randint(0, 5)))
        code = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)])]
    events: list[dict[str, Any]] = [
        {"type": "start", "message": f"Analysing: {q[:80]}"},
        {"type": "progress", "stage": "router", "message": "routing the question"},
        {"type": "chain_of_thought", "content": "Load the data set, then summarise it."},
        {"type": "progress", "stage": "coder", "message": "writing code"},
        *({"type": "code_chunk", "chunk": c} for c in code),
        {"type": "code_generated", "code": "".join(code)},
        {"type": "verification", "confidence": 0.9, "checks": ["ran", "non-empty"]},
        {"type": "data_ready", "data": {"rows": 3, "dataset": request.dataset}},
        *({"type": "analysis_chunk", "chunk": c} for c in analysis),
        {"type": "complete", "data": {"analysis": "".join(analysis), "question": q}},
        {"type": "stream_end"},
    ]
    return _spoil(events, transport, defect)


def _index(events: list[dict[str, Any]], type_: str) -> int:
    return next(i for i, e in enumerate(events) if e["type"] == type_)


def _spoil(events: list[dict[str, Any]], transport: str, defect: str | None) -> list[dict[str, Any]]:
    """Break the stream in exactly the way ``defect`` names (if it is a stream defect)."""
    if defect == "confidence-out-of-range":
        events[_index(events, "verification")]["confidence"] = 1.5
    elif defect == "unknown-type":
        events.insert(2, {"type": "tool_call", "name": "sql"})
    elif defect == "empty-chunk":
        events[_index(events, "code_chunk") + 1]["chunk"] = ""
        events[_index(events, "code_generated")]["code"] = "".join(
            e["chunk"] for e in events if e["type"] == "code_chunk")
    elif defect == "missing-start":
        del events[0]
    elif defect == "missing-stream-end":
        del events[-1]
    elif defect == "event-after-end":
        events.append({"type": "progress", "stage": "cleanup", "message": "done"})
    elif defect == "chunk-sum-mismatch":
        events[_index(events, "code_generated")]["code"] += "# one more line\n"
    elif defect == "analysis-mismatch":
        events[_index(events, "complete")]["data"]["analysis"] = "A different analysis."
    elif defect == "event-between-complete-and-end":
        events.insert(-1, {"type": "progress", "stage": "cleanup", "message": "closing"})
    elif defect == "complete-and-error":
        events.insert(-1, {"type": "error", "code": "late", "message": "a late failure"})
    elif defect == "unterminated-code-run":
        del events[_index(events, "code_generated")]
    elif defect == "ws-extra-event" and transport == "ws":
        events.insert(2, {"type": "progress", "stage": "router", "message": "websocket client detected"})
    elif defect == "ws-field-differs" and transport == "ws":
        events[1]["message"] = "routing the question (ws)"
    return events


def cancel_tail(sent_any: bool) -> list[dict[str, Any]]:
    """What a cancelled stream still sends (PROTOCOL section 5)."""
    tail = [] if sent_any else [{"type": "start", "message": "cancelled before it began"}]
    return tail + [{"type": "error", "code": "cancelled", "message": "the client cancelled"}, {"type": "stream_end"}]


_GLOBAL_SEQ = itertools.count()
"""The ``shared-seq-counter`` defect: one counter for every stream of the process."""


_OPEN_BY_QUESTION: dict[tuple[str, str], list[Any]] = {}
"""The ``same-question-shares-seq`` defect: streams of one question on one transport
that are open at the same time share one counter (key -> [open streams, counter])."""


class Stamper:
    """Adds ``seq`` and ``ts`` to each event as it is emitted."""

    def __init__(self, defect: str | None = None, key: tuple[str, str] | None = None) -> None:
        self.defect = defect
        self.seq = 0
        self._shared: list[Any] | None = None
        if defect == "same-question-shares-seq" and key is not None:
            entry = _OPEN_BY_QUESTION.setdefault(key, [0, itertools.count()])
            if entry[0] == 0:
                entry[1] = itertools.count()
            entry[0] += 1
            self._shared = entry

    def release(self) -> None:
        """The stream is over (for the shared counter of ``same-question-shares-seq``)."""
        if self._shared is not None:
            self._shared[0] -= 1
            self._shared = None

    def stamp(self, event: dict[str, Any]) -> dict[str, Any]:
        if self._shared is not None:
            seq = next(self._shared[1])
        else:
            seq = next(_GLOBAL_SEQ) if self.defect == "shared-seq-counter" else self.seq
        if self.defect == "seq-gap" and self.seq >= 5:
            seq += 1
        self.seq += 1
        out: dict[str, Any] = {"type": event["type"], "seq": str(seq) if self.defect == "seq-as-string" else seq,
                               "ts": time.time() * (1000 if self.defect == "ts-milliseconds" else 1)}
        out.update((k, v) for k, v in event.items() if k != "type")
        return out


def dumps(event: Any, *, pretty: bool = False) -> str:
    """Compact ASCII JSON: one line whatever the content (``pretty``: indented, several lines)."""
    if pretty:
        return json.dumps(event, indent=2, ensure_ascii=True)
    return json.dumps(event, separators=(",", ":"), ensure_ascii=True)


def sse_message(event: dict[str, Any], *, eol: str = "\n", with_id: bool = True, name: str | None = None,
                pretty: bool = False, space: bool = True) -> bytes:
    """One SSE message for the stacks that write the wire format themselves
    (``space=False``: ``data:{...}``, which the SSE format allows)."""
    sp = " " if space else ""
    lines = [f"id:{sp}{event['seq']}"] if with_id and "seq" in event else []
    if name:
        lines.append(f"event:{sp}{name}")
    lines += [f"data:{sp}{line}" for line in dumps(event, pretty=pretty).split("\n")]
    return (eol.join(lines) + eol + eol).encode()


def client_cancels(text: str | None) -> bool:
    """Whether a client WebSocket message is a cancel (anything else is ignored)."""
    if text is None:
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("type") == "cancel"
