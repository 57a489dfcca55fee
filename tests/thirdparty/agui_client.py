"""The official AG-UI client's verifier (``verifyEvents`` of the npm package
@ag-ui/client, pinned), run on event lists through ``verify_events.cjs``: what the
reference implementation says of a stream, to hold the suite's AG-UI verdicts
against (docs/profiles.md lists where and why they differ)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import provision

CLIENT = "@ag-ui/client@1.0.0"
SCRIPT = Path(__file__).with_name("verify_events.cjs")


def verify_events(streams: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[bool, str | None]]:
    """Stream name -> (accepted by verifyEvents, its error message)."""
    modules = provision.npm(CLIENT)
    node = shutil.which("node")
    if node is None:
        raise provision.ProvisionError("node is missing: install Node.js")
    lines = "\n".join(json.dumps({"name": name, "events": events}) for name, events in streams.items())
    done = subprocess.run([node, str(SCRIPT)], input=lines, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NODE_PATH": str(modules)})
    if done.returncode != 0:
        raise RuntimeError(f"verify_events.cjs exited {done.returncode}: {done.stderr[-2000:]}")
    out = {}
    for line in done.stdout.splitlines():
        doc = json.loads(line)
        out[doc["name"]] = (doc["ok"], doc["error"])
    return out
