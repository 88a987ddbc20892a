"""The `awslogs` log driver: container output shipped to CloudWatch Logs, `docker logs` kept.

Docker's dual logging, done with files: conmon writes every container's k8s-file log as for any
driver (so `docker logs` keeps working), and for an awslogs container a shipper in the daemon tails
that file and appends its lines to the logs store through a LogSink (berth.logs.EngineSink).

    shipper = AwslogsShipper(sink, default_region="us-east-1")
    await shipper.prepare(container)        # before the runtime create: the stream exists
    shipper.follow(container, log_path, state_path)     # after start: ship as lines appear
    shipper.exited(container_id)            # the container ended: ship the tail, then stop
    await shipper.forget(container_id)      # before its directory goes (docker rm)
    await shipper.close()                   # daemon shutdown; restore() follows again

Per container, one asyncio task wakes on inotify events of the log's directory (or every 0.1 s)
and does the blocking work in a worker thread: read a chunk from where it stopped, parse records
into lines (awslogs_events.py), group them into events, append them in one call, then record
`<container dir>/awslogs.json`:

    {"offset": where to resume reading, "shipped": every line ending at or before it is stored,
     "dropped": lines (k8s-file records) skipped in mode=non-blocking, "events": events appended}

written after each successful append (temp file + rename; fsync when a shipper stops), so a
restarted daemon resumes without a gap, and without a duplicate unless it was SIGKILLed between an
append and the record of it.

Modes. The container is never blocked in either mode: conmon writes the file whatever the shipper
does, so a slow or failing store only makes the shipper fall behind. mode=blocking (the default)
drops nothing: the shipper retries until the store takes the lines. mode=non-blocking with
max-buffer-size (default 1 MiB): once more than that many bytes of the file are unshipped, the
shipper skips ahead to the newest max-buffer-size bytes, adds the skipped records to "dropped" and
logs a warning with the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from berth.engine import awslogs_events as ev
from berth.engine.awslogs_options import DRIVER, AwslogsConfig, awslogs_config
from berth.errors import BerthError, InvalidArgument, NotFound, Unavailable
from berth.runtime import readable
from berth.types.host_config import LogConfig

if TYPE_CHECKING:  # the containers package imports this module
    from berth.engine.containers import Container

log = logging.getLogger(__name__)

CHUNK = 512 << 10  # bytes read per step (a chunk this size stays in the CPU cache through the passes over it)
POLL = 0.1  # s; how often the file is looked at without inotify
IDLE_POLL = 1.0  # s; the same with inotify (a write wakes the shipper at once; this is a safety net)
COALESCE = 0.02  # s; after a read that found lines, how long to let more gather before the next
BUSY = 256 << 10  # bytes; a read at least this big is followed by the next one at once (no COALESCE)
IDLE_FLUSH = 0.5  # s; a multiline event nobody continued for this long is sent
DRAIN_WAIT = 5.0  # s; how long `forget` lets a shipper finish the tail of a removed container
RETRY_MAX = 30.0  # s; back-off ceiling while the store refuses
SAVE_EVERY = 0.25  # s; progress is recorded at most this often while lines flow (and at every stop)
STATE_FILE = "awslogs.json"


class LogSink(Protocol):
    """Where shipped lines go (berth.logs.EngineSink over the CloudWatch Logs domain)."""

    def prepare(self, group: str, stream: str, *, region: str, create_group: bool) -> None:
        """Make sure the stream exists (creating the group only when create_group).
        Raises berth.errors.NotFound when the group is missing and create_group is False;
        berth.errors.InvalidArgument for an invalid group/stream name."""

    def append(self, group: str, stream: str, events: Sequence[tuple[int, str]], *, region: str) -> None:
        """Append (timestamp_ms, message) events, already in time order, to the stream."""

    def append_encoded(self, group: str, stream: str, data: bytes, first_ts: int, last_ts: int, *,
                       region: str, ingestion: int) -> bool:
        """Append lines already in the store's encoding (awslogs_events.EncodedLines); False,
        with nothing stored, when the store wants them as events (time bounds)."""

    def now_ms(self) -> int:
        """The store's clock, for the ingestion time of encoded lines."""


class LoggerInitError(InvalidArgument):
    """The awslogs logger cannot start (e.g. its log group is missing): the container's start fails."""


def logger_error(err: BerthError) -> LoggerInitError:
    """dockerd's wording when its awslogs logger cannot be created at container start."""
    if isinstance(err, NotFound):
        detail = "ResourceNotFoundException: The specified log group does not exist."
    elif isinstance(err, InvalidArgument):
        detail = f"InvalidParameterException: {err}"
    else:
        detail = str(err)
    return LoggerInitError(f"failed to initialize logging driver: failed to create Cloudwatch log stream: {detail}")


@dataclass
class ShipState:
    offset: int = 0
    shipped: int = 0
    dropped: int = 0
    events: int = 0

    @classmethod
    def load(cls, path: Path) -> ShipState:
        try:
            data = json.loads(path.read_text())
            return cls(**{k: int(data.get(k, 0)) for k in ("offset", "shipped", "dropped", "events")})
        except (OSError, ValueError, TypeError, AttributeError):
            return cls()

    def save(self, path: Path, *, durable: bool = False) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(self), f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)


class Follower:
    """One container's shipping state; every method blocks (file and store I/O)."""

    def __init__(self, *, log_path: Path, state_path: Path, config: AwslogsConfig, sink: LogSink,
                 label: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        self.log_path = log_path
        self.state_path = state_path
        self.config = config
        self._sink = sink
        self._label = label or log_path.parent.name[:12]
        self._clock = clock
        self.state = ShipState.load(state_path)
        self._reader = ev.LineReader(self.state.offset, skip_through=self.state.shipped)
        self._grouper = ev.Grouper(config.multiline, IDLE_FLUSH)
        self._pending: list[ev.Event] = []  # grouped, not yet appended (the store refused them)
        self._encoded: ev.EncodedLines | None = None  # the fast path's lines, not yet appended
        self.ready = False  # the stream is known to exist
        self.at_end = False  # the last step read to the end of the file
        self._retry_at = 0.0
        self._backoff = 1.0
        self._saved_at = float("-inf")
        self._dirty = False  # progress not yet recorded

    # --- the stream ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the stream (and the group with create_group); raises the sink's error."""
        c = self.config
        self._sink.prepare(c.group, c.stream, region=c.region, create_group=c.create_group)
        self.ready = True

    # --- one step -------------------------------------------------------------------------------
    def step(self, *, final: bool = False) -> int:
        """Read what the file has (up to CHUNK), ship it; how many bytes were read (CHUNK: more
        may follow). With `final`, an event still being collected goes too. While the store refuses
        events, nothing more is read (memory stays bounded; the file keeps the lines)."""
        now = self._clock()
        if not self.config.blocking:
            self._skip_if_behind()
        data = b""
        self.at_end = False
        if not self._pending and self._encoded is None:
            data = self._read()
            self.at_end = len(data) < CHUNK
            if self.config.multiline is None:
                # the usual chunk goes to the store as it is re-encoded, with no object per line
                self._encoded = self._reader.feed_encoded(data, self._sink.now_ms()) if data else None
                if self._encoded is None:
                    self._pending += self._reader.feed_events(data)
            else:
                self._pending += self._grouper.add_all(self._reader.feed(data), now)
        self._pending += self._grouper.flush() if final else self._grouper.flush_idle(now)
        self._ship(now)
        if final and self.at_end and not self.unsent:
            self.save(durable=True)
        return len(data)

    @property
    def unsent(self) -> bool:
        return bool(self._pending) or self._encoded is not None

    def wait_hint(self, poll: float = POLL) -> float:
        """How long the caller may sleep before the next step is due without a file event."""
        deadline = self._grouper.idle_deadline()
        wait = poll if deadline is None else min(poll, max(0.0, deadline - self._clock()))
        if self.unsent and self._retry_at:
            wait = max(0.01, min(poll, self._retry_at - self._clock()))
        return max(0.01, wait)

    def _read(self) -> bytes:
        try:
            with open(self.log_path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self._reader.position:  # replaced or truncated: start over
                    log.warning("awslogs %s: log file shrank; shipping it from the start", self._label)
                    self._reset(0)
                f.seek(self._reader.position)
                return f.read(CHUNK)
        except FileNotFoundError:
            return b""

    def _ship(self, now: float) -> None:
        if self._encoded is not None and not self._encoded.n_lines:
            self._encoded = None  # a chunk without a whole line
        if not self.unsent:
            self._commit(None)
            return
        if now < self._retry_at:
            return
        c = self.config
        try:
            if not self.ready:
                self.prepare()
            if self._encoded is not None and self._ship_encoded(self._encoded):
                return
            self._sink.append(c.group, c.stream, ev.in_time_order(self._pending), region=c.region)
        except NotFound as err:  # the stream (or group) was deleted: create it again, then retry
            self.ready = False
            self._refused(now, err)
            return
        except InvalidArgument as err:  # the store will never take these (e.g. too old): skip them
            log.warning("awslogs %s: %d events refused by the store, skipped: %s", self._label,
                        len(self._pending), err)
            self.state.dropped += len(self._pending)
        except (BerthError, OSError) as err:
            self._refused(now, err)
            return
        self.state.events += len(self._pending)
        shipped = max(e.end for e in self._pending)
        self._pending = []
        self._retry_at, self._backoff = 0.0, 1.0
        self._commit(shipped)

    def _ship_encoded(self, lines: ev.EncodedLines) -> bool:
        """Append the fast path's lines (errors as for `_ship`'s append); False when the store
        wants them one by one (outside its time bounds): they are `_pending` events then."""
        c = self.config
        try:
            stored = self._sink.append_encoded(c.group, c.stream, lines.data, lines.first_ts, lines.last_ts,
                                               region=c.region, ingestion=lines.ingestion)
        except InvalidArgument:
            stored = False
        if not stored:
            self._encoded = None
            self._pending = ev.events_of(lines)
            return False
        self._encoded = None
        self.state.events += lines.n_lines
        self._retry_at, self._backoff = 0.0, 1.0
        self._commit(lines.end)
        return True

    def _refused(self, now: float, err: Exception) -> None:
        if self._backoff == 1.0:
            log.warning("awslogs %s: cannot ship to %s/%s (retrying): %s", self._label, self.config.group,
                        self.config.stream, err)
        self._retry_at = now + self._backoff
        self._backoff = min(RETRY_MAX, self._backoff * 2)

    def _commit(self, shipped: int | None) -> None:
        """Record progress: everything appended so far, and where to resume reading."""
        if shipped is not None:
            self.state.shipped = max(self.state.shipped, shipped)
        pending = self._grouper.pending_start
        resume = self._reader.resume_offset()
        if pending is not None:
            resume = min(resume, pending)
        if self.unsent:
            return  # unsent events: the saved state stays at the last append
        if resume != self.state.offset or shipped is not None:
            self.state.offset = resume
            self._dirty = True
        # A rename per append costs as much as the append itself, so progress is recorded at most
        # every SAVE_EVERY s (an idle step, at least once a second, records the rest): a SIGKILLed
        # daemon sends again what was appended after the last record.
        now = self._clock()
        if self._dirty and now - self._saved_at >= SAVE_EVERY:
            self.save()
            self._saved_at, self._dirty = now, False

    def save(self, durable: bool = False) -> None:
        try:
            self.state.save(self.state_path, durable=durable)
        except OSError as err:  # the container dir is gone (removed meanwhile)
            log.debug("awslogs %s: cannot record progress: %s", self._label, err)

    # --- non-blocking mode ----------------------------------------------------------------------
    def _skip_if_behind(self) -> None:
        try:
            size = os.path.getsize(self.log_path)
        except OSError:
            return
        if size - self.state.offset <= self.config.max_buffer:
            return
        boundary = self._boundary(size - self.config.max_buffer)
        if boundary <= self._reader.position:
            return
        dropped = self._count_records(self._reader.position, boundary)
        dropped += self._reader.pending_lines() + self._grouper.drop() + len(self._pending)
        dropped += self._encoded.n_lines if self._encoded is not None else 0
        self._pending, self._encoded = [], None
        self.state.dropped += dropped
        log.warning("awslogs %s: mode=non-blocking and more than %d bytes behind: dropped %d lines "
                    "(%d in all)", self._label, self.config.max_buffer, dropped, self.state.dropped)
        self._reset(boundary)
        self.save()

    def _reset(self, offset: int) -> None:
        self._reader = ev.LineReader(offset)
        self._grouper.drop()
        self.state.offset = self.state.shipped = offset

    def _boundary(self, offset: int) -> int:
        """The first record start at or after `offset`."""
        with open(self.log_path, "rb") as f:
            start = max(0, offset - 1)
            f.seek(start)
            while block := f.read(65536):
                newline = block.find(b"\n")
                if newline >= 0:
                    return start + newline + 1
                start += len(block)
            return start

    def _count_records(self, start: int, end: int) -> int:
        count = 0
        with open(self.log_path, "rb") as f:
            f.seek(start)
            while start < end:
                block = f.read(min(CHUNK, end - start))
                if not block:
                    break
                count += block.count(b"\n")
                start += len(block)
        return count


class _DirWatch:
    """inotify on the log's directory (the file may not exist yet); a plain timeout without it."""

    _MASK = 0x2 | 0x100 | 0x8  # IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE

    def __init__(self, directory: Path) -> None:
        self._fd = -1
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(0o4000 | 0o2000000)  # IN_NONBLOCK | IN_CLOEXEC
        if fd >= 0 and libc.inotify_add_watch(fd, os.fsencode(directory), self._MASK) < 0:
            os.close(fd)
            fd = -1
        self._fd = fd

    @property
    def active(self) -> bool:
        return self._fd >= 0

    async def wait(self, timeout: float) -> None:
        if self._fd < 0:
            await asyncio.sleep(timeout)
            return
        await readable(self._fd, timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._fd, 65536):
                pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass
class _Job:
    follower: Follower
    wake: asyncio.Event
    task: asyncio.Task[None] | None = None
    draining: bool = False
    stopping: bool = False


class AwslogsShipper:
    """Ships the logs of every awslogs container of one engine (see the module doc)."""

    def __init__(self, sink: LogSink | None, *, default_region: str = "us-east-1") -> None:
        self._sink = sink
        self._default_region = default_region
        self._jobs: dict[str, _Job] = {}

    # --- configuration --------------------------------------------------------------------------
    @staticmethod
    def wants(log_config: LogConfig) -> bool:
        return log_config.type == DRIVER

    def config_for(self, container: Container) -> AwslogsConfig:
        return awslogs_config(container.host_config.log_config.config, container_id=container.id, name=container.name,
                              image=container.image, image_id=container.image_id,
                              default_region=self._default_region)

    # --- lifecycle ------------------------------------------------------------------------------
    async def prepare(self, container: Container) -> None:
        """At start, before the process exists: the stream exists, or start fails as dockerd's
        does (mode=non-blocking: it starts anyway and the shipper keeps trying, as dockerd's)."""
        if not self.wants(container.host_config.log_config):
            return
        config = self.config_for(container)
        if self._sink is None:
            raise Unavailable("failed to initialize logging driver: this daemon has no CloudWatch Logs store")
        try:
            await asyncio.to_thread(self._sink.prepare, config.group, config.stream, region=config.region,
                                    create_group=config.create_group)
        except BerthError as err:
            if config.blocking:
                raise logger_error(err) from err
            log.warning("awslogs %s: %s (mode=non-blocking: starting anyway, retrying)", container.id[:12],
                        logger_error(err))

    def follow(self, container: Container, log_path: Path) -> None:
        """Ship the container's log as it grows (after start, or adopting it at daemon start)."""
        if not self.wants(container.host_config.log_config) or self._sink is None:
            return
        job = self._jobs.get(container.id)
        if job is not None:  # restarted before its tail was drained: keep going
            job.draining = False
            return
        follower = Follower(log_path=log_path, state_path=log_path.parent / STATE_FILE,
                            config=self.config_for(container), sink=self._sink, label=container.id[:12])
        job = self._jobs[container.id] = _Job(follower, asyncio.Event())
        job.task = asyncio.get_running_loop().create_task(self._run(container.id, job))

    def exited(self, container_id: str) -> None:
        """The container's process ended: ship what is left, then stop."""
        job = self._jobs.get(container_id)
        if job is not None:
            job.draining = True
            job.wake.set()

    def drain_later(self, container: Container, log_path: Path) -> None:
        """A stopped container whose log may hold unshipped lines (the daemon was down)."""
        if not self.wants(container.host_config.log_config) or self._sink is None:
            return
        state = ShipState.load(log_path.parent / STATE_FILE)
        try:
            size = os.path.getsize(log_path)
        except OSError:
            return
        if size > state.offset:
            self.follow(container, log_path)
            self.exited(container.id)

    async def forget(self, container_id: str) -> None:
        """Before the container's directory is removed: finish the tail (briefly), then stop."""
        job = self._jobs.get(container_id)
        if job is None or job.task is None:
            return
        job.draining = True
        job.wake.set()
        done, _ = await asyncio.wait({job.task}, timeout=DRAIN_WAIT)
        if not done:
            await self._stop(job)
        self._unregister(container_id, job)

    def dropped(self, container_id: str) -> int:
        job = self._jobs.get(container_id)
        return job.follower.state.dropped if job is not None else 0

    async def close(self) -> None:
        """Daemon shutdown: every shipper records where it is and stops (containers go on)."""
        await asyncio.gather(*(self._stop(job) for job in list(self._jobs.values())))
        self._jobs.clear()

    async def _stop(self, job: _Job) -> None:
        job.stopping = True
        job.wake.set()
        if job.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job.task

    # --- the loop -------------------------------------------------------------------------------
    async def _run(self, container_id: str, job: _Job) -> None:
        follower = job.follower
        watch = _DirWatch(follower.log_path.parent)
        try:
            if not follower.ready:
                with contextlib.suppress(BerthError, OSError):
                    await asyncio.to_thread(follower.prepare)
            while not job.stopping:
                final = job.draining  # sampled before the read: no line written before exit is missed
                read = await asyncio.to_thread(follower.step, final=final)
                if read >= BUSY:  # a fast writer: its lines gathered during that step already
                    continue
                if final and job.draining and follower.at_end and not follower.unsent:
                    # finished: unregistered now (no await before), so a start that comes next
                    # gets a new shipper that reads the state this one saved
                    self._unregister(container_id, job)
                    break
                if read:  # a writer is busy: let its lines gather (fewer, larger appends)
                    await asyncio.sleep(COALESCE)
                await self._sleep(job, watch, follower.wait_hint(IDLE_POLL if watch.active else POLL))
        except Exception:  # noqa: BLE001 - a bug in one shipper must not take the daemon down
            log.exception("awslogs %s: shipper failed", container_id[:12])
            self._unregister(container_id, job)
        finally:
            watch.close()
            if job.stopping:
                await asyncio.to_thread(follower.save, True)
            if follower.state.dropped:
                log.warning("awslogs %s: %d lines dropped in all (mode=non-blocking)", container_id[:12],
                            follower.state.dropped)

    def _unregister(self, container_id: str, job: _Job) -> None:
        if self._jobs.get(container_id) is job:
            del self._jobs[container_id]

    @staticmethod
    async def _sleep(job: _Job, watch: _DirWatch, timeout: float) -> None:
        """Until the log's directory changes, `job.wake` is set, or `timeout` s pass."""
        job.wake.clear()
        waiters = {asyncio.ensure_future(job.wake.wait()), asyncio.ensure_future(watch.wait(timeout))}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
