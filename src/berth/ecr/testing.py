"""Test kit: an in-memory ImageRegistry with a settable clock.

    registry = MemoryImages()
    ecr = EcrService(MemoryStore(), registry, EcrTokens(b"k"), "127.0.0.1:5000")
    registry.push("app", "v1", b'{"layers": []}')       # what a docker push would leave behind
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from berth.ecr._errors import (
    EmptyUpload, ImageNotFound, InvalidLayerPart, LayerAlreadyExists, LayerDigestMismatch, UploadNotFound,
)
from berth.ecr._model import StoredImage
from berth.ecr._registry import TagGuard
from berth.types import Digest


@dataclass
class MemoryImages:
    now: float = 1_700_000_000.0
    repos: dict[str, dict[str, tuple[bytes, str, float]]] = field(default_factory=dict)  # repo -> digest -> ...
    tags: dict[str, dict[str, str]] = field(default_factory=dict)                       # repo -> tag -> digest
    guards: list[TagGuard] = field(default_factory=list)
    layers: dict[str, dict[str, bytes]] = field(default_factory=dict)                   # repo -> digest -> bytes
    uploads: dict[str, tuple[str, bytearray]] = field(default_factory=dict)             # id -> (repo, bytes)

    def push(self, name: str, tag: str | None, data: bytes, media_type: str = "application/vnd.oci.image.manifest.v1+json",
             at: float | None = None) -> str:
        """A push through the registry's HTTP API: guards run first."""
        digest = str(Digest.of(data))
        if tag:
            for guard in self.guards:
                guard(name, tag, digest)
        self.repos.setdefault(name, {})[digest] = (data, media_type, self.now if at is None else at)
        if tag:
            self.tags.setdefault(name, {})[tag] = digest
        return digest

    def ensure_repository(self, name: str) -> None:
        self.repos.setdefault(name, {})

    def delete_repository(self, name: str) -> None:
        self.repos.pop(name, None)
        self.tags.pop(name, None)

    def images(self, name: str) -> list[StoredImage]:
        out = []
        for digest, (data, media_type, pushed) in sorted(self.repos.get(name, {}).items(), key=lambda kv: kv[1][2]):
            doc = json.loads(data) if data.strip().startswith(b"{") else {}
            size = sum(int(d.get("size", 0)) for d in [doc.get("config") or {}, *(doc.get("layers") or [])])
            tags = tuple(sorted(t for t, d in self.tags.get(name, {}).items() if d == digest))
            out.append(StoredImage(digest, media_type, str((doc.get("config") or {}).get("mediaType", "")), size,
                                   pushed, tags, len(data)))
        return out

    def manifest(self, name: str, reference: str) -> tuple[bytes, str, str] | None:
        digest = self.tags.get(name, {}).get(reference, reference)
        found = self.repos.get(name, {}).get(digest)
        return (found[0], found[1], digest) if found else None

    def put_manifest(self, name: str, tag: str | None, data: bytes, media_type: str | None) -> str:
        return self.push(name, tag, data, media_type or "application/vnd.oci.image.manifest.v1+json")

    def delete_manifest(self, name: str, digest: str) -> None:
        if self.repos.get(name, {}).pop(digest, None) is None:
            raise ImageNotFound(digest)
        self.tags[name] = {t: d for t, d in self.tags.get(name, {}).items() if d != digest}

    def delete_tag(self, name: str, tag: str) -> None:
        self.tags.get(name, {}).pop(tag, None)

    def resolve_tag(self, name: str, tag: str) -> str | None:
        return self.tags.get(name, {}).get(tag)

    def set_tag_guard(self, guard: TagGuard) -> None:
        self.guards.append(guard)

    # layers

    def layer_size(self, name: str, digest: str) -> int | None:
        data = self.layers.get(name, {}).get(digest)
        return None if data is None else len(data)

    def start_layer_upload(self, name: str) -> str:
        upload_id = str(uuid.uuid4())
        self.uploads[upload_id] = (name, bytearray())
        return upload_id

    def _upload(self, name: str, upload_id: str) -> bytearray:
        repo, data = self.uploads.get(upload_id, ("", bytearray()))
        if repo != name:
            raise UploadNotFound(f"no upload {upload_id} in {name}")
        return data

    def upload_layer_part(self, name: str, upload_id: str, first_byte: int, data: bytes) -> int:
        buffer = self._upload(name, upload_id)
        if first_byte != len(buffer):
            raise InvalidLayerPart(f"part starts at {first_byte}, upload is at {len(buffer)}", upload_id=upload_id,
                                   last_valid_byte=len(buffer) - 1 if buffer else None)
        buffer += data
        return len(buffer) - 1

    def complete_layer_upload(self, name: str, upload_id: str, digest: str) -> None:
        buffer = self._upload(name, upload_id)
        if not buffer:
            raise EmptyUpload(f"upload {upload_id} is empty")
        del self.uploads[upload_id]
        if digest in self.layers.get(name, {}):
            raise LayerAlreadyExists(digest)
        if str(Digest.of(bytes(buffer))) != digest:
            raise LayerDigestMismatch(digest)
        self.layers.setdefault(name, {})[digest] = bytes(buffer)
