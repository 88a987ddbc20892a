"""COPY/ADD layers carry xattrs (file capabilities) from the context tar and from image layers."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from berth.builder.copier import CopyOptions, checksum, copy_into_layer, find_sources
from berth.builder.layertar import LayerWriter
from berth.builder.trees import ContextTree, MergedView
from berth.images.xattrs import from_pax

CAPS = b"\x01\x00\x00\x02\x80\x20\x00\x00" + b"\x00" * 12


def context(path: Path, files: dict[str, dict[str, str]]) -> ContextTree:
    """A context tar of one-byte files with the given PAX records."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, pax in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.pax_headers = 1, pax
            tar.addfile(info, io.BytesIO(b"x"))
    return ContextTree(path)


def copy(tmp_path: Path, tree, src: str, dest: str, view: MergedView | None = None,  # type: ignore[no-untyped-def]
         opts: CopyOptions = CopyOptions()) -> dict[str, dict[str, bytes]]:
    out = tmp_path / "layer.tar"
    with LayerWriter(out) as writer:
        copy_into_layer(writer, view or MergedView([]), find_sources(tree, src, "COPY"), dest, opts)
    with tarfile.open(out) as tar:
        return {m.name.rstrip("/"): dict(from_pax(m.pax_headers)) for m in tar.getmembers()}


def capped_record() -> dict[str, str]:
    return {"SCHILY.xattr.security.capability": CAPS.decode("utf-8", "surrogateescape")}


def test_copy_from_the_context_keeps_capabilities(tmp_path: Path) -> None:
    tree = context(tmp_path / "c.tar", {"ping": capped_record(), "plain": {}})
    layer = copy(tmp_path, tree, "ping", "/bin/ping", opts=CopyOptions(uid=7, gid=7))
    assert layer["bin/ping"] == {"security.capability": CAPS} and layer["bin"] == {}


def test_overlay_records_in_the_context_are_dropped(tmp_path: Path) -> None:
    tree = context(tmp_path / "c.tar", {"f": {"SCHILY.xattr.trusted.overlay.redirect": "/etc",
                                              "SCHILY.xattr.user.k": "v"}})
    assert copy(tmp_path, tree, "f", "/f")["f"] == {"user.k": b"v"}


def test_xattrs_change_the_checksum_only_when_present(tmp_path: Path) -> None:
    plain = context(tmp_path / "a.tar", {"f": {}})
    capped = context(tmp_path / "b.tar", {"f": capped_record()})
    again = context(tmp_path / "c.tar", {"f": {}})
    sums = [checksum(find_sources(t, "f", "COPY")) for t in (plain, capped, again)]
    assert sums[0] == sums[2] != sums[1]


def test_add_archive_members_keep_xattrs(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("pkg/tool")
        info.size, info.pax_headers = 1, capped_record()
        tar.addfile(info, io.BytesIO(b"x"))
    with tarfile.open(tmp_path / "c.tar", "w") as tar:
        info = tarfile.TarInfo("pkg.tar")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    layer = copy(tmp_path, ContextTree(tmp_path / "c.tar"), "pkg.tar", "/opt",
                 opts=CopyOptions(extract_archives=True))
    assert layer["opt/pkg/tool"] == {"security.capability": CAPS}


def test_copy_from_an_image_keeps_file_and_parent_dir_xattrs(tmp_path: Path) -> None:
    img = tmp_path / "img"
    (img / "srv" / "app").mkdir(parents=True)
    (img / "srv" / "app" / "tool").write_text("x")
    try:
        os.setxattr(img / "srv" / "app" / "tool", "user.k", b"v")
        os.setxattr(img / "srv", "user.dir", b"d")
    except OSError:
        pytest.skip("filesystem without user xattrs")
    view = MergedView([img])
    layer = copy(tmp_path, view, "/srv/app", "/srv/copy", view=view)
    assert layer["srv/copy/tool"] == {"user.k": b"v"}
    assert layer["srv"] == {"user.dir": b"d"}  # an existing parent is written whole, xattrs too
