"""Real mount(2) calls for volumes with driver options (berth.volumes._localmount)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import berth.volumes._store as store_module
from berth.errors import Unavailable
from berth.state import Database
from berth.volumes import LocalMount, VolumeMounter, VolumeStore, disk_usage, parse_driver_options
from berth.volumes._localmount import is_mounted, mount_volume, mounted_under, unmount_volume

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


# --- a bind device is the directory checked at create, every time ---------------------------------
@pytest.fixture
def vstore(tmp_path: Path) -> VolumeStore:
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    return VolumeStore(tmp_path / "root", Database(tmp_path / "state.db"))


def test_a_device_swapped_for_a_symlink_is_refused(vstore: VolumeStore, tmp_path: Path) -> None:
    named = tmp_path / "share" / "data"
    named.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret").write_text("not what the volume names")
    vstore.create("bv", options={"type": "none", "o": "bind", "device": str(named)})
    named.rmdir()
    named.symlink_to(elsewhere)
    mounter = VolumeMounter(vstore)
    data = Path(vstore.get("bv").mountpoint)
    try:
        with pytest.raises(Unavailable, match="changed since the volume was created"):
            mounter.acquire("ctr", ["bv"])
        assert not is_mounted(data) and mounter.holders("bv") == frozenset()
        named.unlink()
        elsewhere.rename(named)  # a real directory at the same path again: bound, as moby does
        mounter.acquire("ctr", ["bv"])
        assert (data / "secret").read_text() == "not what the volume names"
        mounter.release("ctr")
        assert not is_mounted(data)
    finally:
        unmount_volume(data)


def test_a_bind_volume_mounts_the_recorded_directory(vstore: VolumeStore, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (tmp_path / "via").symlink_to(host)  # a symlinked device is resolved once, at create
    (host / "f").write_text("x")
    vstore.create("bv", options={"type": "none", "o": "bind,ro", "device": str(tmp_path / "via")})
    mounter = VolumeMounter(vstore)
    data = Path(vstore.get("bv").mountpoint)
    try:
        mounter.acquire("ctr", ["bv"])
        assert (data / "f").read_text() == "x" and os.statvfs(data).f_flag & os.ST_RDONLY
    finally:
        mounter.release("ctr")
        unmount_volume(data)
    assert not is_mounted(data)


# --- removal never reaches through a mount --------------------------------------------------------
def test_delete_racing_a_start_keeps_the_bound_host_files(vstore: VolumeStore, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "precious").write_text("user data")
    vstore.create("bv", options={"type": "none", "o": "bind", "device": str(host)})
    mounter = VolumeMounter(vstore)
    data = Path(vstore.get("bv").mountpoint)
    real = store_module.is_mounted

    def interleaved(path: Path) -> bool:
        answer = real(path)             # the store's check: nothing mounted
        mounter.acquire("ctr", ["bv"])  # a start bypassing the mounter's lock lands here
        return answer

    monkeypatch.setattr(store_module, "is_mounted", interleaved)
    try:
        vstore.delete("bv")
        assert (host / "precious").read_text() == "user data"
        mounter.release("ctr")           # unmounted by the recorded path, row gone or not
        assert not is_mounted(data)
    finally:
        unmount_volume(data)


def test_mounted_under_sees_submounts(target: Path) -> None:
    assert not mounted_under(target.parent)
    mount_volume(_spec(type="tmpfs", device="tmpfs", o="size=1m"), target)
    assert mounted_under(target.parent) and mounted_under(target)
    assert not mounted_under(target.parent.parent / "other")


# --- size walks stay on the volume's filesystem ---------------------------------------------------
def test_size_walks_do_not_cross_mounts(target: Path, tmp_path: Path) -> None:
    from berth.engine.volumes import tree_size

    top = target.parent
    (top / "own").write_bytes(b"x" * 100)
    host = tmp_path / "host"
    host.mkdir()
    (host / "big").write_bytes(b"y" * 5000)
    mount_volume(_spec(type="tmpfs", device="tmpfs", o="size=1m"), target)
    (target / "in-tmpfs").write_bytes(b"z" * 7000)
    assert tree_size(top) == 100 and disk_usage(str(top)) == 100
