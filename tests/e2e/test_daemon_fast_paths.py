"""Daemon flags of the fast start paths: crun's cgroup mask fix, spare namespaces, port rules."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import pytest

from berth.runtime.cgroupfix import mask_works
from berth.runtime.selection import read_unified_controllers
from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root

HYBRID = bool(read_unified_controllers())


def _daemon(*extra: str) -> Iterator[BerthDaemon]:
    d = BerthDaemon(extra_args=extra)
    try:
        d.start()
        d.bootstrap_busybox()
        yield d
    finally:
        d.destroy()


@pytest.fixture()
def default() -> Iterator[BerthDaemon]:
    yield from _daemon()


@pytest.fixture()
def no_fix() -> Iterator[BerthDaemon]:
    yield from _daemon("--crun-cgroup-fix", "none", "--network-spares", "0", "--iptables-rules", "plugins")


@pytest.mark.skipif(not (HYBRID and mask_works()), reason="needs a hybrid cgroup host where the mask works")
def test_default_is_crun_with_the_logged_mask_fix_and_limits_hold(default: BerthDaemon) -> None:
    assert "OCI runtime: crun (using crun (auto) with the cgroup mask fix" in default.log()
    assert default.docker("info", "--format", "{{.DefaultRuntime}}").stdout.strip() == "crun"
    out = default.docker("run", "--rm", "--memory", "32m", "--pids-limit", "20", "busybox", "sh", "-c",
                         "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["33554432", "20"]
    oom = default.docker("run", "--rm", "--memory", "32m", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=100M")
    assert oom.returncode == 137


@pytest.mark.skipif(not HYBRID, reason="the fix only matters on a hybrid cgroup host")
def test_fix_none_falls_back_to_runc_and_says_why(no_fix: BerthDaemon) -> None:
    log = no_fix.log()
    assert "OCI runtime: runc" in log and "--crun-cgroup-fix none" in log
    assert no_fix.docker("run", "--rm", "busybox", "echo", "hi").stdout == "hi\n"


def test_spares_serve_runs_and_are_gone_after_stop(default: BerthDaemon) -> None:
    assert default.docker("run", "--rm", "busybox", "true").returncode == 0
    netns = default.run_root / "netns"
    default.stop()  # SIGTERM: unclaimed spares are torn down
    assert not [p for p in netns.rglob("*") if p.is_file()]
    default.start()


def test_published_port_is_reusable_right_after_rm(default: BerthDaemon) -> None:
    for _ in range(2):
        run = default.docker("run", "-d", "--name", "web", "-p", "127.0.0.1:18391:80", "busybox",
                             "httpd", "-f", "-p", "80", "-h", "/etc")
        assert run.returncode == 0, run.stderr
        deadline = 100
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:18391/passwd", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                deadline -= 1
                assert deadline > 0, "no answer on the published port"
                time.sleep(0.05)
        assert default.docker("rm", "-f", "web").returncode == 0
