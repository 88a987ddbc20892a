"""The pieces split out of ContainerService: container_ops (pure), restarts, container_restore."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.containers._stored import config_from_legacy as typed_config
from berth.engine.containers import _ops as ops
from berth.engine.containers._model import Container, ContainerState
from berth.engine.containers._restore import UNKNOWN_EXIT_CODE, survey
from berth.engine.containers._restart_policy import INITIAL_DELAY
from berth.engine.containers._restarts import RestartScheduler, _seconds_between
from berth.errors import InvalidArgument

PS = """UID PID PPID C STIME TTY TIME CMD
root 1 0 0 10:00 ? 00:00:01 /sbin/init splash
root 42 1 0 10:01 ? 00:00:00 sleep 100
root 43 42 0 10:01 ? 00:00:00 sh -c echo hi
"""


def make(cid: str, status: str = "exited", *, policy: str = "no", created: str = "2026-01-01T00:00:00Z",
         labels: dict[str, str] | None = None, name: str = "") -> Container:
    return Container(id=cid, name=name or f"n{cid}", created=created, image="busybox", image_id="sha256:x",
                     config=typed_config({"Labels": labels or {}}), host_config=typed_hc({"RestartPolicy": {"Name": policy}}),
                     state=ContainerState(status=status))


def test_ps_table_keeps_only_the_containers_pids_and_whole_commands() -> None:
    table = ops.ps_table(PS, {42, 43})
    assert table["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert [row[1] for row in table["Processes"]] == ["42", "43"]
    assert table["Processes"][1][-1] == "sh -c echo hi"


def test_ps_table_needs_a_pid_column() -> None:
    with pytest.raises(InvalidArgument, match="Couldn't find PID field"):
        ops.ps_table("USER CMD\nroot init\n", {1})


def test_prune_candidates_honours_state_labels_and_until() -> None:
    containers = [make("a"), make("b", "running"), make("c", labels={"keep": "1"}),
                  make("d", created="2030-01-01T00:00:00Z"), make("e", "created")]
    assert [c.id for c in ops.prune_candidates(containers, {})] == ["a", "c", "d", "e"]
    assert [c.id for c in ops.prune_candidates(containers, {"label": ["keep"]})] == ["c"]
    assert [c.id for c in ops.prune_candidates(containers, {"until": ["2027-01-01T00:00:00Z"]})] == ["a", "c", "e"]
    with pytest.raises(InvalidArgument):
        ops.prune_candidates(containers, {"status": ["exited"]})


def test_check_rename() -> None:
    c = make("a", name="old")
    assert ops.check_rename(c, "new") == "new"
    with pytest.raises(InvalidArgument, match="may be empty"):
        ops.check_rename(c, "")
    with pytest.raises(InvalidArgument, match="same name"):
        ops.check_rename(c, "old")


def test_seconds_between() -> None:
    assert _seconds_between("2026-01-01T00:00:00Z", "2026-01-01T00:00:12.5Z") == 12.5
    assert _seconds_between("0001-01-01T00:00:00Z", "garbage") == 0.0


@dataclass
class FakeRepo:
    containers: dict[str, Container] = field(default_factory=dict)
    saved: list[tuple[str, str]] = field(default_factory=list)

    def save(self, c: Container) -> None:
        self.saved.append((c.id, c.state.status))

    def all(self) -> list[Container]:
        return list(self.containers.values())


def scheduler(repo: FakeRepo, relaunched: list[str]) -> RestartScheduler:
    locks: dict[str, asyncio.Lock] = {}

    async def relaunch(cid: str) -> None:
        assert locks[cid].locked()  # the relaunch runs under the container's lock
        relaunched.append(cid)

    # the back-off is waited out at once here; test_engine_restarts.py times it with a fake clock
    return RestartScheduler(repo=repo, lock=lambda cid: locks.setdefault(cid, asyncio.Lock()),  # type: ignore[arg-type]
                            relaunch=relaunch, sleep=lambda delay: asyncio.sleep(0))


async def until(condition: Callable[[], bool]) -> bool:
    """Let the scheduler's tasks run until `condition` holds (a bounded number of turns)."""
    for _ in range(50):
        if condition():
            return True
        await asyncio.sleep(0)
    return condition()


def test_after_exit_schedules_per_policy_and_exit_on_next_suppresses_once() -> None:
    async def run() -> tuple[list[str], FakeRepo]:
        repo, relaunched = FakeRepo(), []
        s = scheduler(repo, relaunched)
        assert not s.after_exit(make("no"), 1)
        s.exit_on_next("al")
        assert not s.after_exit(make("al", policy="always"), 0)
        assert s.after_exit(make("al", policy="always"), 0)
        assert s._backoff["al"] == INITIAL_DELAY
        assert await until(lambda: bool(relaunched))
        return relaunched, repo

    relaunched, repo = asyncio.run(run())
    assert relaunched == ["al"]
    assert repo.saved == [("al", "restarting")]


def test_cancel_and_start_with_daemon() -> None:
    async def run() -> list[str]:
        repo, relaunched = FakeRepo(), []
        repo.containers = {c.id: c for c in (
            make("al", policy="always"), make("us", policy="unless-stopped"), make("no"),
            make("rs", "restarting"), make("settled", policy="always"))}
        repo.containers["us"].manually_stopped = True
        s = scheduler(repo, relaunched)
        assert s.after_exit(make("x", policy="always"), 0)
        s.cancel("x")
        s.start_with_daemon({"settled"})
        assert await until(lambda: len(relaunched) == 2)
        assert not await until(lambda: len(relaunched) > 2)
        s.close()
        return relaunched

    assert sorted(asyncio.run(run())) == ["al", "rs"]


def test_survey_sorts_what_the_daemon_finds() -> None:
    class FakeRuntime:
        def is_running(self, cid: str) -> bool:
            return cid == "live"

        def exit_code(self, cid: str) -> int | None:
            return {"done": 3}.get(cid)

        def container_ids(self) -> set[str]:
            return set()

    containers = [make("live", "running"), make("done", "running"), make("lost", "paused"),
                  make("gone", "removing"), make("idle")]
    found = asyncio.run(survey(containers, FakeRuntime()))  # type: ignore[arg-type]
    assert [c.id for c in found.removing] == ["gone"]
    assert [c.id for c in found.live] == ["live"]
    assert [(c.id, code) for c, code in found.exited] == [("done", 3), ("lost", UNKNOWN_EXIT_CODE)]
    assert found.settled == {"live", "done", "lost"}
