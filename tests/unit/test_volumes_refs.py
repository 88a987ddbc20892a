"""Holder counting for volumes with driver options: MountRefs (pure) and VolumeMounter over a
recording fake of the mount calls."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.volumes import VolumeService
from berth.errors import Conflict, InvalidArgument, NotFound, Unavailable
from berth.state import Database
from berth.volumes import LocalMount, MountRefs, VolumeMounter, VolumeStore, to_json

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
    records = svc.plan(typed_hc({"Binds": ["ro-bind:/a:ro", "plain:/b"]}), [], lambda ref: ("x", []))
    options = {m.destination: m.options for m in svc.runtime_mounts(records)}
    assert options == {"/a": ("rbind", "rprivate", "ro", "nosuid"), "/b": ("rbind", "rprivate")}


def test_copy_up_leaves_a_tmpfs_volume_empty(store: VolumeStore, tmp_path: Path) -> None:
    store.create("t1", options=TMPFS)
    svc = VolumeService(store, users=lambda: [])
    rootfs = tmp_path / "rootfs"
    (rootfs / "seed").mkdir(parents=True)
    (rootfs / "seed" / "f").write_text("from image")
    records = svc.plan(typed_hc({"Binds": ["t1:/seed"]}), [], lambda ref: ("x", []))
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


# --- removal coordinated with starts (VolumeMounter.remove) ---------------------------------------
def test_remove_refuses_a_held_volume_and_asks_in_use_under_the_lock(mounter: VolumeMounter, ops: FakeMounts,
                                                                     store: VolumeStore) -> None:
    mounter.acquire("c1", ["t1"])
    with pytest.raises(Conflict, match=r"remove t1: volume is in use - \[c1\]"):
        mounter.remove("t1")
    with pytest.raises(Conflict, match=r"remove t2: volume is in use - \[c9\]"):
        mounter.remove("t2", lambda: ["c9"])
    data = Path(store.get("t2").mountpoint)
    started: list[threading.Thread] = []

    def in_use() -> list[str]:
        # a container start arrives mid-removal: it must wait for the lock, then find no volume
        start = threading.Thread(target=mounter.acquire, args=("c2", ["t2"]))
        start.start()
        started.append(start)
        time.sleep(0.1)
        assert start.is_alive()
        return []

    mounter.remove("t2", in_use)
    started[0].join(5)
    assert not started[0].is_alive()
    assert mounter.holders("t2") == frozenset() and data not in ops.mounted
    assert not data.parent.exists()  # the start did not recreate the removed volume's directory
    with pytest.raises(NotFound):
        mounter.remove("t2")


def test_remove_unmounts_by_the_recorded_path(mounter: VolumeMounter, ops: FakeMounts, store: VolumeStore) -> None:
    mounter.acquire("c1", ["t1"])
    mounter.release("c1")
    ops.mounted[Path(store.get("t1").mountpoint)] = LocalMount("tmpfs", "tmpfs")  # left behind
    ops.calls.clear()
    mounter.acquire("c1", ["t1"])   # still mounted: counted, not mounted again
    mounter.release("c1")
    assert ops.calls == [("unmount", "t1")]
    mounter.remove("t1")
    assert ops.mounted == {} and not Path(store._dir / "t1").exists()  # noqa: SLF001


def test_release_after_the_row_is_gone_unmounts_the_recorded_path(mounter: VolumeMounter, ops: FakeMounts,
                                                                  store: VolumeStore) -> None:
    mounter.acquire("c1", ["t1"])
    store._db.execute("DELETE FROM volumes WHERE name = ?", ("t1",))  # noqa: SLF001 (a racing delete)
    mounter.release("c1")
    assert ops.mounted == {}


def test_prune_keeps_volumes_with_options_and_rechecks_use(store: VolumeStore, ops: FakeMounts,
                                                           tmp_path: Path) -> None:
    store.create("tv", options=TMPFS)
    store.create("bv", options={"type": "none", "o": "bind", "device": str(tmp_path)})
    store.create("plain")
    store.create("late")
    users: list[tuple[str, list[dict]]] = []

    def current() -> list[tuple[str, list[dict]]]:
        return list(users)

    svc = VolumeService(store, users=current, mounter=VolumeMounter(store, ops))
    real_list = store.list

    def list_then_a_container_comes() -> list:
        listed = real_list()
        users.append(("c1", [{"type": "volume", "name": "late"}]))  # created after prune listed
        return listed

    store.list = list_then_a_container_comes  # type: ignore[method-assign]
    out = svc.prune({}, all_volumes=True)
    assert out["VolumesDeleted"] == ["plain"], out
    assert {v.name for v in real_list()} == {"bv", "late", "tv"}


def test_remove_anonymous_goes_through_the_mounter(store: VolumeStore, ops: FakeMounts) -> None:
    store.create("anon", labels={"com.docker.volume.anonymous": ""})
    mounter = VolumeMounter(store, ops)
    svc = VolumeService(store, users=lambda: [("c1", [{"type": "volume", "name": "anon"}])], mounter=mounter)
    records = [{"type": "volume", "name": "anon", "destination": "/d"}]
    mounter.acquire("c2", ["anon"])  # plain volume: not held
    svc.remove_anonymous(records, "c1")
    with pytest.raises(NotFound):
        store.get("anon")


# --- teardown releases the volumes even when it fails ---------------------------------------------
class FlakyRuntime:
    def __init__(self) -> None:
        self.fail = True

    def delete(self, cid: str) -> None:
        pass

    def unmount_rootfs(self, cdir: Path) -> None:
        if self.fail:
            raise Unavailable("unmount rootfs: Device or resource busy")


class RecordingNetwork:
    def __init__(self) -> None:
        self.detached: list[str] = []

    def detach(self, cid: str) -> None:
        self.detached.append(cid)


def test_a_failed_teardown_still_releases_volumes_and_network(store: VolumeStore, ops: FakeMounts,
                                                              tmp_path: Path) -> None:
    from berth.engine.containers import Launcher

    store.create("tv", options=TMPFS)
    mounter = VolumeMounter(store, ops)
    svc = VolumeService(store, users=lambda: [], mounter=mounter)
    rt, net = FlakyRuntime(), RecordingNetwork()
    launcher = Launcher(containers_dir=tmp_path / "c", images=None, runtime=rt,  # type: ignore[arg-type]
                        network=net, volumes=svc)
    rec = [{"type": "volume", "name": "tv", "destination": "/d"}]
    svc.activate("A", rec)
    with pytest.raises(Unavailable):
        launcher.teardown("A", True)
    assert net.detached == ["A"] and mounter.holders("tv") == frozenset() and not ops.mounted


# --- docker cp view, --mount volume-opt -----------------------------------------------------------
def test_cp_view_of_a_read_only_bind_volume_is_read_only(store: VolumeStore, ops: FakeMounts, tmp_path: Path) -> None:
    from berth.engine.archive import view_mounts
    from berth.engine.containers import Container

    host = tmp_path / "host"
    host.mkdir()
    store.create("robv", options={"type": "none", "o": "bind,ro", "device": str(host)})
    store.create("rwbv", options={"type": "none", "o": "bind", "device": str(host)})
    svc = VolumeService(store, users=lambda: [], mounter=VolumeMounter(store, ops))
    c = Container.__new__(Container)
    c.mounts = [{"type": "volume", "name": n, "destination": f"/{n}", "source": store.get(n).mountpoint, "rw": True}
                for n in ("robv", "rwbv")]
    view = {m.destination: (m.source, m.rw) for m in view_mounts(c, tmp_path / "cdir", svc.content_dir)}
    assert view == {"/robv": (host, False), "/rwbv": (host, True)}


def test_mount_volume_opts_create_the_volume_with_them(store: VolumeStore, ops: FakeMounts) -> None:
    svc = VolumeService(store, users=lambda: [], mounter=VolumeMounter(store, ops))
    opts = {"type": "tmpfs", "device": "tmpfs"}
    mounts = [{"Type": "volume", "Source": "scratch", "Target": "/scratch",
               "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": opts}}},
              {"Type": "volume", "Target": "/anon", "VolumeOptions": {"DriverConfig": {"Options": opts}}}]
    records = svc.plan(typed_hc({"Mounts": mounts}), [], lambda ref: ("", []))
    assert store.get("scratch").options == opts
    anon = next(r for r in records if r["destination"] == "/anon")
    assert store.get(anon["name"]).options == opts and store.get(anon["name"]).anonymous
    other = [{"Type": "volume", "Source": "xv", "Target": "/x", "VolumeOptions": {"DriverConfig": {"Name": "nfsplug"}}}]
    with pytest.raises(NotFound, match='plugin "nfsplug" not found'):
        svc.plan(typed_hc({"Mounts": other}), [], lambda ref: ("", []))
    bad = [{"Type": "volume", "Source": "yv", "Target": "/y",
            "VolumeOptions": {"DriverConfig": {"Options": {"type": "nfs", "device": ":/x"}}}}]
    with pytest.raises(InvalidArgument, match="not supported"):
        svc.plan(typed_hc({"Mounts": bad}), [], lambda ref: ("", []))


def test_store_records_a_bind_device_s_real_path_and_identity(store: VolumeStore, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    volume, _ = store.create("bv", options={"type": "none", "o": "bind", "device": str(tmp_path / "link")})
    st = os.stat(tmp_path / "real")
    assert (volume.bind_source, volume.bind_id) == (str(tmp_path / "real"), [st.st_dev, st.st_ino])
    assert "bind_source" not in str(to_json(volume))
