"""VolumeStore and VolumeService (no containers: a fake `users` callback)."""

from __future__ import annotations

from berth.api.docker.create_requests import volume_create_from_wire

from pathlib import Path

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.volumes import VolumeService
from berth.errors import Conflict, InvalidArgument, NotFound
from berth.state import Database
from berth.volumes import ANONYMOUS_LABEL, VolumeStore


@pytest.fixture
def users() -> dict[str, list[dict]]:
    return {}


@pytest.fixture
def svc(tmp_path: Path, users: dict[str, list[dict]]) -> VolumeService:
    store = VolumeStore(tmp_path, Database(tmp_path / "state.db"))
    return VolumeService(store, users=lambda: list(users.items()))


def test_create_is_idempotent_and_lays_out_data(svc: VolumeService, tmp_path: Path) -> None:
    first = svc.create_json(volume_create_from_wire({"Name": "v1", "Labels": {"a": "b"}}))
    assert first["Mountpoint"] == str(tmp_path / "volumes" / "v1" / "_data")
    assert Path(first["Mountpoint"]).is_dir()
    assert svc.create_json(volume_create_from_wire({"Name": "v1"})) == first
    assert first["Scope"] == "local" and first["Labels"] == {"a": "b"}


def test_errors_use_docker_wording(svc: VolumeService, users: dict[str, list[dict]]) -> None:
    with pytest.raises(InvalidArgument, match="includes invalid characters for a local volume name"):
        svc.create_json(volume_create_from_wire({"Name": "a/b"}))
    with pytest.raises(NotFound, match="^get nope: no such volume$"):
        svc.inspect_json("nope")
    with pytest.raises(NotFound, match="plugin"):
        svc.create_json(volume_create_from_wire({"Name": "xx", "Driver": "nfs"}))
    svc.create_json(volume_create_from_wire({"Name": "used"}))
    users["c1"] = [{"type": "volume", "name": "used"}]
    with pytest.raises(Conflict, match=r"^remove used: volume is in use - \[c1\]$"):
        svc.remove("used")
    svc.remove("nope", force=True)


def test_list_filters_and_prune(svc: VolumeService, users: dict[str, list[dict]]) -> None:
    svc.create_json(volume_create_from_wire({"Name": "named"}))
    anon = svc.store.create("a" * 64, labels={ANONYMOUS_LABEL: ""})[0]
    svc.create_json(volume_create_from_wire({"Name": "kept"}))
    users["c1"] = [{"type": "volume", "name": "kept"}]
    names = [v["Name"] for v in svc.list_json({"dangling": ["true"]})["Volumes"]]
    assert names == [anon.name, "named"]
    assert svc.prune({}, all_volumes=False)["VolumesDeleted"] == [anon.name]
    assert svc.prune({}, all_volumes=True)["VolumesDeleted"] == ["named"]
    assert [v["Name"] for v in svc.list_json({})["Volumes"]] == ["kept"]


def test_plan_creates_volumes_and_bind_dirs(svc: VolumeService, tmp_path: Path) -> None:
    host = tmp_path / "made-by-run"
    records = svc.plan_container(typed_hc({"Binds": [f"{host}:/h", "named:/n"]}), ["/anon"],
                                 {"config": {"Volumes": {"/img": {}}}}, lookup=lambda ref: ("x", []))
    assert host.is_dir()
    by_dst = {r["destination"]: r for r in records}
    assert by_dst["/n"]["source"].endswith("/named/_data")
    assert by_dst["/anon"]["anonymous"] and len(by_dst["/anon"]["name"]) == 64
    mounts = svc.runtime_mounts(records)
    assert {m.destination for m in mounts} == {"/h", "/n", "/anon", "/img"}
    svc.remove_anonymous(records, "me")
    remaining = {v["Name"] for v in svc.list_json({})["Volumes"]}
    assert remaining == {"named"}
    with pytest.raises(InvalidArgument, match="bind source path does not exist"):
        svc.plan(typed_hc({"Mounts": [{"Type": "bind", "Source": str(tmp_path / "missing"), "Target": "/m"}]}), [],
                 lambda ref: ("x", []))


def test_copy_up_fills_an_empty_volume_only(svc: VolumeService, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "seed").mkdir(parents=True)
    (rootfs / "seed" / "f").write_text("from image")
    records = svc.plan(typed_hc({"Binds": ["seeded:/seed"]}), [], lambda ref: ("x", []))
    svc.copy_up(records, rootfs)
    data = Path(records[0]["source"])
    assert (data / "f").read_text() == "from image"
    (rootfs / "seed" / "f").write_text("changed")
    svc.copy_up(records, rootfs)
    assert (data / "f").read_text() == "from image"
