"""The registry's operations (blocking; the HTTP layer calls them from threads).

Vocabulary: a *repository* is a name like `bob/cats`; a *blob* is content by digest, visible in
a repository once linked there; a *manifest* is a blob that the index has parsed and records
with its references; a *tag* names a manifest in one repository.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from berth.registry._errors import (
    BLOB_UNKNOWN,
    BLOB_UPLOAD_UNKNOWN,
    DIGEST_INVALID,
    MANIFEST_BLOB_UNKNOWN,
    MANIFEST_TOO_LARGE,
    MANIFEST_UNKNOWN,
    NAME_UNKNOWN,
    TOO_MANY_TAGS,
    RegistryError,
)
from berth.registry._index import ManifestRow, NewManifest, RegistryIndex
from berth.registry._manifests import OCI_INDEX, parse_manifest
from berth.registry._names import check_tag, is_tag, looks_like_digest, parse_digest
from berth.registry._storage import FilesystemStorage
from berth.registry._uploads import UploadSession, UploadSessions
from berth.types import Digest

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_TAGS_PER_PUT = 100  # `?tag=` values on one manifest PUT; more get 414


@dataclass(frozen=True)
class BlobInfo:
    digest: Digest
    size: int
    path: Path


@dataclass(frozen=True)
class ManifestInfo:
    digest: Digest
    media_type: str
    size: int
    path: Path


@dataclass(frozen=True)
class PutManifestResult:
    digest: Digest
    subject: Digest | None
    tags: tuple[str, ...] = ()


class Registry:
    def __init__(self, storage: FilesystemStorage, index: RegistryIndex, *,
                 auto_create: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.index = index
        self.uploads = UploadSessions(storage, clock)
        # False for ECR-style registries where repositories must be created before a push.
        self.auto_create = auto_create
        # Checks run before a manifest PUT moves a tag: guard(repo, tag, new digest) raises a
        # RegistryError to refuse it (ECR's immutable tags install one).
        self.tag_guards: list[Callable[[str, str, str], None]] = []

    # -- repositories ------------------------------------------------------------------------
    def require_repository(self, repo: str) -> None:
        if not self.index.repository_exists(repo):
            raise RegistryError(NAME_UNKNOWN, {"name": repo})

    def _pushable(self, repo: str) -> None:
        if not self.auto_create:
            self.require_repository(repo)

    def delete_repository(self, repo: str) -> None:
        """Forget a repository's manifests, tags and blob links (GC frees the bytes) and abort its
        uploads in progress."""
        self.index.delete_repository(repo)
        self.uploads.abort_repository(repo)

    def catalog(self, n: int | None, last: str | None) -> list[str]:
        return self.index.repositories(n, last)

    # -- blobs -------------------------------------------------------------------------------
    def blob(self, repo: str, digest: Digest) -> BlobInfo:
        size = self.storage.stat(digest)
        if size is None or not self.index.blob_linked(repo, str(digest), touch=True):
            raise RegistryError(BLOB_UNKNOWN, {"digest": str(digest)})
        return BlobInfo(digest, size, self.storage.path(digest))

    def delete_blob(self, repo: str, digest: Digest) -> None:
        """Unlink the blob from `repo`; its bytes go when GC finds nothing else uses them."""
        if not self.index.unlink_blob(repo, str(digest)):
            raise RegistryError(BLOB_UNKNOWN, {"digest": str(digest)})

    def mount_blob(self, repo: str, digest: Digest, source: str) -> BlobInfo | None:
        """Link a blob `source` holds into `repo`; None when `source` does not have it."""
        self._pushable(repo)
        if self.storage.stat(digest) is None or not self.index.blob_linked(source, str(digest)):
            return None
        if not self.index.link_blob(repo, str(digest)):
            return None
        return self.blob(repo, digest)

    # -- uploads -----------------------------------------------------------------------------
    def start_upload(self, repo: str) -> UploadSession:
        self._pushable(repo)
        return self.uploads.open(repo)

    def finish_upload(self, session: UploadSession, expected: Digest) -> BlobInfo:
        """Verify the whole upload against `expected` and publish it; the session ends either way."""
        try:
            if session.doomed:  # its repository was deleted meanwhile
                raise RegistryError(BLOB_UPLOAD_UNKNOWN, {"session": session.id})
            actual = session.ingest.finish()
            if actual != expected:
                raise RegistryError(DIGEST_INVALID, {"expected": str(expected), "actual": str(actual)})
            self.index.publish_blob(session.repo, str(actual), session.ingest.size,
                                    lambda: self.storage.publish(session.ingest))
        except BaseException:
            self.uploads.close(session, abort=True)
            raise
        self.uploads.close(session, abort=False)
        return BlobInfo(actual, session.ingest.size, self.storage.path(actual))

    def cancel_upload(self, session: UploadSession) -> None:
        self.uploads.close(session, abort=True)

    def put_blob(self, repo: str | None, data: bytes) -> Digest:
        """Store small content (manifests) in one go."""
        ingest = self.storage.begin(f"put-{uuid.uuid4()}")
        try:
            ingest.write(data)
            digest = ingest.finish()
            self.index.publish_blob(repo, str(digest), len(data), lambda: self.storage.publish(ingest))
        except BaseException:
            self.storage.abort(ingest)
            raise
        return digest

    # -- manifests ---------------------------------------------------------------------------
    def resolve(self, repo: str, reference: str) -> Digest:
        """A tag or digest to the manifest digest it names in `repo` (MANIFEST_UNKNOWN otherwise)."""
        self.require_repository(repo)
        if looks_like_digest(reference):
            digest = parse_digest(reference)
            if self.index.manifest(repo, str(digest)) is None:
                raise RegistryError(MANIFEST_UNKNOWN, {"digest": reference})
            return digest
        target = self.index.resolve_tag(repo, reference) if is_tag(reference) else None
        if target is None:
            raise RegistryError(MANIFEST_UNKNOWN, {"tag": reference})
        return Digest(target)

    def manifest(self, repo: str, reference: str) -> ManifestInfo:
        digest = self.resolve(repo, reference)
        row = self.index.manifest(repo, str(digest))
        if row is None or self.storage.stat(digest) is None:
            raise RegistryError(MANIFEST_UNKNOWN, {"digest": str(digest)})
        return ManifestInfo(digest, row.media_type, row.size, self.storage.path(digest))

    def put_manifest(self, repo: str, reference: str, data: bytes, content_type: str | None,
                     extra_tags: Sequence[str] = ()) -> PutManifestResult:
        """Store a manifest under a tag or its digest; `extra_tags` (`?tag=` on a push by digest,
        distribution spec after 1.1.1) are applied in the same transaction."""
        self._pushable(repo)
        if len(data) > MAX_MANIFEST_BYTES:
            raise RegistryError(MANIFEST_TOO_LARGE, {"size": len(data), "limit": MAX_MANIFEST_BYTES})
        digest = Digest.of(data)
        if looks_like_digest(reference):
            if parse_digest(reference) != digest:
                raise RegistryError(DIGEST_INVALID, {"expected": reference, "actual": str(digest)})
            tags = tuple(dict.fromkeys(extra_tags))
        else:
            tags = (reference, *(t for t in dict.fromkeys(extra_tags) if t != reference))
        if len(tags) > MAX_TAGS_PER_PUT:
            raise RegistryError(TOO_MANY_TAGS, {"tags": len(tags), "limit": MAX_TAGS_PER_PUT})
        for tag in tags:
            check_tag(tag)
            for guard in self.tag_guards:
                guard(repo, tag, str(digest))
        parsed = parse_manifest(data, content_type)
        self.put_blob(None, data)
        record = NewManifest(repo, str(digest), parsed.media_type, len(data),
                             str(parsed.subject) if parsed.subject else None, parsed.artifact_type,
                             parsed.annotations, tuple(map(str, parsed.blobs)), tuple(map(str, parsed.manifests)))
        missing = self.index.put_manifest(
            record, tags, lambda: self.index.missing_references(repo, record.blobs, record.manifests))
        if missing:
            raise RegistryError(MANIFEST_BLOB_UNKNOWN, [{"digest": d} for d in missing],
                                f"manifest references unknown blobs or manifests: {', '.join(missing)}")
        return PutManifestResult(digest, parsed.subject, tags)

    def delete_manifest(self, repo: str, reference: str) -> None:
        """By digest: the manifest and every tag on it. By tag: only the tag."""
        self.require_repository(repo)
        if looks_like_digest(reference):
            digest = parse_digest(reference)
            if not self.index.delete_manifest(repo, str(digest)):
                raise RegistryError(MANIFEST_UNKNOWN, {"digest": reference})
        elif not (is_tag(reference) and self.index.delete_tag(repo, reference)):
            raise RegistryError(MANIFEST_UNKNOWN, {"tag": reference})

    # -- discovery ---------------------------------------------------------------------------
    def tags(self, repo: str, n: int | None, last: str | None) -> list[str]:
        self.require_repository(repo)
        return self.index.tags(repo, n, last)

    def referrers(self, repo: str, subject: Digest, artifact_type: str | None) -> dict[str, object]:
        """The image index the referrers API returns (never NAME_UNKNOWN: empty when nothing refers)."""
        rows = self.index.referrers(repo, str(subject))
        if artifact_type is not None:
            rows = [r for r in rows if r.artifact_type == artifact_type]
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [_referrer(r) for r in rows]}


def _referrer(row: ManifestRow) -> dict[str, object]:
    desc: dict[str, object] = {"mediaType": row.media_type, "size": row.size, "digest": row.digest}
    if row.artifact_type:
        desc["artifactType"] = row.artifact_type
    if row.annotations:
        desc["annotations"] = row.annotations
    return desc
