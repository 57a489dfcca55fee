"""What the tests need beyond pip: Debian packages and pinned npm packages.

The README's test command is the whole set-up, so the tests install what they use
(Chromium, nginx, a Node.js mock server) the first time they need it, instead of
skipping. One place for it, so that every test that needs a program asks the same
way and a missing program fails with the command that would have installed it.

Debian packages go through ``apt-get`` (the machine runs the tests as root; a
package list that is out of date is refreshed once). npm packages are installed,
pinned, into ``tests/.node`` (ignored by git), one directory for all of them, so a
second run installs nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

NODE_DIR = Path(__file__).parent / ".node"
_LOCK = threading.Lock()


class ProvisionError(RuntimeError):
    """A program the tests need could not be installed; the message says how to do it by hand."""


def _run(cmd: list[str], timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisionError(f"{' '.join(cmd)}: {exc}") from None
    if done.returncode != 0:
        raise ProvisionError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def debian(package: str, program: str) -> str:
    """The path of ``program``, installing the Debian ``package`` that holds it if needed."""
    with _LOCK:
        found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if found:
            return found
        if shutil.which("apt-get") is None:
            raise ProvisionError(f"{program} is missing and there is no apt-get: install {package} by hand")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
        try:
            _run(cmd, 600, env)
        except ProvisionError:
            _run(["apt-get", "update", "-q"], 600, env)
            _run(cmd, 600, env)
        found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if not found:
            raise ProvisionError(f"installed {package} but found no {program}")
        return found


def npm(*specs: str) -> Path:
    """The ``node_modules`` directory holding the pinned npm packages ``specs``
    (``name@version``), installing the ones missing."""
    with _LOCK:
        modules = NODE_DIR / "node_modules"
        missing = []
        for spec in specs:
            name, _, version = spec.rpartition("@")
            manifest = modules / name / "package.json"
            try:
                if json.loads(manifest.read_text())["version"] == version:
                    continue
            except (OSError, ValueError, KeyError):
                pass
            missing.append(spec)
        if missing:
            if shutil.which("npm") is None:
                raise ProvisionError(f"npm is missing: install Node.js, then npm install {' '.join(missing)}")
            NODE_DIR.mkdir(exist_ok=True)
            package = NODE_DIR / "package.json"
            if not package.exists():
                package.write_text('{"name": "agentstream-test-deps", "private": true}\n')
            _run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", *missing], 900, cwd=NODE_DIR)
        return modules
