"""Context trees, merged layer views, COPY layer writing, upper-dir diffs, context files, cache."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
from pathlib import Path

import pytest

from berth.builder.cache import BuildCache, step_key
from berth.builder.context import prepare_context
from berth.builder.copier import CopyOptions, Source, checksum, chown_ids, copy_into_layer, find_sources
from berth.builder.dockerignore import DockerIgnore
from berth.builder.layertar import LayerWriter, diff_upper
from berth.builder.trees import ContextTree, HeredocTree, MergedView, clean_source, resolve
from berth.errors import InvalidArgument
from berth.state import Database

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are character devices (mknod)")


def make_tar(path: Path, files: dict[str, bytes | str | None], links: dict[str, str] | None = None) -> Path:
    """files: name -> bytes (file) | None (dir); links: name -> symlink target."""
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                raw = data.encode() if isinstance(data, str) else data
                info.size, info.mode = len(raw), 0o644
                tar.addfile(info, io.BytesIO(raw))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def read_layer(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


def layer_bytes(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


# -- context ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [None, gzip.compress, bz2.compress, lzma.compress])
def test_prepare_context_decompresses_and_terminates(tmp_path: Path, compress) -> None:
    tar = make_tar(tmp_path / "c.tar", {"Dockerfile": "FROM a\n"})
    data = tar.read_bytes()
    data = data[: len(data) - 1024 - 100] if compress is None else compress(data)  # unterminated, too
    raw = tmp_path / "raw"
    raw.write_bytes(data if compress else tar.read_bytes().rstrip(b"\0"))
    out = prepare_context(raw, tmp_path / "context.tar")
    tree = ContextTree(out)
    assert tree.read("Dockerfile", 100) == b"FROM a\n"


def test_bad_compressed_context(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(InvalidArgument, match="decompress"):
        prepare_context(raw, tmp_path / "context.tar")


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/etc/evil"])
def test_context_with_traversal_entries_is_rejected(tmp_path: Path, name: str) -> None:
    tar = make_tar(tmp_path / "c.tar", {"ok": "x", name: "boom"})
    with pytest.raises(InvalidArgument, match="points outside the context"):
        ContextTree(tar)
    assert not (tmp_path.parent / "evil").exists()


def test_context_tree_implied_dirs_symlinks_and_ignore(tmp_path: Path) -> None:
    tar = make_tar(tmp_path / "c.tar", {"a/b/c.txt": "c", "a/d.log": "d", "top": "t"}, {"link": "a/b", "abs": "/a"})
    tree = ContextTree(tar, DockerIgnore("a/*.log\n"))
    assert sorted(tree.children([])) == ["a", "abs", "link", "top"]
    assert tree.entry(["a"]).kind == "dir"  # type: ignore[union-attr]
    assert resolve(tree, "link/c.txt") == ["a", "b", "c.txt"]
    assert resolve(tree, "abs/../top") == ["top"]
    assert resolve(tree, "../../../top") == ["top"]
    assert tree.entry(["a", "d.log"]) is None
    assert tree.raw_entry("a/d.log") is not None


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    tree = ContextTree(make_tar(tmp_path / "c.tar", {}, {"x": "y", "y": "x"}))
    with pytest.raises(InvalidArgument, match="too many levels"):
        resolve(tree, "x")


@pytest.mark.parametrize("path, cleaned", [("a/b", "a/b"), ("/a", "a"), ("./a/../b", "b"), (".", ""), ("", "")])
def test_clean_source(path: str, cleaned: str) -> None:
    assert clean_source(path) == cleaned


@pytest.mark.parametrize("path", ["..", "../x", "a/../../x"])
def test_source_outside_context(path: str) -> None:
    with pytest.raises(InvalidArgument, match="forbidden path outside the build context"):
        clean_source(path)


# -- merged view -----------------------------------------------------------------------------------


@needs_root
def test_merged_view_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    low, mid, top = (tmp_path / n for n in ("low", "mid", "top"))
    for d in (low / "etc", low / "opq", mid / "opq", top):
        d.mkdir(parents=True, exist_ok=True)
    (low / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nbob:x:1000:1001::/home/bob:/bin/sh\nann:x:1003:1004::/:/bin/sh\n")
    (low / "etc" / "group").write_text("root:x:0:\nbob:x:1002:\n")
    (low / "gone").write_text("x")
    (low / "opq" / "old").write_text("x")
    (mid / "opq" / "new").write_text("y")
    os.setxattr(mid / "opq", "trusted.overlay.opaque", b"y")
    os.mknod(top / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (top / "bin").symlink_to("usr/bin")
    view = MergedView([top, mid, low])
    assert view.entry(["gone"]) is None
    assert sorted(view.children([])) == ["bin", "etc", "opq"]
    assert view.children(["opq"]) == ["new"]
    assert view.entry(["opq", "old"]) is None
    assert resolve(view, "/bin/sh") == ["usr", "bin", "sh"]
    assert chown_ids("bob", view) == (1000, 1002)      # the group of the same name
    assert chown_ids("ann", view) == (1003, 1004)      # no such group: the primary one
    assert chown_ids("ann:bob", view) == (1003, 1002)
    assert chown_ids("42", view) == (42, 42)
    with pytest.raises(InvalidArgument, match="can't find user nobody"):
        chown_ids("nobody", view)


# -- COPY ------------------------------------------------------------------------------------------


def copy(tmp_path: Path, tree, srcs: list[str], dest: str, view: MergedView | None = None,
         opts: CopyOptions = CopyOptions()) -> dict[str, tarfile.TarInfo]:
    out = tmp_path / "layer.tar"
    sources = [s for src in srcs for s in find_sources(tree, src, "COPY")]
    with LayerWriter(out) as writer:
        copy_into_layer(writer, view or MergedView([]), sources, dest, opts)
    return read_layer(out)


@pytest.fixture
def ctx(tmp_path: Path) -> ContextTree:
    return ContextTree(make_tar(tmp_path / "c.tar", {"f.txt": "F", "d/x": "X", "d/sub/y": "Y", "g.txt": "G"},
                                {"lnk": "f.txt"}))


def test_copy_file_to_path(tmp_path: Path, ctx: ContextTree) -> None:
    layer = copy(tmp_path, ctx, ["f.txt"], "/opt/app/renamed")
    assert list(layer) == ["opt", "opt/app", "opt/app/renamed"]
    assert layer["opt/app/renamed"].uid == 0 and layer["opt"].mode == 0o755


def test_copy_file_into_dir(tmp_path: Path, ctx: ContextTree) -> None:
    assert "opt/f.txt" in copy(tmp_path, ctx, ["f.txt"], "/opt/")


def test_copy_dir_copies_contents(tmp_path: Path, ctx: ContextTree) -> None:
    layer = copy(tmp_path, ctx, ["d"], "/dst")
    assert {"dst/x", "dst/sub", "dst/sub/y"} <= set(layer) and "dst/d" not in layer


def test_copy_glob_and_multiple_sources(tmp_path: Path, ctx: ContextTree) -> None:
    layer = copy(tmp_path, ctx, ["*.txt"], "/t/")
    assert {"t/f.txt", "t/g.txt"} <= set(layer)
    with pytest.raises(InvalidArgument, match="must be a directory and end with a /"):
        copy(tmp_path, ctx, ["f.txt", "g.txt"], "/t")


def test_copy_missing_source(tmp_path: Path, ctx: ContextTree) -> None:
    with pytest.raises(InvalidArgument, match="file not found in build context"):
        copy(tmp_path, ctx, ["nope"], "/x")


def test_copy_symlink_source_is_followed_and_chown_chmod(tmp_path: Path, ctx: ContextTree) -> None:
    layer = copy(tmp_path, ctx, ["lnk"], "/x", opts=CopyOptions(uid=7, gid=8, chmod=0o600))
    assert layer["x"].isreg() and (layer["x"].uid, layer["x"].gid, layer["x"].mode) == (7, 8, 0o600)
    assert layer_bytes(tmp_path / "layer.tar", "x") == b"F"


def test_copy_into_existing_dir_keeps_its_metadata(tmp_path: Path, ctx: ContextTree) -> None:
    img = tmp_path / "img"
    (img / "srv").mkdir(parents=True)
    os.chmod(img / "srv", 0o700)
    layer = copy(tmp_path, ctx, ["f.txt"], "/srv", view=MergedView([img]))
    assert layer["srv"].mode == 0o700 and "srv/f.txt" in layer


def test_copy_follows_symlinked_destination_dirs(tmp_path: Path, ctx: ContextTree) -> None:
    img = tmp_path / "img"
    (img / "usr" / "bin").mkdir(parents=True)
    (img / "bin").symlink_to("usr/bin")
    assert "usr/bin/f.txt" in copy(tmp_path, ctx, ["f.txt"], "/bin/", view=MergedView([img]))


def test_add_extracts_local_archives(tmp_path: Path) -> None:
    inner = make_tar(tmp_path / "inner.tar", {"pkg/a": "A"})
    evil = make_tar(tmp_path / "evil.tar", {"pkg/a": "A", "../escape": "E"})
    outer = make_tar(tmp_path / "c.tar", {"pkg.tar.gz": gzip.compress(inner.read_bytes()), "plain": "P",
                                          "evil.tar": evil.read_bytes()})
    tree = ContextTree(outer)
    layer = copy(tmp_path, tree, ["pkg.tar.gz"], "/opt", opts=CopyOptions(extract_archives=True))
    assert "opt/pkg/a" in layer
    # a member leaving the destination fails the step (moby's Unpack), it is not dropped quietly
    with pytest.raises(InvalidArgument, match='"../escape" is outside of "/opt"'):
        copy(tmp_path, tree, ["evil.tar"], "/opt", opts=CopyOptions(extract_archives=True))
    layer = copy(tmp_path, tree, ["plain"], "/opt/plain", opts=CopyOptions(extract_archives=True))
    assert "opt/plain" in layer


def test_heredoc_tree(tmp_path: Path) -> None:
    tree = HeredocTree({"EOF": b"hello\n"})
    sources = [Source(tree, ["EOF"], tree.entry(["EOF"]))]  # type: ignore[arg-type]
    out = tmp_path / "l.tar"
    with LayerWriter(out) as writer:
        copy_into_layer(writer, MergedView([]), sources, "/greeting", CopyOptions())
    assert layer_bytes(out, "greeting") == b"hello\n"


def test_checksum_changes_with_content_only(tmp_path: Path) -> None:
    a = ContextTree(make_tar(tmp_path / "a.tar", {"d/x": "1"}))
    b = ContextTree(make_tar(tmp_path / "b.tar", {"d/x": "1"}))
    c = ContextTree(make_tar(tmp_path / "c.tar", {"d/x": "2"}))
    sums = [checksum(find_sources(t, "d", "COPY")) for t in (a, b, c)]
    assert sums[0] == sums[1] != sums[2]


# -- upper dir diff --------------------------------------------------------------------------------


@needs_root
def test_diff_upper_translates_overlay_notation(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hosts").write_text("")            # runtime mount point: left out
    (upper / "etc" / "app.conf").write_text("x")
    os.mknod(upper / "etc" / "old", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "cache").mkdir()
    os.setxattr(upper / "cache", "trusted.overlay.opaque", b"y")
    (upper / "proc").mkdir()                            # runtime mount point: left out
    (upper / "link").symlink_to("etc/app.conf")
    os.link(upper / "etc" / "app.conf", upper / "hard")
    out = tmp_path / "l.tar"
    diff_upper(upper, out, lower=lambda rel: None)
    layer = read_layer(out)
    assert set(layer) == {"cache", "cache/.wh..wh..opq", "etc", "etc/app.conf", "etc/.wh.old", "hard", "link"}
    assert layer["hard"].islnk() and layer["link"].issym()


def test_diff_of_empty_upper(tmp_path: Path) -> None:
    (tmp_path / "upper").mkdir()
    assert diff_upper(tmp_path / "upper", tmp_path / "l.tar", lower=lambda rel: None) == 0


# -- cache -----------------------------------------------------------------------------------------


def test_cache_store_lookup_and_prune(tmp_path: Path) -> None:
    cache = BuildCache(Database(tmp_path / "db"))
    key = step_key("sha256:p", "RUN x", "", {"A": "1"})
    assert key != step_key("sha256:p", "RUN x", "", {"A": "2"})
    assert key == step_key("sha256:p", "RUN x", "", {"A": "1"})
    cache.store(key, "sha256:img")
    assert cache.lookup(key, lambda i: True) == "sha256:img"
    assert cache.lookup(key, lambda i: False) is None
    assert cache.lookup(key, lambda i: True) is None  # dropped when its image was gone
    cache.store(key, "sha256:img")
    assert cache.prune(lambda i: False) == 1


def test_cache_clear_everything_or_what_is_older(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import berth.builder.cache as cache_module

    cache = BuildCache(Database(tmp_path / "db"))
    monkeypatch.setattr(cache_module.time, "time", lambda: 100.0)
    cache.store("old", "sha256:a")
    monkeypatch.setattr(cache_module.time, "time", lambda: 200.0)
    cache.store("new", "sha256:b")
    cache.store("new", "sha256:c")
    assert cache.clear(older_than=150.0) == ["old"]
    assert cache.lookup("new", lambda i: True) in ("sha256:b", "sha256:c")
    assert sorted(cache.clear()) == ["new"]
    assert cache.lookup("new", lambda i: True) is None and cache.clear() == []
