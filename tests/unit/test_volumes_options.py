"""The local driver's mount options: parsing and validation (berth.volumes._options)."""

from __future__ import annotations

import pytest

from berth.errors import InvalidArgument
from berth.volumes import LocalMount, parse_driver_options
from berth.volumes._options import MS_NOATIME, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY


def test_no_options_is_a_plain_volume() -> None:
    assert parse_driver_options({}) is None
    assert parse_driver_options({"com.docker.volume.anonymous": ""}) is None
    assert parse_driver_options({"size": "0"}) is None


def test_tmpfs_with_data_and_flags() -> None:
    spec = parse_driver_options({"type": "tmpfs", "device": "tmpfs", "o": "size=10m,uid=1000,mode=0770,noexec,ro"})
    assert spec == LocalMount("tmpfs", "tmpfs", flags=MS_NOEXEC | MS_RDONLY, data="size=10m,uid=1000,mode=0770")
    assert not spec.bind
    assert parse_driver_options({"type": "tmpfs", "device": "x"}) == LocalMount("tmpfs", "x")
    pct = parse_driver_options({"type": "tmpfs", "device": "t", "o": "size=50%,gid=5,nr_inodes=1k,,ro,rw"})
    assert pct is not None and pct.data == "size=50%,gid=5,nr_inodes=1k" and pct.flags == 0


@pytest.mark.parametrize("o, recursive, flags", [
    ("bind", False, 0),
    ("rbind", True, 0),
    ("bind,ro", False, MS_RDONLY),
    ("rbind,ro,nosuid,nodev,noexec,noatime", True, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME),
    ("ro,bind,rw", False, 0),
])
def test_bind(o: str, recursive: bool, flags: int) -> None:
    spec = parse_driver_options({"type": "none", "o": o, "device": "/srv/data"})
    assert spec == LocalMount("none", "/srv/data", flags=flags, recursive=recursive)
    assert spec.bind


@pytest.mark.parametrize("options, message", [
    ({"foo": "bar"}, 'invalid option: "foo"'),
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"device": "tmpfs"}, 'missing required option: "type"'),
    ({"o": "size=1m"}, 'missing required option: "device"'),
    ({"o": "size=1m", "device": "tmpfs"}, 'missing required option: "type"'),
    ({"type": "tmpfs", "device": ""}, 'missing required option: "device"'),
    ({"size": "10m"}, "quota size requested but no quota support"),
    ({"size": "lots"}, "invalid size"),
    ({"type": "nfs", "device": ":/export", "o": "addr=10.0.0.1"}, 'volume type "nfs" is not supported'),
    ({"type": "cifs", "device": "//h/s"}, 'volume type "cifs" is not supported'),
    ({"type": "ext4", "device": "/dev/sda1"}, 'volume type "ext4" is not supported'),
    ({"type": "bind", "device": "/srv", "o": "bind"}, 'volume type "bind" is not supported'),
    ({"type": "tmpfs", "device": "t", "o": "size=10q"}, 'invalid tmpfs size "10q"'),
    ({"type": "tmpfs", "device": "t", "o": "size=-1"}, 'invalid tmpfs size "-1"'),
    ({"type": "tmpfs", "device": "t", "o": "mode=0999"}, 'invalid tmpfs mode "0999"'),
    ({"type": "tmpfs", "device": "t", "o": "mode=17777"}, 'invalid tmpfs mode "17777"'),
    ({"type": "tmpfs", "device": "t", "o": "uid=root"}, 'invalid tmpfs uid "root"'),
    ({"type": "tmpfs", "device": "t", "o": "gid=4294967295"}, 'invalid tmpfs gid "4294967295"'),
    ({"type": "tmpfs", "device": "t", "o": "huge=always"}, 'invalid tmpfs option "huge=always"'),
    ({"type": "tmpfs", "device": "t", "o": "bind"}, 'invalid tmpfs option "bind"'),
    ({"type": "tmpfs", "device": "t", "o": "size"}, 'invalid tmpfs option "size"'),
    ({"type": "none", "device": "/srv"}, 'needs o=bind or o=rbind'),
    ({"type": "none", "device": "/srv", "o": "ro"}, 'needs o=bind or o=rbind'),
    ({"type": "none", "device": "srv", "o": "bind"}, 'must be an absolute path'),
    ({"type": "none", "device": "../../etc", "o": "bind"}, 'must be an absolute path'),
    ({"type": "none", "device": "/srv", "o": "bind,suid"}, 'invalid bind option "suid"'),
    ({"type": "none", "device": "/srv", "o": "bind,shared"}, 'invalid bind option "shared"'),
    ({"type": "none", "device": "/srv", "o": "bind,size=1m"}, 'invalid bind option "size=1m"'),
    ({"type": "tmpfs", "device": "t\0x"}, "without NUL bytes"),
])
def test_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        parse_driver_options(options)


def test_container_options_repeat_the_restrictions() -> None:
    spec = parse_driver_options({"type": "none", "o": "bind,ro,noexec,noatime", "device": "/srv"})
    assert spec is not None and spec.container_options() == ("ro", "noexec")
    tmpfs = parse_driver_options({"type": "tmpfs", "device": "t", "o": "size=1m"})
    assert tmpfs is not None and tmpfs.container_options() == ()


@pytest.mark.parametrize("size", ["0", "0B", "0b", "0.0", "0 MiB", "0k"])
def test_quota_size_zero_in_moby_s_forms_is_accepted(size: str) -> None:
    assert parse_driver_options({"size": size}) is None


@pytest.mark.parametrize("size", ["10MB", "1GiB", "1.5g", "3 kb"])
def test_quota_size_non_zero_has_no_quota_support(size: str) -> None:
    with pytest.raises(InvalidArgument, match="quota size requested but no quota support"):
        parse_driver_options({"size": size})


@pytest.mark.parametrize("size", ["1.2.3", "10e", "-1", "1  m", "1mx"])
def test_quota_size_outside_moby_s_pattern_is_invalid(size: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid size"):
        parse_driver_options({"size": size})
