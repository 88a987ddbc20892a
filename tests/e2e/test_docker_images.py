"""Image verbs through the docker CLI: images/filters, tag, rmi, history, save/load, import."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o755
    return info, data


def test_images_tag_history_rmi(daemon: BerthDaemon) -> None:
    listing = daemon.docker("images", check=True).stdout
    assert "busybox" in listing and "latest" in listing
    image_id = daemon.docker("images", "-q", "busybox", check=True).stdout.strip()
    assert len(image_id) == 12

    daemon.docker("tag", image_id, "127.0.0.1:5999/bob/cats", check=True)
    daemon.docker("tag", "busybox", "extra:v1", check=True)
    refs = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout.split()
    assert {"busybox:latest", "127.0.0.1:5999/bob/cats:latest", "extra:v1"} <= set(refs)
    only = daemon.docker("images", "--format", "{{.Repository}}", "extra", check=True).stdout.split()
    assert only == ["extra"]

    history = daemon.docker("history", "busybox", check=True).stdout.strip().splitlines()
    assert history[0].startswith("IMAGE") and len(history) >= 2

    inspect = json.loads(daemon.docker("image", "inspect", "extra:v1", check=True).stdout)[0]
    assert inspect["Id"].endswith(image_id) or inspect["Id"].startswith("sha256:" + image_id)
    assert inspect["RootFS"]["Type"] == "layers" and inspect["Config"]["Cmd"] == ["sh"]

    out = daemon.docker("rmi", "extra:v1", "127.0.0.1:5999/bob/cats", check=True).stdout
    assert "Untagged: extra:v1" in out
    assert daemon.docker("rmi", "nosuch:tag").returncode == 1


def test_rmi_in_use_conflict(daemon: BerthDaemon) -> None:
    daemon.docker("tag", "busybox", "inuse:1", check=True)
    cid = daemon.docker("create", "inuse:1", "true", check=True).stdout.strip()
    try:
        daemon.docker("rmi", "busybox", check=False)  # busybox keeps its own tag; only check the id
        result = daemon.docker("rmi", daemon.docker("images", "-q", "inuse:1").stdout.strip())
        assert result.returncode == 1 and "conflict" in result.stderr
    finally:
        daemon.docker("rm", "-f", cid)
        daemon.docker("rmi", "inuse:1")
        daemon.bootstrap_busybox()


def test_save_load_roundtrip(daemon: BerthDaemon, tmp_path: Path) -> None:
    daemon.docker("tag", "busybox", "roundtrip:1", check=True)
    archive = tmp_path / "img.tar"
    daemon.docker("save", "-o", str(archive), "roundtrip:1", check=True)
    assert archive.stat().st_size > 1_000_000
    daemon.docker("rmi", "roundtrip:1", check=True)
    out = daemon.docker("load", "-i", str(archive), check=True).stdout
    assert "Loaded image: roundtrip:1" in out
    assert daemon.docker("run", "--rm", "roundtrip:1", "echo", "loaded").stdout == "loaded\n"
    daemon.docker("rmi", "roundtrip:1", check=True)


def test_import_rootfs_with_changes(daemon: BerthDaemon, tmp_path: Path) -> None:
    busybox = Path("/bin/busybox").read_bytes()
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(_tar([_file("bin/busybox", busybox)]))
    result = daemon.docker("import", "-c", 'CMD ["/bin/busybox", "echo", "imported"]', str(rootfs), "imported:1")
    assert result.returncode == 0, result.stderr
    assert daemon.docker("run", "--rm", "imported:1").stdout == "imported\n"
    daemon.docker("rmi", "imported:1", check=True)


def test_load_rejects_traversal_and_writes_nothing_outside(daemon: BerthDaemon, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    escape = tmp_path / "escaped.txt"
    layer = _tar([_file("../../../../../../" + str(escape).lstrip("/"), b"pwned"),
                  _file(str(victim / "abs.txt"), b"pwned")])
    link = tarfile.TarInfo("evil")
    link.type = tarfile.SYMTYPE
    link.linkname = str(tmp_path)
    layer2 = _tar([(link, None), _file("evil/through-link.txt", b"pwned")])
    import hashlib

    diff_ids = ["sha256:" + hashlib.sha256(x).hexdigest() for x in (layer, layer2)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": []}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["evil:1"],
                            "Layers": ["l1/layer.tar", "l2/layer.tar"]}]).encode()
    archive = tmp_path / "evil.tar"
    archive.write_bytes(_tar([_file("manifest.json", manifest), _file(config_name, config),
                              _file("l1/layer.tar", layer), _file("l2/layer.tar", layer2)]))
    daemon.docker("load", "-i", str(archive))
    # Whether the load is refused or the bad entries are dropped, nothing may land outside the root.
    result = daemon.docker("run", "--rm", "evil:1", "true")
    assert not escape.exists() and not (victim / "abs.txt").exists()
    assert not (tmp_path / "through-link.txt").exists()
    if result.returncode == 0:
        daemon.docker("rmi", "evil:1", check=True)


def test_load_garbage_is_a_clear_error(daemon: BerthDaemon, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive" * 100)
    result = daemon.docker("load", "-i", str(junk))
    # dockerd reports a failed load inside its 200 stream: the CLI prints it without the
    # "Error response from daemon" prefix, as it does for dockerd
    assert result.returncode == 1 and result.stderr == "archive/tar: invalid tar header\n"
