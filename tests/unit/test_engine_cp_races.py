"""docker cp and commit against a container that changes its files meanwhile (engine.archive,
images.upperdiff, images.safefs): nothing outside the container is read or written, nothing hangs.

Each race is staged by a hook that swaps the object between the daemon's check and its use, as
a running container would (CVE-2018-15664 and relatives).
"""

from __future__ import annotations

import io
import os
import socket
import stat
import tarfile
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import berth.engine.archive._tar as archive
import berth.images.upperdiff as upperdiff
from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.archive import (
    READ_ONLY_ROOTFS, READ_ONLY_VOLUME, ArchiveService, ContainerView, ViewFs, ViewMount, stat_path,
)
from berth.engine.archive._tar import extract_tar, write_tar
from berth.errors import Conflict, InvalidArgument, NotFound, Unavailable
from berth.images.safefs import DirFds, FixedSize, open_regular

BOX: Any = SimpleNamespace(name="box")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, security.* xattrs)")


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def _member(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def _tar(path: Path, *infos: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in infos:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, link: str = "",
          mtime: int = 1000) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.mtime = kind, mode, link, mtime
    return info


def _extract(view: ContainerView | Path, tar_path: Path, dest: str = "/", **kw: Any) -> None:
    extract_tar(view, dest, BOX, tar_path, no_overwrite_dir_non_dir=False, copy_uid_gid=False, **kw)


def _hook(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, before: Any) -> None:
    """Run `before(*args)` ahead of module.name(*args) (the moment the container strikes)."""
    real = getattr(module, name)

    def hooked(*args: Any, **kwargs: Any) -> Any:
        before(*args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, hooked)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host directory the container must never reach, with a secret in it."""
    path = tmp_path / "host"
    path.mkdir()
    (path / "secret").write_bytes(b"HOST SECRET 1234")
    return path


# --- 1. an intermediate directory swapped for a symlink -------------------------------------------

def _swap_dir_for_link(root: Path, host: Path) -> None:
    if not (root / "a").is_symlink():
        os.rename(root / "a", root / "a.old")
        os.symlink(str(host), root / "a")  # absolute: the kernel would resolve it on the host


def test_cp_out_never_reads_through_a_directory_swapped_after_resolving(tmp_path: Path, host: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "secret").write_bytes(b"container data!!")
    real = ViewFs.resolve

    def resolve_then_swap(self: ViewFs, path: str, **kw: Any) -> str:
        found = real(self, path, **kw)
        _swap_dir_for_link(root, host)
        return found

    monkeypatch.setattr(ViewFs, "resolve", resolve_then_swap)
    with pytest.raises(NotFound, match="Could not find the file /a/secret in container box"):
        write_tar(ContainerView(root), "/a/secret", BOX, io.BytesIO())
    (root / "a").unlink()
    os.rename(root / "a.old", root / "a")
    with pytest.raises(NotFound):
        stat_path(ContainerView(root), "/a/secret", BOX)


def test_cp_out_reads_the_pinned_directory_when_swapped_later(tmp_path: Path, host: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "secret").write_bytes(b"container data!!")
    _hook(monkeypatch, archive, "open_regular", lambda *a: _swap_dir_for_link(root, host))
    out = io.BytesIO()
    write_tar(ContainerView(root), "/a", BOX, out)
    assert _member(out.getvalue(), "a/secret") == b"container data!!"


def test_cp_in_never_writes_through_a_directory_swapped_after_resolving(tmp_path: Path, host: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    tar_path = _tar(tmp_path / "in.tar", (_info("planted"), b"x"))
    real = ViewFs.resolve

    def resolve_then_swap(self: ViewFs, path: str, **kw: Any) -> str:
        found = real(self, path, **kw)
        if path.endswith("planted"):
            _swap_dir_for_link(root, host)
        return found

    monkeypatch.setattr(ViewFs, "resolve", resolve_then_swap)
    with pytest.raises(Conflict, match="replaced meanwhile"):
        _extract(ContainerView(root), tar_path, "/a")
    assert sorted(os.listdir(host)) == ["secret"]


def test_view_walk_refuses_a_symlinked_mount_source_parent(tmp_path: Path, host: Path) -> None:
    root, data = tmp_path / "root", tmp_path / "data"
    root.mkdir()
    (data / "vol").mkdir(parents=True)
    view = ContainerView(root, [ViewMount("/v", data / "vol")])
    os.rename(data, tmp_path / "data.old")
    os.symlink(host, data)  # after the view resolved the source: never followed
    (host / "vol").mkdir()
    with pytest.raises(NotFound):
        stat_path(view, "/v", BOX)


# --- 2. cp-in metadata never follows a symlink swapped in at the last component --------------------

def test_cp_in_metadata_goes_to_the_created_file(tmp_path: Path, host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.chmod(host / "secret", 0o600)
    before = os.stat(host / "secret")

    def swap(fd: int, *_: Any) -> None:
        if (root / "f").exists() and not (root / "f").is_symlink():
            os.unlink(root / "f")
            os.symlink(str(host / "secret"), root / "f")

    _hook(monkeypatch, os, "fchown", swap)
    _extract(ContainerView(root), _tar(tmp_path / "in.tar", (_info("f", mode=0o4777), b"x")))
    after = os.stat(host / "secret")
    assert (stat.S_IMODE(after.st_mode), after.st_mtime) == (0o600, before.st_mtime)


def test_cp_in_directory_metadata_refuses_a_swapped_symlink(tmp_path: Path, host: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    os.chmod(host, 0o700)

    def swap(parent: int, name: str, **_: Any) -> None:
        if name == "d" and not (root / "d").is_symlink():
            os.rmdir(root / "d")
            os.symlink(str(host), root / "d")

    _hook(monkeypatch, archive, "open_dir", swap)
    with pytest.raises(Conflict, match="cannot extract /d: a directory on its path was replaced meanwhile"):
        _extract(ContainerView(root), _tar(tmp_path / "in.tar", (_info("d", tarfile.DIRTYPE, mode=0o777), None)))
    assert stat.S_IMODE(os.stat(host).st_mode) == 0o700


# --- 3. sockets ----------------------------------------------------------------------------------------

def test_cp_out_of_a_directory_with_a_unix_socket_skips_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "run" / "a.txt").write_text("a\n")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "run" / "app.sock"))
        out = io.BytesIO()
        write_tar(ContainerView(root), "/run", BOX, out)
    finally:
        sock.close()
    assert _names(out.getvalue()) == ["run", "run/a.txt"]


# --- 4. a regular file swapped for a FIFO or a device node ----------------------------------------

def _swap_file(path: Path, make: Any) -> None:
    if stat.S_ISREG(os.lstat(path).st_mode):
        os.unlink(path)
        make(path)


def _write_tar_in_thread(view: ContainerView, path: str) -> bytes:
    out = io.BytesIO()
    worker = threading.Thread(target=write_tar, args=(view, path, BOX, out), daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "the copy blocks (and holds the container lock)"
    return out.getvalue()


def test_cp_out_skips_a_file_swapped_for_a_fifo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"data")
    (root / "d" / "g").write_bytes(b"kept")
    _hook(monkeypatch, archive, "open_regular", lambda p, name, st: name == "f" and _swap_file(root / "d" / "f",
                                                                                             os.mkfifo))
    data = _write_tar_in_thread(ContainerView(root), "/d")
    assert _names(data) == ["d", "d/g"]


@pytest.mark.root
@needs_root
def test_cp_out_never_reads_a_device_swapped_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").write_bytes(b"A" * 64)
    zero = (lambda p: os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 5)))  # /dev/zero
    _hook(monkeypatch, archive, "open_regular", lambda *a: _swap_file(root / "f", zero))
    assert _names(_write_tar_in_thread(ContainerView(root), "/f")) == []


def test_open_regular_requires_the_listed_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"1")
    listed = os.lstat(tmp_path / "f")
    os.mkfifo(tmp_path / "fifo")
    os.symlink("f", tmp_path / "link")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert open_regular(fd, "fifo", os.lstat(tmp_path / "fifo")) is None  # no hang either
        assert open_regular(fd, "link", listed) is None
        os.rename(tmp_path / "f", tmp_path / "old")
        (tmp_path / "f").write_bytes(b"2")
        assert open_regular(fd, "f", listed) is None  # another file now
        got = open_regular(fd, "old", listed)
        assert got is not None
        os.close(got)
    finally:
        os.close(fd)


def test_a_file_truncated_while_archived_is_padded(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        reader = FixedSize(fd, 5)
        assert reader.read(4) == b"abc\0" and reader.read(4) == b"\0" and reader.read() == b""
    finally:
        os.close(fd)


# --- 5. hard links ---------------------------------------------------------------------------------

@pytest.fixture
def mounts(tmp_path: Path) -> SimpleNamespace:
    root, vol, ro = tmp_path / "root", tmp_path / "vol", tmp_path / "ro"
    for d in (root / "vol", root / "ro", vol, ro):
        d.mkdir(parents=True)
    (ro / "secret").write_text("read-only host data\n")
    os.chmod(ro / "secret", 0o600)
    (root / "file").write_text("in the rootfs\n")
    view = ContainerView(root, [ViewMount("/vol", vol), ViewMount("/ro", ro, rw=False)])
    return SimpleNamespace(root=root, vol=vol, ro=ro, view=view)


def test_a_hard_link_across_mounts_is_refused(mounts: SimpleNamespace, tmp_path: Path) -> None:
    link = _tar(tmp_path / "in.tar", (_info("vol/x", tarfile.LNKTYPE, mode=0o666, link="ro/secret"), None))
    with pytest.raises(Unavailable, match="link /ro/secret /vol/x: invalid cross-device link"):
        _extract(mounts.view, link)
    assert not (mounts.vol / "x").exists()
    assert stat.S_IMODE(os.stat(mounts.ro / "secret").st_mode) == 0o600
    to_rootfs = _tar(tmp_path / "in2.tar", (_info("vol/y", tarfile.LNKTYPE, link="file"), None))
    with pytest.raises(Unavailable, match="cross-device"):
        _extract(mounts.view, to_rootfs)


def test_a_hard_link_within_a_mount_is_made(mounts: SimpleNamespace, tmp_path: Path) -> None:
    tar_path = _tar(tmp_path / "in.tar", (_info("a", mode=0o640), b"data"),
                    (_info("b", tarfile.LNKTYPE, mode=0o640, link="a"), None))
    _extract(mounts.view, tar_path, "/vol")
    assert os.path.samefile(mounts.vol / "a", mounts.vol / "b")
    assert stat.S_IMODE(os.stat(mounts.vol / "b").st_mode) == 0o640


def test_a_hard_link_out_of_the_destination_is_refused_before_writing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "dst").mkdir(parents=True)
    tar_path = _tar(tmp_path / "in.tar", (_info("first"), b"1"),
                    (_info("l", tarfile.LNKTYPE, link="../../etc/passwd"), None))
    with pytest.raises(InvalidArgument, match="'..' is not allowed"):
        _extract(ContainerView(root), tar_path, "/dst")
    assert os.listdir(root / "dst") == []


# --- 7, 9. xattrs and directory times, missing parents -------------------------------------------

def test_cp_in_keeps_xattrs_and_directory_times(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    try:
        os.setxattr(root, "user.probe", b"1")
    except OSError:
        pytest.skip("filesystem without user xattrs")
    f = _info("d/f", mtime=2000)
    f.pax_headers = {"SCHILY.xattr.user.k": "v", "SCHILY.xattr.trusted.overlay.opaque": "y"}
    tar_path = _tar(tmp_path / "in.tar", (_info("d", tarfile.DIRTYPE, mode=0o750, mtime=1000), None), (f, b"x"),
                    (_info("d/sub/deep", mtime=3000), b"y"))  # no entry for d/sub: made
    _extract(ContainerView(root), tar_path)
    assert os.getxattr(root / "d" / "f", "user.k") == b"v"
    assert os.listxattr(root / "d" / "f") == ["user.k"]
    assert os.stat(root / "d").st_mtime == 1000 and os.stat(root / "d" / "f").st_mtime == 2000
    assert stat.S_IMODE(os.stat(root / "d").st_mode) == 0o750
    assert (root / "d" / "sub" / "deep").read_bytes() == b"y"


@pytest.mark.root
@needs_root
def test_cp_in_keeps_file_capabilities(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    cap = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw+ep (v2)
    ping = _info("ping", mode=0o755)
    ping.pax_headers = {"SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape")}
    _extract(ContainerView(root), _tar(tmp_path / "in.tar", (ping, b"x")))
    assert os.getxattr(root / "ping", "security.capability") == cap
    out = io.BytesIO()
    write_tar(ContainerView(root), "/ping", BOX, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.getmember("ping").pax_headers["SCHILY.xattr.security.capability"].encode(
            "utf-8", "surrogateescape") == cap


# --- 6, 8. commit of a running container: the upper dir changes under the walk ---------------------

def test_commit_never_reads_a_symlink_swapped_into_the_upper_dir(tmp_path: Path, host: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    (upper / "f").write_bytes(b"container data!!")
    (upper / "d" / "g").write_bytes(b"container data!!")
    entries = upperdiff.walk_upper(upper)

    def swap(parent: int, name: str, st: Any) -> None:
        if name == "f" and not (upper / "f").is_symlink():
            os.unlink(upper / "f")
            os.symlink(str(host / "secret"), upper / "f")

    _hook(monkeypatch, upperdiff, "open_regular", swap)
    os.rename(upper / "d", upper / "d.old")
    os.symlink(str(host), upper / "d")  # a walked directory is now a link to the host
    out = tmp_path / "layer.tar"
    upperdiff.write_layer(entries, out)
    data = out.read_bytes()
    assert b"HOST SECRET" not in data
    assert _names(data) == []


def test_commit_skips_a_fifo_swapped_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "f").write_bytes(b"data")
    entries = upperdiff.walk_upper(upper)
    _hook(monkeypatch, upperdiff, "open_regular", lambda *a: _swap_file(upper / "f", os.mkfifo))
    out = tmp_path / "layer.tar"
    worker = threading.Thread(target=upperdiff.write_layer, args=(entries, out), daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive()
    assert _names(out.read_bytes()) == []


@pytest.fixture
def deep_upper(tmp_path: Path) -> Any:
    """An upper dir; removed here without recursion (shutil.rmtree, pytest's cleanup included,
    recurses per level and fails on 1100 levels)."""
    upper = tmp_path / "upper"
    upper.mkdir()
    yield upper
    while (upper / "a").is_dir():  # pull the chain up one level at a time
        if (upper / "a" / "a").is_dir():
            os.rename(upper / "a" / "a", upper / "next")
        os.rmdir(upper / "a")
        if (upper / "next").is_dir():
            os.rename(upper / "next", upper / "a")


def test_walk_upper_handles_deep_trees(tmp_path: Path, deep_upper: Path) -> None:
    upper = deep_upper
    fd = os.open(upper, os.O_RDONLY)
    for _ in range(1100):  # deeper than Python's recursion limit and than DirFds.LIMIT
        os.mkdir("a", dir_fd=fd)
        nxt = os.open("a", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    (upper / "b").write_text("after the deep branch")
    entries = upperdiff.walk_upper(upper)
    assert len(entries) == 1101 and entries[-1].rel == "b" and entries[1099].rel == "/".join(["a"] * 1100)
    assert upperdiff.write_layer(entries, tmp_path / "layer.tar") == 1101


def test_dir_fds_reopen_shallow_levels_without_following_links(tmp_path: Path) -> None:
    (tmp_path / "x" / "y" / "z").mkdir(parents=True)
    dirs = DirFds(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY))
    dirs.LIMIT = 1
    try:
        assert os.listdir(dirs.get(["x", "y", "z"])) == []
        assert os.listdir(dirs.get(["x"])) == ["y"]  # x's fd was closed: reopened
        os.rename(tmp_path / "x" / "y", tmp_path / "x" / "y.old")
        os.symlink(tmp_path, tmp_path / "x" / "y")
        with pytest.raises(NotADirectoryError):
            dirs.get(["x", "y"])
        with pytest.raises(ValueError):
            dirs.get([".."])
    finally:
        dirs.close()


# --- 10. a running container whose rootfs is not mounted here --------------------------------------

class _Containers:
    def __init__(self, container: Any, cdir: Path) -> None:
        self.container, self.cdir = container, cdir

    def get(self, ref: str) -> Any:
        return self.container

    def lock(self, cid: str) -> Any:
        import contextlib

        @contextlib.asynccontextmanager
        async def held() -> Any:
            yield

        return held()

    def container_dir(self, cid: str) -> Path:
        return self.cdir


def test_the_proc_root_fallback_maps_mounts(tmp_path: Path) -> None:
    import asyncio

    vol, ro, cdir = tmp_path / "vol", tmp_path / "ro", tmp_path / "cdir"
    for d in (vol, ro, cdir):
        d.mkdir()
    container = SimpleNamespace(id="c" * 64, name="box", host_config=typed_hc({"ReadonlyRootfs": True}),
                                state=SimpleNamespace(running=True, pid=os.getpid()),
                                mounts=[{"type": "volume", "destination": "/v", "source": str(vol), "rw": True},
                                        {"type": "bind", "destination": "/r", "source": str(ro), "rw": False}])
    service = ArchiveService(containers=_Containers(container, cdir), images=None, runtime=None, tmp_dir=tmp_path)

    async def views() -> ContainerView:
        async with service.root("box") as (_, view):
            return view

    view = asyncio.run(views())
    assert str(view.root) == f"/proc/{os.getpid()}/root"
    assert view.read_only_reason("/v/x", readonly_rootfs=True) is None  # a writable volume stays writable
    assert view.read_only_reason("/r/x", readonly_rootfs=True) == READ_ONLY_VOLUME
    assert view.read_only_reason("/etc/x", readonly_rootfs=True) == READ_ONLY_ROOTFS
    assert view.host("/v/x") == vol / "x"
