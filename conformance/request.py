"""A request as a value: everything a transport needs to open one stream.

The suite, the load scenarios and the replay command build a :class:`Request`
and hand it to a transport (``conformance.wire``); the recording keeps it. Since
the request is data and not a closure, the reproduction line of any finding is
derived from it, the JSON report can carry it, and
``python -m conformance.recorders replay FILE.json`` can send it again. Frozen and
hashable: a report lists each distinct request once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Mapping

Pairs = tuple[tuple[str, str], ...]


def _pairs(items: Mapping[str, Any] | Pairs | None) -> Pairs:
    if not items:
        return ()
    if isinstance(items, Mapping):
        return tuple((str(k), str(v)) for k, v in items.items())
    return tuple((str(k), str(v)) for k, v in items)


@dataclass(frozen=True)
class ClientMessage:
    """A message the client sends during the stream (WebSocket): ``text`` is sent
    after ``after_events`` events arrived, or when an event of type ``on_type``
    arrives, whichever is given (``after_events=0``: right after the handshake)."""

    text: str
    after_events: int | None = None
    on_type: str | None = None

    @classmethod
    def json(cls, value: Any, *, after_events: int | None = None, on_type: str | None = None) -> "ClientMessage":
        return cls(json.dumps(value, ensure_ascii=False), after_events, on_type)

    def due(self, events_so_far: int, event_type: str | None) -> bool:
        """Whether this message is to be sent now, after ``events_so_far`` events
        of which the last had ``event_type``."""
        if self.on_type is not None:
            return event_type == self.on_type
        return self.after_events is not None and events_so_far == self.after_events


@dataclass(frozen=True)
class Request:
    """One stream request. ``url`` has no query; ``query`` is sent as given."""

    transport: str
    url: str
    method: str = "GET"
    query: Pairs = ()
    headers: Pairs = ()
    body: bytes | None = None
    messages: tuple[ClientMessage, ...] = ()
    close_after: int | None = None
    """The client leaves after this many events."""
    compression: bool = False
    """Offer permessage-deflate (WebSocket)."""
    last_event_id: str | None = None
    """Sent as Last-Event-ID (SSE), as a browser's EventSource does on reconnect."""
    end_types: tuple[str, ...] = ()
    """After an event of one of these types the server must end the stream (the
    recorder waits ``Limits.end_grace`` for it): the profile's last type."""
    type_field: str = "type"
    """The JSON field that names an event's type (the profile's)."""
    end_sentinel: str | None = None
    """The data of the SSE message that ends the stream (``[DONE]``): recorded as
    the end, not as an event."""
    client_ends: bool = False
    """After an end type the client closes (WebSocket protocols that keep the
    socket open for the next request)."""
    type_from_event: bool = False
    """SSE: an event whose JSON has no type field takes the ``event:`` name as its type."""
    question: str | None = None
    """The question the request asks, wherever the protocol carries it (query,
    body, first message): what rules that compare streams by question read."""

    @classmethod
    def make(cls, transport: str, url: str, *, params: Mapping[str, Any] | Pairs | None = None,
             headers: Mapping[str, Any] | Pairs | None = None, **kwargs: Any) -> "Request":
        """A request from plain mappings (the usual way to build one)."""
        return cls(transport, url, query=_pairs(params), headers=_pairs(headers), **kwargs)

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)

    @property
    def header_map(self) -> dict[str, str]:
        return dict(self.headers)

    def with_params(self, question_param: str | None = None, **changes: str | None) -> "Request":
        """The same request with query parameters set (None removes one); when one
        of them is ``question_param``, the request's question changes with it."""
        params = self.params
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        question = params.get(question_param, self.question) if question_param in changes else self.question
        return replace(self, query=_pairs(params), question=question)

    def but(self, **changes: Any) -> "Request":
        return replace(self, **changes)

    def describe(self, limit: int = 2) -> str:
        """The query in a few words, to tell requests of one rule apart."""
        parts = []
        for key, value in self.query[:limit]:
            text = value if len(value) <= 30 else value[:27] + "..."
            parts.append(f"{key}={text!r}")
        return " ".join(parts)

    # -- JSON, for the report and the replay command --
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"transport": self.transport, "url": self.url, "method": self.method,
                               "query": [list(p) for p in self.query], "headers": [list(p) for p in self.headers]}
        if self.body is not None:
            out["body"] = self.body.decode("utf-8", "surrogateescape")
        if self.messages:
            out["messages"] = [{"text": m.text, "after_events": m.after_events, "on_type": m.on_type}
                               for m in self.messages]
        for key in ("close_after", "last_event_id"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.compression:
            out["compression"] = True
        if self.end_types:
            out["end_types"] = list(self.end_types)
        if self.type_field != "type":
            out["type_field"] = self.type_field
        if self.end_sentinel is not None:
            out["end_sentinel"] = self.end_sentinel
        if self.client_ends:
            out["client_ends"] = True
        if self.question is not None:
            out["question"] = self.question
        if self.type_from_event:
            out["type_from_event"] = True
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Request":
        """The request a report wrote; ValueError names what is wrong."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("transport"), str) or not isinstance(doc.get("url"), str):
            raise ValueError("a request needs a string 'transport' and 'url'")
        _check_types(doc)
        try:
            body = doc.get("body")
            return cls(
                transport=doc["transport"], url=doc["url"], method=str(doc.get("method", "GET")),
                query=_pairs([tuple(p) for p in doc.get("query", [])]),
                headers=_pairs([tuple(p) for p in doc.get("headers", [])]),
                body=body.encode("utf-8", "surrogateescape") if isinstance(body, str) else None,
                messages=tuple(ClientMessage(str(m["text"]), m.get("after_events"), m.get("on_type"))
                               for m in doc.get("messages", [])),
                close_after=doc.get("close_after"), compression=doc.get("compression", False) is True,
                last_event_id=doc.get("last_event_id"), end_types=tuple(doc.get("end_types", ())),
                type_field=str(doc.get("type_field", "type")), end_sentinel=doc.get("end_sentinel"),
                client_ends=doc.get("client_ends", False) is True, question=doc.get("question"),
                type_from_event=doc.get("type_from_event", False) is True,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a request: {type(exc).__name__}: {exc}") from None


def _kind(value: Any, types: tuple[type, ...], optional: bool = True) -> bool:
    return (optional and value is None) or (isinstance(value, types) and not isinstance(value, bool))


def _check_types(doc: Mapping[str, Any]) -> None:
    """ValueError naming the first field of a request document with the wrong type."""
    def pairs(name: str) -> None:
        items = doc.get(name, [])
        if not isinstance(items, list) or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                                                  for p in items):
            raise ValueError(f"'{name}' must be a list of [name, value] string pairs")

    pairs("query")
    pairs("headers")
    for name in ("method", "body", "last_event_id", "type_field", "end_sentinel", "question"):
        if not _kind(doc.get(name), (str,)):
            raise ValueError(f"'{name}' must be a string")
    if not _kind(doc.get("close_after"), (int,)):
        raise ValueError("'close_after' must be an integer")
    ends = doc.get("end_types", [])
    if not isinstance(ends, list) or not all(isinstance(x, str) for x in ends):
        raise ValueError("'end_types' must be a list of strings")
    messages = doc.get("messages", [])
    if not isinstance(messages, list):
        raise ValueError("'messages' must be a list")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("text"), str) \
                or not _kind(m.get("after_events"), (int,)) or not _kind(m.get("on_type"), (str,)):
            raise ValueError(f"messages[{i}] must have a string 'text', an integer 'after_events' or a string 'on_type'")
