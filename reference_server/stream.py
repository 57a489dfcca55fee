"""Stamping and pacing of the agent's events, the same for SSE and WebSocket.

``paced_events`` adds ``seq`` and ``ts``, waits ``pace`` before each chunk or
reasoning event (a real model emits tokens over time; the wait is what makes a
stream last long enough to test delivery and disconnects), appends
``stream_end``, and honours a ``StopSignal``: ``cancel`` ends the stream with
``error``/``cancelled`` then ``stream_end``; ``disconnect`` stops at once
because nobody is listening.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from .agent import CHUNK_TYPES, OFFLOAD, TERMINAL_TYPES, RunCache, agent_steps
from .params import StreamRequest

PACED_TYPES = CHUNK_TYPES | {"chain_of_thought"}
StopReason = Literal["cancel", "disconnect", "shutdown", "too_large"]
ENDINGS: dict[str, tuple[str, str]] = {
    "cancel": ("cancelled", "the client cancelled the stream"),
    "too_large": ("message_too_large", "a client message was larger than the server accepts (64 KiB); "
                                       "only small control messages such as a cancel are expected"),
    "shutdown": ("shutdown", "the server is shutting down; retry the question on another instance or later"),
}
"""The ``error`` event (code, message) of each stop that still ends the stream properly."""


class StopSignal:
    """Set once, by the transport, when the client cancels or goes away."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.reason: StopReason | None = None

    def stop(self, reason: StopReason) -> None:
        if self.reason is None:
            self.reason = reason
            self.event.set()


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class Stamped(dict):
    """A stamped event that may carry its JSON text already (``text``): built from
    the cached run's pre-serialised fields, so a replayed event is not encoded again."""

    __slots__ = ("text",)


def dumps(event: dict[str, Any]) -> str:
    """Compact JSON, ASCII only: one line whatever the content (no raw U+2028 or
    NEL that a line splitter might break on), identical on both transports."""
    text = getattr(event, "text", None)
    return text if text is not None else _json(event)


_DONE: Any = object()
"""Returned by ``next`` when the agent has no more events."""


YIELD_EVERY = 16
"""At pace 0, the stream lets the event loop run (other streams, a cancel arriving)
once every this many paced events, not before each one: each turn of the loop is
a system call, which cost more CPU per event than everything else the server does."""


async def _wait(stop: StopSignal, seconds: float, turn: int = 0) -> None:
    if seconds <= 0:
        if turn % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        return
    try:
        async with asyncio.timeout(seconds):
            await stop.event.wait()
    except TimeoutError:
        pass


async def paced_events(request: StreamRequest, pace: float, stop: StopSignal,
                       runs: RunCache | None = None) -> AsyncIterator[dict[str, Any]]:
    """The stamped events of one run, ``stream_end`` included. ``pace`` in seconds;
    ``runs`` replays a question already answered (None: always run the agent)."""
    seq = 0

    def stamp(event: dict[str, Any]) -> dict[str, Any]:
        nonlocal seq
        ts = time.time()
        stamped = Stamped(type=event["type"], seq=seq, ts=ts)
        stamped.update(event)  # "type" keeps its place, first; seq and ts follow it
        head = getattr(event, "json_head", None)  # '{"type":"..."' and the fields after ts, serialised once
        stamped.text = None if head is None else f'{head},"seq":{seq},"ts":{ts!r}{event.json_rest}'
        seq += 1
        return stamped

    def stopped(reason: str) -> list[dict[str, Any]]:
        code, message = ENDINGS[reason]
        out = []
        if seq == 0:
            out.append(stamp({"type": "start", "message": "Analysing the question"}))
        out.append(stamp({"type": "error", "code": code, "message": message}))
        out.append(stamp({"type": "stream_end"}))
        return out

    events = runs.steps(request) if runs is not None else agent_steps(request)
    offload = False
    try:
        while True:
            if stop.reason == "disconnect":
                return
            if stop.reason is not None:
                for event in stopped(stop.reason):
                    yield event
                return
            try:
                if offload:
                    # a step that runs pandas takes milliseconds, which would
                    # otherwise delay every other open stream and inflate the
                    # latencies this server is used to measure
                    event = await asyncio.to_thread(next, events, _DONE)
                else:
                    event = next(events, _DONE)
                offload = event is OFFLOAD
                if offload:
                    continue
            except Exception as exc:  # a bug in the agent still ends the stream properly
                event = {"type": "error", "code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
            if event is _DONE:
                break
            if event["type"] in PACED_TYPES:
                await _wait(stop, pace, seq)
                if stop.reason is not None:
                    continue  # re-check at the top: cancel or disconnect wins over this event
            yield stamp(event)
            if event["type"] in TERMINAL_TYPES:
                break  # complete or error sent: from here a cancel changes nothing
        if stop.reason == "disconnect":
            return
        yield stamp({"type": "stream_end"})
    finally:
        try:
            events.close()
        except ValueError:
            pass  # cancelled while a step ran in its worker thread: the step finishes there, unread
