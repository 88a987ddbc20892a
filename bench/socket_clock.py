"""A unix-socket relay that notes when a client's requests reach an engine and when the answers
leave it, so a benchmark can tell the engine's share of a CLI command from the CLI's own.

docker-compose (v1) spends about 0.5 s importing itself before its first request, and some time
after its last answer; that is the same for every engine, and on a `--scale 50` `rm` it is most of
the wall time. `span(t0, t1)` gives, for a command run between t0 and t1, the time from its first
request byte to the last answer byte that passed through the relay. The relay copies bytes and
nothing else; its own cost falls on both engines alike.

    clock = SocketClock(engine_sock, relay_sock); clock.start()
    ... run the CLI with DOCKER_HOST=unix://<relay_sock> between t0 and t1 ...
    first, last = clock.span(t0, t1); clock.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path


class SocketClock:
    def __init__(self, target: str, listen: str) -> None:
        self.target, self.listen = target, listen
        self._requests: list[float] = []  # perf_counter of each client→engine chunk
        self._answers: list[float] = []    # perf_counter of each engine→client chunk
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="socket-clock", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        Path(self.listen).unlink(missing_ok=True)

    def span(self, t0: float, t1: float) -> tuple[float, float] | None:
        """(first request, last answer) seen between t0 and t1 (perf_counter), None if none."""
        with self._lock:
            requests = [t for t in self._requests if t0 <= t <= t1]
            answers = [t for t in self._answers if t0 <= t <= t1]
        if not requests or not answers:
            return None
        return min(requests), max(answers)

    async def _serve(self) -> None:
        self._server = await asyncio.start_unix_server(self._relay, path=self.listen)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        try:
            engine_r, engine_w = await asyncio.open_unix_connection(self.target)
        except OSError:
            client_w.close()
            self._tasks.discard(task)
            return
        # the client's EOF is passed on (an attach half-closes); the engine's ends the connection
        requests = asyncio.ensure_future(self._pipe(client_r, engine_w, self._requests, eof=True))
        try:
            await self._pipe(engine_r, client_w, self._answers)
        finally:
            requests.cancel()
            await asyncio.gather(requests, return_exceptions=True)
            for writer in (client_w, engine_w):
                writer.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, times: list[float],
                    eof: bool = False) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                with self._lock:
                    times.append(time.perf_counter())
                writer.write(data)
                await writer.drain()
            if eof and writer.can_write_eof():
                writer.write_eof()
