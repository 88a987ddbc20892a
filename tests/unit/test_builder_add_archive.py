"""ADD of a local archive: which members land where, and which ones fail the build (moby's Unpack rules)."""

from __future__ import annotations

import tarfile

import pytest

from berth.builder.copier import archive_member_parts
from berth.errors import InvalidArgument


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def parts(info: tarfile.TarInfo) -> list[str]:
    return archive_member_parts(info, archive="pkg.tar", dest="/opt")


@pytest.mark.parametrize("name, expected", [
    ("a/b", ["a", "b"]),
    ("./a/./b", ["a", "b"]),
    ("a/../b", ["b"]),                 # cleaned first, as Go's filepath.Clean does
    ("/etc/passwd", ["etc", "passwd"]),  # an absolute name is joined under the destination
    ("/../x", ["x"]),                  # the root's parent is the root
    ("./", []),                        # the destination itself
])
def test_names_inside_the_destination(name: str, expected: list[str]) -> None:
    assert parts(member(name)) == expected


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "..", "./../x"])
def test_a_name_leaving_the_destination_fails_naming_it(name: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parts(member(name))
    assert str(err.value) == f'ADD failed: failed to extract pkg.tar: "{name}" is outside of "/opt"'


def test_hard_links_stay_inside() -> None:
    assert parts(member("a/l", tarfile.LNKTYPE, "a/f")) == ["a", "l"]
    assert parts(member("a/l", tarfile.LNKTYPE, "/a/f")) == ["a", "l"]  # joined under it too
    with pytest.raises(InvalidArgument, match='invalid hardlink "a/l" -> "../../etc/shadow"'):
        parts(member("a/l", tarfile.LNKTYPE, "../../etc/shadow"))


def test_relative_symlinks_may_not_point_out_absolute_ones_may() -> None:
    assert parts(member("a/s", tarfile.SYMTYPE, "../b")) == ["a", "s"]        # /opt/b
    assert parts(member("a/s", tarfile.SYMTYPE, "/etc/passwd")) == ["a", "s"]  # resolved in the image
    with pytest.raises(InvalidArgument, match='invalid symlink "a/s" -> "../../etc"'):
        parts(member("a/s", tarfile.SYMTYPE, "../../etc"))
    with pytest.raises(InvalidArgument, match='invalid symlink "s" -> ".."'):
        parts(member("s", tarfile.SYMTYPE, ".."))
