"""What a starting daemon does with each runtime container (container_restore.classify, pure):
everything of the runtime that no record explains as running is killed and deleted."""

from __future__ import annotations

import asyncio

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.containers._model import Container, ContainerState
from berth.engine.containers._restore import UNKNOWN_EXIT_CODE, classify, survey


def make(cid: str, status: str = "exited") -> Container:
    return Container(id=cid, name=f"n{cid}", created="2026-01-01T00:00:00Z", image="busybox",
                     image_id="sha256:x", config={}, host_config=typed_hc({}), state=ContainerState(status=status))


def test_every_runtime_container_is_adopted_settled_or_deleted() -> None:
    records = [
        make("live", "running"), make("paused", "paused"),  # adopted
        make("died", "running"), make("lost", "running"),  # exited while no daemon ran
        make("gone", "removing"),  # removal cut short
        # "created" records: SIGKILL between `<runtime> create` and saving "running"
        make("started", "created"),  # its init runs under conmon
        make("orphan", "created"),  # conmon gave up (no one read its sync pipe): not alive, files left
        make("idle", "created"), make("old", "exited"),  # nothing on the runtime: left alone
    ]
    found = classify(
        records, alive={"live", "paused", "started"}, exit_codes={"died": 3},
        on_runtime={"live", "paused", "died", "started", "orphan", "gone", "build-step", "crashed-rm"},
    )
    assert [c.id for c in found.live] == ["live", "paused"]
    assert [(c.id, code) for c, code in found.exited] == [("died", 3), ("lost", UNKNOWN_EXIT_CODE)]
    assert [c.id for c in found.removing] == ["gone"]
    assert [c.id for c in found.half_started] == ["started", "orphan"]
    assert found.strays == ["build-step", "crashed-rm"]  # no record at all
    assert found.settled == {"live", "paused", "died", "lost"}


def test_only_a_live_record_keeps_its_runtime_container() -> None:
    """The invariant: after restore, the runtime keeps exactly the ids adopted as live."""
    records = [make(f"r{i}", status) for i, status in enumerate(
        ["running", "paused", "created", "exited", "removing", "restarting", "dead"])]
    on_runtime = {c.id for c in records} | {"x", "y"}
    found = classify(records, alive={"r0", "r2", "r3"}, exit_codes={}, on_runtime=on_runtime)
    deleted = ({c.id for c in found.removing} | {c.id for c, _ in found.exited}
               | {c.id for c in found.half_started} | set(found.strays))
    assert {c.id for c in found.live} == {"r0"}
    assert deleted == on_runtime - {"r0"}


def test_survey_asks_the_runtime() -> None:
    class FakeRuntime:
        def container_ids(self) -> set[str]:
            return {"live", "orphan", "stray"}

        def is_running(self, cid: str) -> bool:
            return cid == "live"

        def exit_code(self, cid: str) -> int | None:
            return {"done": 3}.get(cid)

    records = [make("live", "running"), make("done", "running"), make("orphan", "created"), make("idle", "created")]
    found = asyncio.run(survey(records, FakeRuntime()))  # type: ignore[arg-type]
    assert [c.id for c in found.live] == ["live"]
    assert [(c.id, code) for c, code in found.exited] == [("done", 3)]
    assert [c.id for c in found.half_started] == ["orphan"]
    assert found.strays == ["stray"]
