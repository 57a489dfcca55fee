"""Start the reference server in a child process, for tests, demos and load runs.

A subprocess (not a thread) keeps the server's event loop apart from the caller's:
pytest, a Locust process under gevent, or a script can all use it the same way.
Only the standard library is used to start it and poll ``/health`` (no asyncio,
nothing gevent would have to patch).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
"""The directory holding the ``reference_server`` package (put on the child's PYTHONPATH)."""


class EmbeddedServerError(RuntimeError):
    """The server did not come up (or could not be started)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (bind to port 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """``python -m reference_server`` on a free loopback port, as a context manager.

    >>> with EmbeddedServer(pace_ms=1) as server:      # doctest: +SKIP
    ...     url = server.base_url + "/agent/stream"
    """

    def __init__(
        self,
        pace_ms: float | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_level: str = "warning",
        startup_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        server: str | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.pace_ms = pace_ms
        self.host = host
        self.port = port
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.server = server
        """``reference_server.serve.SERVERS``: None for the default (uvicorn), "hypercorn" for HTTP/2 too."""
        self.args = tuple(args)
        """More ``python -m reference_server`` options (``--max-streams 2``)."""
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
        if self.port is None:
            raise EmbeddedServerError("the server is not started")
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "reference_server", "--host", self.host, "--port", str(self.port)]
        cmd += ["--log-level", self.log_level]
        if self.pace_ms is not None:
            cmd += ["--pace-ms", str(self.pace_ms)]
        if self.server is not None:
            cmd += ["--server", self.server]
        return cmd + list(self.args)

    def stderr_text(self, limit: int | None = None) -> str:
        """What the child wrote to stderr so far (logs, tracebacks); the last
        ``limit`` bytes when given. Read with ``pread`` so that the file offset
        the child writes at is never moved."""
        if self._stderr is None:
            return ""
        try:
            fd = self._stderr.fileno()
            size = os.fstat(fd).st_size
            start = 0 if limit is None else max(0, size - limit)
            data = os.pread(fd, size - start, start)
        except (OSError, ValueError):
            return ""
        return data.decode("utf-8", "replace")

    def _child_stderr(self) -> str:
        return self.stderr_text(limit=4000)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/health", timeout=1.0) as response:
                return response.status == 200 and json.loads(response.read()).get("status") == "ok"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def start(self) -> EmbeddedServer:
        """Start the child and wait (bounded) until ``/health`` answers."""
        if self.process is not None:
            return self
        if self.port is None:
            self.port = free_port(self.host)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self._stderr = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(
                self.command(), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr
            )
        except OSError as exc:
            raise EmbeddedServerError(f"could not start the reference server: {exc}") from exc
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                stderr = self._child_stderr()
                self.stop()
                raise EmbeddedServerError(
                    f"the reference server exited with code {code} before it was ready"
                    f" (command: {' '.join(self.command())}); its stderr:\n{stderr}"
                )
            if self._healthy():
                return self
            time.sleep(0.1)
        stderr = self._child_stderr()
        self.stop()
        raise EmbeddedServerError(
            f"the reference server did not answer GET {self.base_url}/health within "
            f"{self.startup_timeout:.0f} s; its stderr:\n{stderr}"
        )

    def stop(self) -> None:
        """Terminate the child; kill it if it does not exit within ``stop_timeout``."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=self.stop_timeout)
        self.process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.process is not None and self.process.poll() is None else "stopped"
        return f"EmbeddedServer(port={self.port}, pace_ms={self.pace_ms}, {state})"
