"""pydantic-ai's AG-UI adapter (``pydantic_ai.ui.ag_ui.AGUIAdapter``) serving real
agents on models that need no network or key, one endpoint each:

- ``/agent``: ``TestModel`` (calls every tool with generated arguments, then answers);
- ``/function``: ``FunctionModel`` streaming text deltas and a tool call's arguments
  in pieces, then the answer after the tool result;
- ``/state``: a tool whose return carries a STATE_SNAPSHOT and a STATE_DELTA;
- ``/error``: a model that fails mid-stream (the adapter ends the run with RUN_ERROR);
- ``/vercel``: the ``/function`` agent behind pydantic-ai's Vercel AI adapter
  (``VercelAIAdapter``: the AI SDK's UI message stream, ending ``data: [DONE]``);
- ``/vercel-error``: the ``/error`` agent behind it (an error part mid-message,
  then finish-step, finish and [DONE]).

The adapter, its event encoder and uvicorn are pydantic-ai's and uvicorn's own;
only the agents are written here, the way a backend author writes them.
"""

from __future__ import annotations

import asyncio

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

from pydantic_ai import Agent, ToolReturn
from pydantic_ai.messages import ModelMessage, ModelRequest, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.ui.ag_ui import AGUIAdapter
from pydantic_ai.ui.vercel_ai import VercelAIAdapter
from ag_ui.core import EventType, StateDeltaEvent, StateSnapshotEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

PATHS = ("/agent", "/function", "/state", "/error")
"""The AG-UI endpoints (``/vercel`` speaks the Vercel AI UI message stream)."""


def _weather_agent(model) -> Agent:
    agent = Agent(model)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    return agent


PIECE_GAP_S = 0.03
"""Between two pieces, as a model streams them: long enough for SSE-NOT-BUFFERED to judge."""


async def _scripted(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str | DeltaToolCalls]:
    """First turn: a sentence in pieces, then a tool call whose arguments arrive in
    three pieces; second turn (after the tool result): the answer in pieces."""
    answered = any(isinstance(p, ToolReturnPart) for m in messages if isinstance(m, ModelRequest) for p in m.parts)
    if not answered:
        for piece in ("Let me ", "look that ", "up."):
            yield piece
            await asyncio.sleep(PIECE_GAP_S)
        for i, piece in enumerate(('{"ci', 'ty": "Pa', 'ris"}')):
            yield {0: DeltaToolCall(name="get_weather" if i == 0 else None, json_args=piece,
                                    tool_call_id="call_weather_1" if i == 0 else None)}
            await asyncio.sleep(PIECE_GAP_S)
    else:
        for piece in ("It is ", "sunny ", "in Paris."):
            yield piece
            await asyncio.sleep(PIECE_GAP_S)


async def _failing(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
    yield "Working on "
    raise RuntimeError("the model backend went away")


def _state_agent() -> Agent:
    agent = Agent(TestModel())

    @agent.tool_plain
    def add_item(name: str) -> ToolReturn:
        """Add an item to the shared list."""
        return ToolReturn(return_value=f"added {name}", metadata=[
            StateSnapshotEvent(type=EventType.STATE_SNAPSHOT, snapshot={"items": [], "count": 0}),
            StateDeltaEvent(type=EventType.STATE_DELTA, delta=[
                {"op": "add", "path": "/items/-", "value": name},
                {"op": "replace", "path": "/count", "value": 1},
            ]),
        ])

    return agent


def create_app() -> Starlette:
    agents = {
        "/agent": _weather_agent(TestModel()),
        "/function": _weather_agent(FunctionModel(stream_function=_scripted)),
        "/state": _state_agent(),
        "/error": Agent(FunctionModel(stream_function=_failing)),
    }

    def endpoint(agent: Agent):
        async def run(request: Request) -> Response:
            return await AGUIAdapter.dispatch_request(request, agent=agent)
        return run

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    def vercel(agent: Agent):
        async def run(request: Request) -> Response:
            return await VercelAIAdapter.dispatch_request(request, agent=agent)
        return run

    routes = [Route(path, endpoint(agent), methods=["POST"]) for path, agent in agents.items()]
    routes += [Route("/vercel", vercel(agents["/function"]), methods=["POST"]),
               Route("/vercel-error", vercel(agents["/error"]), methods=["POST"])]
    return Starlette(routes=routes + [Route("/health", health)])


@contextmanager
def serve() -> Iterator[str]:
    """The app on uvicorn on a free loopback port; yields its base URL."""
    from backends.serve import _free_socket, _uvicorn

    sock = _free_socket()
    try:
        with _uvicorn(create_app(), sock):
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
