"""Running health probes: one loop per running container that has a healthcheck.

The rules (what a result does to State.Health) are pure, in health.py; this module owns the
timing, the probe processes and the recording.

Lifecycle, driven by ContainerService:

    start(c, reset=True)    a run begins (docker start, a policy restart): Status "starting"
    start(c, reset=False)   probing resumes with the recorded state (unpause, daemon restart)
    await stop(id)          the container exits, is paused or removed: the loop ends and a
                            probe in flight is killed and reaped before stop returns
    await close()           daemon shutdown: every loop stops; the containers keep running

Probes run inside the container through the runtime's exec (conmon --exec), never on the host.
The waits that decide results (the interval and start period here, a probe's timeout in
ExecProber) run on the `now`/`sleep` they are given, so tests drive them with a fake clock.
Each result is written to the container's health row (ContainerRepository.save_health), and a
status change is published as `health_status: <status>` (moby's event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal as signals
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Protocol

from berth.engine import health, secret_env
from berth.engine.containers import Container
from berth.engine.health import HealthCheck, HealthState, ProbeResult
from berth.engine.timers import Sleep, within
from berth.errors import BerthError
from berth.runtime import ExecProcess, ExecSpec

log = logging.getLogger(__name__)

Prober = Callable[[Container, HealthCheck], Awaitable[tuple[int, str]]]   # → (exit code, output)
Publish = Callable[[str, str], None]         # (container id, action): the event, with the current name
Alive = Callable[[Container], bool]          # whether the container's init still runs
KILL_GRACE = 10.0   # seconds a killed probe gets to be reported dead by conmon
START_TIMEOUT = 30.0  # a probe's exec that has not started by then is a failed probe (moby)
STOP_WAIT = KILL_GRACE + 5.0  # how long stop() waits for a loop's probe to be killed and reaped


class HealthRecords(Protocol):
    def save_health(self, container_id: str, health: dict[str, Any]) -> None: ...  # HealthState.to_json()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class HealthMonitor:
    def __init__(self, *, records: HealthRecords, prober: Prober, publish: Publish,
                 alive: Alive = lambda c: True, now: Callable[[], datetime] = utcnow,
                 sleep: Sleep = asyncio.sleep) -> None:
        self._records = records
        self._prober = prober
        self._publish = publish
        self._alive = alive
        self._now = now
        self._sleep = sleep
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._states: dict[str, HealthState] = {}

    def start(self, container: Container, *, reset: bool) -> None:
        """Probe `container` (running, not paused) if its config has a check; see the module doc."""
        check = health.effective(container.config.healthcheck, container.config.shell)
        if check is None:
            return
        self._cancel(container.id)  # never two loops for one container
        state = HealthState.from_json(container.health)
        if reset or container.health is None:
            state = state.restarted()
        self._set(container, state)
        started_at = health.parse_rfc3339(container.state.started_at) or self._now()
        self._loops[container.id] = asyncio.create_task(self._loop(container, check, started_at))

    async def stop(self, container_id: str, *, mark_unhealthy: bool = True) -> None:
        """End the container's probing. As moby's CloseMonitorChannel, the recorded status then
        reads "unhealthy" (no event), except at daemon shutdown (`mark_unhealthy=False`), where
        the container keeps running and probing resumes after the restart."""
        task = self._loops.pop(container_id, None)
        state = self._states.pop(container_id, None)
        if task is None:
            return
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_WAIT)  # a wedged exec must not hang stop/rm/pause
        if mark_unhealthy and state is not None:
            with contextlib.suppress(Exception):
                self._records.save_health(container_id, replace(state, status=health.UNHEALTHY).to_json())

    def status(self, container_id: str) -> str | None:
        """The live status of a probed container (None when it is not probed now)."""
        state = self._states.get(container_id)
        return state.status if state else None

    async def close(self) -> None:
        for container_id in list(self._loops):
            await self.stop(container_id, mark_unhealthy=False)

    def _cancel(self, container_id: str) -> None:
        task = self._loops.pop(container_id, None)
        if task is not None:
            task.cancel()

    async def _loop(self, container: Container, check: HealthCheck, started_at: datetime) -> None:
        while True:
            elapsed = (self._now() - started_at).total_seconds()
            await self._sleep(health.next_delay(check, elapsed, self._states[container.id].status))
            start = self._now()
            try:
                code, output = await self._prober(container, check)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - moby records a probe error as a failure
                log.warning("health check of %s failed to run: %s", container.id[:12], err)
                code, output = -1, str(err)
            if not self._alive(container):
                return  # the container died under the probe: its result says nothing (moby drops it)
            result = ProbeResult(start=start, end=self._now(), exit_code=code, output=output)
            try:
                state = health.record(self._states[container.id], result, check=check, started_at=started_at)
                self._set(container, state)
            except Exception:  # noqa: BLE001 - e.g. a locked database: keep probing, record later
                log.exception("health check of %s: recording the result failed", container.id[:12])

    def _set(self, container: Container, state: HealthState) -> None:
        old = self._states.get(container.id)
        self._states[container.id] = state
        self._records.save_health(container.id, state.to_json())
        was = old.status if old else health.filter_status(container.health)
        if state.status != was and state.status != health.STARTING:
            self._publish(container.id, f"health_status: {state.status}")


# --- probes through the runtime's exec -------------------------------------------------------------

class ProbeRuntime(Protocol):
    """berth.runtime.Runtime: a probe is an exec in the container."""

    async def exec(self, container_id: str, spec: ExecSpec) -> ExecProcess: ...


class ExecProber:
    """Runs a check's argv in the container as `docker exec` would (Config Env, User, WorkingDir),
    keeps the first 4096 bytes of stdout+stderr and enforces the check's timeout (and
    START_TIMEOUT) through `sleep`."""

    def __init__(self, runtime: ProbeRuntime, *, sleep: Sleep = asyncio.sleep) -> None:
        self._runtime = runtime
        self._sleep = sleep

    async def __call__(self, container: Container, check: HealthCheck) -> tuple[int, str]:
        config = container.config
        env = secret_env.without(config.env, container.secret_env)  # placeholders: not over the values
        spec = ExecSpec(args=check.argv, env=env, user=config.user, cwd=config.working_dir)
        starting = asyncio.ensure_future(self._runtime.exec(container.id, spec))
        try:
            process = await within(asyncio.shield(starting), START_TIMEOUT, self._sleep)
        except asyncio.TimeoutError:
            _abandon_later(starting)
            return -1, f"timed out starting health check for container {container.id}"
        except asyncio.CancelledError:
            _abandon_later(starting)  # stop() must not wait for an exec that may be wedged
            raise
        except BerthError as err:
            return -1, str(err)
        return await _collect(process, check.timeout, self._sleep)


_ABANDONED: set[asyncio.Future[None]] = set()  # probes whose exec is still starting, to kill once it has


def _abandon_later(starting: asyncio.Future[ExecProcess]) -> None:
    task = asyncio.ensure_future(_abandon(starting))
    _ABANDONED.add(task)
    task.add_done_callback(_ABANDONED.discard)


async def _abandon(starting: asyncio.Future[ExecProcess]) -> None:
    """The exec was still starting when its probe ended: wait (bounded) for it, then kill and reap it."""
    try:
        process = await asyncio.wait_for(asyncio.shield(starting), START_TIMEOUT)
    except (Exception, asyncio.TimeoutError):  # noqa: BLE001 - it never ran, or is wedged: leave it
        return
    await _kill(process, None)


async def _collect(process: ExecProcess, timeout: float, sleep: Sleep) -> tuple[int, str]:
    output = _Output()
    reader = asyncio.create_task(_drain(process, output))
    try:
        code = await within(_finish(process, reader), timeout, sleep)
    except asyncio.TimeoutError:
        await _kill(process, reader)
        return -1, health.timeout_output(timeout, output.text())
    except asyncio.CancelledError:
        await _kill(process, reader)
        raise
    if process.error is not None:  # it never ran (no such executable ...): moby's probe error
        return -1, process.error
    return code, output.text()


async def _finish(process: ExecProcess, reader: asyncio.Task[None]) -> int:
    await reader
    return await process.wait()


async def _drain(process: ExecProcess, output: _Output) -> None:
    while True:
        try:
            item = await process.read()
        except OSError:
            return
        if item is None:
            return
        output.add(item[1])


async def _kill(process: ExecProcess, reader: asyncio.Task[None] | None) -> None:
    process.kill(signals.SIGKILL)
    if reader is not None:
        reader.cancel()
    with contextlib.suppress(Exception, asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(process.wait()), KILL_GRACE)
    with contextlib.suppress(Exception):
        await process.detach()


class _Output:
    """stdout and stderr together, up to 4096 bytes (moby's limitedBuffer)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._truncated = False

    def add(self, chunk: bytes) -> None:
        room = health.MAX_OUTPUT - len(self._data)
        self._data += chunk[:max(room, 0)]
        self._truncated = self._truncated or len(chunk) > room

    def text(self) -> str:
        return health.output_text(bytes(self._data), self._truncated)
