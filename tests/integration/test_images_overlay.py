"""Whiteouts and opaque dirs in real snapshots, checked through a real overlay mount (root)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.images import ImageStore
from berth.images._busybox import host_architecture
from berth.images._extract import extract_layer
from berth.images._layer_check import LayerBreakout
from berth.state import Database

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def layer(*entries: tuple[str, bytes, bytes]) -> bytes:
    """(name, type, data) entries -> tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


F, D = tarfile.REGTYPE, tarfile.DIRTYPE
LOWER = layer(("etc", D, b""), ("etc/a", F, b"a"), ("etc/b", F, b"b"), ("d", D, b""), ("d/x", F, b"x"))
UPPER = layer(("etc/.wh.a", F, b""), ("d", D, b""), ("d/.wh..wh..opq", F, b""), ("d/y", F, b"y"),
              ("gone/.wh.deep", F, b""))


def test_whiteouts_become_overlay_form(tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    snap.mkdir()
    report = extract_layer(io.BytesIO(UPPER), snap)
    wh = os.lstat(snap / "etc/a")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert os.getxattr(snap / "d", "trusted.overlay.opaque") == b"y"
    assert not (snap / "d/.wh..wh..opq").exists() and not (snap / "etc/.wh.a").exists()
    assert stat.S_ISCHR(os.lstat(snap / "gone/deep").st_mode)
    assert report.skipped == []


def test_crafted_whiteout_names_stay_inside(tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    snap.mkdir()
    (tmp_path / "victim").write_text("keep")
    for name in ("../.wh.victim", ".wh..", ".wh..."):
        with pytest.raises(LayerBreakout) as refused:
            extract_layer(io.BytesIO(layer((name, F, b""))), snap)
        assert refused.value.entry == name
    report = extract_layer(io.BytesIO(layer(("lnk", tarfile.SYMTYPE, b""))), snap)
    assert (tmp_path / "victim").read_text() == "keep"
    assert {n for n, _ in report.skipped} == {"lnk"}


@pytest.fixture
def mountpoint(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "merged"
    target.mkdir()
    yield target
    subprocess.run(["umount", str(target)], capture_output=True, check=False)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_overlay_of_layer_dirs_applies_whiteouts(tmp_path: Path, mountpoint: Path) -> None:
    db = Database(tmp_path / "state.db")
    store = ImageStore(tmp_path / "root", db)
    lower_path, upper_path = tmp_path / "l.tar", tmp_path / "u.tar"
    lower_path.write_bytes(LOWER)
    upper_path.write_bytes(UPPER)
    config = {"architecture": host_architecture(), "os": "linux", "created": "2024-01-01T00:00:00Z",
              "config": {}}
    image = store.add_image(config, [lower_path, upper_path], "ovl:1")
    assert image.layers == (sha(LOWER), sha(UPPER))
    dirs = store.layer_dirs(image)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + ":".join(map(str, dirs)),
                    str(mountpoint)], check=True)
    assert sorted(os.listdir(mountpoint / "etc")) == ["b"]
    assert sorted(os.listdir(mountpoint / "d")) == ["y"]
    subprocess.run(["umount", str(mountpoint)], check=True)
    db.close()


def test_saved_config_is_exact_bytes(tmp_path: Path) -> None:
    """The image ID is the digest of the stored config bytes, whatever their formatting."""
    db = Database(tmp_path / "state.db")
    store = ImageStore(tmp_path / "root", db)
    config = json.dumps({"os": "linux", "architecture": host_architecture(),
                         "rootfs": {"type": "layers", "diff_ids": [sha(LOWER)]}}, indent=3).encode()
    files = {"l.tar": LOWER, "cfg.json": config,
             "manifest.json": json.dumps([{"Config": "cfg.json", "RepoTags": None, "Layers": ["l.tar"]}]).encode()}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    assert store.load(buf) == [f"Loaded image ID: {sha(config)}"]
    assert (store.root / "blobs/sha256" / sha(config)[7:]).read_bytes() == config
    db.close()
