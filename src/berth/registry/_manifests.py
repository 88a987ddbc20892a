"""Parsing pushed manifests into what the registry must check and index (pure; no I/O).

A manifest is stored byte for byte; this module only reads it to find what it references:
blobs (config and layers of an image manifest), child manifests (of an index), and the
optional `subject` that makes it a referrer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument
from berth.registry._errors import MANIFEST_INVALID, RegistryError
from berth.types import Digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES

# Layers that live elsewhere by design ("non-distributable"); a registry need not hold them.
_FOREIGN_LAYER_TYPES = frozenset({
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})


@dataclass(frozen=True)
class ParsedManifest:
    media_type: str
    blobs: tuple[Digest, ...] = ()
    manifests: tuple[Digest, ...] = ()
    subject: Digest | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)


def _invalid(reason: str) -> RegistryError:
    return RegistryError(MANIFEST_INVALID, {"reason": reason}, f"manifest invalid: {reason}")


def _descriptor_digest(desc: Any, where: str) -> Digest:
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise _invalid(f"{where}: descriptor without digest")
    try:
        return Digest(desc["digest"])
    except InvalidArgument as err:
        raise _invalid(f"{where}: bad digest {desc['digest']!r}") from err


def _media_type(doc: dict[str, Any], content_type: str | None) -> str:
    declared = doc.get("mediaType")
    header = (content_type or "").split(";", 1)[0].strip() or None
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType is not a string")
    if declared and header and header in MANIFEST_TYPES and declared != header:
        raise _invalid(f"mediaType {declared} does not match Content-Type {header}")
    media_type = declared or header
    if media_type is None:
        # OCI allows mediaType to be omitted; tell the two OCI kinds apart by their fields.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise _invalid(f"unsupported manifest media type {media_type}")
    return media_type


def _layers(doc: dict[str, Any]) -> list[Digest]:
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise _invalid("layers is not a list")
    return [_descriptor_digest(layer, "layers") for layer in layers
            if not (isinstance(layer, dict) and layer.get("mediaType") in _FOREIGN_LAYER_TYPES)]


def _subject(doc: dict[str, Any]) -> Digest | None:
    return _descriptor_digest(doc["subject"], "subject") if doc.get("subject") is not None else None


def _artifact_type(doc: dict[str, Any], media_type: str) -> str | None:
    """The referrers-API artifactType: the manifest's own, else an image manifest's config type."""
    declared = doc.get("artifactType")
    if isinstance(declared, str) and declared:
        return declared
    if media_type in IMAGE_TYPES:
        config_type = doc.get("config", {}).get("mediaType")
        return config_type if isinstance(config_type, str) else None
    return None


def parse_manifest(data: bytes, content_type: str | None) -> ParsedManifest:
    """Read what a manifest references; raises MANIFEST_INVALID for anything malformed."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise _invalid("not JSON") from err
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    media_type = _media_type(doc, content_type)
    annotations = doc.get("annotations") if isinstance(doc.get("annotations"), dict) else {}
    common: dict[str, Any] = {"subject": _subject(doc), "artifact_type": _artifact_type(doc, media_type),
              "annotations": annotations}
    if media_type in IMAGE_TYPES:
        config = _descriptor_digest(doc.get("config"), "config")
        return ParsedManifest(media_type, blobs=(config, *_layers(doc)), **common)
    children = doc.get("manifests")
    if not isinstance(children, list):
        raise _invalid("manifests is not a list")
    return ParsedManifest(media_type, manifests=tuple(_descriptor_digest(c, "manifests") for c in children),
                          **common)
