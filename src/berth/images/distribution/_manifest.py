"""Manifests and indexes as typed values: parsed from registry bytes, or built for a push.

Pure functions only; the bytes a registry returns are kept as they are (their digest names them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument
from berth.images.distribution import _mediatypes as mt
from berth.types import Digest


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageManifest:
    """A Docker schema 2 or OCI image manifest: one config blob and its layers, lowest first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    """A Docker manifest list or OCI image index."""

    media_type: str
    manifests: tuple[Descriptor, ...]


def parse_manifest(data: bytes, content_type: str = "") -> ImageManifest | Index:
    """Parse manifest bytes; the `mediaType` field wins over the Content-Type header.

    Raises:
        InvalidArgument: not JSON, schema 1, or neither an image manifest nor an index.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidArgument(f"invalid manifest: {err}") from err
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid manifest: not a JSON object")
    media_type = str(doc.get("mediaType") or content_type.split(";")[0].strip())
    if doc.get("schemaVersion") == 1 or media_type in mt.SCHEMA1:
        raise InvalidArgument("schema 1 manifests are not supported; push the image again with a "
                              "current client")
    if "manifests" in doc or media_type in mt.INDEXES:
        return Index(media_type or mt.OCI_INDEX, tuple(_descriptor(d) for d in doc.get("manifests") or []))
    if "config" in doc:
        return ImageManifest(media_type or mt.OCI_MANIFEST, _descriptor(doc["config"]),
                             tuple(_descriptor(d) for d in doc.get("layers") or []))
    raise InvalidArgument(f"unsupported manifest media type {media_type!r}")


def _descriptor(doc: Any) -> Descriptor:
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid manifest: descriptor is not an object")
    try:
        platform = doc.get("platform")
        return Descriptor(
            media_type=str(doc.get("mediaType", "")), digest=Digest(str(doc["digest"])),
            size=int(doc.get("size", 0)),
            platform=Platform(str(platform.get("os", "")), str(platform.get("architecture", "")),
                              str(platform.get("variant", ""))) if isinstance(platform, dict) else None,
            annotations=dict(doc.get("annotations") or {}))
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidArgument(f"invalid manifest descriptor: {err}") from err


def schema2_manifest(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """Docker schema 2 manifest bytes, indented like dockerd writes them."""
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": _descriptor_json(config),
        "layers": [_descriptor_json(d) for d in layers],
    }
    return json.dumps(doc, indent=3).encode()


def _descriptor_json(d: Descriptor) -> dict[str, Any]:
    return {"mediaType": d.media_type, "size": d.size, "digest": str(d.digest)}
