"""k8s-file log parsing: partial lines, since/until/tail, timestamps, follow."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

from berth.runtime import follow_logs, read_logs
from berth.runtime.logs import format_timestamp, parse_timestamp

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z

LOG = (
    "2023-11-14T22:13:20.000000001+00:00 stdout F first\n"
    "2023-11-14T22:13:21.5+00:00 stderr P par\n"
    "2023-11-14T22:13:21.6+00:00 stdout F second\n"
    "2023-11-14T22:13:21.7+00:00 stderr F tial\n"
    "2023-11-14T23:13:22.000000000+01:00 stdout F third\n"
    "garbage line\n"
    "2023-11-14T22:13:23Z stdout F \n"
)


def write(tmp_path: Path, text: str = LOG) -> Path:
    path = tmp_path / "ctr.log"
    path.write_text(text)
    return path


def test_timestamps_parse_with_offsets_and_nanos() -> None:
    assert parse_timestamp("2023-11-14T22:13:20.000000001+00:00") == T0 * 10**9 + 1
    assert parse_timestamp("2023-11-14T23:13:20+01:00") == T0 * 10**9
    assert parse_timestamp("2023-11-14T22:13:20.5Z") == T0 * 10**9 + 500_000_000
    assert format_timestamp(T0 * 10**9 + 1) == "2023-11-14T22:13:20.000000001Z"


def test_partial_lines_are_joined_per_stream(tmp_path: Path) -> None:
    assert list(read_logs(write(tmp_path))) == [
        (1, b"first\n"),
        (1, b"second\n"),
        (2, b"partial\n"),
        (1, b"third\n"),
        (1, b"\n"),
    ]


def test_since_until_are_inclusive(tmp_path: Path) -> None:
    path = write(tmp_path)
    assert [line for _, line in read_logs(path, since=T0 + 1.55)] == [b"second\n", b"third\n", b"\n"]
    # A joined line carries its first part's time (21.5), though it completes later.
    assert [line for _, line in read_logs(path, until=T0 + 1.6)] == [b"first\n", b"second\n", b"partial\n"]
    assert [line for _, line in read_logs(path, since=T0 + 2, until=T0 + 2)] == [b"third\n"]


def test_tail(tmp_path: Path) -> None:
    path = write(tmp_path)
    assert [line for _, line in read_logs(path, tail=2)] == [b"third\n", b"\n"]
    assert list(read_logs(path, tail=0)) == []
    assert len(list(read_logs(path, tail=-1))) == 5


def test_timestamps_prefix_is_fixed_width_utc(tmp_path: Path) -> None:
    lines = [line for _, line in read_logs(write(tmp_path), timestamps=True)]
    assert lines[0] == b"2023-11-14T22:13:20.000000001Z first\n"
    assert lines[2] == b"2023-11-14T22:13:21.500000000Z partial\n"  # first part's time
    assert lines[3] == b"2023-11-14T22:13:22.000000000Z third\n"


def test_missing_file_reads_empty(tmp_path: Path) -> None:
    assert list(read_logs(tmp_path / "none.log")) == []


def test_follow_yields_new_lines_then_ends_when_stopped(tmp_path: Path) -> None:
    path = write(tmp_path, "2023-11-14T22:13:20Z stdout F old\n")
    stopped = False

    async def scenario() -> list[bytes]:
        nonlocal stopped
        got: list[bytes] = []

        async def writer() -> None:
            nonlocal stopped
            await asyncio.sleep(0.05)
            with path.open("a") as f:
                f.write("2023-11-14T22:13:21Z stdout P ne")
                f.flush()
                await asyncio.sleep(0.05)
                f.write("w\n2023-11-14T22:13:21Z stdout F\n")
                f.write("2023-11-14T22:13:22Z stderr F last\n")
            stopped = True

        task = asyncio.create_task(writer())
        async for _, line in follow_logs(path, stopped=lambda: stopped):
            got.append(line)
        await task
        return got

    lines = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert lines == [b"old\n", b"new\n", b"last\n"]


def test_follow_with_tail_and_since(tmp_path: Path) -> None:
    path = write(tmp_path)

    async def scenario() -> list[bytes]:
        return [line async for _, line in follow_logs(path, since=T0 + 1, tail=1, stopped=lambda: True)]

    assert asyncio.run(scenario()) == [b"\n"]


# --- bounded reading: chunks, tail from the end, follow after a tail --------------------------------

def big_log(tmp_path: Path, count: int, per_second: int = 10) -> Path:
    """`count` lines over two streams; every 7th stdout line is split into P records."""
    rows = []
    for i in range(count):
        stamp = format_timestamp(T0 * 10**9 + i * 10**9 // per_second)
        stream = "stderr" if i % 5 == 0 else "stdout"
        if i % 7 == 0 and stream == "stdout":
            rows.append(f"{stamp} {stream} P part{i}-")
        rows.append(f"{stamp} {stream} F line{i}")
    path = tmp_path / "big.log"
    path.write_text("\n".join(rows) + "\n")
    return path


def small_io(monkeypatch, chunk: int = 1000, block: int = 300) -> None:  # type: ignore[no-untyped-def]
    from berth.runtime import logs

    monkeypatch.setattr(logs, "CHUNK", chunk)
    monkeypatch.setattr(logs, "BLOCK", block)


def test_chunked_reading_equals_a_whole_read(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = big_log(tmp_path, 3000)
    whole = list(read_logs(path))
    small_io(monkeypatch)
    assert list(read_logs(path)) == whole
    assert len(whole) == 3000 and whole[7] == (1, b"part7-line7\n")


def test_tail_from_the_end_with_since_until(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = big_log(tmp_path, 3000)
    since, until = T0 + 100, T0 + 200
    admitted = list(read_logs(path, since=since, until=until))
    small_io(monkeypatch)
    for n in (0, 1, 2, 50, len(admitted), len(admitted) + 5):
        expected = admitted[max(0, len(admitted) - n):] if n else []
        assert list(read_logs(path, since=since, until=until, tail=n)) == expected, n
    assert list(read_logs(path, tail=3, timestamps=True))[-1][1].endswith(b"Z line2999\n")


def test_async_read_yields_the_same(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from berth.runtime import read_logs_async

    path = big_log(tmp_path, 500)
    small_io(monkeypatch)

    async def collect(**kw) -> list[tuple[int, bytes]]:  # type: ignore[no-untyped-def]
        return [item async for item in read_logs_async(path, **kw)]

    assert asyncio.run(collect()) == list(read_logs(path))
    assert asyncio.run(collect(tail=4)) == list(read_logs(path))[-4:]
    assert asyncio.run(collect(tail=0)) == []
    assert asyncio.run(collect()) != [] and asyncio.run(collect(tail=None)) == list(read_logs(path))


def test_tail_reads_little_memory(tmp_path: Path) -> None:
    path = big_log(tmp_path, 60_000, per_second=1000)  # ~3 MB (few seconds: a small timestamp cache)
    tracemalloc.start()
    try:
        assert [line for _, line in read_logs(path, tail=2)] == [b"line59998\n", b"line59999\n"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 512 * 1024


def test_full_read_holds_one_chunk_at_a_time(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = big_log(tmp_path, 30_000, per_second=1000)  # ~1.5 MB
    small_io(monkeypatch, chunk=64 * 1024)
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_logs(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30_000
    assert peak < 1024 * 1024


def test_follow_after_a_tail_joins_the_line_being_written(tmp_path: Path) -> None:
    path = write(tmp_path, LOG + "2023-11-14T22:13:24Z stdout P progress \n")
    stopped = False

    async def scenario() -> list[bytes]:
        nonlocal stopped
        got: list[bytes] = []

        async def writer() -> None:
            nonlocal stopped
            await asyncio.sleep(0.05)
            with path.open("a") as f:
                f.write("2023-11-14T22:13:25Z stdout F done\n")
            stopped = True

        task = asyncio.create_task(writer())
        async for _, line in follow_logs(path, tail=1, stopped=lambda: stopped):
            got.append(line)
        await task
        return got

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == [b"\n", b"progress done\n"]


def test_follow_with_tail_zero_gives_only_new_lines(tmp_path: Path) -> None:
    path = write(tmp_path)

    async def scenario() -> list[bytes]:
        return [line async for _, line in follow_logs(path, tail=0, stopped=lambda: True)]

    assert asyncio.run(scenario()) == []


def test_follow_ends_once_until_has_passed(tmp_path: Path) -> None:
    """`logs -f --until T`: lines up to T, and no waiting for a container that keeps running."""
    import time

    path = write(tmp_path)

    async def scenario(until: float) -> list[bytes]:
        return [line async for _, line in follow_logs(path, until=until, stopped=lambda: False)]

    started = time.monotonic()
    assert asyncio.run(asyncio.wait_for(scenario(T0 + 1.55), 5)) == [b"first\n", b"partial\n"]
    assert time.monotonic() - started < 1  # until is long past: no follow at all
    started = time.monotonic()
    soon = time.time() + 0.3
    assert len(asyncio.run(asyncio.wait_for(scenario(soon), 5))) == 5  # everything in the log is older
    assert 0.25 < time.monotonic() - started < 2
