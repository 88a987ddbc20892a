"""Holder counting for volumes with driver options: MountRefs (pure) and VolumeMounter over a
recording fake of the mount calls."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.engine.volumes import VolumeService
from berth.errors import Conflict, InvalidArgument, Unavailable
from berth.state import Database
from berth.volumes import LocalMount, MountRefs, VolumeMounter, VolumeStore

TMPFS = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}


def test_refs_count_each_holder_once() -> None:
    refs = MountRefs()
    assert refs.hold("v", "a") and refs.hold("v", "b") and refs.hold("w", "a")
    assert not refs.hold("v", "a")
    assert refs.holders("v") == {"a", "b"}
    assert refs.release("a") == ["w"]           # v still held by b
    assert refs.release("a") == []              # a second teardown counts nothing
    assert refs.held() == {"v"}
    assert not refs.release_one("v", "zz")
    assert refs.release_one("v", "b")
    assert refs.held() == frozenset() and refs.holders("v") == frozenset()


class FakeMounts:
    """Records mount calls; `mounted` is what /proc/self/mountinfo would show."""

    def __init__(self) -> None:
        self.mounted: dict[Path, LocalMount] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_on: str | None = None

    def mount(self, spec: LocalMount, target: Path) -> None:
        if self.fail_on and self.fail_on in str(target):
            raise Unavailable(f"failed to mount local volume: {target}")
        self.calls.append(("mount", target.parent.name))
        self.mounted[target] = spec

    def unmount(self, target: Path) -> None:
        self.calls.append(("unmount", target.parent.name))
        self.mounted.pop(target, None)

    def is_mounted(self, target: Path) -> bool:
        return target in self.mounted


@pytest.fixture
def store(tmp_path: Path) -> VolumeStore:
    return VolumeStore(tmp_path, Database(tmp_path / "state.db"))


@pytest.fixture
def ops() -> FakeMounts:
    return FakeMounts()


@pytest.fixture
def mounter(store: VolumeStore, ops: FakeMounts) -> VolumeMounter:
    for name in ("t1", "t2"):
        store.create(name, options=TMPFS)
    store.create("plain")
    return VolumeMounter(store, ops)


def test_first_user_mounts_last_user_unmounts(mounter: VolumeMounter, ops: FakeMounts) -> None:
    mounter.acquire("c1", ["t1", "plain", "t1"])
    mounter.acquire("c2", ["t1", "t2"])
    assert ops.calls == [("mount", "t1"), ("mount", "t2")]  # plain volumes are never mounted
    assert mounter.holders("t1") == {"c1", "c2"}
    mounter.release("c1")
    mounter.release("c1")
    assert ops.calls[2:] == []
    mounter.release("c2")
    assert sorted(ops.calls[2:]) == [("unmount", "t1"), ("unmount", "t2")]
    assert ops.mounted == {}


def test_a_failed_mount_undoes_the_holds_of_that_call(mounter: VolumeMounter, ops: FakeMounts) -> None:
    mounter.acquire("c0", ["t2"])
    ops.fail_on = "/t2/"
    mounter.release("c0")
    with pytest.raises(Unavailable):
        mounter.acquire("c1", ["t1", "t2"])
    assert mounter.holders("t1") == frozenset() and ops.mounted == {}
    assert ops.calls[-1] == ("unmount", "t1")


def test_a_mount_removed_behind_our_back_comes_back(mounter: VolumeMounter, ops: FakeMounts) -> None:
    mounter.acquire("c1", ["t1"])
    ops.mounted.clear()
    mounter.acquire("c2", ["t1"])
    assert ops.calls == [("mount", "t1"), ("mount", "t1")]


def test_restore_keeps_running_holds_and_unmounts_orphans(store: VolumeStore, ops: FakeMounts) -> None:
    for name in ("t1", "t2"):
        store.create(name, options=TMPFS)
    ops.mounted = {Path(store.get(n).mountpoint): LocalMount("tmpfs", "tmpfs") for n in ("t1", "t2")}
    fresh = VolumeMounter(store, ops)   # a restarted daemon: counts are gone, mounts are not
    fresh.restore([("c1", ["t1", "gone"])])
    assert ops.calls == [("unmount", "t2")]
    assert fresh.holders("t1") == {"c1"}
    fresh.acquire("c2", ["t1"])
    fresh.release("c1")
    assert ops.calls == [("unmount", "t2")]
    fresh.release("c2")
    assert ops.calls[-1] == ("unmount", "t1")


def test_service_wires_holds_by_container(store: VolumeStore, ops: FakeMounts) -> None:
    store.create("t1", options=TMPFS)
    svc = VolumeService(store, users=lambda: [], mounter=VolumeMounter(store, ops))
    records = [{"type": "volume", "name": "t1", "destination": "/d", "source": store.get("t1").mountpoint},
               {"type": "tmpfs", "destination": "/t"}, {"type": "bind", "destination": "/b", "source": "/x"}]
    svc.activate("c1", records)
    assert ops.calls == [("mount", "t1")]
    svc.restore_mounts([("c1", records)])
    svc.deactivate("c1")
    assert ops.calls[-1] == ("unmount", "t1")


def test_runtime_mounts_repeat_a_volume_s_restrictions(store: VolumeStore, tmp_path: Path) -> None:
    store.create("ro-bind", options={"type": "none", "o": "bind,ro,nosuid", "device": str(tmp_path)})
    svc = VolumeService(store, users=lambda: [])
    records = svc.plan({"Binds": ["ro-bind:/a:ro", "plain:/b"]}, [], lambda ref: ("x", []))
    options = {m.destination: m.options for m in svc.runtime_mounts(records)}
    assert options == {"/a": ("rbind", "rprivate", "ro", "nosuid"), "/b": ("rbind", "rprivate")}


def test_copy_up_leaves_a_tmpfs_volume_empty(store: VolumeStore, tmp_path: Path) -> None:
    store.create("t1", options=TMPFS)
    svc = VolumeService(store, users=lambda: [])
    rootfs = tmp_path / "rootfs"
    (rootfs / "seed").mkdir(parents=True)
    (rootfs / "seed" / "f").write_text("from image")
    records = svc.plan({"Binds": ["t1:/seed"]}, [], lambda ref: ("x", []))
    svc.copy_up(records, rootfs)
    assert os.listdir(records[0]["source"]) == []


def test_store_checks_bind_devices_and_shows_options(store: VolumeStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        store.create("bv", options={"type": "none", "o": "bind", "device": str(tmp_path / "missing")})
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgument, match="is not a directory"):
        store.create("bv", options={"type": "none", "o": "bind", "device": str(tmp_path / "file")})
    opts = {"type": "none", "o": "bind,ro", "device": str(tmp_path)}
    volume, created = store.create("bv", options=opts)
    assert created and volume.options == opts
    with pytest.raises(InvalidArgument, match='invalid option: "x"'):
        store.create("cv", options={"x": "y"})


def test_delete_of_a_mounted_volume_refuses_when_unmount_fails(store: VolumeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import berth.volumes._store as store_module

    store.create("t1", options=TMPFS)

    def refuse(target: Path) -> None:
        raise Unavailable("unmount: device or resource busy")

    monkeypatch.setattr(store_module, "is_mounted", lambda target: True)
    monkeypatch.setattr(store_module, "unmount_volume", refuse)
    with pytest.raises(Conflict, match="remove t1: volume is still mounted"):
        store.delete("t1")
    assert Path(store.get("t1").mountpoint).is_dir()  # nothing removed
