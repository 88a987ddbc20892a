"""EcrService: ECR's repository and image operations over berth's registry (aws-apis.md §4).

Repositories are berth metadata (mutability, tags, policies), kept as `ecr.repository` records in the
control-plane ObjectStore (see `_store.py`); images are the registry's manifests,
so `docker push` to `<registry>/<name>` and PutImage land in the same place. Tag immutability is
enforced on both paths: PutImage checks it here, and a tag guard installed in the registry refuses
a `docker push` that would move an immutable tag.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from berth.ecr._errors import (
    ImageAlreadyExists, ImageTagAlreadyExists, InvalidParameter, LifecyclePolicyNotFound,
    LifecyclePolicyPreviewNotFound, RepositoryAlreadyExists, RepositoryNotEmpty, RepositoryNotFound,
    RepositoryPolicyNotFound,
)
from berth.ecr._layers import EcrLayers
from berth.ecr._lifecycle import Expiry, evaluate, parse_policy
from berth.ecr._model import MUTABILITY, Repository, StoredImage
from berth.ecr._registry import ImageRegistry
from berth.ecr._store import RepositoryStore
from berth.ecr._tokens import EcrTokens
from berth.state import ObjectStore
from berth.types import Digest

_NAME_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


@dataclass(frozen=True)
class ImageId:
    digest: str | None = None
    tag: str | None = None

    def json(self) -> dict[str, str]:
        out = {}
        if self.digest:
            out["imageDigest"] = self.digest
        if self.tag:
            out["imageTag"] = self.tag
        return out


@dataclass(frozen=True)
class Failure:
    image_id: ImageId
    code: str           # ImageNotFound | InvalidImageDigest | InvalidImageTag | ImageTagDoesNotMatchDigest
    reason: str


@dataclass(frozen=True)
class ManifestImage:
    image_id: ImageId
    manifest: bytes
    media_type: str


@dataclass
class Preview:
    expiring: list[Expiry] = field(default_factory=list)
    policy: str = ""


class EcrService:
    def __init__(self, store: ObjectStore, registry: ImageRegistry, tokens: EcrTokens, registry_host: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._repos = RepositoryStore(store)
        self._registry = registry
        self.tokens = tokens
        self.registry_host = registry_host
        self._clock = clock
        self._previews: dict[str, Preview] = {}
        registry.set_tag_guard(self.check_tag_push)
        self.layers = EcrLayers(registry, self.repository, lambda: self.registry_host)

    # repositories

    def uri(self, repo: Repository | str) -> str:
        return f"{self.registry_host}/{repo if isinstance(repo, str) else repo.name}"

    def create_repository(self, name: str, *, account: str, region: str, mutability: str = "MUTABLE",
                          exclusions: Sequence[dict[str, str]] = (), scan_on_push: bool = False,
                          encryption: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> Repository:
        _check_name(name)
        _check_mutability(mutability)
        _check_encryption(encryption)
        repo = Repository(name=name, registry_id=account, region=region, created_at=self._clock(),
                          mutability=mutability, mutability_exclusions=tuple(exclusions), scan_on_push=scan_on_push,
                          encryption=encryption or {"encryptionType": "AES256"}, tags=dict(tags or {}))
        if not self._repos.insert(repo):
            raise RepositoryAlreadyExists(f"The repository with name '{name}' already exists in the registry "
                                          f"with id '{account}'")
        self._registry.ensure_repository(name)
        return repo

    def repository(self, name: str, account: str = "") -> Repository:
        repo = self._repos.get(name)
        if repo is None:
            raise _not_found(name, account)
        return repo

    def repositories(self, names: Sequence[str] | None = None, account: str = "") -> list[Repository]:
        if names:
            return [self.repository(n, account) for n in names]
        return self._repos.all()

    def delete_repository(self, name: str, *, force: bool = False, account: str = "") -> Repository:
        repo = self.repository(name, account)
        if not force and self._registry.images(name):
            raise RepositoryNotEmpty(f"The repository with name '{name}' in registry with id "
                                     f"'{repo.registry_id}' cannot be deleted because it still contains images")
        self._registry.delete_repository(name)
        self._repos.delete(name)
        return repo

    def set_mutability(self, name: str, mutability: str, exclusions: Sequence[dict[str, str]] = (),
                       account: str = "") -> Repository:
        _check_mutability(mutability)
        return self._update(name, account, lambda r: replace(r, mutability=mutability,
                                                              mutability_exclusions=tuple(exclusions)))

    def set_scanning(self, name: str, scan_on_push: bool, account: str = "") -> Repository:
        return self._update(name, account, lambda r: replace(r, scan_on_push=scan_on_push))

    def _update(self, name: str, account: str, change: Callable[[Repository], Repository]) -> Repository:
        """Read-modify-write of one repository (retried on a concurrent write); the new record."""
        updated = self._repos.update(name, change)
        if updated is None:
            raise _not_found(name, account)
        return updated

    # resource tags (by ARN)

    def by_arn(self, arn: str) -> Repository:
        name = arn.split(":repository/", 1)[1] if ":repository/" in arn else ""
        if not name:
            raise InvalidParameter(f"Invalid parameter at 'resourceArn' failed to satisfy constraint: '{arn}'")
        return self.repository(name)

    def tag_resource(self, arn: str, tags: dict[str, str]) -> None:
        repo = self.by_arn(arn)
        self._update(repo.name, repo.registry_id, lambda r: replace(r, tags={**r.tags, **tags}))

    def untag_resource(self, arn: str, keys: Sequence[str]) -> None:
        repo = self.by_arn(arn)
        self._update(repo.name, repo.registry_id,
                     lambda r: replace(r, tags={k: v for k, v in r.tags.items() if k not in keys}))

    # auth

    def authorization_token(self, account: str) -> tuple[str, float, str]:
        """(base64 "AWS:password", expiry, proxy endpoint) for GetAuthorizationToken."""
        token, expires = self.tokens.authorization_token(account)
        return token, expires, f"http://{self.registry_host}"

    # images

    def images(self, name: str, *, tag_status: str = "ANY", account: str = "") -> list[StoredImage]:
        self.repository(name, account)
        images = self._registry.images(name)
        if tag_status == "TAGGED":
            return [i for i in images if i.tags]
        if tag_status == "UNTAGGED":
            return [i for i in images if not i.tags]
        return images

    def find_images(self, name: str, ids: Sequence[ImageId], account: str = "") -> tuple[list[StoredImage], list[Failure]]:
        images = self.images(name, account=account)
        by_digest = {i.digest: i for i in images}
        found: list[StoredImage] = []
        failures: list[Failure] = []
        for image_id in ids:
            result = self._match(image_id, by_digest, name)
            if isinstance(result, Failure):
                failures.append(result)
            elif result not in found:
                found.append(result)
        return found, failures

    def _match(self, image_id: ImageId, by_digest: dict[str, StoredImage], name: str) -> StoredImage | Failure:
        if image_id.digest and not _valid_digest(image_id.digest):
            return Failure(image_id, "InvalidImageDigest", "Invalid request parameters: image digest should "
                                                           "satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'")
        if image_id.tag and not _TAG_RE.match(image_id.tag):
            return Failure(image_id, "InvalidImageTag", "Invalid request parameters: image tag is invalid")
        if not image_id.digest and not image_id.tag:
            return Failure(image_id, "MissingDigestAndTag", "Invalid request parameters: both tag and digest "
                                                            "cannot be null")
        digest = image_id.digest
        if image_id.tag:
            tagged = self._registry.resolve_tag(name, image_id.tag)
            if tagged is None:
                return Failure(image_id, "ImageNotFound", "Requested image not found")
            if digest and digest != tagged:
                return Failure(image_id, "ImageTagDoesNotMatchDigest", "Invalid request parameters: given tag "
                                                                       "does not map to the given digest")
            digest = tagged
        image = by_digest.get(digest or "")
        return image if image else Failure(image_id, "ImageNotFound", "Requested image not found")

    def batch_get(self, name: str, ids: Sequence[ImageId], accepted: Sequence[str] = (),
                  account: str = "") -> tuple[list[ManifestImage], list[Failure]]:
        self.repository(name, account)
        out: list[ManifestImage] = []
        failures: list[Failure] = []
        for image_id in ids:
            found, failed = self.find_images(name, [image_id], account)
            if failed:
                failures += failed
                continue
            data, media_type, digest = self._registry.manifest(name, found[0].digest) or (b"", "", "")
            if accepted and media_type not in accepted:
                failures.append(Failure(image_id, "UnsupportedImageType",
                                        f"Invalid image manifest media type: {media_type}"))
                continue
            out.append(ManifestImage(ImageId(digest, image_id.tag), data, media_type))
        return out, failures

    def batch_delete(self, name: str, ids: Sequence[ImageId], account: str = "") -> tuple[list[ImageId], list[Failure]]:
        self.repository(name, account)
        deleted: list[ImageId] = []
        failures: list[Failure] = []
        for image_id in ids:
            found, failed = self.find_images(name, [image_id], account)
            if failed:
                failures += failed
                continue
            image = found[0]
            if image_id.tag and not image_id.digest and len(image.tags) > 1:
                self._registry.delete_tag(name, image_id.tag)   # other tags keep the image
                deleted.append(ImageId(image.digest, image_id.tag))
                continue
            self._registry.delete_manifest(name, image.digest)
            deleted += [ImageId(image.digest, t) for t in image.tags] or [ImageId(image.digest)]
        return deleted, failures

    def put_image(self, name: str, manifest: bytes, *, tag: str | None, digest: str | None = None,
                  media_type: str | None = None, account: str = "") -> ManifestImage:
        repo = self.repository(name, account)
        actual = str(Digest.of(manifest))
        if digest and digest != actual:
            raise InvalidParameter(f"Invalid parameter at 'imageDigest': digest {digest} does not match the "
                                   f"manifest's digest {actual}")
        if tag is not None and not _TAG_RE.match(tag):
            raise InvalidParameter(f"Invalid parameter at 'imageTag' failed to satisfy constraint: '{tag}'")
        current = self._registry.resolve_tag(name, tag) if tag else None
        exists = any(i.digest == actual for i in self._registry.images(name))
        if (tag and current == actual) or (not tag and exists):
            raise ImageAlreadyExists(f"Image with digest '{actual}'" + (f" and tag '{tag}'" if tag else "")
                                     + f" already exists in the repository with name '{name}' in registry with id "
                                     f"'{repo.registry_id}'")
        if tag:
            self.check_tag_push(name, tag, actual)
        stored = self._registry.put_manifest(name, tag, manifest, media_type)
        found = self._registry.manifest(name, stored)
        return ManifestImage(ImageId(stored, tag), manifest, found[1] if found else (media_type or ""))

    def check_tag_push(self, name: str, tag: str, digest: str) -> None:
        """The registry's tag guard: refuse to move an immutable tag (ECR's wording)."""
        repo = self._repos.get(name)
        if repo is None or not repo.immutable_tag(tag):
            return
        current = self._registry.resolve_tag(name, tag)
        if current is not None and current != digest:
            raise ImageTagAlreadyExists(f"The image tag '{tag}' already exists in the '{name}' repository and "
                                        f"cannot be overwritten because the repository is immutable.")

    # policies

    def put_lifecycle_policy(self, name: str, text: str, account: str = "") -> list[Expiry]:
        """Store the policy and apply it at once (ECR applies within 24 h; sooner is allowed)."""
        parse_policy(text)
        self._update(name, account, lambda r: replace(r, lifecycle_policy=text))
        return self.apply_lifecycle(name)

    def lifecycle_policy(self, name: str, account: str = "") -> Repository:
        repo = self.repository(name, account)
        if repo.lifecycle_policy is None:
            raise LifecyclePolicyNotFound(f"Lifecycle policy does not exist for the repository with name "
                                          f"'{name}' in the registry with id '{repo.registry_id}'")
        return repo

    def delete_lifecycle_policy(self, name: str, account: str = "") -> Repository:
        repo = self.lifecycle_policy(name, account)
        self._update(name, account, lambda r: replace(r, lifecycle_policy=None))
        return repo

    def apply_lifecycle(self, name: str | None = None) -> list[Expiry]:
        """Expire what the policies select (one repository, or all); returns what was deleted."""
        expired: list[Expiry] = []
        for repo in ([self.repository(name)] if name else self._repos.all()):
            if repo.lifecycle_policy is None:
                continue
            doomed = evaluate(parse_policy(repo.lifecycle_policy), self._registry.images(repo.name), self._clock())
            for expiry in doomed:
                self._registry.delete_manifest(repo.name, expiry.image.digest)
            expired += doomed
        return expired

    def start_preview(self, name: str, text: str | None = None, account: str = "") -> Preview:
        repo = self.repository(name, account)
        policy = text or repo.lifecycle_policy
        if policy is None:
            raise LifecyclePolicyNotFound(f"Lifecycle policy does not exist for the repository with name "
                                          f"'{name}' in the registry with id '{repo.registry_id}'")
        preview = Preview(evaluate(parse_policy(policy), self._registry.images(name), self._clock()), policy)
        self._previews[name] = preview
        return preview

    def preview(self, name: str, account: str = "") -> Preview:
        self.repository(name, account)
        if name not in self._previews:
            raise LifecyclePolicyPreviewNotFound(f"There is no preview for the repository with name '{name}'")
        return self._previews[name]

    def set_repository_policy(self, name: str, text: str, account: str = "") -> Repository:
        return self._update(name, account, lambda r: replace(r, repository_policy=text))

    def repository_policy(self, name: str, account: str = "") -> Repository:
        repo = self.repository(name, account)
        if repo.repository_policy is None:
            raise RepositoryPolicyNotFound(f"Repository policy does not exist for the repository with name "
                                           f"'{name}' in the registry with id '{repo.registry_id}'")
        return repo

    def delete_repository_policy(self, name: str, account: str = "") -> Repository:
        repo = self.repository_policy(name, account)
        self._update(name, account, lambda r: replace(r, repository_policy=None))
        return repo


def _not_found(name: str, account: str) -> RepositoryNotFound:
    return RepositoryNotFound(f"The repository with name '{name}' does not exist in the registry "
                              f"with id '{account or '123456789012'}'")


def _check_name(name: str) -> None:
    if not 2 <= len(name) <= 256 or not _NAME_RE.match(name):
        raise InvalidParameter("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy "
                               "regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''")


def _check_mutability(mutability: str) -> None:
    if mutability not in MUTABILITY:
        raise InvalidParameter(f"Invalid parameter at 'imageTagMutability' failed to satisfy constraint: "
                               f"'Member must satisfy enum value set: {list(MUTABILITY)}'")


ENCRYPTION_TYPES = ("AES256", "KMS", "KMS_DSSE")


def _check_encryption(encryption: dict[str, str] | None) -> None:
    kind = (encryption or {}).get("encryptionType", "AES256")
    if kind not in ENCRYPTION_TYPES:
        raise InvalidParameter("Invalid parameter at 'encryptionConfiguration.encryptionType' failed to satisfy "
                               f"constraint: 'Member must satisfy enum value set: {list(ENCRYPTION_TYPES)}'")


def _valid_digest(text: str) -> bool:
    return re.fullmatch(r"[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+", text) is not None
