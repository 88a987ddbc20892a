"""The daemon's registry driven by real clients: skopeo (both directions), oras-py (referrers),
concurrent pushes, and the auth flow (Bearer challenge, htpasswd users, anonymous push refused)."""

from __future__ import annotations

import concurrent.futures
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from berth.registry import hash_password
from tests.helpers import BerthDaemon, free_port

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo"),
]

USER, PASSWORD = "bob", "s3cret-cats"


@pytest.fixture(scope="module")
def registry() -> Iterator[tuple[BerthDaemon, str]]:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    port = free_port()
    d = BerthDaemon()
    htpasswd = d.base / "htpasswd"
    htpasswd.write_text(f"{USER}:{hash_password(PASSWORD, rounds=5)}\n")
    d.extra_args = ("--registry-addr", f"127.0.0.1:{port}", "--registry-htpasswd", str(htpasswd))
    try:
        d.start()
        yield d, f"127.0.0.1:{port}"
    finally:
        d.destroy()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzip layer blob and its diff id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0), _sha(raw.getvalue())


def make_oci_layout(path: Path, tag: str, layers: list[dict[str, bytes]]) -> str:
    """Write an OCI image layout by hand; returns the manifest digest."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = _sha(data)
        (blobs / digest.split(":")[1]).write_bytes(data)
        return digest

    built = [_layer(files) for files in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in built]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(blob), "size": len(blob)}
                   for blob, _ in built]}).encode()
    digest = put(manifest)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return digest


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=120,
                          check=False)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_skopeo_copies_both_directions(registry: tuple[BerthDaemon, str], tmp_path: Path) -> None:
    _, addr = registry
    digest = make_oci_layout(tmp_path / "src", "v1", [{"hello.txt": b"hello\n"}, {"big.bin": os.urandom(3 << 20)}])
    skopeo("copy", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}",
           f"oci:{tmp_path / 'src'}:v1", f"docker://{addr}/bob/cats:v1")
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{addr}/bob/cats:v1").stdout)
    assert inspected["Digest"] == digest and len(inspected["Layers"]) == 2
    skopeo("copy", "--src-tls-verify=false", f"docker://{addr}/bob/cats:v1", f"oci:{tmp_path / 'back'}:v1")
    src_blobs = sorted(p.name for p in (tmp_path / "src" / "blobs" / "sha256").iterdir())
    back_blobs = sorted(p.name for p in (tmp_path / "back" / "blobs" / "sha256").iterdir())
    assert back_blobs == src_blobs
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{addr}/bob/cats").stdout)
    assert tags["Tags"] == ["v1"]


def test_anonymous_push_is_refused(registry: tuple[BerthDaemon, str], tmp_path: Path) -> None:
    _, addr = registry
    make_oci_layout(tmp_path / "src", "v1", [{"a": b"anonymous"}])
    done = skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:v1", f"docker://{addr}/anon/x:v1",
                  check=False)
    assert done.returncode != 0 and ("unauthorized" in done.stderr.lower() or "401" in done.stderr)
    resp = requests.post(f"http://{addr}/v2/anon/x/blobs/uploads/", timeout=10)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith(f'Bearer realm="http://{addr}/token"')
    wrong = skopeo("copy", "--dest-tls-verify=false", f"--dest-creds={USER}:wrong",
                   f"oci:{tmp_path / 'src'}:v1", f"docker://{addr}/anon/x:v1", check=False)
    assert wrong.returncode != 0


def test_eight_concurrent_pushes_of_one_image(registry: tuple[BerthDaemon, str], tmp_path: Path) -> None:
    _, addr = registry
    digest = make_oci_layout(tmp_path / "src", "v1", [{f"f{i}": os.urandom(200_000)} for i in range(4)])

    def push(i: int) -> subprocess.CompletedProcess[str]:
        return skopeo("copy", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}",
                      f"oci:{tmp_path / 'src'}:v1", f"docker://{addr}/team/same:v1", check=False)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(push, range(8)))
    assert [r.returncode for r in results] == [0] * 8, [r.stderr for r in results if r.returncode]
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{addr}/team/same:v1").stdout)
    assert inspected["Digest"] == digest
    skopeo("copy", "--src-tls-verify=false", f"docker://{addr}/team/same:v1", f"oci:{tmp_path / 'back'}:v1")


def test_oras_pushes_referrer_listed_by_referrers_api(registry: tuple[BerthDaemon, str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    oras_client = pytest.importorskip("oras.client")
    import oras.oci

    _, addr = registry
    digest = make_oci_layout(tmp_path / "src", "v1", [{"app": b"application"}])
    skopeo("copy", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}",
           f"oci:{tmp_path / 'src'}:v1", f"docker://{addr}/bob/app:v1")
    manifest = requests.get(f"http://{addr}/v2/bob/app/manifests/v1", timeout=10,
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert manifest.status_code == 200  # anonymous pull is on by default
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # oras may record the login under ~/.docker
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / ".docker"))
    (tmp_path / "sbom.json").write_text('{"packages": []}')
    client = oras_client.OrasClient(hostname=addr, insecure=True)
    client.login(username=USER, password=PASSWORD, hostname=addr)
    size = int(requests.head(f"http://{addr}/v2/bob/app/manifests/v1", auth=(USER, PASSWORD), timeout=10,
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).headers["Content-Length"])
    subject = oras.oci.Subject(mediaType="application/vnd.oci.image.manifest.v1+json", digest=digest, size=size)
    resp = client.push(target=f"{addr}/bob/app:sbom", files=["sbom.json"], subject=subject,
                       manifest_config="config.json:application/vnd.example.sbom.v1")
    assert resp.status_code == 201
    assert resp.headers["OCI-Subject"] == digest
    listing = requests.get(f"http://{addr}/v2/bob/app/referrers/{digest}", auth=(USER, PASSWORD), timeout=10)
    assert listing.status_code == 200
    [entry] = listing.json()["manifests"]
    assert entry["artifactType"] == "application/vnd.example.sbom.v1"
    assert entry["digest"] == resp.headers["Docker-Content-Digest"]


def test_registry_shares_blobs_with_engine_store(registry: tuple[BerthDaemon, str], tmp_path: Path) -> None:
    """Content the engine holds is hardlinked into the registry instead of stored twice."""
    daemon, addr = registry
    image_id = daemon.bootstrap_busybox()
    archive = tmp_path / "busybox.tar"
    daemon.docker("save", "-o", str(archive), "busybox:latest", check=True)
    skopeo("copy", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}",
           f"docker-archive:{archive}", f"docker://{addr}/library/busybox:latest")
    config_hex = image_id.split(":")[1]
    engine_copy = daemon.root / "blobs" / "sha256" / config_hex
    registry_copy = daemon.root / "registry" / "blobs" / "sha256" / config_hex
    assert registry_copy.exists()
    assert registry_copy.stat().st_ino == engine_copy.stat().st_ino


def test_registry_gc_cli_while_daemon_runs(registry: tuple[BerthDaemon, str], tmp_path: Path) -> None:
    daemon, addr = registry
    make_oci_layout(tmp_path / "src", "v1", [{"gc": b"collect me"}])
    skopeo("copy", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}",
           f"oci:{tmp_path / 'src'}:v1", f"docker://{addr}/gc/me:v1")
    from tests.helpers import BERTH

    done = subprocess.run([BERTH, "registry", "gc", "--root", str(daemon.root), "--grace", "0", "--dry-run"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "would remove 0 blob(s)" in done.stdout  # everything pushed is referenced by a manifest
    skopeo("inspect", "--tls-verify=false", f"docker://{addr}/gc/me:v1")


def test_upload_cut_by_daemon_crash_leaves_nothing(registry: tuple[BerthDaemon, str]) -> None:
    """Runs last in this module: it SIGKILLs and restarts the shared daemon."""
    daemon, addr = registry
    data = os.urandom(2_000_000)
    digest = _sha(data)
    session = requests.Session()
    session.auth = (USER, PASSWORD)
    location = session.post(f"http://{addr}/v2/crash/test/blobs/uploads/", timeout=10).headers["Location"]
    half = session.patch(f"http://{addr}{location}", data=data[:1_000_000], timeout=10,
                         headers={"Content-Range": "0-999999"})
    assert half.status_code == 202
    assert list((daemon.root / "registry" / "uploads").iterdir())
    daemon.kill()
    daemon.start()
    assert session.head(f"http://{addr}/v2/crash/test/blobs/{digest}", timeout=10).status_code == 404
    assert session.get(f"http://{addr}{location}", timeout=10).status_code == 404
    assert list((daemon.root / "registry" / "uploads").iterdir()) == []
    assert not (daemon.root / "registry" / "blobs" / "sha256" / digest.split(":")[1]).exists()
