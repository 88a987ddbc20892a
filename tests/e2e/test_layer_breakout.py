"""Layers that would write outside their root are refused, whichever way they arrive.

docker load (docker-py), docker import (CLI), docker pull (from the daemon's own registry) and a
build context each get a layer holding one escaping entry: a `..` name, an absolute name, a write
through a symlink the layer made, a hard link out. Each is refused with an error naming the entry
and the layer, and leaves no new blob, layer, image or tag. Device nodes in a layer are created
(as dockerd does), and the container's device cgroup still keeps it from opening them.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.helpers import BerthDaemon, free_port

pytestmark = pytest.mark.root

F, D, S, H = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
# (what is tried, the layer's entries as (name, type, data-or-linkname), the entry to be named)
ESCAPES: dict[str, tuple[list[tuple[str, bytes, str]], str]] = {
    "dotdot": ([("ok", F, "fine"), ("../../../../tmp/berth-breakout-dotdot", F, "evil")],
               "../../../../tmp/berth-breakout-dotdot"),
    "absolute": ([("/tmp/berth-breakout-abs", F, "evil")], "/tmp/berth-breakout-abs"),
    "through-symlink": ([("etc", S, "/tmp"), ("etc/berth-breakout-link", F, "evil")], "etc/berth-breakout-link"),
    "hardlink-out": ([("h", H, "../../../../etc/passwd")], "h"),
}


def layer_tar(entries: list[tuple[str, bytes, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, 0o755 if kind == D else 0o644
            if kind == F:
                info.size = len(data.encode())
                tar.addfile(info, io.BytesIO(data.encode()))
            else:
                info.linkname = data
                tar.addfile(info)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(layer: bytes) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                       "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()


def saved_image(layer: bytes, repo_tag: str) -> bytes:
    files = {"manifest.json": json.dumps([{"Config": "config.json", "RepoTags": [repo_tag],
                                           "Layers": ["layer.tar"]}]).encode(),
             "config.json": image_config(layer), "layer.tar": layer}
    return layer_tar_of_files(files)


def layer_tar_of_files(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def d() -> Iterator[BerthDaemon]:
    daemon = BerthDaemon(extra_args=("--registry-addr", f"127.0.0.1:{free_port()}",
                                     "--registry-anonymous-push", "true"))
    try:
        daemon.start()
        daemon.bootstrap_busybox()
        yield daemon
    finally:
        daemon.destroy()


@pytest.fixture()
def client(d: BerthDaemon) -> Iterator[Any]:
    c = docker.DockerClient(base_url=d.host, version="1.50", timeout=60)
    yield c
    c.close()


def engine_state(d: BerthDaemon, client: Any) -> dict[str, Any]:
    """Everything a refused layer must not add to: blobs, unpacked layers, images, tags."""
    blobs = sorted(p.name for p in (d.root / "blobs" / "sha256").iterdir())
    layers = sorted(p.name for p in (d.root / "layers").iterdir())
    images = sorted((i.id, tuple(i.tags)) for i in client.images.list(all=True))
    staging = sorted(str(p.relative_to(d.root)) for top in (d.root / "blobs" / "tmp", d.root / "tmp")
                     if top.is_dir() for p in top.rglob("*") if p.is_file())
    return {"blobs": blobs, "layers": layers, "images": images, "staging": staging}


def assert_nothing_outside() -> None:
    for name in ("berth-breakout-dotdot", "berth-breakout-abs", "berth-breakout-link"):
        assert not (Path("/tmp") / name).exists(), f"/tmp/{name} was written"


@pytest.mark.parametrize("case", list(ESCAPES))
def test_docker_load_refuses_the_layer(d: BerthDaemon, client: Any, case: str) -> None:
    entries, entry = ESCAPES[case]
    layer = layer_tar(entries)
    before = engine_state(d, client)
    with pytest.raises(docker.errors.ImageLoadError) as err:
        client.images.load(saved_image(layer, f"breakout-{case}:1"))
    message = str(err.value)
    assert f'"{entry}"' in message and sha(layer) in message, message
    assert message.startswith("failed to register layer sha256:")
    assert engine_state(d, client) == before
    assert_nothing_outside()


def test_docker_load_cli_prints_the_refusal(d: BerthDaemon, tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    archive.write_bytes(saved_image(layer_tar(ESCAPES["dotdot"][0]), "breakout-cli:1"))
    result = d.docker("load", "-i", str(archive))
    assert result.returncode == 1
    assert '"../../../../tmp/berth-breakout-dotdot" is outside of the layer root' in result.stderr
    assert d.docker("image", "inspect", "breakout-cli:1").returncode == 1


@pytest.mark.parametrize("case", ["dotdot", "through-symlink", "hardlink-out"])
def test_docker_import_refuses_the_layer(d: BerthDaemon, client: Any, tmp_path: Path, case: str) -> None:
    entries, entry = ESCAPES[case]
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(layer_tar(entries))
    before = engine_state(d, client)
    result = d.docker("import", str(rootfs), f"imported-{case}:1")
    assert result.returncode == 1
    assert f'"{entry}"' in result.stderr and "failed to register layer sha256:" in result.stderr, result.stderr
    assert engine_state(d, client) == before
    assert_nothing_outside()


def push_raw(d: BerthDaemon, repo: str, tag: str, layer: bytes) -> None:
    """Put a crafted one-layer image into the daemon's registry over its HTTP API."""
    base = f"http://{d.registry_addr}/v2/{repo}"
    config = image_config(layer)
    for blob in (layer, config):
        req = urllib.request.Request(f"{base}/blobs/uploads/?digest={sha(blob)}", data=blob, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
        assert urllib.request.urlopen(req, timeout=30).status == 201
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer),
                    "size": len(layer)}]}).encode()
    req = urllib.request.Request(f"{base}/manifests/{tag}", data=manifest, method="PUT",
                                 headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert urllib.request.urlopen(req, timeout=30).status == 201


def test_docker_pull_refuses_the_layer(d: BerthDaemon, client: Any) -> None:
    entries, entry = ESCAPES["through-symlink"]
    layer = layer_tar(entries)
    push_raw(d, "evil", "1", layer)
    before = engine_state(d, client)
    result = d.docker("pull", f"{d.registry_addr}/evil:1")
    assert result.returncode == 1
    assert f'"{entry}" would be written through the symlink "etc"' in result.stderr, result.stderr
    assert sha(layer) in result.stderr
    assert engine_state(d, client) == before
    assert_nothing_outside()


def test_build_context_with_an_escaping_entry_is_refused(d: BerthDaemon, client: Any) -> None:
    context = layer_tar([("Dockerfile", F, "FROM busybox\nCOPY . /ctx\n"), ("../evil", F, "x")])
    before = engine_state(d, client)
    with pytest.raises(docker.errors.APIError) as err:  # refused before the build stream starts: 400
        client.images.build(fileobj=io.BytesIO(context), custom_context=True, tag="breakout-build:1")
    assert err.value.status_code == 400 and "'../evil'" in str(err.value), str(err.value)
    hardlink = layer_tar([("Dockerfile", F, "FROM busybox\nCOPY . /ctx\n"), ("h", H, "../../etc/passwd")])
    with pytest.raises(docker.errors.APIError) as err:
        client.images.build(fileobj=io.BytesIO(hardlink), custom_context=True, tag="breakout-build:2")
    assert err.value.status_code == 400 and "hard link 'h' -> '../../etc/passwd'" in str(err.value), str(err.value)
    assert engine_state(d, client) == before


def test_docker_cp_refuses_an_escaping_entry(d: BerthDaemon, client: Any) -> None:
    container = client.containers.create("busybox", ["true"])
    try:
        with pytest.raises(docker.errors.APIError) as err:
            container.put_archive("/", layer_tar(ESCAPES["dotdot"][0]))
        assert err.value.status_code == 400
        assert "../../../../tmp/berth-breakout-dotdot" in str(err.value)
    finally:
        container.remove(force=True)
    assert_nothing_outside()


def test_device_nodes_are_created_but_cannot_be_opened(d: BerthDaemon, client: Any, tmp_path: Path) -> None:
    exported = client.containers.create("busybox", ["true"])
    try:
        rootfs = b"".join(exported.export())
    finally:
        exported.remove(force=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(rootfs)) as src, tarfile.open(fileobj=buf, mode="w") as out:
        for m in src:
            out.addfile(m, src.extractfile(m) if m.isreg() else None)
        for name, kind, major, minor in (("mem", tarfile.CHRTYPE, 1, 1), ("loop9", tarfile.BLKTYPE, 7, 9)):
            info = tarfile.TarInfo(name)
            info.type, info.devmajor, info.devminor, info.mode = kind, major, minor, 0o666
            out.addfile(info)
    path = tmp_path / "rootfs.tar"
    path.write_bytes(buf.getvalue())
    d.docker("import", "--change", "CMD [\"sh\"]", str(path), "with-devices:1", check=True)
    try:
        listing = client.containers.run("with-devices:1", ["ls", "-ln", "/mem", "/loop9"], remove=True).decode()
        rows = {line.split()[-1]: line for line in listing.splitlines()}
        assert rows["/mem"].startswith("crw-rw-rw-") and "1,   1" in rows["/mem"], listing
        assert rows["/loop9"].startswith("brw-rw-rw-") and "7,   9" in rows["/loop9"], listing
        script = 'for f in /mem /loop9; do head -c1 "$f" 2>&1 >/dev/null; echo "$f=$?"; done'
        out = client.containers.run("with-devices:1", ["sh", "-c", script], remove=True).decode()
        assert "/mem=1" in out and "/loop9=1" in out, out
        assert out.count("Operation not permitted") == 2, out  # the device cgroup, not the mode bits
    finally:
        client.images.remove("with-devices:1", force=True)
