"""`docker logs` on a large log: --tail seeks from the end and the daemon's memory stays bounded."""

from __future__ import annotations

import calendar
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import DOCKER, BerthDaemon, holds_for, wait_for

pytestmark = pytest.mark.root

LINE = "0123456789012345678901234567890123456789"
TOTAL = 60_000_000  # bytes of `yes` output: ~1.46 M lines, ~125 MB once conmon adds its headers
LAST = LINE[: TOTAL % (len(LINE) + 1)] + "last-line"  # head -c cuts the last `yes` line short
SCRIPT = f"yes {LINE} | head -c {TOTAL}; echo last-line"
MAX_GROWTH_KB = 20_000


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{key} missing from /proc/{pid}/status")


def _epoch(stamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 UTC time with up to nanoseconds (`docker logs -t`)."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")


def reset_peak_rss(pid: int) -> int:
    """Reset VmHWM to the current RSS (clear_refs 5), so later growth is measured from now."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return status_kb(pid, "VmRSS")


@pytest.fixture(scope="module")
def big_log(daemon: BerthDaemon) -> Iterator[str]:
    cid = daemon.docker("run", "-d", "busybox", "sh", "-c", SCRIPT, check=True).stdout.strip()
    try:
        assert daemon.docker("wait", cid, timeout=60).stdout.strip() == "0"
        yield cid
    finally:
        daemon.docker("rm", "-f", cid)


def test_tail_of_a_large_log_is_fast_and_memory_bounded(daemon: BerthDaemon, big_log: str) -> None:
    assert daemon.proc is not None
    pid = daemon.proc.pid
    base = reset_peak_rss(pid)
    started = time.monotonic()
    out = daemon.docker("logs", "--tail", "2", big_log, timeout=30)
    elapsed = time.monotonic() - started
    growth = status_kb(pid, "VmHWM") - base
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{LINE}\n{LAST}\n"
    assert elapsed < 3, f"--tail 2 took {elapsed:.1f} s"
    assert growth < MAX_GROWTH_KB, f"daemon peak RSS grew by {growth} kB"


def test_tail_with_follow_and_timestamps_on_a_large_log(daemon: BerthDaemon, big_log: str) -> None:
    followed = daemon.docker("logs", "-f", "-t", "--tail", "1", big_log, timeout=30)
    assert followed.returncode == 0, followed.stderr
    stamp, text = followed.stdout.split(" ", 1)
    assert text == f"{LAST}\n" and stamp.endswith("Z")
    assert daemon.docker("logs", "--tail", "0", big_log).stdout == ""
    since = daemon.docker("logs", "--since", "0", "--tail", "3", big_log).stdout
    assert since == f"{LINE}\n{LINE}\n{LAST}\n"


def test_full_read_of_a_large_log_keeps_memory_bounded(daemon: BerthDaemon, big_log: str) -> None:
    """Streaming the whole log (no tail) must not hold it in memory either."""
    assert daemon.proc is not None
    pid = daemon.proc.pid
    base = reset_peak_rss(pid)
    proc = subprocess.Popen([DOCKER, "logs", big_log], env=daemon.env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        head = proc.stdout.read(1_000_000)  # a slow reader: the daemon must wait, not buffer the log
        assert head.startswith(f"{LINE}\n".encode())
        # a daemon that buffered would grow while the reader stalls: watched over a stall of 0.5 s
        holds_for(lambda: f"bounded: daemon peak RSS grew by {status_kb(pid, 'VmHWM') - base} kB",
                  lambda: status_kb(pid, "VmHWM") - base < MAX_GROWTH_KB, 0.5, every=0.05)
    finally:
        proc.kill()
        proc.wait()


def test_follow_with_until_returns_for_a_running_container(daemon: BerthDaemon) -> None:
    """`docker logs -f --until T`: what was logged up to T, without waiting for the container."""
    cid = daemon.docker("run", "-d", "busybox", "sh", "-c", "echo early; exec sleep 600", check=True).stdout.strip()
    try:
        wait_for("the early line", lambda: daemon.docker("logs", cid).stdout, timeout=10)
        logged = _epoch(daemon.docker("logs", "-t", cid, check=True).stdout.split(" ", 1)[0])
        # `until` lies in the past (nothing to wait for) yet after the line: the clock must pass it
        wait_for("the clock to pass the early line", lambda: time.time() - 0.1 > logged, timeout=5, every=0.02)
        # A unix timestamp with a fraction (the CLI truncates relative values like `1s` to seconds).
        until = f"{time.time() - 0.1:.9f}"
        started = time.monotonic()
        followed = daemon.docker("logs", "-f", "--until", until, cid, timeout=20)
        assert followed.returncode == 0, followed.stderr
        assert followed.stdout == "early\n"
        assert time.monotonic() - started < 5
    finally:
        daemon.docker("rm", "-f", cid)
