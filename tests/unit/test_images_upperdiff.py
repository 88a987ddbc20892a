"""Overlay upper dir -> layer tar (berth.images.upperdiff): notation, xattrs, determinism, round trip."""

from __future__ import annotations

import os
import socket
import stat
import struct
import tarfile
from pathlib import Path

import pytest

from berth.builder.layertar import diff_upper
from berth.images._extract import extract_layer
from berth.images.xattrs import from_pax
from berth.images.upperdiff import walk_upper, write_layer

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, trusted.* and security.* xattrs)")
# cap_setuid (bit 7) + cap_net_raw (bit 13), effective: a v2 vfs_cap_data whose bytes are not UTF-8.
CAPS = struct.pack("<IIIII", 0x02000001, (1 << 13) | (1 << 7), 0, 0, 0)


@pytest.fixture
def upper(tmp_path: Path) -> Path:
    """An upper dir on a filesystem with user xattrs (skips the test otherwise)."""
    path = tmp_path / "upper"
    path.mkdir()
    try:
        os.setxattr(path, "user.probe", b"1")
        os.removexattr(path, "user.probe")
    except OSError:
        pytest.skip("filesystem without user xattrs")
    return path


def members(tar_path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tar_path) as tar:
        return {m.name: m for m in tar.getmembers()}


def xattrs_of(info: tarfile.TarInfo) -> dict[str, bytes]:
    return dict(from_pax(info.pax_headers))


def layer(upper: Path, out: Path, exclude: tuple[str, ...] = ()) -> dict[str, tarfile.TarInfo]:
    write_layer(walk_upper(upper, exclude), out)
    return members(out)


def test_user_xattrs_of_files_and_dirs_become_sorted_pax_records(upper: Path, tmp_path: Path) -> None:
    (upper / "d").mkdir()
    (upper / "d" / "f").write_text("x")
    os.setxattr(upper / "d" / "f", "user.zeta", b"z")
    os.setxattr(upper / "d" / "f", "user.alpha", b"\x00\xff\x80binary")
    os.setxattr(upper / "d", "user.dir", "é".encode())
    found = layer(upper, tmp_path / "l.tar")
    assert xattrs_of(found["d/f"]) == {"user.alpha": b"\x00\xff\x80binary", "user.zeta": b"z"}
    keys = [k for k in found["d/f"].pax_headers if k.startswith("SCHILY.xattr.")]
    assert keys == ["SCHILY.xattr.user.alpha", "SCHILY.xattr.user.zeta"]
    assert xattrs_of(found["d"]) == {"user.dir": "é".encode()}


def test_overlay_attributes_are_not_carried(upper: Path, tmp_path: Path) -> None:
    (upper / "f").write_text("x")
    os.setxattr(upper / "f", "user.overlay.redirect", b"/etc")
    os.setxattr(upper / "f", "user.keep", b"1")
    assert xattrs_of(layer(upper, tmp_path / "l.tar")["f"]) == {"user.keep": b"1"}


def test_symlinks_are_not_followed_for_xattrs(upper: Path, tmp_path: Path) -> None:
    (upper / "target").write_text("x")
    os.setxattr(upper / "target", "user.mine", b"target's")
    (upper / "link").symlink_to("target")
    found = layer(upper, tmp_path / "l.tar")
    assert found["link"].issym() and xattrs_of(found["link"]) == {}
    assert xattrs_of(found["target"]) == {"user.mine": b"target's"}


def test_hard_links_become_link_entries_without_records(upper: Path, tmp_path: Path) -> None:
    (upper / "a").write_text("x")
    os.setxattr(upper / "a", "user.k", b"v")
    os.link(upper / "a", upper / "b")
    found = layer(upper, tmp_path / "l.tar")
    assert found["a"].isreg() and xattrs_of(found["a"]) == {"user.k": b"v"}
    assert found["b"].islnk() and found["b"].linkname == "a" and xattrs_of(found["b"]) == {}


def test_exclude_prunes_whole_subtrees(upper: Path, tmp_path: Path) -> None:
    for d in ("proc/self", "etc", "data/sub"):
        (upper / d).mkdir(parents=True)
    (upper / "etc" / "hosts").write_text("")
    (upper / "etc" / "app.conf").write_text("1")
    (upper / "data" / "sub" / "f").write_text("1")
    found = layer(upper, tmp_path / "l.tar", ("/proc", "/etc/hosts", "/data/sub/"))
    assert set(found) == {"etc", "etc/app.conf", "data"}


def test_output_is_deterministic_and_host_names_are_dropped(upper: Path, tmp_path: Path) -> None:
    (upper / "b").mkdir()
    (upper / "b" / "z").write_text("1")
    (upper / "a").write_text("2")
    os.setxattr(upper / "a", "user.y", b"1")
    os.setxattr(upper / "a", "user.x", b"2")
    write_layer(walk_upper(upper), tmp_path / "one.tar")
    write_layer(walk_upper(upper), tmp_path / "two.tar")
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    found = members(tmp_path / "one.tar")
    assert list(found) == ["a", "b", "b/z"]
    assert all(m.uname == "" and m.gname == "" for m in found.values())


def test_sockets_are_not_written(upper: Path, tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(upper / "s"))
        (upper / "f").write_text("x")
        assert write_layer(walk_upper(upper), tmp_path / "l.tar") == 1
    finally:
        sock.close()
    assert list(members(tmp_path / "l.tar")) == ["f"]


def test_user_xattrs_round_trip_through_extraction(upper: Path, tmp_path: Path) -> None:
    (upper / "d").mkdir()
    (upper / "d" / "f").write_text("x")
    os.setxattr(upper / "d" / "f", "user.bin", b"\x00\xff\x80")
    os.setxattr(upper / "d", "user.dir", b"1")
    write_layer(walk_upper(upper), tmp_path / "l.tar")
    snap = tmp_path / "snap"
    snap.mkdir()
    with open(tmp_path / "l.tar", "rb") as stream:
        assert extract_layer(stream, snap).skipped == []
    assert os.getxattr(snap / "d" / "f", "user.bin") == b"\x00\xff\x80"
    assert os.getxattr(snap / "d", "user.dir") == b"1"


def test_builder_diff_carries_xattrs(upper: Path, tmp_path: Path) -> None:
    (upper / "bin").mkdir()
    (upper / "bin" / "tool").write_text("elf")
    os.setxattr(upper / "bin" / "tool", "user.k", b"v")
    assert diff_upper(upper, tmp_path / "l.tar", lower=lambda rel: None) == 2
    assert xattrs_of(members(tmp_path / "l.tar")["bin/tool"]) == {"user.k": b"v"}


@needs_root
def test_capabilities_and_link_xattrs_round_trip(upper: Path, tmp_path: Path) -> None:
    (upper / "ping").write_text("elf")
    os.chmod(upper / "ping", 0o755)
    os.setxattr(upper / "ping", "security.capability", CAPS)
    (upper / "link").symlink_to("ping")
    os.setxattr(upper / "link", "trusted.note", b"on the link", follow_symlinks=False)
    found = layer(upper, tmp_path / "l.tar")
    assert xattrs_of(found["ping"]) == {"security.capability": CAPS}
    assert xattrs_of(found["link"]) == {"trusted.note": b"on the link"}
    snap = tmp_path / "snap"
    snap.mkdir()
    with open(tmp_path / "l.tar", "rb") as stream:
        extract_layer(stream, snap)
    assert os.getxattr(snap / "ping", "security.capability") == CAPS
    assert os.getxattr(snap / "link", "trusted.note", follow_symlinks=False) == b"on the link"
    assert stat.S_IMODE(os.stat(snap / "ping").st_mode) == 0o755


@needs_root
def test_overlay_notation_and_private_xattrs(upper: Path, tmp_path: Path) -> None:
    (upper / "cache").mkdir()
    os.setxattr(upper / "cache", "trusted.overlay.opaque", b"y")
    (upper / "f").write_text("x")
    os.setxattr(upper / "f", "trusted.overlay.origin", b"\x00\x01")
    os.mknod(upper / "gone", stat.S_IFCHR, os.makedev(0, 0))
    os.mknod(upper / "tty", stat.S_IFCHR | 0o600, os.makedev(5, 0))  # a real device: never written
    found = layer(upper, tmp_path / "l.tar")
    assert list(found) == ["cache", "cache/.wh..wh..opq", "f", ".wh.gone"]
    assert all(xattrs_of(m) == {} for m in found.values())


# -- crafted layers: xattr records must not steer overlayfs or reach outside the snapshot ------------


def _crafted(tmp_path: Path, *infos: tarfile.TarInfo) -> Path:
    path = tmp_path / "crafted.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info in infos:
            tar.addfile(info, None)
    return path


def test_crafted_xattr_records_are_refused_without_failing(upper: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("keep")
    f = tarfile.TarInfo("f")
    f.pax_headers = {"SCHILY.xattr.user.overlay.opaque": "y", "SCHILY.xattr.user.a\x00b": "1",
                     "SCHILY.xattr.security.selinux": "x", "SCHILY.xattr.user.ok": "1"}
    link = tarfile.TarInfo("esc")
    link.type, link.linkname = tarfile.SYMTYPE, str(outside)
    link.pax_headers = {"SCHILY.xattr.user.evil": "1"}
    snap = upper  # any directory with user xattrs
    with open(_crafted(tmp_path, f, link), "rb") as stream:
        extract_layer(stream, snap)
    assert os.listxattr(snap / "f") == ["user.ok"]
    assert os.listxattr(outside) == [] and outside.read_text() == "keep"
    assert os.readlink(snap / "esc") == str(outside)
