"""Real mount(2) calls for volumes with driver options (berth.volumes._localmount)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.errors import Unavailable
from berth.volumes import LocalMount, parse_driver_options
from berth.volumes._localmount import is_mounted, mount_volume, unmount_volume

pytestmark = pytest.mark.root


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    path = tmp_path / "vol with space" / "_data"
    path.mkdir(parents=True)
    yield path
    unmount_volume(path)
    assert not is_mounted(path)


def _spec(**options: str) -> LocalMount:
    spec = parse_driver_options(options)
    assert spec is not None
    return spec


def test_tmpfs_with_size_mode_and_owner(target: Path) -> None:
    mount_volume(_spec(type="tmpfs", device="tmpfs", o="size=1m,uid=1000,gid=1001,mode=0770"), target)
    assert is_mounted(target)
    st = os.stat(target)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o770)
    assert os.statvfs(target).f_blocks * os.statvfs(target).f_frsize == 1024 * 1024
    (target / "f").write_text("x")
    unmount_volume(target)
    assert not is_mounted(target) and not (target / "f").exists()
    unmount_volume(target)  # nothing mounted: fine


def test_read_only_bind_keeps_the_host_files(target: Path, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "in").write_text("from host")
    mount_volume(_spec(type="none", o="bind,ro,nosuid", device=str(host)), target)
    assert (target / "in").read_text() == "from host"
    with pytest.raises(OSError):
        (target / "out").write_text("x")
    flags = os.statvfs(target).f_flag
    assert flags & os.ST_RDONLY and flags & os.ST_NOSUID
    unmount_volume(target)
    assert (host / "in").read_text() == "from host" and not (target / "in").exists()


def test_rbind_with_a_submount_unmounts_whole(target: Path, tmp_path: Path) -> None:
    host = tmp_path / "host"
    (host / "sub").mkdir(parents=True)
    inner = _spec(type="tmpfs", device="inner")
    mount_volume(inner, host / "sub")
    try:
        mount_volume(_spec(type="none", o="rbind", device=str(host)), target)
        assert is_mounted(target / "sub")
        unmount_volume(target)
        assert not is_mounted(target) and not is_mounted(target / "sub")
    finally:
        unmount_volume(host / "sub")


def test_a_failed_mount_leaves_nothing(target: Path, tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="failed to mount local volume"):
        mount_volume(_spec(type="none", o="bind", device=str(tmp_path / "missing")), target)
    assert not is_mounted(target)
