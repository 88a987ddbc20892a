"""Mount planning (berth.volumes._mounts): pure parsing and precedence."""

from __future__ import annotations

import pytest

from berth.api.docker.container_spec import mount_from_wire
from berth.errors import InvalidArgument
from berth.volumes import MountPoint, parse_bind, parse_mount, parse_tmpfs, plan_mounts, runtime_options, volumes_from


def test_bind_and_named_volume_specs() -> None:
    bind = parse_bind("/host/dir/:/ctr:ro")
    assert (bind.type, bind.source, bind.destination, bind.rw, bind.propagation) == ("bind", "/host/dir", "/ctr", False, "rprivate")
    assert bind.create_source
    vol = parse_bind("data:/var/lib/data:nocopy")
    assert (vol.type, vol.name, vol.rw, vol.copy_data) == ("volume", "data", True, False)
    assert runtime_options(bind) == ("rbind", "rprivate", "ro")


def test_a_bare_destination_is_an_anonymous_volume() -> None:
    point = parse_bind("/data/")
    assert (point.type, point.destination, point.anonymous, point.name, point.rw) == ("volume", "/data", True, "", True)


@pytest.mark.parametrize("spec", ["/only:rw", "relative", "a:b:c:d", ":/x", "/h:relative", "bad/name:/x", "/h:/x:bogus", "/h:/"])
def test_bad_bind_specs(spec: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_bind(spec)


def test_mount_objects() -> None:
    anon = parse_mount(mount_from_wire({"Type": "volume", "Target": "/data"}))
    assert anon.anonymous and anon.name == ""
    ro = parse_mount(mount_from_wire({"Type": "bind", "Source": "/srv", "Target": "/srv", "ReadOnly": True}))
    assert not ro.rw and not ro.create_source
    tmp = parse_mount(mount_from_wire({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o700}}))
    assert tmp.options == ("noexec", "nosuid", "nodev", "size=1024", "mode=700")
    with pytest.raises(InvalidArgument, match="Source must not be empty"):
        parse_mount(mount_from_wire({"Type": "bind", "Target": "/x"}))
    with pytest.raises(InvalidArgument, match="mount type unknown"):
        parse_mount(mount_from_wire({"Type": "npipe", "Target": "/x"}))


def test_tmpfs_option_merge() -> None:
    point = parse_tmpfs("/run", "exec,size=64m")
    assert "noexec" not in point.options and "exec" in point.options and "size=64m" in point.options


def test_precedence_and_duplicates() -> None:
    inherited = volumes_from([MountPoint("volume", "/shared", name="s", source="/v/s/_data"),
                              MountPoint("tmpfs", "/tmp")], "ro")
    assert [p.destination for p in inherited] == ["/shared"] and not inherited[0].rw
    points = plan_mounts(declared=["/data", "/shared/x"], inherited=inherited, binds=["/h:/data"],
                         mounts=[], tmpfs={"/run": ""})
    by_dst = {p.destination: p for p in points}
    assert by_dst["/data"].type == "bind"  # a bind replaces the image's VOLUME
    assert by_dst["/shared/x"].anonymous
    assert [p.destination for p in points] == ["/data", "/run", "/shared", "/shared/x"]  # parents first
    with pytest.raises(InvalidArgument, match="Duplicate mount point"):
        plan_mounts(declared=[], inherited=[], binds=["/a:/x"], mounts=[mount_from_wire({"Type": "volume", "Target": "/x"})],
                    tmpfs={})


def test_record_round_trip() -> None:  # the inspect shape: test_api_container_json.test_mount_items
    point = parse_bind("v1:/d:ro")
    assert MountPoint.from_record(point.to_record()) == point
