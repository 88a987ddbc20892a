"""EcrService: ECR's repository and image operations over berth's registry (aws-apis.md §4).

Repositories are berth metadata (mutability, tags, policies), kept as `ecr.repository` records in the
control-plane ObjectStore (see `_store.py`); images are the registry's manifests,
so `docker push` to `<registry>/<name>` and PutImage land in the same place. Tag immutability
(with its wildcard exclusion filters) is enforced on both paths: PutImage checks it here, and a tag
guard installed in the registry refuses a `docker push` that would move an immutable tag.

Registry-wide settings live in `settings` (`_settings.py`), image scans are recorded per repository
(`_scans.py`: berth has no vulnerability database, so every scan fails and says so), and a
`registryId` naming another account goes through `access` (`_policy.py`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from berth.ecr._errors import (
    AccessDenied, ImageAlreadyExists, ImageDigestDoesNotMatch, ImageNotFound, ImageTagAlreadyExists,
    InvalidParameter, LifecyclePolicyNotFound, LifecyclePolicyPreviewNotFound, RepositoryAlreadyExists,
    RepositoryNotEmpty, RepositoryNotFound, RepositoryPolicyNotFound, ScanLimitExceeded, ScanNotFound,
    ValidationFailed,
)
from berth.ecr._layers import EcrLayers
from berth.ecr._lifecycle import Expiry, evaluate, parse_policy
from berth.ecr._model import MUTABILITY, ImageScan, Repository, StoredImage
from berth.ecr._policy import policy_allows
from berth.ecr._registry import ImageRegistry
from berth.ecr._scans import SCAN_INTERVAL, failed_scan, image_id_text
from berth.ecr._settings import RegistrySettingsService, repository_scanning
from berth.ecr._store import RepositoryStore
from berth.ecr._tokens import EcrTokens
from berth.state import ObjectStore
from berth.types import Digest

_NAME_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_EXCLUSION_RE = re.compile(r"^[0-9a-zA-Z._*-]{1,128}$")
_REGISTRY_ID_RE = re.compile(r"[0-9]{12}")


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
        self.settings = RegistrySettingsService(store)

    # repositories

    def uri(self, repo: Repository | str) -> str:
        return f"{self.registry_host}/{repo if isinstance(repo, str) else repo.name}"

    def create_repository(self, name: str, *, account: str, region: str, mutability: str = "MUTABLE",
                          exclusions: Sequence[dict[str, str]] = (), scan_on_push: bool = False,
                          encryption: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> Repository:
        _check_name(name)
        _check_mutability(mutability, exclusions)
        repo = Repository(name=name, registry_id=account, region=region, created_at=self._clock(),
                          mutability=mutability, mutability_exclusions=tuple(dict(f) for f in exclusions),
                          scan_on_push=scan_on_push, encryption=_encryption(encryption, region, account),
                          tags=dict(tags or {}))
        if not self._repos.insert(repo):
            raise RepositoryAlreadyExists(f"The repository with name '{name}' already exists in the registry "
                                          f"with id '{account}'")
        self._registry.ensure_repository(name)
        return repo

    def find_repository(self, name: str) -> Repository | None:
        return self._repos.get(name)

    def repository(self, name: str, account: str = "") -> Repository:
        repo = self._repos.get(name)
        if repo is None:
            raise _not_found(name, account)
        return repo

    def access(self, name: str, registry_id: str, caller: str, action: str) -> Repository:
        """Repository `name` of registry `registry_id` (a request's explicit `registryId`), as account
        `caller` may use it for `action`: its own registry always, another account's only where that
        repository's policy allows it (as AWS serves cross-account requests).

        Raises:
            InvalidParameter: `registry_id` is not an account id.
            RepositoryNotFound: no repository of that name in that registry.
            AccessDenied: another account's repository whose policy does not allow `caller`.
        """
        _check_registry_id(registry_id)
        repo = self._repos.get(name)
        if repo is None or repo.registry_id != registry_id:
            raise _not_found(name, registry_id)
        if registry_id != caller and not policy_allows(repo.repository_policy, caller, f"ecr:{action}"):
            raise _denied(caller, action, repo.arn, "resource-based")
        return repo

    def may_create_in(self, registry_id: str, caller: str, name: str, region: str) -> None:
        """CreateRepository in another account's registry: only where that registry's policy allows it."""
        _check_registry_id(registry_id)
        if registry_id != caller and not policy_allows(self.settings.get(registry_id).policy, caller,
                                                       "ecr:CreateRepository"):
            raise _denied(caller, "CreateRepository", f"arn:aws:ecr:{region}:{registry_id}:repository/{name}",
                          "resource-based")

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
        _check_mutability(mutability, exclusions)
        return self._update(name, account, lambda r: replace(r, mutability=mutability,
                                                              mutability_exclusions=tuple(dict(f) for f in exclusions)))

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
        _check_manifest_media_type(manifest, media_type)
        if digest is not None and not _valid_digest(digest):
            raise InvalidParameter("Invalid parameter at 'imageDigest' failed to satisfy constraint: 'must satisfy "
                                   "regular expression '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+''")
        if digest and digest != actual:
            raise ImageDigestDoesNotMatch(f"The specified image digest '{digest}' does not match the digest that "
                                          f"Amazon ECR calculated for the image: '{actual}'")
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

    # image scans

    def scanning(self, repo: Repository) -> tuple[str, tuple[str, ...]]:
        """(scanFrequency, appliedScanFilters) of a repository under its registry's scanning rules."""
        return repository_scanning(self.settings.get(repo.registry_id), repo.name, repo.scan_on_push)

    def scan_of(self, repo: Repository, image: StoredImage) -> ImageScan | None:
        """The image's last scan; in a repository that scans on push, at least the failed one of its push."""
        scan = repo.scans.get(image.digest)
        if scan is None and self.scanning(repo)[0] != "MANUAL":
            scan = failed_scan(image.digest, image.pushed_at)
        return scan

    def start_scan(self, name: str, image_id: ImageId, account: str = "") -> tuple[Repository, StoredImage, ImageScan]:
        """Record a scan of one image: it fails at once (berth has no vulnerability database).

        Raises:
            RepositoryNotFound, ImageNotFound, InvalidParameter (a malformed image id),
            ScanLimitExceeded: the image was scanned less than 24 hours ago.
        """
        repo = self.repository(name, account)
        image = self._image(repo, image_id)
        now = self._clock()
        previous = repo.scans.get(image.digest)
        if previous is not None and now - previous.completed_at < SCAN_INTERVAL:
            raise ScanLimitExceeded("The scan quota per image has been exceeded. Wait and try again.")
        scan = failed_scan(image.digest, now)
        present = {i.digest for i in self._registry.images(name)}  # scans of deleted images go
        self._update(name, account, lambda r: replace(r, scans={
            **{d: s for d, s in r.scans.items() if d in present}, image.digest: scan}))
        return repo, image, scan

    def scan_findings(self, name: str, image_id: ImageId, account: str = "") -> tuple[Repository, StoredImage, ImageScan]:
        """The last scan of an image (a scan-on-push repository's images count as scanned at push).

        Raises:
            RepositoryNotFound, ImageNotFound, InvalidParameter, ScanNotFound.
        """
        repo = self.repository(name, account)
        image = self._image(repo, image_id)
        scan = self.scan_of(repo, image)
        if scan is None:
            raise ScanNotFound(f"Image scan does not exist for the image with "
                               f"'{image_id_text(image_id.digest, image_id.tag)}' in the repository with name "
                               f"'{name}' in the registry with id '{repo.registry_id}'")
        return repo, image, scan

    def _image(self, repo: Repository, image_id: ImageId) -> StoredImage:
        found, failures = self.find_images(repo.name, [image_id])
        if not failures:
            return found[0]
        if failures[0].code != "ImageNotFound":
            raise InvalidParameter(failures[0].reason)
        raise ImageNotFound(f"The image with imageId {image_id_text(image_id.digest, image_id.tag)} does not exist "
                            f"within the repository with name '{repo.name}' in the registry with id "
                            f"'{repo.registry_id}'")

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
            now = self._clock()
            doomed = evaluate(parse_policy(repo.lifecycle_policy), self._registry.images(repo.name), now)
            for expiry in doomed:
                self._registry.delete_manifest(repo.name, expiry.image.digest)
            expired += doomed
            self._mark_evaluated(repo.name, now)
        return expired

    def _mark_evaluated(self, name: str, at: float) -> None:
        """GetLifecyclePolicy's lastEvaluatedAt: when the policy last ran (a deleted repository is skipped)."""
        self._repos.update(name, lambda r: replace(r, lifecycle_evaluated_at=at))

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


def _check_mutability(mutability: str, exclusions: Sequence[dict[str, str]]) -> None:
    """The mutability and its exclusion filters: the *_WITH_EXCLUSION settings need 1 to 5 WILDCARD
    filters (letters, digits, `._-` and `*`), the others take none."""
    if mutability not in MUTABILITY:
        raise InvalidParameter(f"Invalid parameter at 'imageTagMutability' failed to satisfy constraint: "
                               f"'Member must satisfy enum value set: {list(MUTABILITY)}'")
    field = "imageTagMutabilityExclusionFilters"
    if not mutability.endswith("_WITH_EXCLUSION"):
        if exclusions:
            raise InvalidParameter(f"Invalid parameter at '{field}' failed to satisfy constraint: 'Exclusion "
                                   f"filters can only be specified when imageTagMutability is "
                                   f"IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION'")
        return
    if not 1 <= len(exclusions) <= 5:
        raise InvalidParameter(f"Invalid parameter at '{field}' failed to satisfy constraint: 'Between 1 and 5 "
                               f"exclusion filters must be specified when imageTagMutability is {mutability}'")
    for n, f in enumerate(exclusions, 1):
        kind, value = (f.get("filterType"), f.get("filter")) if isinstance(f, dict) else (None, None)
        if kind != "WILDCARD":
            raise ValidationFailed(kind, f"{field}.{n}.member.filterType",
                                   "Member must satisfy enum value set: [WILDCARD]")
        if not isinstance(value, str) or not _EXCLUSION_RE.match(value):
            raise ValidationFailed(value, f"{field}.{n}.member.filter",
                                   f"Member must satisfy regular expression pattern: {_EXCLUSION_RE.pattern}")


ENCRYPTION_TYPES = ("AES256", "KMS", "KMS_DSSE")


def _encryption(encryption: dict[str, str] | None, region: str, account: str) -> dict[str, str]:
    """The repository's encryptionConfiguration: AES256 by default; KMS and KMS_DSSE take a `kmsKey`
    (default: the account's AWS-managed key for ECR, `alias/aws/ecr`), AES256 refuses one."""
    if not encryption:
        return {"encryptionType": "AES256"}
    kind, key = encryption.get("encryptionType", "AES256"), encryption.get("kmsKey")
    if kind not in ENCRYPTION_TYPES:
        raise InvalidParameter("Invalid parameter at 'encryptionConfiguration.encryptionType' failed to satisfy "
                               f"constraint: 'Member must satisfy enum value set: {list(ENCRYPTION_TYPES)}'")
    if kind == "AES256":
        if key is not None:
            raise InvalidParameter("Invalid parameter at 'encryptionConfiguration.kmsKey' failed to satisfy "
                                   "constraint: 'kmsKey can only be specified when encryptionType is KMS or "
                                   "KMS_DSSE'")
        return {"encryptionType": kind}
    if key is not None and not 1 <= len(key) <= 2048:
        raise InvalidParameter("Invalid parameter at 'encryptionConfiguration.kmsKey' failed to satisfy "
                               "constraint: 'Member must have length between 1 and 2048'")
    return {"encryptionType": kind, "kmsKey": key or f"arn:aws:kms:{region}:{account}:alias/aws/ecr"}


def _check_manifest_media_type(manifest: bytes, media_type: str | None) -> None:
    """PutImage needs a manifest in JSON, and its media type in the manifest or in the request."""
    try:
        doc = json.loads(manifest)
    except ValueError as err:
        raise InvalidParameter("Invalid parameter at 'ImageManifest' failed to satisfy constraint: "
                               "'Invalid JSON syntax'") from err
    if not media_type and not (isinstance(doc, dict) and doc.get("mediaType")):
        raise InvalidParameter("image manifest mediatype not provided in manifest or parameter")


def _check_registry_id(registry_id: str) -> None:
    if not _REGISTRY_ID_RE.fullmatch(registry_id):
        raise InvalidParameter("Invalid parameter at 'registryId' failed to satisfy constraint: 'must satisfy "
                               "regular expression '[0-9]{12}''")


def _denied(caller: str, action: str, resource: str, kind: str) -> AccessDenied:
    return AccessDenied(f"User: arn:aws:iam::{caller}:root is not authorized to perform: ecr:{action} on "
                        f"resource: {resource} because no {kind} policy allows the ecr:{action} action")


def _valid_digest(text: str) -> bool:
    return re.fullmatch(r"[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+", text) is not None
