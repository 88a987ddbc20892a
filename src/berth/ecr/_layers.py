"""ECR's layer operations: the blob half of a push or pull done through the ECR API itself.

    InitiateLayerUpload → UploadLayerPart … (parts in order) → CompleteLayerUpload → PutImage
    BatchCheckLayerAvailability (which layers a push may skip), GetDownloadUrlForLayer (pull)

They are thin: an ECR upload is one of the registry's upload sessions, so layers pushed this way
and by `docker push` are the same blobs, verified and published the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from berth.ecr._errors import InvalidLayerPart, InvalidParameter, LayersNotFound
from berth.ecr._model import Repository
from berth.ecr._registry import LayerStore
from berth.errors import InvalidArgument
from berth.types import Digest

PART_SIZE = 20 * 1024 * 1024  # ECR's largest layer part (what InitiateLayerUpload announces)
LAYER_MEDIA_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int


@dataclass(frozen=True)
class LayerFailure:
    digest: str
    code: str      # InvalidLayerDigest | MissingLayerDigest
    reason: str


class EcrLayers:
    """Layer operations on repositories `lookup` knows (it raises RepositoryNotFound)."""

    def __init__(self, store: LayerStore, lookup: Callable[[str, str], Repository],
                 registry_host: Callable[[], str]) -> None:
        self._store = store
        self._lookup = lookup
        self._registry_host = registry_host

    def check(self, name: str, digests: Sequence[str], account: str = "") -> tuple[list[Layer], list[LayerFailure]]:
        self._lookup(name, account)
        if not digests:
            raise InvalidParameter("Invalid parameter at 'layerDigests' failed to satisfy constraint: "
                                   "'Member must have length greater than or equal to 1'")
        layers, failures = [], []
        for digest in dict.fromkeys(digests):
            if not _is_digest(digest):
                failures.append(LayerFailure(digest, "InvalidLayerDigest", "Invalid layer digest"))
                continue
            size = self._store.layer_size(name, digest)
            if size is None:
                failures.append(LayerFailure(digest, "MissingLayerDigest", "Could not find layer"))
            else:
                layers.append(Layer(digest, size))
        return layers, failures

    def initiate(self, name: str, account: str = "") -> str:
        self._lookup(name, account)
        return self._store.start_layer_upload(name)

    def upload_part(self, name: str, upload_id: str, first_byte: int, last_byte: int, data: bytes,
                    account: str = "") -> int:
        self._lookup(name, account)
        if first_byte < 0 or last_byte - first_byte + 1 != len(data) or not data:
            raise InvalidLayerPart(f"The layer part bytes {first_byte}-{last_byte} do not match the "
                                   f"{len(data)} bytes sent", upload_id=upload_id)
        if len(data) > PART_SIZE:
            raise InvalidLayerPart(f"The layer part is larger than {PART_SIZE} bytes", upload_id=upload_id)
        return self._store.upload_layer_part(name, upload_id, first_byte, data)

    def complete(self, name: str, upload_id: str, digests: Sequence[str], account: str = "") -> str:
        self._lookup(name, account)
        if len(digests) != 1 or not _is_digest(digests[0]):
            raise InvalidParameter("Invalid parameter at 'layerDigests': give the one sha256 digest of the layer")
        self._store.complete_layer_upload(name, upload_id, digests[0])
        return digests[0]

    def download_url(self, name: str, digest: str, account: str = "") -> str:
        repo = self._lookup(name, account)
        if not _is_digest(digest) or self._store.layer_size(name, digest) is None:
            raise LayersNotFound(f"The image layer '{digest}' does not exist in the repository with name "
                                 f"'{name}' in the registry with id '{repo.registry_id}'")
        return f"http://{self._registry_host()}/v2/{name}/blobs/{digest}"


def _is_digest(text: str) -> bool:
    try:
        Digest(text)
    except InvalidArgument:
        return False
    return True
