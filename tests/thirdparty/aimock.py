"""The npm package @copilotkit/aimock (pinned), run for real on loopback: a mock
LLM server that serves OpenAI Chat Completions, OpenAI Responses over SSE and
over WebSocket, Anthropic Messages and AG-UI from fixtures. Installed by
``tests/provision.py`` on first use; run with the machine's Node.js.

The fixtures are the only thing written here: what the mock answers to which
question. The framing, the event shapes and the lifecycle are aimock's own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

import provision

AIMOCK = "@copilotkit/aimock@1.43.0"

ANSWER = "Hello there, how can I help you today?"
PACE = {"ttft": 20, "tps": 50}
"""aimock's streamingProfile: first token after 20 ms, then 50 tokens a second, so a
stream takes long enough (about 0.2 s) for SSE-NOT-BUFFERED to judge it."""
FIXTURES: list[dict[str, Any]] = [
    {"match": {"userMessage": "hello"}, "response": {"content": ANSWER}, "streamingProfile": PACE},
    {"match": {"userMessage": "weather"},
     "response": {"toolCalls": [{"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}]}},
    {"match": {"userMessage": "story"},
     "response": {"content": "Once upon a time a stream ended with its sentinel, and everyone knew it was over."},
     "streamingProfile": PACE},
    {"match": {}, "response": {"content": "I can answer that: every question gets this answer."}, "streamingProfile": PACE},
]
"""Questions and answers on the LLM endpoints (matched on the last user message)."""


def node_modules() -> Path:
    return provision.npm(AIMOCK)


@contextmanager
def serve(fixtures: list[dict[str, Any]] | None = None, agui: list[dict[str, Any]] | None = None,
          tmp: Path | None = None) -> Iterator[str]:
    """aimock on a free loopback port with these LLM fixtures (and AG-UI fixtures at
    /agui, when given); yields its base URL. The process is killed on exit."""
    from backends.serve import _free_socket

    modules = node_modules()
    node = shutil.which("node")
    if node is None:
        raise provision.ProvisionError("node is missing: install Node.js")
    sock = _free_socket()
    port = sock.getsockname()[1]
    sock.close()  # aimock binds it itself; the window is tiny on loopback
    work = tmp or Path(tempfile.mkdtemp(prefix="aimock-"))
    config = {"port": port, "host": "127.0.0.1",
              "llm": {"fixtures": str(_write(work / f"aimock-llm-{port}.json", {"fixtures": fixtures or FIXTURES}))}}
    if agui is not None:
        config["agui"] = {"path": "/agui", "fixtures": agui}
    cfg = _write(work / f"aimock-config-{port}.json", config)
    cli = modules / "@copilotkit" / "aimock" / "dist" / "aimock-cli.js"
    # its own session: a killed test run's process group takes the mock with it
    proc = subprocess.Popen([node, str(cli), "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, proc)
        yield base
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _wait(base: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"aimock exited with {proc.returncode} before answering at {base}")
        try:
            if httpx.get(base + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    _stop(proc)
    raise RuntimeError(f"aimock did not answer at {base} within {timeout:.0f} s")
