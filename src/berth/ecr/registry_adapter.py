"""ImageRegistry over berth's own registry (`berth.registry.Registry`)."""

from __future__ import annotations

import json
from typing import Any

from berth.ecr._errors import (
    EmptyUpload, ImageNotFound, ImageTagAlreadyExists, InvalidLayer, InvalidLayerPart, LayerAlreadyExists,
    LayerDigestMismatch, LayersNotFound, UploadNotFound,
)
from berth.ecr._model import StoredImage
from berth.ecr._registry import TagGuard
from berth.errors import InvalidArgument
from berth.registry import Registry, RegistryError
from berth.registry import TAG_INVALID, UploadSession
from berth.types import Digest


class RegistryImages:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def ensure_repository(self, name: str) -> None:
        self._registry.index.create_repository(name)

    def delete_repository(self, name: str) -> None:
        self._registry.delete_repository(name)

    def images(self, name: str) -> list[StoredImage]:
        out = []
        for row, pushed in self._registry.index.manifests_in(name):
            doc = self._document(name, row.digest)
            out.append(StoredImage(
                digest=row.digest, media_type=row.media_type,
                artifact_media_type=str((doc.get("config") or {}).get("mediaType", "")),
                size=_image_size(doc), pushed_at=pushed, tags=tuple(self._registry.index.tags_of(name, row.digest)),
                manifest_size=row.size))
        return out

    def _document(self, name: str, digest: str) -> dict[str, Any]:
        found = self.manifest(name, digest)
        try:
            doc = json.loads(found[0]) if found else {}
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def manifest(self, name: str, reference: str) -> tuple[bytes, str, str] | None:
        try:
            info = self._registry.manifest(name, reference)
            return info.path.read_bytes(), info.media_type, str(info.digest)
        except (RegistryError, OSError):
            return None

    def put_manifest(self, name: str, tag: str | None, data: bytes, media_type: str | None) -> str:
        try:
            return str(self._registry.put_manifest(name, tag or str(Digest.of(data)), data, media_type).digest)
        except RegistryError as err:
            if err.error.code == "MANIFEST_BLOB_UNKNOWN":
                raise LayersNotFound(f"Layers with digests {err.detail} required for pushing image into repository "
                                     f"with name '{name}' do not exist") from err
            if err.error.code == "TAG_INVALID":
                raise ImageTagAlreadyExists(str(err)) from err
            raise InvalidLayer(f"Invalid parameter at 'imageManifest': {err}") from err

    def delete_manifest(self, name: str, digest: str) -> None:
        try:
            self._registry.delete_manifest(name, digest)
        except RegistryError as err:
            raise ImageNotFound(f"Requested image not found: {digest}") from err

    def delete_tag(self, name: str, tag: str) -> None:
        self._registry.index.delete_tag(name, tag)

    def resolve_tag(self, name: str, tag: str) -> str | None:
        return self._registry.index.resolve_tag(name, tag)

    # layers (ECR's blob API over the registry's upload sessions)

    def layer_size(self, name: str, digest: str) -> int | None:
        try:
            return self._registry.blob(name, Digest(digest)).size
        except (RegistryError, InvalidArgument):
            return None

    def start_layer_upload(self, name: str) -> str:
        return self._registry.start_upload(name).id

    def upload_layer_part(self, name: str, upload_id: str, first_byte: int, data: bytes) -> int:
        session = self._claim(name, upload_id)
        try:
            if first_byte != session.offset:
                last = session.offset - 1 if session.offset else None
                raise InvalidLayerPart(f"The first byte of the layer part ({first_byte}) is not consecutive to the "
                                       f"last byte received ({session.offset - 1}) for upload '{upload_id}'",
                                       upload_id=upload_id, last_valid_byte=last)
            mark = session.ingest.mark()
            try:
                session.ingest.write(data)
            except BaseException:
                session.ingest.rollback(mark)  # a failed part leaves the upload as it was: it may be retried
                raise
            return session.offset - 1
        finally:
            self._registry.uploads.release(session)

    def complete_layer_upload(self, name: str, upload_id: str, digest: str) -> None:
        session = self._claim(name, upload_id)
        try:
            if session.offset == 0:
                raise EmptyUpload(f"The upload '{upload_id}' does not contain any layer parts")
            if self.layer_size(name, digest) is not None:
                self._registry.cancel_upload(session)
                raise LayerAlreadyExists(f"The layer '{digest}' already exists in the repository with name '{name}'")
        except BaseException:
            self._registry.uploads.release(session)  # (a no-op once cancelled)
            raise
        try:
            self._registry.finish_upload(session, Digest(digest))  # ends the session whatever happens
        except RegistryError as err:
            raise LayerDigestMismatch(f"The layer digest calculated for upload '{upload_id}' does not match "
                                      f"'{digest}': {err}") from err

    def _claim(self, name: str, upload_id: str) -> UploadSession:
        try:
            return self._registry.uploads.claim(name, upload_id)
        except RegistryError as err:
            if err.status == 416:  # another request is writing to it
                raise InvalidLayerPart(f"The upload '{upload_id}' is busy with another part",
                                       upload_id=upload_id) from err
            raise UploadNotFound(f"The upload with id '{upload_id}' does not exist in the repository with "
                                 f"name '{name}'") from err

    def set_tag_guard(self, guard: TagGuard) -> None:
        def registry_guard(repo: str, tag: str, digest: str) -> None:
            try:
                guard(repo, tag, digest)
            except ImageTagAlreadyExists as err:  # what `docker push` prints: "tag invalid: ..."
                raise RegistryError(TAG_INVALID, {"tag": tag}, str(err)) from err

        self._registry.tag_guards.append(registry_guard)


def _image_size(doc: dict[str, Any]) -> int:
    """ECR's imageSizeInBytes: the compressed layers (plus the config) a manifest references."""
    descriptors = [doc.get("config") or {}, *(doc.get("layers") or []), *(doc.get("manifests") or [])]
    return sum(int(d.get("size", 0)) for d in descriptors if isinstance(d, dict))
