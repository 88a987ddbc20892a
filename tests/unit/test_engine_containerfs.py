"""docker cp's view of a container (berth.engine.archive._view) and cp through it, on plain dirs."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import make_tar

from berth.engine.archive import READ_ONLY_ROOTFS, READ_ONLY_VOLUME, ContainerView, ViewMount, stat_path, view_mounts
from berth.engine.archive._tar import extract_tar, write_tar
from berth.errors import InvalidArgument, Unavailable

BOX = SimpleNamespace(name="box")


@pytest.fixture
def tree(tmp_path: Path) -> SimpleNamespace:
    """rootfs with /etc, /var/data (and /data -> /var/data), a volume and a read-only bind."""
    root, vol, ro, host_etc = tmp_path / "root", tmp_path / "vol", tmp_path / "ro", tmp_path / "hostetc"
    for d in (root / "etc", root / "var" / "data", root / "mnt" / "ro", vol, ro, host_etc):
        d.mkdir(parents=True)
    os.symlink("/var/data", root / "data")
    (root / "var" / "data" / "under").write_text("rootfs\n")
    (vol / "in-volume").write_text("volume\n")
    (ro / "keep").write_text("ro\n")
    (host_etc / "secret").write_text("host\n")
    view = ContainerView(root, [ViewMount("/data", vol), ViewMount("/mnt/ro", ro, rw=False)])
    return SimpleNamespace(root=root, vol=vol, ro=ro, host_etc=host_etc, view=view)


def _tar(tmp_path: Path, entries: list[tuple[str, bytes | None, str]]) -> Path:
    return make_tar(tmp_path / "in.tar", entries)


def test_paths_under_a_mount_map_to_its_source(tree: SimpleNamespace) -> None:
    view = tree.view
    # /data is a symlink in the image: the volume is mounted where it points, as the runtime does
    assert view.resolve("/data/in-volume") == "/var/data/in-volume"
    assert view.host(view.resolve("/data/in-volume")) == tree.vol / "in-volume"
    assert view.host("/var/data") == tree.vol
    assert view.host("/etc/passwd") == tree.root / "etc" / "passwd"
    assert view.is_mount_point("/var/data") and not view.is_mount_point("/var")
    assert view.host(view.resolve("/var/data/../data/x")) == tree.vol / "x"


def test_symlinks_in_a_volume_resolve_inside_the_container(tree: SimpleNamespace) -> None:
    os.symlink("/../../../../" + str(tree.host_etc).lstrip("/"), tree.vol / "abs")
    os.symlink("../../../../../..", tree.vol / "up")
    os.symlink("/mnt/ro/keep", tree.vol / "to-ro")
    view = tree.view
    # an absolute target starts again at the container root, never the host's
    assert view.host(view.resolve("/data/abs/secret")) == tree.root.joinpath(*tree.host_etc.parts[1:], "secret")
    assert view.resolve("/data/up/etc") == "/etc"
    assert view.host(view.resolve("/data/to-ro")) == tree.ro / "keep"
    assert view.resolve("/data/abs", follow_last=False) == "/var/data/abs"


def test_host_symlinks_in_a_source_are_the_hosts(tmp_path: Path) -> None:
    root, real = tmp_path / "root", tmp_path / "real"
    root.mkdir()
    real.mkdir()
    os.symlink(real, tmp_path / "alias")  # `-v /alias:/x`: the kernel mounts /real
    view = ContainerView(root, [ViewMount("/x", tmp_path / "alias")])
    assert view.host(view.resolve("/x/f")) == real / "f"


def test_nested_mounts_and_listing(tree: SimpleNamespace, tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    view = ContainerView(tree.root, [ViewMount("/mnt/ro", tree.ro, rw=False), ViewMount("/mnt/ro/rw", inner),
                                     ViewMount("/new", tree.vol)])
    assert view.host("/mnt/ro/rw/f") == inner / "f"
    assert view.read_only_reason("/mnt/ro/f", readonly_rootfs=False) == READ_ONLY_VOLUME
    assert view.read_only_reason("/mnt/ro/rw/f", readonly_rootfs=True) is None
    assert view.read_only_reason("/etc/f", readonly_rootfs=True) == READ_ONLY_ROOTFS
    assert view.read_only_reason("/etc/f", readonly_rootfs=False) is None
    # a mount point the rootfs lacks (a container that never ran) is still listed
    assert "new" in view.listdir("/") and view.listdir("/mnt/ro") == ["keep", "rw"]


def test_engine_files_follow_the_rootfs_rule(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    view = ContainerView(root, [ViewMount("/etc/hosts", tmp_path / "hosts", volume=False)])
    assert view.host("/etc/hosts") == tmp_path / "hosts"
    assert view.read_only_reason("/etc/hosts", readonly_rootfs=True) == READ_ONLY_ROOTFS


def test_view_mounts_skip_tmpfs_and_missing_engine_files(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("")
    container = SimpleNamespace(mounts=[
        {"type": "volume", "destination": "/v", "source": "/var/lib/x/_data", "name": "x", "rw": True},
        {"type": "bind", "destination": "/b", "source": "/srv", "rw": False},
        {"type": "tmpfs", "destination": "/t", "options": ["size=1m"]},
    ])
    mounts = view_mounts(container, tmp_path)  # type: ignore[arg-type]
    assert [(m.destination, m.rw, m.volume) for m in mounts] == [
        ("/etc/hosts", True, False), ("/v", True, True), ("/b", False, True)]


def test_stat_and_tar_read_through_mounts(tree: SimpleNamespace) -> None:
    info = stat_path(tree.view, "/data/in-volume", BOX)  # type: ignore[arg-type]
    assert info["name"] == "in-volume" and info["size"] == len("volume\n")
    assert stat_path(tree.view, "/data", BOX)["linkTarget"] == "/var/data"  # type: ignore[arg-type]
    out = io.BytesIO()
    write_tar(tree.view, "/var", BOX, out)  # type: ignore[arg-type]
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        names = tar.getnames()
        assert "var/data/in-volume" in names and "var/data/under" not in names  # the volume hides it
    out = io.BytesIO()
    write_tar(tree.view, "/data/.", BOX, out)  # type: ignore[arg-type]
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        assert tar.getnames() == [".", "./in-volume"]


def test_extract_into_a_volume_and_refusals(tree: SimpleNamespace, tmp_path: Path) -> None:
    box = BOX
    extract_tar(tree.view, "/data", box, _tar(tmp_path, [("new", b"hi", "")]),  # type: ignore[arg-type]
                no_overwrite_dir_non_dir=False, copy_uid_gid=False)
    assert (tree.vol / "new").read_bytes() == b"hi" and not (tree.root / "var" / "data" / "new").exists()
    with pytest.raises(InvalidArgument, match="mounted volume is marked read-only"):
        extract_tar(tree.view, "/mnt/ro", box, _tar(tmp_path, [("x", b"x", "")]),  # type: ignore[arg-type]
                    no_overwrite_dir_non_dir=False, copy_uid_gid=False)
    # an archive that links into the read-only mount and then writes through the link
    sneaky = _tar(tmp_path, [("hop", None, "/mnt/ro"), ("hop/x", b"x", "")])
    with pytest.raises(InvalidArgument, match="mounted volume is marked read-only"):
        extract_tar(tree.view, "/etc", box, sneaky, no_overwrite_dir_non_dir=False,  # type: ignore[arg-type]
                    copy_uid_gid=False)
    assert sorted(os.listdir(tree.ro)) == ["keep"]
    with pytest.raises(InvalidArgument, match="container rootfs is marked read-only"):
        extract_tar(tree.view, "/etc", box, _tar(tmp_path, [("y", b"y", "")]),  # type: ignore[arg-type]
                    no_overwrite_dir_non_dir=False, copy_uid_gid=False, readonly_rootfs=True)


def test_extract_never_leaves_the_view_through_a_volume_symlink(tree: SimpleNamespace, tmp_path: Path) -> None:
    os.symlink("/../../../../" + str(tree.host_etc).lstrip("/"), tree.vol / "escape")
    inside = tree.root.joinpath(*tree.host_etc.parts[1:])  # where the link points in the container
    inside.mkdir(parents=True)
    extract_tar(tree.view, "/data/escape", BOX, _tar(tmp_path, [("planted", b"p", "")]),  # type: ignore[arg-type]
                no_overwrite_dir_non_dir=False, copy_uid_gid=False)
    assert not (tree.host_etc / "planted").exists()
    assert (inside / "planted").read_bytes() == b"p"


def test_a_mount_point_is_never_replaced(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hosts").write_text("image\n")
    (tmp_path / "hosts").write_text("managed\n")
    view = ContainerView(root, [ViewMount("/etc/hosts", tmp_path / "hosts", volume=False)])
    with pytest.raises(Unavailable, match="device or resource busy"):
        extract_tar(view, "/etc", BOX, _tar(tmp_path, [("hosts", b"evil", "")]),  # type: ignore[arg-type]
                    no_overwrite_dir_non_dir=False, copy_uid_gid=False)
    assert (tmp_path / "hosts").read_text() == "managed\n"
