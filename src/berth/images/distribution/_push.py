"""Push: layers (skipped, mounted or compressed and uploaded), the config, then the manifest.

Per layer, cheapest first: a blob this repository is known to hold (HEAD → "Layer already
exists"); a blob a sibling repository on the same registry holds (cross-repository mount →
"Mounted from <repo>"); otherwise gzip the stored tar on the fly while streaming it up (one
PATCH), and record the compressed digest. Compression is deterministic (see `_GzipStream`), so
the same layer always gives the same digest, on any registry.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from berth.images.distribution import _mediatypes as mt
from berth.images.distribution._blobindex import BlobIndex, RemoteBlob
from berth.images.distribution._client import Repository
from berth.images.distribution._errors import RegistryError
from berth.images.distribution._manifest import Descriptor, schema2_manifest
from berth.images.distribution._progress import Meter, Progress, Reporter
from berth.types import Digest

UPLOAD_CONCURRENCY = 5   # dockerd's default max-concurrent-uploads
GZIP_LEVEL = 1           # push throughput matters more here than a few percent of size
_BLOCK = 4 << 20         # compression unit; changing it changes every pushed layer's digest
_SAMPLE = 64 << 10
_IN_FLIGHT = 2 * (os.cpu_count() or 1)
# Shared by every push: compression is CPU-bound, so more threads than CPUs would not help.
_COMPRESSORS = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="gzip")


class PushSource(Protocol):
    """What a push needs from the local image store."""

    def blob_path(self, digest: str) -> Path: ...


@dataclass(frozen=True)
class PushImage:
    image_id: str
    diff_ids: tuple[str, ...]   # lowest first


@dataclass(frozen=True)
class PushResult:
    digest: Digest
    size: int


def mount_sources(blobs: BlobIndex, image: PushImage, registry: str, repository: str) -> list[str]:
    """Sibling repositories on `registry` a push may mount layers from (they need pull scope)."""
    found = {b.repository for d in image.diff_ids for b in blobs.lookup(d)
             if b.registry == registry and b.repository != repository}
    return sorted(found)


class Pusher:
    def __init__(self, store: PushSource, blobs: BlobIndex, registry: str) -> None:
        self._store = store
        self._index = blobs
        self._registry = registry

    def push(self, repo: Repository, image: PushImage, tag: str, report: Reporter) -> PushResult:
        """Push `image` to `repo` under `tag`; reports Docker's progress and returns the manifest's
        digest and size."""
        top_first = list(reversed(image.diff_ids))
        for diff_id in top_first:
            report(Progress("Preparing", Digest(diff_id).short))
        for diff_id in top_first[UPLOAD_CONCURRENCY:]:
            report(Progress("Waiting", Digest(diff_id).short))
        with ThreadPoolExecutor(max_workers=UPLOAD_CONCURRENCY) as pool:
            futures = [pool.submit(self._push_layer, repo, d, report) for d in top_first]
            by_diff = {d: f.result() for d, f in zip(top_first, futures)}
        config = self._push_config(repo, image.image_id)
        manifest = schema2_manifest(config, [by_diff[d] for d in image.diff_ids])
        digest = repo.put_manifest(tag, mt.DOCKER_MANIFEST, manifest)
        return PushResult(digest, len(manifest))

    def _push_config(self, repo: Repository, image_id: str) -> Descriptor:
        data = self._store.blob_path(image_id).read_bytes()
        digest = Digest(image_id)
        if repo.blob_size(digest) is None:
            repo.put_blob(data)
        return Descriptor(mt.DOCKER_CONFIG, digest, len(data))

    def _push_layer(self, repo: Repository, diff_id: str, report: Reporter) -> Descriptor:
        layer_id = Digest(diff_id).short
        known = self._index.lookup(diff_id)
        for blob in known:  # anything known by digest may already be here (same bytes anywhere)
            if (blob.registry == self._registry and blob.repository == repo.name) or blob.registry != self._registry:
                size = repo.blob_size(Digest(blob.digest))
                if size is not None:
                    report(Progress("Layer already exists", layer_id))
                    return self._remember(diff_id, blob.digest, size, repo.name)
        location = None
        for blob in known:
            if blob.registry == self._registry and blob.repository != repo.name:
                location = repo.mount_blob(Digest(blob.digest), blob.repository)
                if location is None:
                    report(Progress(f"Mounted from {blob.repository}", layer_id))
                    return self._remember(diff_id, blob.digest, blob.size, repo.name)
                break  # the registry opened a session instead; upload into it
        return self._upload(repo, diff_id, location, report)

    def _upload(self, repo: Repository, diff_id: str, location: str | None, report: Reporter) -> Descriptor:
        layer_id = Digest(diff_id).short
        path = self._store.blob_path(diff_id)
        stream = _GzipStream(path, Meter(report, layer_id, "Pushing", path.stat().st_size))
        location = location or repo.start_upload()
        digest = repo.upload(location, stream.chunks(), lambda: stream.digest)
        stream.meter.done()
        report(Progress("Pushed", layer_id))
        return self._remember(diff_id, str(digest), stream.size, repo.name)

    def _remember(self, diff_id: str, digest: str, size: int, repository: str) -> Descriptor:
        self._index.record(RemoteBlob(diff_id, digest, mt.DOCKER_LAYER_GZIP, size, self._registry, repository))
        return Descriptor(mt.DOCKER_LAYER_GZIP, Digest(digest), size)


class _GzipStream:
    """Deterministic gzip of a file as an iterator of chunks, hashing and counting the output.

    The file is cut into fixed `_BLOCK`s, each compressed on its own into one gzip member (the
    format allows concatenated members; Go, containerd and Python read them as one stream). Blocks
    compress in parallel (zlib releases the GIL), and a block whose sample does not compress is
    stored instead of deflated, so random data goes at disk speed. Output depends on the input
    bytes only, so the same layer always gets the same digest.
    """

    def __init__(self, path: Path, meter: Meter) -> None:
        self._path = path
        self.meter = meter
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False

    def chunks(self) -> Iterator[bytes]:
        pending: deque[Future[bytes]] = deque()
        with self._path.open("rb") as src:
            while piece := src.read(_BLOCK):
                self.meter.add(len(piece))
                pending.append(_COMPRESSORS.submit(gzip_member, piece))
                while len(pending) >= _IN_FLIGHT:
                    yield self._count(pending.popleft().result())
        while pending:
            yield self._count(pending.popleft().result())
        if self.size == 0:
            yield self._count(gzip_member(b""))
        self._done = True

    def _count(self, data: bytes) -> bytes:
        self._hash.update(data)
        self.size += len(data)
        return data

    @property
    def digest(self) -> Digest:
        if not self._done:
            raise RegistryError(500, "upload ended before the layer was fully sent")
        return Digest("sha256:" + self._hash.hexdigest())


def gzip_member(data: bytes) -> bytes:
    """One gzip member (mtime 0, no name): deflated, or stored when a sample shows no gain."""
    sample = data[:_SAMPLE]
    level = GZIP_LEVEL
    if len(sample) == _SAMPLE and len(zlib.compress(sample, 1)) > _SAMPLE * 0.95:
        level = 0
    # wbits 31: a gzip wrapper whose header depends on nothing but the level.
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()
