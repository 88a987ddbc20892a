"""cp/diff/commit filesystem work (berth.engine.archive, berth.engine.rootpath) on plain dirs."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import make_tar

from berth.engine.archive._changes import changes, layer_tar
from berth.engine.archive._paths import go_file_mode, split_request_path, stat_path
from berth.engine.archive._tar import extract_tar
from berth.engine.rootpath import resolve_in_root
from berth.errors import InvalidArgument, NotFound

BOX = SimpleNamespace(name="box")


def test_resolve_in_root_keeps_symlinks_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/../../../etc", root / "abs")
    os.symlink("../../..", root / "etc" / "up")
    os.symlink("loop", root / "loop")
    assert resolve_in_root(root, "/abs/passwd") == root / "etc" / "passwd"
    assert resolve_in_root(root, "/etc/up/etc") == root / "etc"
    assert resolve_in_root(root, "/abs", follow_last=False) == root / "abs"
    with pytest.raises(InvalidArgument, match="too many levels"):
        resolve_in_root(root, "/loop")


def test_split_request_path() -> None:
    assert split_request_path("etc/hosts") == ("/etc/hosts", "hosts")
    assert split_request_path("/data/.") == ("/data/.", ".")
    assert split_request_path("/") == ("/", "/")


def test_go_file_mode_bits() -> None:
    assert go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_file_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755


def test_stat_reports_link_targets_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "f").write_text("x")
    os.symlink("/etc/f", tmp_path / "link")
    info = stat_path(tmp_path, "/link", BOX)  # type: ignore[arg-type]
    assert info["name"] == "link" and info["linkTarget"] == "/etc/f"
    with pytest.raises(NotFound, match="Could not find the file /nope in container box"):
        stat_path(tmp_path, "/nope", BOX)  # type: ignore[arg-type]


def _tar(tmp_path: Path, entries: list[tuple[str, bytes | None, str]]) -> Path:
    return make_tar(tmp_path / "in.tar", entries)


def test_extract_never_writes_through_symlinks(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "dst").mkdir(parents=True)
    outside.mkdir()
    (root / outside.relative_to("/")).mkdir(parents=True)  # what the link means inside the root
    os.symlink(str(outside), root / "dst" / "evil")  # absolute host path: means /<outside> in the root
    os.symlink(str(outside / "target"), root / "dst" / "file")
    tar = _tar(tmp_path, [("evil/x", b"1", ""), ("file", b"2", ""), ("sub", None, ""), ("sub/l", None, "/etc")])
    extract_tar(root, "/dst", BOX, tar, no_overwrite_dir_non_dir=False, copy_uid_gid=False)  # type: ignore[arg-type]
    assert list(outside.iterdir()) == []
    assert (root / outside.relative_to("/") / "x").read_text() == "1"  # landed inside the root
    assert (root / "dst" / "file").read_text() == "2" and not (root / "dst" / "file").is_symlink()
    assert os.readlink(root / "dst" / "sub" / "l") == "/etc"
    with pytest.raises(InvalidArgument, match="not allowed"):
        extract_tar(root, "/dst", BOX, _tar(tmp_path, [("../x", b"1", "")]),  # type: ignore[arg-type]
                    no_overwrite_dir_non_dir=False, copy_uid_gid=False)
    with pytest.raises(InvalidArgument, match="not a directory"):
        extract_tar(root, "/dst/file", BOX, tar, no_overwrite_dir_non_dir=False, copy_uid_gid=False)  # type: ignore[arg-type]


def test_changes_and_layer_tar(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in (lower / "etc", lower / "bin", upper / "etc" / "app", upper / "bin", upper / "proc"):
        d.mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root")
    (lower / "bin" / "ls").write_text("elf")
    (upper / "etc" / "passwd").write_text("root2")
    (upper / "etc" / "app" / "conf").write_text("1")
    (upper / "etc" / "hosts").write_text("")  # a mount point the engine made
    if os.geteuid() == 0:
        os.mknod(upper / "bin" / "ls", stat.S_IFCHR | 0o600, 0)  # overlay whiteout
    found = {c["Path"]: c["Kind"] for c in changes(upper, [lower], ["/proc", "/etc/hosts"])}
    expected = {"/etc": 0, "/etc/app": 1, "/etc/app/conf": 1, "/etc/passwd": 0}
    if os.geteuid() == 0:
        expected.update({"/bin": 0, "/bin/ls": 2})
    assert found == expected
    out = tmp_path / "layer.tar"
    layer_tar(upper, ["/proc", "/etc/hosts"], out)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"etc", "etc/app/conf", "etc/passwd"} <= names and "etc/hosts" not in names and "proc" not in names
    if os.geteuid() == 0:
        assert "bin/.wh.ls" in names
