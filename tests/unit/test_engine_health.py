"""HEALTHCHECK logic: the merge, the state machine and texts (health.py), the monitor with a fake
prober and a fake clock (health_monitor.py), and the surfaces (inspect, ps status and filter)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.api.docker.container_spec import config_from_wire, health_from_wire
from berth.engine.containers._stored import config_from_legacy as typed_config
from berth.engine.containers import _config as cfg
from berth.api.docker import container_json as cj
from berth.engine.containers import ContainerSnapshot, check_list_filters, matches_filters, snapshot_of
from berth.engine import health
from berth.engine.containers._model import Container, ContainerRepository, ContainerState
from berth.engine.health import HealthCheck, HealthState, ProbeResult
from berth.engine.health_monitor import START_TIMEOUT, ExecProber, HealthMonitor
from berth.engine.testing import ManualClock
from berth.errors import InvalidArgument
from berth.state import Database

S = health.NS
T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc)


def _merge(container: dict[str, Any] | None, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """health.merge on wire-shaped checks, the result as inspect shows it."""
    merged = health.merge(health_from_wire(container), health.from_image(image))
    return None if merged is None else cj.health_json(merged)


# --- merge and effective config --------------------------------------------------------------------

def test_merge_container_test_overrides_and_zero_fields_fall_back_to_the_image() -> None:
    image = {"Test": ["CMD", "true"], "Interval": 5 * S, "Timeout": 2 * S, "Retries": 4, "StartPeriod": 3 * S}
    merged = _merge({"Test": ["CMD-SHELL", "curl -f x"], "Interval": 1 * S, "Retries": 0}, image)
    assert merged == {"Test": ["CMD-SHELL", "curl -f x"], "Interval": 1 * S, "Timeout": 2 * S, "Retries": 4,
                      "StartPeriod": 3 * S}


def test_merge_without_a_container_check_takes_the_image_one() -> None:
    assert _merge(None, {"Test": ["CMD", "true"]}) == {"Test": ["CMD", "true"]}
    assert _merge(None, None) is None
    assert _merge({"Interval": S}, {"Test": ["CMD", "true"]}) == {"Test": ["CMD", "true"], "Interval": S}
    assert _merge({"Test": ["NONE"]}, {"Test": ["CMD", "true"]}) == {"Test": ["NONE"]}


def test_merge_config_shows_the_merged_check_only_when_there_is_one() -> None:
    image = {"Cmd": ["sh"], "Healthcheck": {"Test": ["CMD", "true"], "Retries": 2}}
    request = config_from_wire({"Image": "x", "Healthcheck": {"Test": ["CMD", "false"], "Interval": S}})
    merged = cj.config_json(cfg.merge_config(request, image, "a" * 64))
    assert merged["Healthcheck"] == {"Test": ["CMD", "false"], "Interval": S, "Retries": 2}
    assert "Healthcheck" not in cj.config_json(cfg.merge_config(config_from_wire({"Image": "x"}), {"Cmd": ["sh"]},
                                                                "a" * 64))


def test_effective_defaults_and_kinds() -> None:
    check = health.effective(health_from_wire({"Test": ["CMD", "test", "-f", "/ok"]}))
    assert check == HealthCheck(argv=("test", "-f", "/ok"), interval=30, timeout=30, start_period=0,
                                start_interval=5, retries=3)
    shell = health.effective(health_from_wire({"Test": ["CMD-SHELL", "exit 1"], "Interval": S // 2, "Retries": 2}))
    assert shell is not None and shell.argv == ("/bin/sh", "-c", "exit 1")
    assert shell.interval == 0.5 and shell.retries == 2
    own_shell = health.effective(health_from_wire({"Test": ["CMD-SHELL", "x"]}), ["/bin/bash", "-ec"])
    assert own_shell is not None and own_shell.argv == ("/bin/bash", "-ec", "x")


@pytest.mark.parametrize("test", [None, [], ["NONE"], ["CMD"], ["HTTP", "x"]])
def test_effective_without_a_probe(test: list[str] | None) -> None:
    assert health.effective(health_from_wire({"Test": test} if test is not None else None)) is None


@pytest.mark.parametrize(("check", "message"), [
    ({"Interval": 1000}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Timeout": -5}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"StartPeriod": 10}, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ({"StartInterval": 1}, "StartInterval in Healthcheck cannot be less than 1ms"),
    ({"Retries": -1}, "Retries in Healthcheck cannot be negative"),
])
def test_validate_uses_mobys_wording(check: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        cfg.validate_config(config_from_wire({"Healthcheck": {"Test": ["CMD", "true"], **check}}))


def test_validate_accepts_zero_and_valid_values() -> None:
    health.validate(health_from_wire({"Test": ["CMD", "true"], "Interval": 0, "Timeout": 1_000_000, "Retries": 0}))
    health.validate(None)


# --- the state machine ---------------------------------------------------------------------------------

CHECK = HealthCheck(argv=("true",), interval=1, timeout=1, start_period=0, start_interval=1, retries=2)


def result(code: int, at: float = 10.0, output: str = "") -> ProbeResult:
    start = T0 + timedelta(seconds=at)
    return ProbeResult(start=start, end=start + timedelta(milliseconds=5), exit_code=code, output=output)


def test_success_makes_healthy_and_resets_the_streak() -> None:
    state = HealthState(health.UNHEALTHY, 7)
    after = health.record(state, result(0, output="ok"), check=CHECK, started_at=T0)
    assert after.status == health.HEALTHY and after.failing_streak == 0
    assert after.log[-1]["ExitCode"] == 0 and after.log[-1]["Output"] == "ok"
    assert after.log[-1]["Start"].endswith("Z")


def test_unhealthy_after_retries_consecutive_failures() -> None:
    state = HealthState()
    state = health.record(state, result(1), check=CHECK, started_at=T0)
    assert (state.status, state.failing_streak) == (health.STARTING, 1)
    state = health.record(state, result(1), check=CHECK, started_at=T0)
    assert (state.status, state.failing_streak) == (health.UNHEALTHY, 2)
    state = health.record(state, result(-1), check=CHECK, started_at=T0)
    assert (state.status, state.failing_streak) == (health.UNHEALTHY, 3)


def test_healthy_stays_healthy_until_retries_failures() -> None:
    state = health.record(HealthState(health.HEALTHY), result(1), check=CHECK, started_at=T0)
    assert (state.status, state.failing_streak) == (health.HEALTHY, 1)


def test_failures_in_the_start_period_do_not_count_while_starting() -> None:
    check = HealthCheck(argv=("true",), interval=1, timeout=1, start_period=5, start_interval=1, retries=1)
    state = health.record(HealthState(), result(1, at=4.9), check=check, started_at=T0)
    assert (state.status, state.failing_streak, len(state.log)) == (health.STARTING, 0, 1)
    state = health.record(state, result(1, at=5.0), check=check, started_at=T0)
    assert (state.status, state.failing_streak) == (health.UNHEALTHY, 1)


def test_a_success_in_the_start_period_ends_the_grace() -> None:
    check = HealthCheck(argv=("true",), interval=1, timeout=1, start_period=60, start_interval=1, retries=1)
    state = health.record(HealthState(), result(0, at=1), check=check, started_at=T0)
    state = health.record(state, result(1, at=2), check=check, started_at=T0)
    assert (state.status, state.failing_streak) == (health.UNHEALTHY, 1)


def test_log_keeps_the_last_five() -> None:
    state = HealthState()
    for i in range(8):
        state = health.record(state, result(0, output=str(i)), check=CHECK, started_at=T0)
    assert [e["Output"] for e in state.log] == ["3", "4", "5", "6", "7"]


def test_restarted_keeps_the_log() -> None:
    state = HealthState(health.UNHEALTHY, 4, ({"ExitCode": 1},)).restarted()
    assert state == HealthState(health.STARTING, 0, ({"ExitCode": 1},))
    assert HealthState.from_json(state.to_json()) == state


def test_next_delay_uses_start_interval_in_the_start_period() -> None:
    check = HealthCheck(argv=("x",), interval=30, timeout=1, start_period=10, start_interval=2, retries=3)
    assert health.next_delay(check, 0, health.STARTING) == 2
    assert health.next_delay(check, 9, health.STARTING) == 1          # not past the start period
    assert health.next_delay(check, 0, health.HEALTHY) == 10          # regular, cut at its end
    assert health.next_delay(check, 10, health.STARTING) == 30
    plain = HealthCheck(argv=("x",), interval=1)
    assert health.next_delay(plain, 0, health.STARTING) == 1


# --- texts ---------------------------------------------------------------------------------------------

def test_status_suffix_and_filter_value() -> None:
    assert health.status_suffix(None) == ""
    assert health.status_suffix({"Status": "starting"}) == " (health: starting)"
    assert health.status_suffix({"Status": "unhealthy"}) == " (unhealthy)"
    assert health.filter_status(None) == "none" and health.filter_status({"Status": "healthy"}) == "healthy"


def test_output_is_cut_at_4096_bytes() -> None:
    assert health.output_text(b"x" * 5000, False) == "x" * 4096 + "..."
    assert health.output_text(b"ok\n", False) == "ok\n"


@pytest.mark.parametrize(("seconds", "text"), [
    (1, "1s"), (30, "30s"), (0.5, "500ms"), (1.5, "1.5s"), (90, "1m30s"), (3600, "1h0m0s"), (0, "0s"),
])
def test_go_duration(seconds: float, text: str) -> None:
    assert health.go_duration(seconds) == text


def test_timeout_output() -> None:
    assert health.timeout_output(1, "") == "Health check exceeded timeout (1s)"
    assert health.timeout_output(2, "partial") == "Health check exceeded timeout (2s): partial"


# --- surfaces ------------------------------------------------------------------------------------------

def make(status: str = "running", healthcheck: dict[str, Any] | None = None,
         state_health: dict[str, Any] | None = None) -> Container:
    config: dict[str, Any] = {"Cmd": ["sleep", "300"], "Env": ["PATH=/bin"]}
    if healthcheck is not None:
        config["Healthcheck"] = healthcheck
    return Container(id="e" * 64, name="web", created=T0.isoformat(), image="busybox", image_id="sha256:" + "1" * 64,
                     config=typed_config(config), host_config=typed_hc({}), state=ContainerState(status=status, started_at=T0.isoformat()),
                     health=state_health)


def snap(c: Container) -> ContainerSnapshot:
    return snapshot_of(c, dir="/r", log_path="/l", default_runtime="")


def test_ps_status_text_shows_the_health() -> None:
    now = T0 + timedelta(seconds=3)
    assert cj.status_text(snap(make(state_health={"Status": "healthy"})), now) == "Up 3 seconds (healthy)"
    assert cj.status_text(snap(make(state_health={"Status": "starting"})), now) == "Up 3 seconds (health: starting)"
    assert cj.status_text(snap(make("paused", state_health={"Status": "healthy"})), now) == "Up 3 seconds (Paused)"
    assert cj.status_text(snap(make()), now) == "Up 3 seconds"


def test_inspect_has_health_only_when_recorded() -> None:
    recorded = {"Status": "unhealthy", "FailingStreak": 2, "Log": []}
    assert cj.inspect(snap(make(state_health=recorded)))["State"]["Health"] == recorded
    assert "Health" not in cj.inspect(snap(make()))["State"]


def test_ps_health_filter() -> None:
    healthy, plain = make(state_health={"Status": "healthy"}), make()
    assert matches_filters(healthy, {"health": ["healthy"]})
    assert not matches_filters(healthy, {"health": ["unhealthy"]})
    assert matches_filters(plain, {"health": ["none"]}) and not matches_filters(plain, {"health": ["starting"]})
    with pytest.raises(InvalidArgument, match="Unrecognised filter value for health: sick"):
        check_list_filters({"health": ["sick"]})


def test_repository_keeps_health_beside_the_record(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    repo = ContainerRepository(db)
    c = make(healthcheck={"Test": ["CMD", "true"]})
    repo.add(c)
    repo.save_health(c.id, {"Status": "healthy", "FailingStreak": 0, "Log": []})
    c.state.status = "exited"
    repo.save(c)  # a save of the record never turns the health back
    assert repo.get("web").health == {"Status": "healthy", "FailingStreak": 0, "Log": []}
    assert repo.all()[0].health == {"Status": "healthy", "FailingStreak": 0, "Log": []}
    repo.delete(c.id)
    repo.save_health(c.id, {"Status": "healthy"})  # a late result for a removed container: dropped
    assert db.query("SELECT COUNT(*) AS n FROM container_health")[0]["n"] == 0
    db.close()


# --- the monitor with a fake prober and a fake clock ---------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


class FakeProber:
    """Answers the scripted (exit code, output) pairs, then blocks until cancelled."""

    def __init__(self, clock: FakeClock, script: list[tuple[int, str]]) -> None:
        self.clock = clock
        self.script = list(script)
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.cancelled = False
        self.idle = asyncio.Event()

    async def __call__(self, container: Container, check: HealthCheck) -> tuple[int, str]:
        self.calls.append((container.id, check.argv))
        if not self.script:
            self.idle.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        self.clock.now += timedelta(milliseconds=10)
        return self.script.pop(0)


class FakeRecords:
    def __init__(self) -> None:
        self.saved: list[dict[str, Any]] = []

    def save_health(self, container_id: str, health: dict[str, Any]) -> None:
        self.saved.append(health)


def run_monitor(script: list[tuple[int, str]], container: Container, *, reset: bool = True
                ) -> tuple[FakeProber, FakeRecords, list[str], FakeClock]:
    clock = FakeClock()
    records = FakeRecords()
    events: list[str] = []

    async def scenario() -> FakeProber:
        prober = FakeProber(clock, script)
        monitor = HealthMonitor(records=records, prober=prober, publish=lambda c, action: events.append(action),
                                now=clock, sleep=clock.sleep)
        monitor.start(container, reset=reset)
        await asyncio.wait_for(prober.idle.wait(), 5)
        await monitor.stop(container.id)
        assert monitor.status(container.id) is None
        return prober

    prober = asyncio.run(scenario())
    return prober, records, events, clock


HC = {"Test": ["CMD-SHELL", "test -f /ok"], "Interval": S, "Retries": 2}


def test_monitor_starting_to_healthy_to_unhealthy() -> None:
    prober, records, events, clock = run_monitor([(1, "no"), (0, ""), (1, "a"), (1, "b")], make(healthcheck=HC))
    assert prober.calls[0] == ("e" * 64, ("/bin/sh", "-c", "test -f /ok"))
    # the last record is stop()'s: a stopped monitor reads unhealthy (moby's CloseMonitorChannel)
    assert [s["Status"] for s in records.saved] == ["starting", "starting", "healthy", "healthy", "unhealthy",
                                                    "unhealthy"]
    assert records.saved[-1]["FailingStreak"] == 2 and len(records.saved[-1]["Log"]) == 4
    assert events == ["health_status: healthy", "health_status: unhealthy"]
    assert clock.sleeps[:4] == [1, 1, 1, 1]
    assert prober.cancelled  # stop() cancelled the probe in flight


def test_monitor_start_period_uses_start_interval() -> None:
    hc = {**HC, "Interval": 10 * S, "StartPeriod": 3 * S, "StartInterval": S, "Retries": 1}
    prober, records, events, clock = run_monitor([(1, ""), (1, ""), (0, "")], make(healthcheck=hc))
    # 1s while starting; the third wait ends with the start period (the probes took 10ms each).
    assert clock.sleeps[:3] == pytest.approx([1, 1, 0.98])
    assert [s["Status"] for s in records.saved] == ["starting", "starting", "starting", "healthy", "unhealthy"]
    assert clock.sleeps[3] == 10
    assert events == ["health_status: healthy"]


def test_monitor_restore_keeps_the_recorded_state() -> None:
    recorded = {"Status": "unhealthy", "FailingStreak": 5, "Log": [{"ExitCode": 1}]}
    _, records, events, _ = run_monitor([(0, "")], make(healthcheck=HC, state_health=recorded), reset=False)
    assert records.saved[0] == recorded
    assert records.saved[1]["Status"] == "healthy" and events == ["health_status: healthy"]


def test_monitor_reset_starts_again_with_the_log_kept() -> None:
    recorded = {"Status": "healthy", "FailingStreak": 0, "Log": [{"ExitCode": 0}]}
    _, records, events, _ = run_monitor([], make(healthcheck=HC, state_health=recorded))
    assert records.saved == [{"Status": "starting", "FailingStreak": 0, "Log": [{"ExitCode": 0}]},
                             {"Status": "unhealthy", "FailingStreak": 0, "Log": [{"ExitCode": 0}]}]  # stop()
    assert events == []  # stop() marks unhealthy without an event


def test_monitor_ignores_containers_without_a_probe() -> None:
    async def scenario() -> None:
        records = FakeRecords()
        monitor = HealthMonitor(records=records, prober=FakeProber(FakeClock(), []), publish=lambda c, a: None)
        monitor.start(make(healthcheck={"Test": ["NONE"]}), reset=True)
        monitor.start(make(), reset=True)
        assert records.saved == [] and monitor.status("e" * 64) is None
        await monitor.close()
    asyncio.run(scenario())


def test_monitor_records_a_prober_error_as_a_failure() -> None:
    clock = FakeClock()
    records = FakeRecords()

    async def failing(container: Container, check: HealthCheck) -> tuple[int, str]:
        if len(records.saved) > 1:
            await asyncio.Event().wait()
        raise OSError("conmon vanished")

    async def scenario() -> None:
        monitor = HealthMonitor(records=records, prober=failing, publish=lambda c, a: None, now=clock,
                                sleep=clock.sleep)
        monitor.start(make(healthcheck=HC), reset=True)
        for _ in range(100):
            await asyncio.sleep(0)
        await monitor.close()
    asyncio.run(scenario())
    assert records.saved[1]["Log"][0]["ExitCode"] == -1
    assert records.saved[1]["Log"][0]["Output"] == "conmon vanished"


# --- the prober's timeouts, on a clock the test moves -------------------------------------------------

class FakeExec:
    """A probe process: prints `output`, then runs until it exits (`finish`) or is killed."""

    def __init__(self, output: bytes = b"") -> None:
        self.error: str | None = None
        self.killed: list[int] = []
        self.detached = False
        self._chunks = [output] if output else []
        self._ended = asyncio.Event()
        self._code = 137

    def finish(self, code: int) -> None:
        self._code = code
        self._ended.set()

    async def read(self) -> tuple[int, bytes] | None:
        if self._chunks:
            return 1, self._chunks.pop(0)
        await self._ended.wait()
        return None

    def kill(self, signal: int) -> None:
        self.killed.append(signal)
        self._ended.set()

    async def wait(self) -> int:
        await self._ended.wait()
        return self._code

    async def detach(self) -> None:
        self.detached = True


class FakeExecRuntime:
    """Runtime.exec as the prober uses it: the exec starts when the test says (`started`)."""

    def __init__(self) -> None:
        self.started: asyncio.Future[FakeExec] | None = None

    async def exec(self, container_id: str, spec: Any) -> FakeExec:
        self.started = asyncio.get_running_loop().create_future()
        return await self.started


async def turns(condition: Callable[[], bool]) -> bool:
    """Let the prober's tasks run until `condition` holds (no real time passes)."""
    for _ in range(50):
        if condition():
            return True
        await asyncio.sleep(0)
    return condition()


def probe_scenario(body: Callable[[ManualClock, FakeExecRuntime, ExecProber], Awaitable[None]]) -> None:
    clock, runtime = ManualClock(), FakeExecRuntime()
    asyncio.run(body(clock, runtime, ExecProber(runtime, sleep=clock.sleep)))  # type: ignore[arg-type]


TIMED = HealthCheck(argv=("sleep", "30"), timeout=1)


def test_a_probe_that_outlives_its_timeout_is_killed_and_fails() -> None:
    async def body(clock: ManualClock, runtime: FakeExecRuntime, prober: ExecProber) -> None:
        probe = asyncio.create_task(prober(make(), TIMED))
        process = FakeExec(b"partial")
        assert await turns(lambda: runtime.started is not None)
        assert runtime.started is not None
        runtime.started.set_result(process)
        assert await turns(lambda: clock.sleeps == [START_TIMEOUT, 1] and clock.waiting == 1)   # the timeout runs
        clock.advance(TIMED.timeout - 0.001)
        assert not await turns(probe.done), "ended before its timeout"
        clock.advance(0.001)
        assert await turns(probe.done)
        assert probe.result() == (-1, "Health check exceeded timeout (1s): partial")
        assert process.killed == [signal.SIGKILL] and process.detached
    probe_scenario(body)


def test_a_probe_that_ends_in_time_reports_its_code_and_output() -> None:
    async def body(clock: ManualClock, runtime: FakeExecRuntime, prober: ExecProber) -> None:
        probe = asyncio.create_task(prober(make(), TIMED))
        process = FakeExec(b"fine\n")
        assert await turns(lambda: runtime.started is not None)
        assert runtime.started is not None
        runtime.started.set_result(process)
        assert await turns(lambda: clock.sleeps == [START_TIMEOUT, 1] and clock.waiting == 1)
        clock.advance(TIMED.timeout - 0.001)
        process.finish(0)
        assert await turns(probe.done)
        assert probe.result() == (0, "fine\n") and process.killed == []
        assert clock.waiting == 0   # its timeout was called off
    probe_scenario(body)


def test_an_exec_that_does_not_start_in_time_fails_the_probe_and_is_killed_later() -> None:
    async def body(clock: ManualClock, runtime: FakeExecRuntime, prober: ExecProber) -> None:
        probe = asyncio.create_task(prober(make(), TIMED))
        assert await turns(lambda: clock.waiting == 1)   # START_TIMEOUT runs
        clock.advance(START_TIMEOUT - 0.001)
        assert not await turns(probe.done)
        clock.advance(0.001)
        assert await turns(probe.done)
        assert probe.result() == (-1, f"timed out starting health check for container {'e' * 64}")
        late = FakeExec()
        assert runtime.started is not None
        runtime.started.set_result(late)   # it started after all: nobody reads it, so it is killed
        assert await turns(lambda: late.killed == [signal.SIGKILL])
    probe_scenario(body)
