"""The segment store of one stream (berth.logs._segments): append, the sparse index, reads
forward and backward across segments, the byte-level prefilter scan, crash recovery (torn
tails, lost index entries), retention and deletion."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from berth.logs import ResourceNotFound
from berth.logs._segments import (
    StreamLog, backward, escape, forward, message_of, read_forward, scan_forward, unescape,
)

HEAD = (0, 0, -1)
TAIL = (10**19 - 1, 0, 0)
END = 10**19 - 1


def small(path: Path, **kw: int) -> StreamLog:
    return StreamLog(path, segment_bytes=kw.get("segment_bytes", 2048), index_every=kw.get("index_every", 128))


def messages(rows: list[tuple[int, int, int, int, bytes]]) -> list[str]:
    return [message_of(r[4]) for r in rows]


def fill(log: StreamLog, n: int, start: int = 1000, batch: int = 10) -> None:
    for b in range(0, n, batch):
        log.append([(start + i, f"event {i}") for i in range(b, min(n, b + batch))], ingestion=5)


@pytest.mark.parametrize("raw", [b"plain", b"a\\b", b"line1\nline2", b"\\n literally", b"\\\\\n\\", b""])
def test_escape_round_trip(raw: bytes) -> None:
    assert b"\n" not in escape(raw)
    assert unescape(escape(raw)) == raw


def test_append_and_read_back_in_order(tmp_path: Path) -> None:
    log = small(tmp_path / "s")
    fill(log, 200)
    views = log.views()
    assert len(views) > 1  # rolled at segment_bytes
    rows = list(forward(views, HEAD, 0, END))
    assert messages(rows) == [f"event {i}" for i in range(200)]
    assert [r[0] for r in rows] == list(range(1000, 1200))
    assert all(r[3] == 5 for r in rows)
    stats = log.stats()
    assert (stats.first_event, stats.last_event, stats.last_ingestion) == (1000, 1199, 5)
    assert stats.stored_bytes == sum((tmp_path / "s" / f"{v.number:08d}.log").stat().st_size for v in views)


def test_multiline_and_unicode_messages(tmp_path: Path) -> None:
    log = small(tmp_path / "s")
    odd = ["two\nlines", "back\\slash", "tab\there", "ünïcödé ✓", "\\n"]
    log.append([(1, m) for m in odd], ingestion=1)
    assert messages(list(forward(log.views(), HEAD, 0, END))) == odd


def test_time_range_and_position(tmp_path: Path) -> None:
    log = small(tmp_path / "s")
    fill(log, 300)
    views = log.views()
    assert [r[0] for r in forward(views, HEAD, 1100, 1110)] == list(range(1100, 1110))
    rows = list(forward(views, HEAD, 0, END))
    after = rows[149][:3]
    assert [r[0] for r in forward(views, after, 0, END)] == list(range(1150, 1300))
    assert [r[0] for r in backward(views, after, 0, END)][:3] == [1148, 1147, 1146]
    assert [r[0] for r in backward(views, TAIL, 1290, END)] == list(range(1299, 1289, -1))
    assert list(forward(views, HEAD, 5000, 6000)) == []
    assert list(backward(views, TAIL, 0, 10)) == []


def test_out_of_order_batches_start_a_new_segment_and_merge(tmp_path: Path) -> None:
    log = small(tmp_path / "s", segment_bytes=1 << 20)
    log.append([(100, "a"), (300, "c")], 1)
    log.append([(200, "b"), (400, "d")], 2)  # older than the segment's last event
    log.append([(500, "e")], 3)
    assert [v.number for v in log.views()] == [1, 2]
    assert messages(list(forward(log.views(), HEAD, 0, END))) == ["a", "b", "c", "d", "e"]
    assert messages(list(backward(log.views(), TAIL, 0, END))) == ["e", "d", "c", "b", "a"]
    assert log.stats().first_event == 100 and log.stats().last_event == 500


def test_same_timestamp_events_keep_their_order(tmp_path: Path) -> None:
    log = small(tmp_path / "s")
    log.append([(7, f"m{i}") for i in range(50)], 1)
    rows = list(forward(log.views(), HEAD, 0, END))
    assert messages(rows) == [f"m{i}" for i in range(50)]
    assert messages(list(forward(log.views(), rows[10][:3], 0, END)))[0] == "m11"


def test_last_page_reads_only_the_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest events of a large stream come from the end of the newest segment."""
    log = StreamLog(tmp_path / "s", segment_bytes=1 << 20, index_every=4096)
    for b in range(40):
        log.append([(b * 1000 + i, "x" * 200 + str(i)) for i in range(1000)], 1)
    read: list[int] = []
    real = os.pread

    def counting(fd: int, n: int, off: int) -> bytes:
        read.append(n)
        return real(fd, n, off)

    monkeypatch.setattr(os, "pread", counting)
    rows = []
    for row in backward(log.views(), TAIL, 0, END):
        rows.append(row)
        if len(rows) == 100:
            break
    assert rows[0][0] == 39 * 1000 + 999
    assert sum(read) < 2 * (1 << 20)  # about one chunk, not the 8 MB stream


def test_prefilter_scan_and_markers(tmp_path: Path) -> None:
    log = small(tmp_path / "s", segment_bytes=1 << 20)
    log.append([(i, "needle here" if i % 50 == 0 else "hay") for i in range(5000)], 1)
    view = log.views()[0]
    rows = list(scan_forward(view, HEAD, 0, END, (b"needle",), None))
    hits = [r for r in rows if r[3] >= 0]
    markers = [r for r in rows if r[3] < 0]
    assert [r[0] for r in hits] == list(range(0, 5000, 50))
    assert markers and all(m[:3] > h[:3] for m in markers for h in hits if h[0] <= m[0] - 1)
    keys = [r[:3] for r in rows]
    assert keys == sorted(keys)
    accepted = list(scan_forward(view, HEAD, 0, END, None, lambda raw: raw.endswith(b"here")))
    assert len([r for r in accepted if r[3] >= 0]) == 100
    # a marker never points at or before where the scan started
    start = hits[10][:3]
    assert all(r[:3] > start for r in scan_forward(view, start, 0, END, (b"needle",), None))


def test_reopen_recovers_state(tmp_path: Path) -> None:
    log = small(tmp_path / "s")
    fill(log, 120)
    before = [r[:4] for r in forward(log.views(), HEAD, 0, END)]
    again = small(tmp_path / "s")
    assert [r[:4] for r in forward(again.views(), HEAD, 0, END)] == before
    assert again.stats() == log.stats()
    again.append([(5000, "after reopen")], 9)
    assert message_of(list(backward(again.views(), TAIL, 0, END))[0][4]) == "after reopen"


def test_torn_tail_is_truncated_at_open(tmp_path: Path) -> None:
    log = small(tmp_path / "s", segment_bytes=1 << 20)
    log.append([(1, "one"), (2, "two")], 1)
    path = tmp_path / "s" / "00000001.log"
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"3\t1\thalf a li")  # a crash in the middle of a write
    again = small(tmp_path / "s", segment_bytes=1 << 20)
    assert path.stat().st_size == good
    assert messages(list(forward(again.views(), HEAD, 0, END))) == ["one", "two"]
    again.append([(3, "three")], 2)
    assert messages(list(forward(again.views(), HEAD, 0, END))) == ["one", "two", "three"]


def test_lost_and_torn_index_entries_are_rebuilt(tmp_path: Path) -> None:
    log = small(tmp_path / "s", segment_bytes=1 << 20, index_every=64)
    fill(log, 100)
    idx = tmp_path / "s" / "00000001.idx"
    full = idx.read_bytes()
    idx.write_bytes(full[:32] + b"\x01\x02\x03")  # two entries survive, then a torn one
    again = small(tmp_path / "s", segment_bytes=1 << 20, index_every=64)
    assert idx.read_bytes() == full
    assert [r[0] for r in forward(again.views(), HEAD, 1050, 1060)] == list(range(1050, 1060))
    # an entry pointing past the end of the data is dropped too
    with open(idx, "ab") as f:
        f.write(struct.pack("<qq", 99999, 1 << 30))
    assert small(tmp_path / "s", index_every=64).stats() == again.stats()


def test_empty_segment_files_are_removed(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "00000003.log").write_bytes(b"")
    log = small(tmp_path / "s")
    assert log.views() == []
    assert not (tmp_path / "s" / "00000003.log").exists()
    log.append([(1, "x")], 1)
    assert log.views()[0].number == 4  # numbers are never reused


def test_retention_drops_whole_old_segments(tmp_path: Path) -> None:
    log = small(tmp_path / "s", segment_bytes=256)
    fill(log, 200)
    views = log.views()
    assert len(views) >= 5
    cutoff = views[2].last_ts + 1
    freed = log.drop_older_than(cutoff)
    assert freed > 0
    left = log.views()
    assert [v.number for v in left] == [v.number for v in views[3:]]
    assert min(r[0] for r in forward(left, HEAD, 0, END)) == views[3].first_ts
    assert log.drop_older_than(cutoff) == 0
    log.drop_older_than(10**12)
    assert log.views() == [] and log.stats().first_event is None
    log.append([(10**12 + 5, "fresh")], 1)
    assert log.views()[0].number == views[-1].number + 1
    assert small(tmp_path / "s").views()[0].number == views[-1].number + 1


def test_reader_survives_retention_between_snapshot_and_read(tmp_path: Path) -> None:
    log = small(tmp_path / "s", segment_bytes=512)
    fill(log, 100)
    views = log.views()
    log.drop_older_than(10**12)
    assert list(read_forward(views[0], HEAD, 0, END)) == []


def test_destroy_deletes_and_refuses_appends(tmp_path: Path) -> None:
    log = small(tmp_path / "s")
    fill(log, 10)
    log.destroy()
    assert not (tmp_path / "s").exists()
    with pytest.raises(ResourceNotFound):
        log.append([(1, "x")], 1)


def test_failed_write_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from berth.errors import Unavailable

    log = small(tmp_path / "s", segment_bytes=1 << 20)
    log.append([(1, "kept")], 1)
    calls = {"n": 0}
    real = os.pwrite

    def failing(fd: int, data: bytes, off: int) -> int:
        calls["n"] += 1
        if calls["n"] == 2:  # the data went in, its index entry does not
            raise OSError(28, "No space left on device")
        return real(fd, data, off)

    log2 = small(tmp_path / "t", segment_bytes=1 << 20, index_every=1)
    monkeypatch.setattr(os, "pwrite", failing)
    with pytest.raises(Unavailable, match="No space left"):
        log2.append([(1, "lost")], 1)
    monkeypatch.setattr(os, "pwrite", real)
    assert log2.views() == []
    assert small(tmp_path / "t").views() == []
    log2.append([(2, "next")], 1)
    assert messages(list(forward(log2.views(), HEAD, 0, END))) == ["next"]
    assert messages(list(forward(log.views(), HEAD, 0, END))) == ["kept"]
