"""Pacing, cancel and the open-streams gauge: the asyncio part every stack shares.

No network here. Each stack iterates :func:`paced` and writes the events on its
own transport; :class:`Gauge` is what ``GET /metrics`` shows as
``agent_active_streams`` so the suite can see from outside when work stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import contextmanager
from typing import Any, Iterator

from .canned import TERMINAL, Request, Stamper, cancel_tail, plan

GAUGE = "agent_active_streams"


class Gauge:
    """Open streams (accepted and not finished), both transports."""

    def __init__(self, leak_on_leave: bool = False) -> None:
        self.value = 0
        self.leak_on_leave = leak_on_leave
        """The ``gauge-leaks-on-leave`` defects: a stream the client left stays counted."""

    @contextmanager
    def open(self) -> Iterator[None]:
        self.value += 1
        finished = False
        try:
            yield
            finished = True
        finally:
            if finished or not self.leak_on_leave:
                self.value -= 1

    def render(self) -> str:
        return f"# HELP {GAUGE} Open streams.\n# TYPE {GAUGE} gauge\n{GAUGE} {self.value}\n"


async def _pause(seconds: float, cancel: asyncio.Event | None) -> None:
    if cancel is None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(cancel.wait(), seconds)
    except TimeoutError:
        pass


async def paced(request: Request, transport: str, defect: str | None = None,
                cancel: asyncio.Event | None = None, variable: bool = False) -> AsyncIterator[dict[str, Any]]:
    """The stamped events of one stream, ``request.pace_s`` apart. Once ``cancel`` is
    set (WS only) the stream ends with error/cancelled and stream_end, unless it
    already reached complete or error."""
    stamper = Stamper(defect, key=(transport, request.question))
    ended = False
    try:
        for i, event in enumerate(plan(request, transport, defect, variable)):
            if i:
                await _pause(request.pace_s, cancel)
            if cancel is not None and cancel.is_set() and (not ended or defect == "late-cancel-errors"):
                for tail in cancel_tail(sent_any=i > 0):
                    yield stamper.stamp(tail)
                return
            ended = ended or event["type"] in TERMINAL
            yield stamper.stamp(event)
    finally:
        stamper.release()


async def detached(events: AsyncIterator[dict[str, Any]], gauge: Gauge) -> AsyncIterator[dict[str, Any]]:
    """The ``work-continues`` defect: the work runs in a task of its own that holds
    the gauge until the whole stream is produced, whether anyone reads it or not."""
    queue: asyncio.Queue = asyncio.Queue()

    async def work() -> None:
        with gauge.open():
            async for event in events:
                queue.put_nowait(event)
        queue.put_nowait(None)

    task = asyncio.get_running_loop().create_task(work())
    _DETACHED.add(task)
    task.add_done_callback(_DETACHED.discard)
    while (event := await queue.get()) is not None:
        yield event


_DETACHED: set[asyncio.Task] = set()
"""Keeps the detached tasks referenced (asyncio holds only weak references)."""
