"""What ECR needs from the OCI registry (declared here, by the consumer), and an in-memory fake.

`berth.ecr.registry_adapter.RegistryImages` implements it over berth's own registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from berth.ecr._model import StoredImage

# Called before a push moves `tag` in `repository` to `digest`; raises to refuse it.
TagGuard = Callable[[str, str, str], None]


class LayerStore(Protocol):
    """The blob side ECR's layer operations need (ECR calls blobs "layers")."""

    def layer_size(self, name: str, digest: str) -> int | None:
        """Size of blob `digest` if repository `name` holds it, else None."""

    def start_layer_upload(self, name: str) -> str:
        """A new upload session for `name`; returns its id."""

    def upload_layer_part(self, name: str, upload_id: str, first_byte: int, data: bytes) -> int:
        """Append `data` at `first_byte` (which must be where the upload stands); returns the new
        last byte. Raises UploadNotFound or InvalidLayerPart."""

    def complete_layer_upload(self, name: str, upload_id: str, digest: str) -> None:
        """Verify the upload against `digest` and publish it. The session ends with it (also on
        LayerAlreadyExists or LayerDigestMismatch), except on EmptyUpload or UploadNotFound."""


class ImageRegistry(LayerStore, Protocol):
    def ensure_repository(self, name: str) -> None: ...

    def delete_repository(self, name: str) -> None:
        """Drop every manifest and tag of `name` (blobs go with the registry's GC)."""

    def images(self, name: str) -> list[StoredImage]:
        """Every manifest in `name`, oldest push first; [] for an unknown repository."""

    def manifest(self, name: str, reference: str) -> tuple[bytes, str, str] | None:
        """(bytes, media type, digest) of a tag or digest, or None."""

    def put_manifest(self, name: str, tag: str | None, data: bytes, media_type: str | None) -> str:
        """Store a manifest (its blobs must be there); returns its digest."""

    def delete_manifest(self, name: str, digest: str) -> None: ...

    def delete_tag(self, name: str, tag: str) -> None: ...

    def resolve_tag(self, name: str, tag: str) -> str | None: ...

    def set_tag_guard(self, guard: TagGuard) -> None: ...

