"""Assembling a registry from its config, and serving it on a TCP address."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from berth.errors import InvalidArgument
from berth.registry._auth import Authenticator, Htpasswd, Policy, RegistryAuth, TokenSigner
from berth.registry._http import RegistryApp
from berth.registry._index import RegistryIndex
from berth.registry._service import Registry
from berth.registry._storage import FilesystemStorage
from berth.state import Database

log = logging.getLogger("berth.registry")
T = TypeVar("T")


@dataclass(frozen=True)
class RegistryConfig:
    """`root` is `<daemon root>/registry`; `shared_blob_dirs` hold verified `<hex>` blobs to hardlink."""

    root: Path
    shared_blob_dirs: tuple[Path, ...] = ()
    htpasswd: Path | None = None
    anonymous_pull: bool = True
    anonymous_push: bool = False
    auto_create: bool = True
    upload_expiry: float = 3600.0
    token_ttl: float = 300.0
    fsync: bool = True


def open_registry(config: RegistryConfig) -> tuple[Registry, Database]:
    """Storage + index + service over `config.root` (the caller closes the Database)."""
    config.root.mkdir(parents=True, exist_ok=True)
    storage = FilesystemStorage(config.root, shared_dirs=config.shared_blob_dirs, fsync=config.fsync)
    db = Database(config.root / "registry.db")
    return Registry(storage, RegistryIndex(db), auto_create=config.auto_create), db


def make_auth(config: RegistryConfig, extra: Sequence[Authenticator] = ()) -> RegistryAuth:
    signer = TokenSigner.from_file(config.root / "token.key", ttl=config.token_ttl)
    users: list[Authenticator] = [Htpasswd(config.htpasswd)] if config.htpasswd else []
    return RegistryAuth(signer, Policy(config.anonymous_pull, config.anonymous_push), [*users, *extra])


class _LoopThread:
    """An asyncio event loop running on a thread of its own."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on this loop and await its result from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and wait (off the caller's loop) for the thread; a worker job still
        running after `timeout` is left to finish on its own (the thread is a daemon thread)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, timeout)


class RegistryServer:
    """The registry role of the daemon: `await start(host, port)`, later `await close()`.

    The server runs on its own event loop thread, so that blob bodies can be hashed and written
    inline (see `_http.receive`) without ever stalling the caller's loop (the daemon's Docker
    API). `registry` stays usable from any thread (its index and sessions take locks).
    Start-up removes every leftover upload file (sessions live in memory, so none can resume);
    a background task aborts sessions idle for longer than `upload_expiry`.
    """

    def __init__(self, config: RegistryConfig, extra_authenticators: Sequence[Authenticator] = ()) -> None:
        self.config = config
        self.registry, self._db = open_registry(config)
        self.auth = make_auth(config, extra_authenticators)
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._thread: _LoopThread | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        self._thread = _LoopThread("berth-registry")
        try:
            return await self._thread.call(self._start(host, port))
        except BaseException:
            thread, self._thread = self._thread, None
            try:
                await thread.call(self._stop_serving())
            finally:
                await thread.stop()
            raise

    async def _start(self, host: str, port: int) -> int:
        storage = self.registry.storage
        for ingest_id in storage.stale_ingests(float("inf")):
            storage.remove_ingest(ingest_id)
        app = RegistryApp(self.registry, self.auth).build()
        self._runner = web.AppRunner(app, access_log=None, read_bufsize=1 << 20, handler_cancellation=False,
                                    shutdown_timeout=5.0, lingering_time=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True, backlog=512)
        await site.start()
        server = site._server  # noqa: SLF001 - aiohttp exposes the bound port only here
        self.port = server.sockets[0].getsockname()[1] if server is not None else port  # type: ignore[attr-defined]
        self._sweeper = asyncio.create_task(self._sweep())
        log.info("registry listening on %s:%s", host, self.port)
        return self.port

    async def _sweep(self) -> None:
        interval = max(1.0, min(60.0, self.config.upload_expiry / 4))
        while True:
            await asyncio.sleep(interval)
            expired = await asyncio.to_thread(self.registry.uploads.expire, self.config.upload_expiry)
            if expired:
                log.info("registry: expired %d idle upload(s)", len(expired))

    async def close(self) -> None:
        try:
            if self._thread is not None:
                thread, self._thread = self._thread, None
                try:
                    await thread.call(self._stop_serving())
                finally:
                    await thread.stop()
        finally:
            self.registry.uploads.abort_all()
            self._db.close()

    async def _stop_serving(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._runner is not None:
            await self._runner.cleanup()


def parse_listen_addr(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` (or `[v6]:PORT`) → (host, port); `off` → None."""
    if text.strip().lower() in ("off", "none", "false", ""):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidArgument(f"invalid registry address {text!r}: use HOST:PORT or off")
    return host.strip("[]") or "127.0.0.1", int(port)
