"""Write a `docker save` archive that is also an OCI image layout (as Docker 25+ does).

    blobs/sha256/<hex>   configs, uncompressed layer tars, one OCI manifest per image
    index.json           OCI index: one entry per tag (containerd + OCI name annotations)
    manifest.json        docker-archive manifest: Config / RepoTags / Layers as blob paths
    oci-layout           {"imageLayoutVersion": "1.0.0"}
    repositories         legacy {repo: {tag: top layer id}}

Both views share the blob paths, so a layer is stored once.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from berth.images._archive_load import CONTAINERD_NAME, OCI_INDEX, OCI_MANIFEST, OCI_REF_NAME
from berth.types import Digest, Reference

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class SaveImage:
    """One image to write: its id (config digest), layer diff_ids and the tags to record."""

    id: Digest
    layers: tuple[Digest, ...]
    refs: tuple[Reference, ...]


class BlobSource(Protocol):
    """What the writer needs from the store (BlobStore satisfies it)."""

    def open(self, digest: Digest) -> BinaryIO: ...

    def size(self, digest: Digest) -> int: ...


def write_archive(out: BinaryIO, images: list[SaveImage], blobs: BlobSource) -> None:
    """Stream the archive for `images` to `out` (a non-seekable stream is fine)."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        written: set[Digest] = set()
        manifests = []
        for image in images:
            for digest in (image.id, *image.layers):
                if digest not in written:
                    written.add(digest)
                    _add_blob(tar, digest, blobs)
            manifest = _oci_manifest(image, blobs)
            manifest_digest = Digest.of(manifest)
            if manifest_digest not in written:
                written.add(manifest_digest)
                _add_bytes(tar, _blob_path(manifest_digest), manifest)
            manifests.append((image, manifest_digest, len(manifest)))
        _add_json(tar, "index.json", _index(manifests))
        _add_json(tar, "manifest.json", [_docker_entry(image) for image in images])
        _add_json(tar, "oci-layout", {"imageLayoutVersion": "1.0.0"})
        _add_json(tar, "repositories", _repositories(images))


def _oci_manifest(image: SaveImage, blobs: BlobSource) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": str(image.id), "size": blobs.size(image.id)},
        "layers": [
            {"mediaType": OCI_LAYER, "digest": str(d), "size": blobs.size(d)} for d in image.layers
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _index(manifests: list[tuple[SaveImage, Digest, int]]) -> dict[str, Any]:
    entries = []
    for image, digest, size in manifests:
        base = {"mediaType": OCI_MANIFEST, "digest": str(digest), "size": size}
        if not image.refs:
            entries.append(base)
        for ref in image.refs:
            annotations = {CONTAINERD_NAME: str(ref), OCI_REF_NAME: ref.tag or ""}
            entries.append({**base, "annotations": annotations})
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}


def _docker_entry(image: SaveImage) -> dict[str, Any]:
    return {
        "Config": _blob_path(image.id),
        "RepoTags": [ref.familiar() for ref in image.refs] or None,
        "Layers": [_blob_path(d) for d in image.layers],
    }


def _repositories(images: list[SaveImage]) -> dict[str, dict[str, str]]:
    repos: dict[str, dict[str, str]] = {}
    for image in images:
        if not image.layers:
            continue
        for ref in image.refs:
            repos.setdefault(ref.familiar_repository, {})[ref.tag or ""] = image.layers[-1].hex
    return repos


def _blob_path(digest: Digest) -> str:
    return f"blobs/sha256/{digest.hex}"


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def _add_blob(tar: tarfile.TarFile, digest: Digest, blobs: BlobSource) -> None:
    info = tarfile.TarInfo(_blob_path(digest))
    info.size = blobs.size(digest)
    info.mode = 0o444
    with blobs.open(digest) as f:
        tar.addfile(info, f)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o444
    tar.addfile(info, io.BytesIO(data))


def _add_json(tar: tarfile.TarFile, name: str, doc: Any) -> None:
    _add_bytes(tar, name, json.dumps(doc, separators=(",", ":")).encode())
