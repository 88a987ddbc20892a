"""Pull: resolve a reference to one image manifest, download what is missing, commit the image.

Two steps so the API can report errors before its progress stream starts (as dockerd does):
`resolve()` fetches the manifest (choosing a platform from an index); `fetch()` downloads the
config and the layers not stored yet (in parallel, into temp files, digests checked), then hands
them to the image store, which unpacks and commits them in one go.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from berth.errors import InvalidArgument
from berth.images.distribution import _mediatypes as mt
from berth.images.distribution._blobindex import BlobIndex, RemoteBlob
from berth.images.distribution._client import Repository
from berth.images.distribution._errors import RegistryError
from berth.images.distribution._manifest import Descriptor, ImageManifest, Index, Platform, parse_manifest
from berth.images.distribution._platform import select_manifest
from berth.images.distribution._progress import Meter, Progress, Reporter
from berth.types import Digest

DOWNLOAD_CONCURRENCY = 3   # dockerd's default max-concurrent-downloads
_CHUNK = 1 << 20


class PullTarget(Protocol):
    """What a pull needs from the local image store."""

    def has_layer(self, diff_id: str) -> bool: ...
    def add_pulled(self, config: bytes, layers: Sequence[Path | None], references: Sequence[str], *,
                   staged: Callable[[int], None] | None = None) -> Any: ...
    def resolve(self, name: str) -> Any: ...


@dataclass(frozen=True)
class Resolved:
    """One image manifest, found by tag or digest (possibly through an index)."""

    manifest: ImageManifest
    digest: Digest           # of the manifest (or of the index when the reference named one)
    media_type: str


@dataclass(frozen=True)
class PullResult:
    image_id: str
    digest: Digest
    up_to_date: bool


def resolve(repo: Repository, reference: str, platform: Platform) -> Resolved:
    """Fetch the manifest for `reference` (tag or digest), descending into an index.

    Raises:
        RegistryError: the registry refused or does not know the reference.
        NotFound: no manifest for `platform` in an index.
        InvalidArgument: schema 1 or an unknown manifest type.
    """
    top = repo.get_manifest(reference)
    parsed = parse_manifest(top.data, top.media_type)
    if isinstance(parsed, Index):
        chosen = select_manifest(parsed, platform)
        inner = repo.get_manifest(str(chosen.digest))
        parsed = parse_manifest(inner.data, inner.media_type)
        if not isinstance(parsed, ImageManifest):
            raise InvalidArgument("nested manifest lists are not supported")
    return Resolved(parsed, top.digest, top.media_type)


class Puller:
    def __init__(self, store: PullTarget, blobs: BlobIndex, tmp_dir: Path, registry: str) -> None:
        self._store = store
        self._index = blobs
        self._tmp = tmp_dir
        self._registry = registry

    def fetch(self, repo: Repository, resolved: Resolved, references: Sequence[str], tag_ref: str | None,
              report: Reporter) -> PullResult:
        """Download and commit; `tag_ref` is the reference pulled (tag or digest): the image it
        pointed at before decides "up to date"."""
        config = self._config(repo, resolved.manifest.config)
        diff_ids = _diff_ids(config)
        layers = resolved.manifest.layers
        if len(diff_ids) != len(layers):
            raise InvalidArgument("invalid manifest: layer count differs from the config's diff_ids")
        image_id = str(Digest.of(config))
        before = self._current(tag_ref) if tag_ref else None
        have = [self._store.has_layer(d) for d in diff_ids]
        for desc, present in zip(layers, have):
            report(Progress("Already exists" if present else "Pulling fs layer", _short(desc.digest)))
        with tempfile.TemporaryDirectory(dir=self._tmp, prefix="pull-") as tmp:
            paths = self._download_all(repo, layers, have, Path(tmp), report)

            def staged(i: int) -> None:
                if paths[i] is not None:
                    report(Progress("Pull complete", _short(layers[i].digest)))

            image = self._store.add_pulled(config, paths, references, staged=staged)
            # Only layers downloaded here and checked against their diff_id by add_pulled tell
            # which remote blob holds which local layer (push trusts this index).
            for desc, diff_id, path in zip(layers, diff_ids, paths):
                if path is not None:
                    self._index.record(RemoteBlob(diff_id, str(desc.digest), desc.media_type, desc.size,
                                                  self._registry, repo.name))
        return PullResult(image.id, resolved.digest, up_to_date=before == image_id)

    def _current(self, tag_ref: str) -> str | None:
        try:
            return str(self._store.resolve(tag_ref).id)
        except Exception:  # noqa: BLE001 - NotFound or an unparsable name: nothing there yet
            return None

    def _config(self, repo: Repository, desc: Descriptor) -> bytes:
        data = b"".join(repo.iter_blob(desc.digest))
        if Digest.of(data) != desc.digest:
            raise RegistryError(400, f"image config verification failed for digest {desc.digest}",
                                ("DIGEST_INVALID",))
        return data

    def _download_all(self, repo: Repository, layers: tuple[Descriptor, ...], have: list[bool],
                      tmp: Path, report: Reporter) -> list[Path | None]:
        wanted = [i for i, present in enumerate(have) if not present]
        for i in wanted[DOWNLOAD_CONCURRENCY:]:
            report(Progress("Waiting", _short(layers[i].digest)))
        paths: list[Path | None] = [None] * len(layers)
        with ThreadPoolExecutor(max_workers=DOWNLOAD_CONCURRENCY) as pool:
            futures = {i: pool.submit(self._download, repo, layers[i], tmp, report) for i in wanted}
            for i, future in futures.items():
                paths[i] = future.result()
        return paths

    def _download(self, repo: Repository, desc: Descriptor, tmp: Path, report: Reporter) -> Path:
        """Stream one blob to a temp file, checking its digest (and size) on the way."""
        if desc.media_type not in mt.LAYER_TYPES and not desc.media_type.startswith(mt.OCI_NONDIST_PREFIX):
            raise InvalidArgument(f"unsupported layer media type {desc.media_type!r}")
        layer_id = _short(desc.digest)
        meter = Meter(report, layer_id, "Downloading", desc.size or None)
        digest = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=tmp, prefix="blob-")
        with os.fdopen(fd, "wb") as out:
            for chunk in repo.iter_blob(desc.digest):
                digest.update(chunk)
                out.write(chunk)
                meter.add(len(chunk))
        meter.done()
        report(Progress("Verifying Checksum", layer_id))
        if "sha256:" + digest.hexdigest() != str(desc.digest):
            raise RegistryError(400, f"filesystem layer verification failed for digest {desc.digest}",
                                ("DIGEST_INVALID",))
        report(Progress("Download complete", layer_id))
        return Path(name)


def _diff_ids(config: bytes) -> list[str]:
    try:
        doc = json.loads(config)
        diff_ids = doc["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError) as err:
        raise InvalidArgument(f"invalid image config: {err}") from err
    if not isinstance(diff_ids, list):
        raise InvalidArgument("invalid image config: rootfs.diff_ids is not a list")
    return [str(d) for d in diff_ids]


def _short(digest: Digest) -> str:
    return digest.short
