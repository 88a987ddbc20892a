"""Layer extraction safety: crafted tars must never write outside the snapshot directory."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from berth.errors import InvalidArgument
from berth.images._extract import extract_layer
from berth.images._layer_check import LayerBreakout


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def make_tar(*entries: tuple[tarfile.TarInfo, bytes], gz: bool = False) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    raw = buf.getvalue()
    return io.BytesIO(gzip.compress(raw) if gz else raw)


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(snapshot dir, outside dir): the snapshot sits next to a directory it must not touch."""
    snap = tmp_path / "root" / "snap"
    outside = tmp_path / "outside"
    snap.mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_text("keep")
    return snap, outside


def tree(path: Path) -> dict[str, str]:
    """Everything under `path` (relative name -> kind/content) for before/after comparisons."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(path))
            if full.is_symlink():
                out[rel] = "-> " + os.readlink(full)
            elif full.is_file():
                out[rel] = full.read_text(errors="replace")
            else:
                out[rel] = "dir"
    return out


def assert_untouched(tmp_path: Path, snap: Path) -> None:
    everything = tree(tmp_path)
    stray = [p for p in everything if not p.startswith("root")]
    assert sorted(stray) == ["outside", "outside/secret"], stray
    assert everything["outside/secret"] == "keep"
    assert sorted(p for p in everything if p.startswith("root") and not p.startswith("root/snap")) == ["root"]


def test_regular_files_dirs_and_metadata(sandbox: tuple[Path, Path]) -> None:
    snap, _ = sandbox
    layer = make_tar(
        entry("etc", tarfile.DIRTYPE, mtime=1000, mode=0o750),
        entry("etc/hello", data=b"hi\n", mtime=2000, mode=0o4711, uid=12, gid=34),
        entry("./usr/bin/tool", data=b"x", mtime=3000),
        entry("fifo", tarfile.FIFOTYPE, mode=0o600),
    )
    report = extract_layer(layer, snap)
    hello = (snap / "etc/hello").stat()
    assert (snap / "etc/hello").read_bytes() == b"hi\n"
    assert stat.S_IMODE(hello.st_mode) == 0o4711 if os.geteuid() == 0 else True
    assert hello.st_mtime == 2000
    assert (snap / "etc").stat().st_mtime == 1000  # set after its children were written
    assert stat.S_IMODE((snap / "etc").stat().st_mode) == 0o750
    assert (snap / "usr/bin/tool").read_bytes() == b"x"
    assert stat.S_ISFIFO((snap / "fifo").stat().st_mode)
    if os.geteuid() == 0:
        assert (hello.st_uid, hello.st_gid) == (12, 34)
    assert report.skipped == []


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "/abs-escape"])
def test_traversal_and_absolute_names_are_refused(tmp_path: Path, sandbox: tuple[Path, Path], name: str) -> None:
    snap, _ = sandbox
    with pytest.raises(LayerBreakout) as refused:
        extract_layer(make_tar(entry(name, data=b"bad")), snap)
    assert refused.value.entry == name and f'"{name}"' in str(refused.value)
    assert_untouched(tmp_path, snap)
    assert not Path("/abs-escape").exists()


def test_dotdot_that_stays_inside_is_resolved(sandbox: tuple[Path, Path]) -> None:
    snap, _ = sandbox
    extract_layer(make_tar(entry("a/../b", data=b"ok")), snap)
    assert (snap / "b").read_bytes() == b"ok"


def test_absolute_name_into_real_outside_dir(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    snap, outside = sandbox
    with pytest.raises(LayerBreakout):
        extract_layer(make_tar(entry(str(outside / "secret"), data=b"pwned")), snap)
    assert_untouched(tmp_path, snap)


@pytest.mark.parametrize("link_target", ["ABS_OUTSIDE", "../../outside", "../.."])
def test_file_through_escaping_symlink_parent(tmp_path: Path, sandbox: tuple[Path, Path], link_target: str) -> None:
    snap, outside = sandbox
    target = str(outside) if link_target == "ABS_OUTSIDE" else link_target
    layer = make_tar(
        entry("a", tarfile.SYMTYPE, linkname=target),
        entry("a/secret", data=b"pwned"),
        entry("a/new", data=b"pwned"),
        entry("a/sub/deeper", data=b"pwned"),
    )
    with pytest.raises(LayerBreakout) as refused:
        extract_layer(layer, snap)
    assert refused.value.entry == "a/secret" and "symlink" in str(refused.value)
    assert os.readlink(snap / "a") == target  # the symlink itself is kept verbatim
    assert_untouched(tmp_path, snap)


def test_symlink_chain_parent_is_not_followed(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    snap, outside = sandbox
    layer = make_tar(
        entry("d", tarfile.DIRTYPE),
        entry("d/link", tarfile.SYMTYPE, linkname=str(outside)),
        entry("d/link", tarfile.DIRTYPE),  # replacing the link with a dir is fine
        entry("d/link/ok", data=b"fine"),
    )
    extract_layer(layer, snap)
    assert (snap / "d/link").is_dir() and not (snap / "d/link").is_symlink()
    assert (snap / "d/link/ok").read_bytes() == b"fine"
    assert_untouched(tmp_path, snap)


def test_regular_file_replaces_symlink_instead_of_writing_through(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    snap, outside = sandbox
    layer = make_tar(
        entry("s", tarfile.SYMTYPE, linkname=str(outside / "secret")),
        entry("s", data=b"replaced"),
    )
    extract_layer(layer, snap)
    assert not (snap / "s").is_symlink()
    assert (snap / "s").read_bytes() == b"replaced"
    assert_untouched(tmp_path, snap)


def test_dir_entry_over_symlink_to_outside_dir(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    snap, outside = sandbox
    mode_before = outside.stat().st_mode
    layer = make_tar(
        entry("x", tarfile.SYMTYPE, linkname=str(outside)),
        entry("x", tarfile.DIRTYPE, mode=0o777),
    )
    extract_layer(layer, snap)
    assert outside.stat().st_mode == mode_before
    assert (snap / "x").is_dir() and not (snap / "x").is_symlink()
    assert_untouched(tmp_path, snap)


@pytest.mark.parametrize("linkname", ["ABS_SECRET", "../outside/secret", "../../outside/secret", "lnk/secret"])
def test_escaping_hardlinks_are_refused(tmp_path: Path, sandbox: tuple[Path, Path], linkname: str) -> None:
    snap, outside = sandbox
    target = str(outside / "secret") if linkname == "ABS_SECRET" else linkname
    layer = make_tar(
        entry("lnk", tarfile.SYMTYPE, linkname=str(outside)),
        entry("hard", tarfile.LNKTYPE, linkname=target),
    )
    with pytest.raises(LayerBreakout) as refused:
        extract_layer(layer, snap)
    assert refused.value.entry == "hard" and "invalid hardlink" in str(refused.value)
    assert not (snap / "hard").exists()
    assert os.stat(outside / "secret").st_nlink == 1
    assert_untouched(tmp_path, snap)


def test_hardlink_inside_the_layer(sandbox: tuple[Path, Path]) -> None:
    snap, _ = sandbox
    layer = make_tar(
        entry("bin/busybox", data=b"BB"),
        entry("bin/sh", tarfile.LNKTYPE, linkname="bin/busybox"),
    )
    report = extract_layer(layer, snap)
    assert (snap / "bin/sh").stat().st_ino == (snap / "bin/busybox").stat().st_ino
    assert report.skipped == []
    with pytest.raises(LayerBreakout, match="the target is a directory"):
        extract_layer(make_tar(entry("bin/dir-link", tarfile.LNKTYPE, linkname="bin")), snap)


def test_symlinks_may_point_anywhere(sandbox: tuple[Path, Path]) -> None:
    snap, _ = sandbox
    extract_layer(make_tar(entry("etc/mtab", tarfile.SYMTYPE, linkname="/proc/self/mounts", mtime=5)), snap)
    assert os.readlink(snap / "etc/mtab") == "/proc/self/mounts"
    assert os.lstat(snap / "etc/mtab").st_mtime == 5


def test_device_nodes_are_created_as_root(sandbox: tuple[Path, Path]) -> None:
    snap, _ = sandbox
    layer = make_tar(
        entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660, uid=0, gid=6),
        entry("dev/mem", tarfile.CHRTYPE, devmajor=1, devminor=1, mode=0o640),
    )
    report = extract_layer(layer, snap)
    if os.geteuid() != 0:
        assert {n for n, _ in report.skipped} == {"dev/sda", "dev/mem"}
        return
    sda, mem = os.lstat(snap / "dev/sda"), os.lstat(snap / "dev/mem")
    assert stat.S_ISBLK(sda.st_mode) and sda.st_rdev == os.makedev(8, 0) and stat.S_IMODE(sda.st_mode) == 0o660
    assert sda.st_gid == 6
    assert stat.S_ISCHR(mem.st_mode) and mem.st_rdev == os.makedev(1, 1) and stat.S_IMODE(mem.st_mode) == 0o640
    assert report.skipped == []


def test_gzip_layer(sandbox: tuple[Path, Path]) -> None:
    snap, _ = sandbox
    extract_layer(make_tar(entry("a/b", data=b"zip"), gz=True), snap)
    assert (snap / "a/b").read_bytes() == b"zip"


def test_user_xattrs_are_kept_and_overlay_ones_dropped(sandbox: tuple[Path, Path]) -> None:
    snap, _ = sandbox
    info, data = entry("f", data=b"x")
    info.pax_headers = {"SCHILY.xattr.user.note": "hello", "SCHILY.xattr.trusted.overlay.redirect": "/etc"}
    extract_layer(make_tar((info, data)), snap)
    try:
        assert os.getxattr(snap / "f", "user.note") == b"hello"
    except OSError:
        pytest.skip("filesystem without user xattrs")
    with pytest.raises(OSError):
        os.getxattr(snap / "f", "trusted.overlay.redirect")


def test_not_a_tar_is_invalid_argument(sandbox: tuple[Path, Path]) -> None:
    snap, _ = sandbox
    with pytest.raises(InvalidArgument):
        extract_layer(io.BytesIO(b"this is not a tar archive" * 40), snap)
