"""The shaping relay: a TCP relay on loopback that applies a network condition.

There is no kernel delay emulation on these machines (``tc netem`` is absent),
so the condition is applied in user space: the relay listens on a free
127.0.0.1 port, opens a connection to the backend for each client connection,
and forwards each direction through a :class:`network.shaper.Link` (delay and
bandwidth), sleeping until each segment's release time. What it cannot emulate
and what it does instead is in docs/networks.md: packet loss and reordering are
not emulated; the TCP handshake's round trip is put back by holding a new
connection's first client bytes for one round trip
(:func:`network.shaper.handshake_hold`); timer resolution makes each release
late by a little, which the relay measures (:meth:`Relay.stats`) and the probe
(:mod:`network.probe`) reports against the configured round trip.

Everything is bounded: each direction of a connection holds at most
``Condition.buffer_bytes`` before the relay stops reading from its sender (the
sender then feels TCP back-pressure), reads are at most 64 KiB, at most
:data:`MAX_CONNECTIONS` connections are open at once, the upstream connect has a
timeout, and :meth:`Relay.stop` closes everything. The relay runs its own
asyncio loop in a daemon thread, so it works beside a blocking caller
(``python -m load`` waiting for Locust).
"""

from __future__ import annotations

import asyncio
import collections
import threading
from dataclasses import dataclass, field
from typing import Any

from .conditions import Condition, is_loopback
from .shaper import Link, handshake_hold

READ_SIZE = 65_536
MAX_CONNECTIONS = 1024
CONNECT_TIMEOUT_S = 5.0
LATENESS_SAMPLES = 50_000
"""Most lateness samples kept (a ring: the latest ones)."""


class RelayError(RuntimeError):
    """The relay could not start (no port, no event loop)."""


@dataclass
class RelayStats:
    """What the relay measured of itself: how late segments left against their
    scheduled release, and what it carried."""

    connections: int = 0
    refused: int = 0
    upstream_failures: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    lateness_s: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LATENESS_SAMPLES))

    def to_dict(self) -> dict[str, Any]:
        late = sorted(self.lateness_s)

        def q(p: float) -> float | None:
            return round(late[min(len(late) - 1, int(p * len(late)))] * 1e3, 3) if late else None

        return {"connections": self.connections, "refused": self.refused,
                "upstream_failures": self.upstream_failures, "bytes_down": self.bytes_down,
                "bytes_up": self.bytes_up, "segments": len(late),
                "lateness_ms": {"p50": q(0.5), "p99": q(0.99), "max": round(late[-1] * 1e3, 3) if late else None}}


class _Pipe:
    """One direction of one connection: read, schedule on the link, release on time."""

    def __init__(self, relay: Relay, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link,
                 not_before: float, direction: str) -> None:
        self.relay, self.reader, self.writer, self.link = relay, reader, writer, link
        self.not_before = not_before
        self.direction = direction
        self.queue: collections.deque[tuple[bytes, float]] = collections.deque()
        self.pending = 0
        self.eof = False
        self.wake_writer = asyncio.Event()
        self.wake_reader = asyncio.Event()

    async def read_side(self) -> None:
        loop = asyncio.get_running_loop()
        limit = self.relay.condition.buffer_bytes
        while True:
            while self.pending >= limit:  # bounded: stop reading, the sender backs off
                self.wake_reader.clear()
                await self.wake_reader.wait()
            data = await self.reader.read(READ_SIZE)
            if not data:
                self.eof = True
                self.wake_writer.set()
                return
            offset = 0
            for size, release in self.link.schedule(len(data), loop.time(), self.not_before):
                self.queue.append((data[offset:offset + size], release))
                offset += size
            self.pending += len(data)
            self.wake_writer.set()

    async def write_side(self) -> None:
        loop = asyncio.get_running_loop()
        stats = self.relay.stats
        while True:
            if not self.queue:
                if self.eof:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                self.wake_writer.clear()
                await self.wake_writer.wait()
                continue
            segment, release = self.queue.popleft()
            wait = release - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            stats.lateness_s.append(max(0.0, loop.time() - release))
            self.writer.write(segment)
            await self.writer.drain()
            self.pending -= len(segment)
            if self.direction == "down":
                stats.bytes_down += len(segment)
            else:
                stats.bytes_up += len(segment)
            self.wake_reader.set()


class Relay:
    """``with Relay("127.0.0.1", 8000, condition) as relay: relay.base_url``."""

    def __init__(self, upstream_host: str, upstream_port: int, condition: Condition, host: str = "127.0.0.1") -> None:
        if not is_loopback(upstream_host):
            raise RelayError(f"the relay forwards only to loopback addresses; {upstream_host!r} is not one")
        self.upstream = (upstream_host, upstream_port)
        self.condition = condition
        self.host = host
        self.port: int | None = None
        self.stats = RelayStats()
        self.up = Link(condition.delay_up_s, condition.rate_up_bps)
        self.down = Link(condition.delay_down_s, condition.rate_down_bps)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.Task] = set()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RelayError("the relay is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> Relay:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._accept, self.host, 0, limit=READ_SIZE, backlog=512))
                self.port = self._server.sockets[0].getsockname()[1]
            except OSError as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                for task in list(self._open):
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*self._open, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="agentstream-relay", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            raise RelayError(f"the shaping relay did not start: {failure[0] if failure else 'timeout'}")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            loop.stop()

        if loop.is_running():
            loop.call_soon_threadsafe(shutdown)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def _accept(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._open) >= MAX_CONNECTIONS:
            self.stats.refused += 1
            cwriter.close()
            return
        self._open.add(task)
        try:
            await self._connection(creader, cwriter)
        except asyncio.CancelledError:
            pass  # stop(): asyncio's stream callback would report a cancelled handler as an error
        finally:
            self._open.discard(task)

    async def _connection(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        self.stats.connections += 1
        try:
            ureader, uwriter = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream, limit=READ_SIZE), CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError):
            self.stats.upstream_failures += 1
            cwriter.close()
            return
        up = _Pipe(self, creader, uwriter, self.up, handshake_hold(accepted, self.condition.rtt_s), "up")
        down = _Pipe(self, ureader, cwriter, self.down, 0.0, "down")
        tasks = [asyncio.ensure_future(c) for c in (up.read_side(), up.write_side(), down.read_side(),
                                                   down.write_side())]
        try:
            # both directions done (each side ended its half), or one broke: then close all
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if any(t.exception() is not None for t in done if not t.cancelled()):
                    break
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for w in (cwriter, uwriter):
                w.close()


class RelayProcess:
    """The relay in a child process (``python -m network.relay``), as a context manager.

    A process of its own, not a thread of the caller: a relay thread beside a
    recorder in one Python process waits for the GIL (segments left up to 100 ms
    late in a trial), while in its own process they leave within a few ms."""

    def __init__(self, upstream_url: str, condition: Condition, startup_timeout: float = 15.0) -> None:
        self.upstream_url = upstream_url
        self.condition = condition
        self.startup_timeout = startup_timeout
        self.process: Any = None
        self.base_url: str | None = None
        self.stats: dict[str, Any] | None = None

    def start(self) -> RelayProcess:
        from urllib.parse import urlsplit

        if not is_loopback(urlsplit(self.upstream_url).hostname):
            raise RelayError(f"the relay forwards only to loopback addresses; {self.upstream_url!r} is not one")
        import os
        import selectors
        import subprocess
        import sys
        from pathlib import Path

        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "network.relay", "--upstream", self.upstream_url, "--network", self.condition.name],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        sel = selectors.DefaultSelector()
        sel.register(self.process.stdout, selectors.EVENT_READ)
        ready = sel.select(self.startup_timeout)
        sel.close()
        line = self.process.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            self.stop()
            raise RelayError(f"the shaping relay did not start within {self.startup_timeout:g} s: "
                             f"{(self.process.stderr.read() if self.process.stderr else '')[-2000:]}")
        self.base_url = line
        return self

    def stop(self) -> None:
        import json
        import subprocess

        p = self.process
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
        try:
            out, _ = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate(timeout=5)
        for line in (out or "").splitlines()[::-1]:
            try:
                self.stats = json.loads(line)
                break
            except ValueError:
                continue
        self.process = None

    def __enter__(self) -> RelayProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m network.relay --upstream http://127.0.0.1:8000 --network wan``: run a
    relay until SIGTERM or Ctrl-C; prints its URL on the first line of stdout, and
    its statistics as JSON when it stops."""
    import argparse
    import json
    import signal
    import sys
    from urllib.parse import urlsplit

    from .conditions import ConditionError, parse

    ap = argparse.ArgumentParser(prog="python -m network.relay", description=main.__doc__)
    ap.add_argument("--upstream", required=True, help="backend base URL on loopback, e.g. http://127.0.0.1:8000")
    ap.add_argument("--network", required=True, help="condition name or spec (docs/networks.md)")
    args = ap.parse_args(argv)
    try:
        cond = parse(args.network)
        parts = urlsplit(args.upstream)
        host, port = parts.hostname, parts.port
    except (ConditionError, ValueError) as exc:
        print(f"python -m network.relay: {exc}", file=sys.stderr)
        return 2
    if not host or not port:
        print(f"python -m network.relay: --upstream {args.upstream!r} needs a host and a port", file=sys.stderr)
        return 2
    if not is_loopback(host):
        print(f"python -m network.relay: --upstream {args.upstream!r} is not a loopback address", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Relay(host, port, cond) as relay:
        print(relay.base_url, flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print(json.dumps(relay.stats.to_dict()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
