#!/usr/bin/env python3
"""Registry throughput: skopeo push and pull against berth's registry and Debian's docker-registry.

Images (OCI layouts built once, by hand, in a temp dir):
  big     one gzip layer of ~100 MB (random bytes, so gzip stores them)
  small   200 layers of ~20 KB each

For each registry and image: N pushes, each to a freshly started registry with empty storage
(as host-notes §9.3 says, or blobs are skipped as already present), then N pulls into fresh OCI
layouts. Prints median wall time and MB/s (blob bytes / time) and berth/distribution ratios.

berth's registry runs as `RegistryServer` (the same server `berth daemon` starts on
--registry-addr) in a child process with default settings (fsync on; anonymous push allowed, so
no credentials are needed, though skopeo still fetches an anonymous token). docker-registry runs
per host-notes §9.3 on 127.0.0.1:15000 without auth.
`--floor` adds pushes to a sink that discards everything (the part of a push that is skopeo's
own) and to one that also hashes every body, as a registry must before a blob may exist.
The big image is also pushed and pulled with the docker CLI through a berth engine (to and from a
fresh docker-registry each time): the engine side of `docker push`/`docker pull`.
Usage: .venv/bin/python bench/registry.py [-n 5] [--only berth] [--floor] [--no-engine]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BERTH_PORT, DIST_PORT = 15001, 15000
# A registry that discards what it is sent: what skopeo's own push costs (the client floor).
# With argv[1] == "hash" it also hashes every body (as any registry must), still storing nothing.
SERVE_SINK = """
import asyncio, hashlib, sys, uuid
from aiohttp import web
async def handle(request):
    m, path = request.method, request.path
    if m == "HEAD" or (m == "GET" and path != "/v2/"):
        return web.Response(status=404)
    digest = hashlib.sha256()
    while chunk := await request.content.readany():
        if sys.argv[1] == "hash":
            digest.update(chunk)
    if m == "POST":
        return web.Response(status=202, headers={"Location": path + str(uuid.uuid4()), "Range": "0-0"})
    if m == "PATCH":
        return web.Response(status=202, headers={"Location": path, "Range": "0-1"})
    if m == "PUT":
        digest = request.query.get("digest", "sha256:" + "0" * 64)
        return web.Response(status=201, headers={"Location": path, "Docker-Content-Digest": digest})
    return web.json_response({})
app = web.Application(client_max_size=1 << 30)
app.router.add_route("*", "/{tail:.*}", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None, access_log=None)
"""
SERVE_BERTH = """
import asyncio, sys
from pathlib import Path
from berth.registry import RegistryConfig, RegistryServer
async def main():
    server = RegistryServer(RegistryConfig(root=Path(sys.argv[1]), anonymous_push=True))
    await server.start("127.0.0.1", int(sys.argv[2]))
    await asyncio.Event().wait()
asyncio.run(main())
"""


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0), sha(raw.getvalue())


def write_layout(path: Path, layers: list[tuple[bytes, str]]) -> int:
    """An OCI layout with tag `latest`; returns the total blob bytes."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = sha(data)
        (blobs / digest[7:]).write_bytes(data)
        return digest

    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": put(b), "size": len(b)} for b, _ in layers]}).encode()
    digest = put(manifest)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    return sum(len(b) for b, _ in layers) + len(config) + len(manifest)


def build_images(work: Path) -> dict[str, tuple[Path, int]]:
    big = [layer({"data.bin": os.urandom(100 * 1000 * 1000)})]
    small = [layer({f"file{i}.txt": os.urandom(20_000)}) for i in range(200)]
    return {name: (work / name, write_layout(work / name, layers)) for name, layers in (("big", big), ("small", small))}


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # 401 is an answer too
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"registry on port {port} did not come up")


@contextmanager
def berth_registry(work: Path) -> Iterator[int]:
    root = Path(tempfile.mkdtemp(dir=work, prefix="berth-"))
    proc = subprocess.Popen([sys.executable, "-c", SERVE_BERTH, str(root), str(BERTH_PORT)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(BERTH_PORT)
        yield BERTH_PORT
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def sink_registry(work: Path, mode: str = "discard") -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", SERVE_SINK, mode, str(BERTH_PORT)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(BERTH_PORT)
        yield BERTH_PORT
    finally:
        proc.terminate()
        proc.wait(10)


def measure_floor(image: Path, runs: int, work: Path, mode: str) -> list[float]:
    times = []
    for i in range(runs + 1):
        with sink_registry(work, mode) as port:
            took = skopeo_copy(f"oci:{image}:latest", f"docker://127.0.0.1:{port}/bench/img:latest")
            if i:
                times.append(took)
    return times


@contextmanager
def distribution_registry(work: Path) -> Iterator[int]:
    root = Path(tempfile.mkdtemp(dir=work, prefix="dist-"))
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {root}/data}}\n"
                      f"  delete: {{enabled: true}}\nhttp:\n  addr: 127.0.0.1:{DIST_PORT}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(DIST_PORT)
        yield DIST_PORT
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def skopeo_copy(src: str, dst: str) -> float:
    start = time.monotonic()
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false",
                    src, dst], check=True, capture_output=True, timeout=600)
    return time.monotonic() - start


def measure(start_registry: object, image: Path, runs: int, work: Path) -> tuple[list[float], list[float]]:
    pushes, pulls = [], []
    for i in range(runs + 1):  # the first run warms caches and is not counted
        with start_registry(work) as port:  # type: ignore[operator]
            took = skopeo_copy(f"oci:{image}:latest", f"docker://127.0.0.1:{port}/bench/img:latest")
            if i:
                pushes.append(took)
            for _ in range(2 if i else 1):
                dest = Path(tempfile.mkdtemp(dir=work, prefix="pull-"))
                took = skopeo_copy(f"docker://127.0.0.1:{port}/bench/img:latest", f"oci:{dest}/l:latest")
                shutil.rmtree(dest)
                if i:
                    pulls.append(took)
    return pushes, pulls


def measure_engine(image: Path, runs: int, work: Path) -> tuple[list[float], list[float]]:
    """`docker push` / `docker pull` through berth's engine, to and from a fresh docker-registry."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.helpers import BerthDaemon

    engine = BerthDaemon()
    pushes, pulls = [], []
    try:
        engine.start()
        archive = work / "engine-image.tar"
        subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", f"oci:{image}:latest",
                        f"docker-archive:{archive}:bench/img:latest"], check=True, capture_output=True)
        engine.docker("load", "-i", str(archive), check=True)
        archive.unlink()
        ref = f"127.0.0.1:{DIST_PORT}/bench/img:latest"
        engine.docker("tag", "bench/img:latest", ref, check=True)
        engine.docker("rmi", "bench/img:latest", check=True)  # `rmi ref` must then delete the layers
        for i in range(runs + 1):
            with distribution_registry(work):
                start = time.monotonic()
                engine.docker("push", ref, check=True, timeout=600)
                pushed = time.monotonic() - start
                engine.docker("rmi", ref, check=True)
                start = time.monotonic()
                engine.docker("pull", ref, check=True, timeout=600)
                pulled = time.monotonic() - start
                if i:
                    pushes.append(pushed)
                    pulls.append(pulled)
    finally:
        engine.destroy()
    return pushes, pulls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5, help="measured pushes per image and registry (default 5)")
    parser.add_argument("--only", choices=("berth", "distribution"), default=None)
    parser.add_argument("--floor", action="store_true",
                        help="also time pushes to a sink that discards everything (skopeo's own cost)")
    parser.add_argument("--no-engine", dest="engine", action="store_false",
                        help="skip docker push/pull of the big image through berth's engine")
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        sys.exit("needs skopeo (make install)")
    registries = {"berth": berth_registry, "distribution": distribution_registry}
    if shutil.which("docker-registry") is None:
        print("docker-registry not installed (make bench-deps): measuring berth only")
        registries.pop("distribution")
    if args.only:
        registries = {args.only: registries[args.only]}
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", BERTH_PORT)) == 0:
            sys.exit(f"port {BERTH_PORT} is busy")
    work = Path(tempfile.mkdtemp(prefix="berth-bench-registry-"))
    try:
        images = build_images(work)
        results: dict[tuple[str, str, str], float] = {}
        print(f"{'registry':<13} {'image':<6} {'op':<5} {'median s':>9} {'MB/s':>8}   (n={args.n})")
        for image, (path, size) in images.items():
            for name, start in registries.items():
                pushes, pulls = measure(start, path, args.n, work)
                for op, times in (("push", pushes), ("pull", pulls)):
                    median = statistics.median(times)
                    results[(name, image, op)] = size / 1e6 / median
                    print(f"{name:<13} {image:<6} {op:<5} {median:>9.3f} {size / 1e6 / median:>8.1f}")
            if args.floor:
                for mode in ("discard", "hash"):
                    median = statistics.median(measure_floor(path, args.n, work, mode))
                    label = "(sink)" if mode == "discard" else "(hash sink)"
                    print(f"{label:<13} {image:<6} {'push':<5} {median:>9.3f} {size / 1e6 / median:>8.1f}")
            if args.engine and image == "big" and "distribution" in registries:
                pushes, pulls = measure_engine(path, args.n, work)
                for op, times in (("push", pushes), ("pull", pulls)):
                    median = statistics.median(times)
                    print(f"{'berth engine':<13} {image:<6} {op:<5} {median:>9.3f} {size / 1e6 / median:>8.1f}"
                          "   (docker push/pull via berth's engine, to/from docker-registry)")
        if len(registries) == 2:
            print("\nberth / distribution throughput (target: push >= 1.5, pull >= 1.0)")
            for image in images:
                for op in ("push", "pull"):
                    ratio = results[("berth", image, op)] / results[("distribution", image, op)]
                    print(f"  {image:<6} {op:<5} {ratio:5.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
