"""HEALTHCHECKs through the docker CLI (and docker-compose's `condition: service_healthy`): probes
run in the container, State.Health, `docker ps` status and filter, events, built images, pause,
daemon restart. Intervals are 1s so each test takes a few seconds."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BerthDaemon, holds_for

pytestmark = pytest.mark.root

FAST = ("--health-interval", "1s", "--health-retries", "2")


def state(daemon: BerthDaemon, cid: str) -> dict[str, Any]:
    return json.loads(daemon.docker("inspect", cid, check=True).stdout)[0]["State"]


def wait_for(daemon: BerthDaemon, cid: str, ready: Callable[[dict[str, Any]], bool],
             timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    current = state(daemon, cid)
    while not ready(current):
        if time.monotonic() > deadline:
            raise AssertionError(f"health never got there: {current.get('Health')}")
        time.sleep(0.2)
        current = state(daemon, cid)
    return current


def health_is(status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: (s.get("Health") or {}).get("Status") == status


@pytest.fixture()
def run(daemon: BerthDaemon) -> Iterator[Callable[..., str]]:
    """`docker run -d ...` that removes what it started."""
    started: list[str] = []

    def _run(*args: str) -> str:
        cid = daemon.docker("run", "-d", *args, check=True).stdout.strip()
        started.append(cid)
        return cid

    yield _run
    for cid in started:
        daemon.docker("rm", "-f", cid)


def test_starting_then_healthy(daemon: BerthDaemon, run: Callable[..., str]) -> None:
    since = str(time.time() - 1)
    cid = run("--health-cmd", "test -f /ok", *FAST, "busybox", "sh", "-c", "sleep 2; touch /ok; sleep 300")
    first = state(daemon, cid)
    assert first["Health"]["Status"] == "starting" and first["Health"]["FailingStreak"] == 0
    assert "(health: starting)" in daemon.docker("ps", "--filter", f"id={cid}", "--format", "{{.Status}}").stdout
    healthy = wait_for(daemon, cid, health_is("healthy"))
    assert healthy["Health"]["FailingStreak"] == 0
    last = healthy["Health"]["Log"][-1]
    assert last["ExitCode"] == 0 and last["Start"] <= last["End"]
    assert daemon.docker("ps", "--filter", f"id={cid}", "--format", "{{.Status}}").stdout.strip().endswith("(healthy)")
    assert daemon.docker("ps", "-q", "--no-trunc", "--filter", "health=healthy").stdout.split().count(cid) == 1
    assert cid not in daemon.docker("ps", "-q", "--no-trunc", "--filter", "health=starting").stdout
    events = daemon.docker("events", "--since", since, "--until", str(time.time() + 0.5), "--filter",
                           f"container={cid}", "--format", "{{.Action}}").stdout.splitlines()
    assert "health_status: healthy" in events


def test_failing_check_becomes_unhealthy(daemon: BerthDaemon, run: Callable[..., str]) -> None:
    cid = run("--health-cmd", "echo bad; exit 1", *FAST, "busybox", "sleep", "300")
    sick = wait_for(daemon, cid, health_is("unhealthy"))["Health"]
    assert sick["FailingStreak"] >= 2
    assert sick["Log"][-1]["ExitCode"] == 1 and sick["Log"][-1]["Output"] == "bad\n"
    assert daemon.docker("ps", "--filter", f"id={cid}", "--format", "{{.Status}}").stdout.strip().endswith("(unhealthy)")
    assert cid in daemon.docker("ps", "-q", "--no-trunc", "--filter", "health=unhealthy").stdout
    assert "Unrecognised filter value for health: sick" in daemon.docker("ps", "--filter", "health=sick").stderr


def test_timeout_kills_the_probe(daemon: BerthDaemon, run: Callable[..., str]) -> None:
    cid = run("--health-cmd", "sleep 30", "--health-timeout", "1s", "--health-interval", "1s", "--health-retries", "1",
              "busybox", "sleep", "300")
    sick = wait_for(daemon, cid, lambda s: s["Health"]["FailingStreak"] >= 2)["Health"]
    assert sick["Status"] == "unhealthy"
    assert sick["Log"][-1]["ExitCode"] == -1
    assert sick["Log"][-1]["Output"] == "Health check exceeded timeout (1s)"
    probes = [line for line in daemon.docker("top", cid, check=True).stdout.splitlines()
              if line.endswith(" sleep 30")]
    assert len(probes) <= 1, probes  # timed-out probes were killed: only the current one may run


def test_no_healthcheck_shows_no_health(daemon: BerthDaemon, run: Callable[..., str]) -> None:
    plain = run("busybox", "sleep", "300")
    disabled = run("--no-healthcheck", "busybox", "sleep", "300")
    assert "Health" not in state(daemon, plain)
    inspect = json.loads(daemon.docker("inspect", disabled, check=True).stdout)[0]
    assert "Health" not in inspect["State"] and inspect["Config"]["Healthcheck"]["Test"] == ["NONE"]
    listed = daemon.docker("ps", "-q", "--no-trunc", "--filter", "health=none").stdout.split()
    assert plain in listed and disabled in listed


def test_image_healthcheck_is_probed(daemon: BerthDaemon, run: Callable[..., str]) -> None:
    dockerfile = ("FROM busybox\nHEALTHCHECK --interval=1s --retries=1 CMD echo fine\n"
                  'CMD ["sleep", "300"]\n')
    daemon.docker("build", "-t", "berth-health-img", "-", input=dockerfile.encode(), check=True)
    try:
        cid = run("berth-health-img")
        inspect = json.loads(daemon.docker("inspect", cid, check=True).stdout)[0]
        assert inspect["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "echo fine"], "Interval": 1_000_000_000,
                                                    "Retries": 1}
        healthy = wait_for(daemon, cid, health_is("healthy"))
        assert healthy["Health"]["Log"][-1]["Output"] == "fine\n"
        off = run("--no-healthcheck", "berth-health-img")
        off_started = state(daemon, off)["StartedAt"]
        # two probes of `cid` began after `off` started: more than an interval has passed, in which
        # `off` would have been probed too had its check not been disabled
        wait_for(daemon, cid, lambda s: sum(entry["Start"] > off_started for entry in s["Health"]["Log"]) >= 2)
        assert "Health" not in state(daemon, off)
    finally:
        daemon.docker("rm", "-f", *daemon.docker("ps", "-aq", "--filter", "ancestor=berth-health-img").stdout.split())
        daemon.docker("rmi", "berth-health-img")


def test_paused_container_is_not_probed_and_restart_starts_again(daemon: BerthDaemon, run: Callable[..., str]) -> None:
    cid = run("--health-cmd", "exit 1", "--health-interval", "1s", "--health-retries", "100", "busybox", "sleep", "300")
    wait_for(daemon, cid, lambda s: s["Health"]["FailingStreak"] >= 1)
    daemon.docker("pause", cid, check=True)
    paused = state(daemon, cid)["Health"]
    streak = paused["FailingStreak"]
    assert paused["Status"] == "unhealthy"  # moby: a stopped monitor reads unhealthy
    # no probe while paused: an absence, so watched for more than two intervals
    holds_for("unprobed while paused", lambda: state(daemon, cid)["Health"]["FailingStreak"] == streak, 2.5,
              every=0.5)
    daemon.docker("unpause", cid, check=True)
    wait_for(daemon, cid, lambda s: s["Health"]["FailingStreak"] > streak)
    daemon.docker("stop", "-t", "0", cid, check=True)
    stopped = state(daemon, cid)
    assert stopped["Health"]["Status"] == "unhealthy" and stopped["Health"]["FailingStreak"] > streak
    daemon.docker("start", cid, check=True)
    again = state(daemon, cid)["Health"]
    assert again["Status"] == "starting" and again["FailingStreak"] == 0 and again["Log"]


def test_health_survives_a_daemon_restart(private: BerthDaemon) -> None:
    cid = private.docker("run", "-d", "--health-cmd", "true", *FAST, "busybox", "sleep", "300",
                         check=True).stdout.strip()
    try:
        before = wait_for(private, cid, health_is("healthy"))["Health"]
        private.stop()
        private.start()
        after = state(private, cid)
        assert after["Health"]["Status"] == "starting"  # moby's initHealthMonitor on a live restore
        assert after["Health"]["Log"] == before["Log"][: len(after["Health"]["Log"])] or after["Health"]["Log"]
        probed = wait_for(private, cid, lambda s: s["Health"]["Log"][-1]["End"] > before["Log"][-1]["End"])
        assert probed["Health"]["Status"] == "healthy"
    finally:
        private.docker("rm", "-f", cid)


COMPOSE_FILE = """\
version: "2.4"
services:
  web:
    image: busybox
    command: sh -c "sleep 2; touch /ready; exec sleep 300"
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 1s
      retries: 10
  app:
    image: busybox
    command: sleep 300
    depends_on:
      web:
        condition: service_healthy
"""


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_compose_depends_on_service_healthy(daemon: BerthDaemon, tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker-compose", "-p", "bthealth", *args], cwd=tmp_path, env=daemon.env,
                              capture_output=True, text=True, timeout=120)

    try:
        up = compose("up", "-d")
        assert up.returncode == 0, up.stderr
        web = daemon.docker("ps", "-q", "--no-trunc", "--filter", "label=com.docker.compose.service=web").stdout.strip()
        app = daemon.docker("ps", "-q", "--no-trunc", "--filter", "label=com.docker.compose.service=app").stdout.strip()
        assert web and app
        assert state(daemon, web)["Health"]["Status"] == "healthy"
        # app waited for web's check: /ready exists only 2s after web started.
        started = [datetime.fromisoformat(state(daemon, c)["StartedAt"].replace("Z", "+00:00")) for c in (web, app)]
        assert (started[1] - started[0]).total_seconds() >= 2
    finally:
        down = compose("down", "-t", "0")
    assert down.returncode == 0, down.stderr


def test_paused_then_killed_survivor_is_probed_again(daemon: BerthDaemon, run: Callable[..., str]) -> None:
    """kill -s TERM thaws a paused container; if it survives the signal, probing resumes."""
    cid = run("--health-cmd", "exit 1", "--health-interval", "1s", "--health-retries", "100", "busybox", "sh", "-c",
              "trap '' TERM; sleep 300 & wait")
    wait_for(daemon, cid, lambda s: s["Health"]["FailingStreak"] >= 1)
    daemon.docker("pause", cid, check=True)
    streak = state(daemon, cid)["Health"]["FailingStreak"]
    daemon.docker("kill", "-s", "TERM", cid, check=True)
    resumed = wait_for(daemon, cid, lambda s: s["Health"]["FailingStreak"] > streak)
    assert resumed["Running"] and not resumed["Paused"]


def test_events_filter_on_a_health_status(daemon: BerthDaemon, run: Callable[..., str]) -> None:
    since = str(time.time() - 1)
    cid = run("--health-cmd", "true", *FAST, "busybox", "sleep", "300")
    wait_for(daemon, cid, health_is("healthy"))
    for value in ("health_status: healthy", "health_status"):
        seen = daemon.docker("events", "--since", since, "--until", str(time.time() + 0.5), "--filter",
                             f"container={cid}", "--filter", f"event={value}", "--format", "{{.Action}}").stdout
        assert seen.split("\n")[0] == "health_status: healthy", (value, seen)


def test_health_event_carries_the_name_after_a_rename(daemon: BerthDaemon, run: Callable[..., str]) -> None:
    since = str(time.time() - 1)
    cid = run("--health-cmd", "test -f /ok", *FAST, "busybox", "sleep", "300")
    new_name = f"renamed-{cid[:8]}"
    daemon.docker("rename", cid, new_name, check=True)
    daemon.docker("exec", cid, "touch", "/ok", check=True)
    wait_for(daemon, cid, health_is("healthy"))
    seen = daemon.docker("events", "--since", since, "--until", str(time.time() + 0.5), "--filter",
                         f"container={cid}", "--filter", "event=health_status", "--format",
                         "{{.Action}} {{.Actor.Attributes.name}}").stdout.split("\n")
    assert f"health_status: healthy {new_name}" in seen
