"""The awslogs shipper over a real file and a recording fake sink: offsets, restarts, drops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine import awslogs
from berth.engine.awslogs import AwslogsShipper, Follower, logger_error
from berth.engine.awslogs_options import AwslogsConfig
from berth.errors import InvalidArgument, NotFound, Unavailable

from tests.unit.test_awslogs_events import T0, rec


@dataclass
class FakeSink:
    """In-memory stand-in for berth.logs.EngineSink; records every call."""

    groups: set[str] = field(default_factory=lambda: {"g"})
    streams: dict[tuple[str, str], list[tuple[int, str]]] = field(default_factory=dict)
    fail_next: list[Exception] = field(default_factory=list)
    appends: int = 0
    encoded: int = 0  # appends that took the fast path's encoded lines
    oldest_ms: int = 0  # the fast path's lines from before this are refused (sent as events)

    def prepare(self, group: str, stream: str, *, region: str, create_group: bool) -> None:
        if group not in self.groups:
            if not create_group:
                raise NotFound("The specified log group does not exist.")
            self.groups.add(group)
        self.streams.setdefault((group, stream), [])

    def append(self, group: str, stream: str, events: Sequence[tuple[int, str]], *, region: str) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
        if (group, stream) not in self.streams:
            raise NotFound("The specified log stream does not exist.")
        assert list(events) == sorted(events, key=lambda e: e[0])
        self.streams[(group, stream)].extend(events)
        self.appends += 1

    def append_encoded(self, group: str, stream: str, data: bytes, first_ts: int, last_ts: int, *,
                       region: str, ingestion: int) -> bool:
        """As the store takes them: every line in the segment encoding, in time order."""
        from berth.engine.awslogs_events import EncodedLines, events_of

        events = [(e.ts_ms, e.message) for e in events_of(EncodedLines(data, first_ts, last_ts, 0, 0, ingestion))]
        assert events and events[0][0] == first_ts and events[-1][0] == last_ts
        assert all(line.split(b"\t")[1] == str(ingestion).encode() for line in data.split(b"\n")[:-1])
        if first_ts < self.oldest_ms or (self.fail_next and isinstance(self.fail_next[0], InvalidArgument)):
            return False  # the real store raises no InvalidArgument here: it wants such lines as events
        self.append(group, stream, events, region=region)
        self.encoded += 1
        return True

    def now_ms(self) -> int:
        return 1_700_000_000_000

    def messages(self, group: str = "g", stream: str = "s") -> list[str]:
        return [m for _, m in self.streams.get((group, stream), [])]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def follower(tmp_path: Path, sink: FakeSink, clock: Clock | None = None, **config: Any) -> Follower:
    cfg = AwslogsConfig(group="g", stream="s", region="us-east-1", **config)
    return Follower(log_path=tmp_path / "ctr.log", state_path=tmp_path / "awslogs.json", config=cfg, sink=sink,
                    clock=clock or Clock())


def write(tmp_path: Path, *records: bytes) -> None:
    with open(tmp_path / "ctr.log", "ab") as f:
        f.write(b"".join(records))


def state(tmp_path: Path) -> dict[str, int]:
    return json.loads((tmp_path / "awslogs.json").read_text())


def test_lines_are_shipped_and_progress_recorded(tmp_path: Path) -> None:
    sink = FakeSink()
    f = follower(tmp_path, sink)
    f.prepare()
    write(tmp_path, rec("one"), rec("two", stream="stderr"))
    f.step()
    assert sink.messages() == ["one", "two"]
    assert sink.streams[("g", "s")][0][0] == T0 // 1_000_000  # the line's own time
    size = (tmp_path / "ctr.log").stat().st_size
    assert state(tmp_path) == {"offset": size, "shipped": size, "dropped": 0, "events": 2}


def test_a_restart_resumes_without_gap_or_duplicate(tmp_path: Path) -> None:
    sink, clock = FakeSink(), Clock()
    f = follower(tmp_path, sink, clock)
    f.prepare()
    write(tmp_path, rec("a"), rec("b"))
    f.step()
    clock.now += awslogs.SAVE_EVERY  # progress is recorded at most this often
    write(tmp_path, rec("c"), rec("d", partial=True))  # "d..." still being written at the "restart"
    f.step()
    g = follower(tmp_path, sink)  # a new daemon: a new follower over the saved state
    g.prepare()
    write(tmp_path, rec("e"))
    g.step()
    assert sink.messages() == ["a", "b", "c", "de"]


def test_a_multiline_event_being_collected_survives_a_restart(tmp_path: Path) -> None:
    import re

    sink = FakeSink()
    pattern = re.compile(rb"^START")
    f = follower(tmp_path, sink, multiline=pattern)
    f.prepare()
    write(tmp_path, rec("START 1"), rec("  more"), rec("START 2"), rec("  tail"))
    f.step()
    assert sink.messages() == ["START 1\n  more\n"]
    g = follower(tmp_path, sink, multiline=pattern)
    g.prepare()
    g.step(final=True)
    assert sink.messages() == ["START 1\n  more\n", "START 2\n  tail\n"]


def test_multiline_event_is_flushed_after_idle(tmp_path: Path) -> None:
    import re

    sink, clock = FakeSink(), Clock()
    f = follower(tmp_path, sink, clock, multiline=re.compile(rb"^START"))
    f.prepare()
    write(tmp_path, rec("START x"), rec(" y"))
    f.step()
    assert sink.messages() == []
    clock.now += awslogs.IDLE_FLUSH
    f.step()
    assert sink.messages() == ["START x\n y\n"]


def test_blocking_mode_retries_and_drops_nothing(tmp_path: Path) -> None:
    sink, clock = FakeSink(), Clock()
    f = follower(tmp_path, sink, clock)
    f.prepare()
    write(tmp_path, rec("a"))
    sink.fail_next = [Unavailable("store down"), Unavailable("still down")]
    f.step()
    assert sink.messages() == [] and f.unsent
    assert state_or_none(tmp_path) is None  # nothing recorded as shipped
    write(tmp_path, *(rec(f"x{i}") for i in range(100)))
    clock.now += 1
    f.step()
    clock.now += 2
    f.step()
    while f.step() or f.unsent:
        clock.now += 1
    assert sink.messages() == ["a"] + [f"x{i}" for i in range(100)]
    assert state(tmp_path)["dropped"] == 0


def state_or_none(tmp_path: Path) -> dict[str, int] | None:
    try:
        return state(tmp_path)
    except FileNotFoundError:
        return None


def test_a_deleted_stream_is_created_again(tmp_path: Path) -> None:
    sink, clock = FakeSink(), Clock()
    f = follower(tmp_path, sink, clock)
    f.prepare()
    write(tmp_path, rec("a"))
    f.step()
    del sink.streams[("g", "s")]
    write(tmp_path, rec("b"))
    f.step()
    clock.now += 1
    f.step()
    assert sink.messages() == ["b"]


def test_events_the_store_refuses_are_counted_and_skipped(tmp_path: Path) -> None:
    sink = FakeSink()
    f = follower(tmp_path, sink)
    f.prepare()
    write(tmp_path, rec("old"))
    sink.fail_next = [InvalidArgument("too old")]
    f.step()
    write(tmp_path, rec("new"))
    f.step()
    assert sink.messages() == ["new"]
    assert state(tmp_path)["dropped"] == 1


def test_non_blocking_skips_ahead_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = FakeSink()
    record = rec("x" * 50)
    f = follower(tmp_path, sink, blocking=False, max_buffer=10 * len(record))
    f.prepare()
    write(tmp_path, *(rec(f"{i:050d}") for i in range(100)))
    with caplog.at_level("WARNING"):
        f.step()
    shipped = sink.messages()
    assert len(shipped) == 10 and shipped[-1] == f"{99:050d}"
    assert state(tmp_path)["dropped"] == 90
    assert "dropped 90 lines" in caplog.text


def test_non_blocking_within_the_buffer_drops_nothing(tmp_path: Path) -> None:
    sink = FakeSink()
    f = follower(tmp_path, sink, blocking=False, max_buffer=1 << 20)
    f.prepare()
    write(tmp_path, *(rec(f"l{i}") for i in range(1000)))
    while f.step():
        pass
    assert len(sink.messages()) == 1000 and state(tmp_path)["dropped"] == 0


def test_a_missing_group_is_dockerds_start_error() -> None:
    err = logger_error(NotFound("no group"))
    assert str(err) == ("failed to initialize logging driver: failed to create Cloudwatch log stream: "
                        "ResourceNotFoundException: The specified log group does not exist.")


# --- the shipper's lifecycle (asyncio) --------------------------------------------------------------

def container(cid: str = "c" * 64, **options: str) -> Any:
    return SimpleNamespace(id=cid, name="web", image="busybox", image_id="sha256:" + "1" * 64,
                           host_config=typed_hc({"LogConfig": {"Type": "awslogs",
                                                      "Config": {"awslogs-group": "g", **options}}}))


def test_follow_ships_within_a_poll_and_drains_on_exit(tmp_path: Path) -> None:
    sink = FakeSink()

    async def main() -> None:
        shipper = AwslogsShipper(sink)
        c = container(**{"awslogs-stream": "s"})
        await shipper.prepare(c)
        shipper.follow(c, tmp_path / "ctr.log")
        write(tmp_path, rec("first"))
        for _ in range(100):
            if sink.messages():
                break
            await asyncio.sleep(0.02)
        assert sink.messages() == ["first"]
        write(tmp_path, rec("last"))
        shipper.exited(c.id)
        for _ in range(100):
            if not shipper._jobs:
                break
            await asyncio.sleep(0.02)
        assert sink.messages() == ["first", "last"] and not shipper._jobs
        await shipper.close()

    asyncio.run(main())


def test_prepare_fails_start_in_blocking_mode_only(tmp_path: Path) -> None:
    sink = FakeSink(groups=set())

    async def main() -> None:
        shipper = AwslogsShipper(sink)
        with pytest.raises(InvalidArgument, match="The specified log group does not exist"):
            await shipper.prepare(container(**{"awslogs-group": "missing"}))
        await shipper.prepare(container(**{"awslogs-group": "missing", "mode": "non-blocking"}))
        await shipper.prepare(container(**{"awslogs-group": "new", "awslogs-create-group": "true"}))
        assert "new" in sink.groups

    asyncio.run(main())


def test_close_records_progress_and_restore_resumes(tmp_path: Path) -> None:
    sink = FakeSink()
    c = container(**{"awslogs-stream": "s"})

    async def first() -> None:
        shipper = AwslogsShipper(sink)
        await shipper.prepare(c)
        shipper.follow(c, tmp_path / "ctr.log")
        write(tmp_path, rec("1"), rec("2"))
        for _ in range(100):
            if len(sink.messages()) == 2:
                break
            await asyncio.sleep(0.02)
        await shipper.close()

    async def second() -> None:
        shipper = AwslogsShipper(sink)
        shipper.drain_later(c, tmp_path / "ctr.log")  # exited while no daemon ran
        for _ in range(100):
            if not shipper._jobs:
                break
            await asyncio.sleep(0.02)
        await shipper.close()

    asyncio.run(first())
    write(tmp_path, rec("3"))
    asyncio.run(second())
    assert sink.messages() == ["1", "2", "3"]


def test_other_drivers_are_left_alone(tmp_path: Path) -> None:
    async def main() -> None:
        shipper = AwslogsShipper(FakeSink())
        c = SimpleNamespace(id="d" * 64, host_config=typed_hc({"LogConfig": {"Type": "json-file", "Config": {}}}))
        await shipper.prepare(c)
        shipper.follow(c, tmp_path / "ctr.log")
        assert not shipper._jobs

    asyncio.run(main())


def test_drain_after_a_refusal_reads_the_rest_of_the_file(tmp_path: Path) -> None:
    """The container exited while the store refused: once it accepts, the whole tail goes."""
    sink = FakeSink()

    async def main() -> None:
        shipper = AwslogsShipper(sink)
        c = container(**{"awslogs-stream": "s"})
        await shipper.prepare(c)
        sink.fail_next = [Unavailable("down")]
        shipper.follow(c, tmp_path / "ctr.log")
        write(tmp_path, rec("first"))
        for _ in range(100):
            if not sink.fail_next:
                break
            await asyncio.sleep(0.02)
        write(tmp_path, *(rec(f"l{i}") for i in range(50)))
        shipper.exited(c.id)
        for _ in range(300):
            if not shipper._jobs:
                break
            await asyncio.sleep(0.02)
        assert sink.messages() == ["first"] + [f"l{i}" for i in range(50)]

    asyncio.run(main())
