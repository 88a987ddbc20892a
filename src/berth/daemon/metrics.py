"""The daemon's Prometheus endpoint: `GET /metrics` on `--metrics-addr` (default 127.0.0.1:9464).

Unauthenticated, as Prometheus scrapers expect: it listens on loopback unless told otherwise and
serves only counters and gauges (no secrets). `collect` builds the text in a worker thread (it
talks to HAProxy's stats socket).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_metrics_addr(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` → (host, port); "off" (or empty) → None."""
    if text in ("", "off"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"metrics address {text!r}: use HOST:PORT or off")
    return host.strip("[]") or "127.0.0.1", int(port)


class MetricsServer:
    def __init__(self, collect: Callable[[], str]) -> None:
        self.collect = collect
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _metrics(self, _request: web.Request) -> web.Response:
        text = await asyncio.to_thread(self.collect)
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server  # noqa: SLF001 - the bound port, when asked for port 0
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
