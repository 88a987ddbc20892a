"""RestartScheduler driven by a fake clock: Docker's restart timing without real sleeping.

moby's restartmanager is the reference: the first restart waits 100 ms, each next one twice as
long up to one minute, a run of at least 10 s starts the back-off over; `on-failure:N` stops
after N restarts; a stop during the back-off cancels the restart; a manual start resets it.
The pure rules are tested in test_engine_restart_policy.py; here the scheduler applies them
through its `sleep` and the runs' recorded StartedAt/FinishedAt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.containers import Container, ContainerState
from berth.engine.containers._restart_policy import INITIAL_DELAY, MAX_DELAY, RESET_AFTER
from berth.engine.containers._restarts import RestartScheduler
from berth.engine.testing import ManualClock

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
EPSILON = 1e-6   # how far short of a deadline "not yet" is checked


@dataclass
class Engine:
    """What ContainerService does around the scheduler: records, relaunches, exits."""

    clock: ManualClock
    containers: dict[str, Container] = field(default_factory=dict)
    relaunched: list[str] = field(default_factory=list)
    scheduler: RestartScheduler = field(init=False)

    def stamp(self) -> str:
        """The clock's time as a record's StartedAt/FinishedAt."""
        return (T0 + timedelta(seconds=self.clock.now)).isoformat().replace("+00:00", "Z")

    def __post_init__(self) -> None:
        locks: dict[str, asyncio.Lock] = {}
        self.scheduler = RestartScheduler(repo=self, lock=lambda cid: locks.setdefault(cid, asyncio.Lock()),  # type: ignore[arg-type]
                                          relaunch=self._relaunch, sleep=self.clock.sleep)

    # ContainerRepository, as far as the scheduler uses it
    def save(self, container: Container) -> None:
        self.containers[container.id] = container

    def all(self) -> list[Container]:
        return list(self.containers.values())

    async def _relaunch(self, container_id: str) -> None:
        container = self.containers[container_id]
        if container.state.status != "restarting":
            return
        container.restart_count += 1
        container.state = ContainerState(status="running", started_at=self.stamp())
        self.relaunched.append(container_id)

    def run(self, cid: str, policy: str, retries: int = 0) -> Container:
        """A container started by hand just now."""
        container = Container(id=cid, name=cid, created=self.stamp(), image="busybox", image_id="sha256:x",
                              config={}, host_config=typed_hc({"RestartPolicy": {"Name": policy, "MaximumRetryCount": retries}}),
                              state=ContainerState(status="running", started_at=self.stamp()))
        self.containers[cid] = container
        return container

    def exit_after(self, cid: str, seconds: float, code: int = 1) -> bool:
        """The container runs `seconds` more, then exits with `code`; whether a restart was scheduled."""
        self.clock.advance(seconds)
        container = self.containers[cid]
        container.state = ContainerState(status="exited", exit_code=code, started_at=container.state.started_at,
                                         finished_at=self.stamp())
        return self.scheduler.after_exit(container, code)


async def settle(condition: Callable[[], bool]) -> bool:
    """Let the scheduler's tasks run (no real time passes); whether `condition` came true."""
    for _ in range(50):
        if condition():
            return True
        await asyncio.sleep(0)
    return condition()


def scenario(body: Callable[[Engine], Awaitable[None]]) -> Engine:
    engine = Engine(ManualClock())

    async def main() -> None:
        try:
            await body(engine)
        finally:
            engine.scheduler.close()
    asyncio.run(main())
    return engine


async def restart_after(engine: Engine, cid: str, delay: float) -> None:
    """The restart comes exactly when the back-off `delay` has passed, not before."""
    count = len(engine.relaunched)
    assert engine.containers[cid].state.status == "restarting"
    assert await settle(lambda: engine.clock.waiting == 1)   # the scheduler sleeps through the back-off
    engine.clock.advance(delay - EPSILON)
    assert not await settle(lambda: len(engine.relaunched) > count), f"restarted before {delay} s"
    engine.clock.advance(EPSILON)
    assert await settle(lambda: len(engine.relaunched) > count), f"no restart after {delay} s"
    assert engine.containers[cid].state.status == "running"


def doubling() -> Iterator[float]:
    delay = INITIAL_DELAY
    while True:
        yield delay
        delay = min(delay * 2, MAX_DELAY)


def test_backoff_doubles_from_100ms_and_is_capped_at_one_minute() -> None:
    async def body(engine: Engine) -> None:
        engine.run("web", "always")
        for delay, _ in zip(doubling(), range(13)):
            assert engine.exit_after("web", 0.5)   # each run crashes after half a second
            await restart_after(engine, "web", delay)

    engine = scenario(body)
    assert engine.clock.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 60.0, 60.0, 60.0]
    assert engine.containers["web"].restart_count == 13


def test_a_run_of_ten_seconds_starts_the_backoff_over() -> None:
    async def body(engine: Engine) -> None:
        engine.run("web", "unless-stopped")
        for delay in (0.1, 0.2, 0.4):
            assert engine.exit_after("web", 1)
            await restart_after(engine, "web", delay)
        assert engine.exit_after("web", RESET_AFTER - 0.01)   # just short of 10 s: it keeps doubling
        await restart_after(engine, "web", 0.8)
        assert engine.exit_after("web", RESET_AFTER)          # 10 s: back to 100 ms
        await restart_after(engine, "web", INITIAL_DELAY)
        assert engine.exit_after("web", 1)
        await restart_after(engine, "web", 0.2)

    assert scenario(body).clock.sleeps == [0.1, 0.2, 0.4, 0.8, 0.1, 0.2]


def test_on_failure_restarts_at_most_max_retries_times() -> None:
    async def body(engine: Engine) -> None:
        engine.run("job", "on-failure", retries=3)
        for delay in (0.1, 0.2, 0.4):
            assert engine.exit_after("job", 0.1, code=1)
            await restart_after(engine, "job", delay)
        assert not engine.exit_after("job", 0.1, code=1)   # the fourth failure is final
        engine.clock.advance(3600)
        assert not await settle(lambda: len(engine.relaunched) > 3)
        assert engine.containers["job"].state.status == "exited"

    engine = scenario(body)
    assert engine.containers["job"].restart_count == 3 and engine.relaunched == ["job"] * 3


def test_on_failure_does_not_restart_a_success_and_always_does() -> None:
    async def body(engine: Engine) -> None:
        engine.run("ok", "on-failure")
        engine.run("al", "always")
        engine.run("no", "no")
        assert not engine.exit_after("ok", 1, code=0)
        assert not engine.exit_after("no", 0, code=1)
        assert engine.exit_after("al", 0, code=0)
        await restart_after(engine, "al", INITIAL_DELAY)

    engine = scenario(body)
    assert engine.relaunched == ["al"] and engine.clock.sleeps == [INITIAL_DELAY]


def test_a_stop_during_the_backoff_cancels_the_restart() -> None:
    async def body(engine: Engine) -> None:
        engine.run("web", "always")
        assert engine.exit_after("web", 0.5)
        assert await settle(lambda: engine.clock.waiting == 1)   # sleeping through the back-off
        engine.scheduler.cancel("web")   # docker stop of a restarting container
        engine.clock.advance(MAX_DELAY)
        assert not await settle(lambda: bool(engine.relaunched))

    assert scenario(body).relaunched == []


def test_a_manual_start_resets_the_backoff() -> None:
    async def body(engine: Engine) -> None:
        engine.run("web", "always")
        for delay in (0.1, 0.2, 0.4):
            assert engine.exit_after("web", 0.5)
            await restart_after(engine, "web", delay)
        engine.scheduler.reset("web")   # docker start: the next restart waits 100 ms again
        assert engine.exit_after("web", 0.5)
        await restart_after(engine, "web", INITIAL_DELAY)

    assert scenario(body).clock.sleeps == [0.1, 0.2, 0.4, 0.1]


def test_exit_on_next_makes_only_the_next_exit_final() -> None:
    async def body(engine: Engine) -> None:
        engine.run("web", "always")
        engine.scheduler.exit_on_next("web")   # docker stop, or a kill with SIGKILL/the stop signal
        assert not engine.exit_after("web", 0.5)
        engine.clock.advance(MAX_DELAY)
        assert not await settle(lambda: bool(engine.relaunched))
        engine.containers["web"].state = ContainerState(status="running", started_at=engine.stamp())
        assert engine.exit_after("web", 0.5)   # the run after that restarts again
        await restart_after(engine, "web", INITIAL_DELAY)

    assert scenario(body).relaunched == ["web"]


def test_daemon_start_runs_always_and_unless_stopped_at_once() -> None:
    async def body(engine: Engine) -> None:
        for cid, policy in (("al", "always"), ("al-stopped", "always"), ("us", "unless-stopped"),
                            ("us-stopped", "unless-stopped"), ("of", "on-failure"), ("no", "no"),
                            ("settled", "always")):
            engine.exit_after(engine.run(cid, policy).id, 1, code=137)   # they died with the host
            engine.scheduler.cancel(cid)   # the daemon that scheduled them went down
            engine.containers[cid].state.status = "exited"
        for cid in ("al-stopped", "us-stopped"):
            engine.containers[cid].manually_stopped = True
        engine.containers["of"].state.status = "restarting"   # cut short in its back-off
        engine.clock.sleeps.clear()
        engine.scheduler.start_with_daemon({"settled"})
        assert await settle(lambda: len(engine.relaunched) == 4)   # no clock advance: no delay
        assert not await settle(lambda: len(engine.relaunched) > 4)

    engine = scenario(body)
    assert sorted(engine.relaunched) == ["al", "al-stopped", "of", "us"]
    assert engine.clock.sleeps == [0, 0, 0, 0]
