"""Hand-made streams of other protocols, each broken in exactly one way, and the
correct stream each is made from. Pure data and framing: ``scripted.py`` serves
them on two server stacks, ``thirdparty/aimock.py`` serves the AG-UI ones from
aimock's own AG-UI mock, and tests/test_protocols.py holds every new kind of
rule to failing on its broken stream and passing on the correct one.

``$threadId`` and ``$runId`` in an event stand for the request's values (the
Python stacks fill them in, as a real AG-UI server echoes them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

T, R = "$threadId", "$runId"


def _run(*inner: dict[str, Any], finished: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [{"type": "RUN_STARTED", "threadId": T, "runId": R}, *inner,
            finished or {"type": "RUN_FINISHED", "threadId": T, "runId": R}]


def _text(mid: str = "m1", text: str = "Hello there.") -> list[dict[str, Any]]:
    return [{"type": "TEXT_MESSAGE_START", "messageId": mid, "role": "assistant"},
            *({"type": "TEXT_MESSAGE_CONTENT", "messageId": mid, "delta": piece} for piece in text.split(" ")),
            {"type": "TEXT_MESSAGE_END", "messageId": mid}]


_TOOL = [{"type": "TOOL_CALL_START", "toolCallId": "call_1", "toolCallName": "get_weather", "parentMessageId": "m1"},
         {"type": "TOOL_CALL_ARGS", "toolCallId": "call_1", "delta": '{"city": '},
         {"type": "TOOL_CALL_ARGS", "toolCallId": "call_1", "delta": '"Paris"}'},
         {"type": "TOOL_CALL_END", "toolCallId": "call_1"},
         {"type": "TOOL_CALL_RESULT", "messageId": "m2", "toolCallId": "call_1", "content": "sunny", "role": "tool"}]
_STATE = [{"type": "STATE_SNAPSHOT", "snapshot": {"items": [], "count": 0}},
          {"type": "STATE_DELTA", "delta": [{"op": "add", "path": "/items/-", "value": "a"},
                                            {"op": "replace", "path": "/count", "value": 1}]}]


def _chat(*pieces: str, finish: str | None = "stop", cid: str = "chatcmpl-1") -> list[dict[str, Any]]:
    base = {"object": "chat.completion.chunk", "created": 1796170000, "model": "gpt-4o"}
    out = [{**base, "id": cid, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                            "finish_reason": None}]}]
    out += [{**base, "id": cid, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    out.append({**base, "id": cid, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return out


def _responses(deltas: tuple[str, ...] = ("Hello ", "there."), done: str | None = None,
               item: str = "msg_1", delta_item: str | None = None) -> list[dict[str, Any]]:
    resp = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
    text = "".join(deltas) if done is None else done
    events = [
        {"type": "response.created", "response": resp},
        {"type": "response.in_progress", "response": resp},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": item, "type": "message", "status": "in_progress", "role": "assistant", "content": []}},
        {"type": "response.content_part.added", "item_id": item, "output_index": 0, "content_index": 0,
         "part": {"type": "output_text", "text": ""}},
        *({"type": "response.output_text.delta", "item_id": delta_item or item, "output_index": 0, "content_index": 0,
           "delta": d} for d in deltas),
        {"type": "response.output_text.done", "item_id": item, "output_index": 0, "content_index": 0, "text": text},
        {"type": "response.content_part.done", "item_id": item, "output_index": 0, "content_index": 0,
         "part": {"type": "output_text", "text": text}},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {"id": item, "type": "message", "status": "completed", "role": "assistant", "content": []}},
        {"type": "response.completed", "response": {**resp, "status": "completed"}},
    ]
    return [{**e, "sequence_number": i} for i, e in enumerate(events)]


@dataclass(frozen=True)
class Script:
    """A stream as its server sends it: events and how they are framed."""

    name: str
    profile: str
    events: tuple[dict[str, Any], ...]
    breaks: str | None = None
    """The rule this stream breaks (None: a correct stream)."""
    named: bool = False
    """Each message has ``event: <type>`` (OpenAI Responses, Anthropic)."""
    sentinel: str | None = None
    """Sent after the events as ``data: <sentinel>`` (Chat Completions: [DONE])."""
    line_end: str = "\n"
    rename: dict[int, str] = field(default_factory=dict)
    """Event index -> an ``event:`` name other than its type (a broken name)."""
    after_sentinel: bool = False
    """Send the second event again after the sentinel (a broken end)."""

    def frames(self, request_doc: Any = None) -> list[bytes]:
        """The bytes of each SSE message, with the request's ids filled in."""
        ids = {T: "", R: ""}
        if isinstance(request_doc, dict):
            ids = {T: str(request_doc.get("threadId", "")), R: str(request_doc.get("runId", ""))}
        out = []
        for i, event in enumerate(self.events):
            text = json.dumps(event, ensure_ascii=False)
            for placeholder, value in ids.items():
                text = text.replace(json.dumps(placeholder), json.dumps(value))
            lines = []
            if self.named:
                lines.append(f"event: {self.rename.get(i, event.get('type'))}")
            lines.append(f"data: {text}")
            out.append((self.line_end.join(lines) + self.line_end * 2).encode("utf-8"))
        if self.sentinel is not None:
            out.append(f"data: {self.sentinel}{self.line_end * 2}".encode("utf-8"))
            if self.after_sentinel:
                out.append(out[1])
        return out

    def fixed_ids(self, thread: str, run: str) -> list[dict[str, Any]]:
        """The events with the ids given (for a server that cannot echo, such as an aimock fixture)."""
        text = json.dumps(list(self.events)).replace(json.dumps(T), json.dumps(thread)).replace(json.dumps(R), json.dumps(run))
        return json.loads(text)


AG_UI, CHAT, RESPONSES = "ag-ui/1.0", "openai-chat-completions", "openai-responses"

SCRIPTS: tuple[Script, ...] = (
    # --- AG-UI: correct, then one defect each ---
    Script("agui-ok", AG_UI, tuple(_run(*_text(), *_TOOL, *_STATE, *_text("m3", "It is sunny.")))),
    Script("agui-two-runs", AG_UI, tuple(_run(*_text()) + _run(*_text("m2")))),
    Script("agui-error-then-new-run", AG_UI, (_run()[0], {"type": "RUN_ERROR", "message": "failed"},
                                              *_run(*_text("m2")))),
    Script("agui-lone-error", AG_UI, ({"type": "RUN_ERROR", "message": "no model configured"},)),
    Script("agui-interleaved-messages", AG_UI, tuple(_run(
        _text("a")[0], _text("b")[0], _text("a")[1], _text("b")[1], _text("b")[-1], _text("a")[-1]))),
    Script("agui-chunks", AG_UI, tuple(_run(
        {"type": "TEXT_MESSAGE_CHUNK", "messageId": "c1", "role": "assistant", "delta": "Hello "},
        {"type": "TEXT_MESSAGE_CHUNK", "delta": "there."},
        {"type": "TOOL_CALL_CHUNK", "toolCallId": "call_9", "toolCallName": "get_weather", "delta": '{"city":'},
        {"type": "TOOL_CALL_CHUNK", "delta": '"Paris"}'},
        {"type": "TOOL_CALL_RESULT", "messageId": "m9", "toolCallId": "call_9", "content": "sunny"}))),
    Script("agui-error-mid-message", AG_UI, (_run()[0], *_text()[:2], {"type": "RUN_ERROR", "message": "overloaded"})),
    Script("agui-first-chunk-without-id", AG_UI, tuple(_run({"type": "TEXT_MESSAGE_CHUNK", "delta": "Hello"})),
           "LIFECYCLE-SPAN"),
    Script("agui-nested-run", AG_UI, tuple(_run({"type": "RUN_STARTED", "threadId": T, "runId": "inner"}, *_text())),
           "LIFECYCLE-RUN"),
    Script("agui-event-after-finish", AG_UI, tuple(_run(*_text()) + _text("m2") + [{"type": "RUN_FINISHED", "threadId": T, "runId": R}]),
           "LIFECYCLE-RUN"),
    Script("agui-error-then-error", AG_UI, (_run()[0], {"type": "RUN_ERROR", "message": "failed"},
                                            {"type": "RUN_ERROR", "message": "failed again"}), "LIFECYCLE-RUN"),
    Script("agui-content-without-start", AG_UI, tuple(_run(*_text()[1:])), "LIFECYCLE-SPAN"),
    Script("agui-message-left-open", AG_UI, tuple(_run(*_text()[:-1])), "LIFECYCLE-SPAN"),
    Script("agui-message-started-twice", AG_UI, tuple(_run(_text()[0], *_text())), "LIFECYCLE-SPAN"),
    Script("agui-wrong-thread", AG_UI, tuple([{"type": "RUN_STARTED", "threadId": "another-thread", "runId": R}]
                                             + _run(*_text())[1:-1]
                                             + [{"type": "RUN_FINISHED", "threadId": "another-thread", "runId": R}]),
           "ECHO-REQUEST"),
    Script("agui-finish-other-run", AG_UI, tuple(_run(*_text(), finished={"type": "RUN_FINISHED", "threadId": T,
                                                                           "runId": "some-other-run"})), "ECHO-EVENT"),
    Script("agui-result-of-unknown-call", AG_UI, tuple(_run(*_text(), {**_TOOL[-1], "toolCallId": "call_never_made"})),
           "REF-KNOWN-ID"),
    Script("agui-patch-does-not-apply", AG_UI, tuple(_run(_STATE[0], {"type": "STATE_DELTA", "delta": [
        {"op": "replace", "path": "/missing/deep", "value": 1}]}, *_text())), "STATE-PATCH"),
    Script("agui-truncated", AG_UI, tuple(_run(*_text())[:-1]), "ORDER-LAST-STREAM-END"),
    Script("agui-crlf", AG_UI, tuple(_run(*_text())), "SSE-LINE-ENDINGS", line_end="\r\n"),
    # --- OpenAI Chat Completions ---
    Script("chat-ok", CHAT, tuple(_chat("Hello ", "there.")), sentinel="[DONE]"),
    Script("chat-no-done", CHAT, tuple(_chat("Hello ", "there.")), "SSE-DONE-SENTINEL"),
    Script("chat-event-after-done", CHAT, tuple(_chat("Hello ")), "SSE-DONE-SENTINEL", sentinel="[DONE]",
           after_sentinel=True),
    Script("chat-no-finish-reason", CHAT, tuple(_chat("Hello ", "there.", finish=None)), "ORDER-LAST-STREAM-END",
           sentinel="[DONE]"),
    Script("chat-id-changes", CHAT, tuple(_chat("Hello ")[:2] + _chat("there.", cid="chatcmpl-2")[1:]),
           "ECHO-EVENT", sentinel="[DONE]"),
    # --- OpenAI Responses ---
    Script("responses-ok", RESPONSES, tuple(_responses()), named=True),
    # the type only in the event: name: the OpenAI SDK reads data.type (type_from_event_name is for LangGraph)
    Script("responses-type-in-name-only", RESPONSES,
           tuple({k: v for k, v in e.items() if k != "type"} for e in _responses()), "SCHEMA-ENVELOPE", named=True,
           rename={i: e["type"] for i, e in enumerate(_responses())}),
    Script("responses-name-not-type", RESPONSES, tuple(_responses()), "SSE-EVENT-TYPE", named=True,
           rename={4: "response.output_text"}),
    Script("responses-deltas-do-not-add-up", RESPONSES, tuple(_responses(done="Hello world.")), "ORDER-CHUNK-SUM",
           named=True),
    Script("responses-delta-of-unknown-item", RESPONSES, tuple(_responses(delta_item="msg_unknown")), "REF-KNOWN-ID",
           named=True),
)
BY_NAME = {s.name: s for s in SCRIPTS}

