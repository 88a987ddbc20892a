"""EcrService over the in-memory registry: repositories, images, immutability, lifecycle, tokens.

Every test using `env` runs on both control-plane stores (MemoryStore and SqliteStore).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from berth.ecr import (
    EcrService, EcrTokens, ImageAlreadyExists, ImageId, ImageTagAlreadyExists, InvalidParameter,
    LifecyclePolicyNotFound, RepositoryAlreadyExists, RepositoryNotEmpty, RepositoryNotFound, parse_policy,
)
from berth.ecr.testing import MemoryImages
from berth.state import Database, MemoryStore, ObjectStore, SqliteStore, VersionConflict

DAY = 86400.0


def manifest(n: int) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                                      "size": 10, "digest": "sha256:" + "c" * 64},
                       "layers": [{"size": 100 * n, "digest": "sha256:" + f"{n:x}" * 64}]}).encode()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return MemoryStore() if request.param == "memory" else SqliteStore(Database(":memory:"))


@pytest.fixture
def env(store: ObjectStore) -> tuple[EcrService, MemoryImages]:
    images = MemoryImages()
    ecr = EcrService(store, images, EcrTokens(b"k" * 32, clock=lambda: images.now), "127.0.0.1:5000",
                     clock=lambda: images.now)
    return ecr, images


def test_create_describe_delete_repository(env: tuple[EcrService, MemoryImages]) -> None:
    ecr, images = env
    repo = ecr.create_repository("team/app", account="123456789012", region="eu-west-1")
    assert repo.arn == "arn:aws:ecr:eu-west-1:123456789012:repository/team/app"
    assert ecr.uri(repo) == "127.0.0.1:5000/team/app"
    with pytest.raises(RepositoryAlreadyExists):
        ecr.create_repository("team/app", account="123456789012", region="eu-west-1")
    with pytest.raises(InvalidParameter):
        ecr.create_repository("Bad_Name", account="1", region="r")
    images.push("team/app", "v1", manifest(1))
    with pytest.raises(RepositoryNotEmpty):
        ecr.delete_repository("team/app")
    ecr.delete_repository("team/app", force=True)
    with pytest.raises(RepositoryNotFound):
        ecr.repository("team/app")
    assert images.images("team/app") == []


def test_images_sizes_tags_and_filters(env: tuple[EcrService, MemoryImages]) -> None:
    ecr, images = env
    ecr.create_repository("app", account="1", region="r")
    d1 = images.push("app", "v1", manifest(1))
    images.push("app", None, manifest(2))
    listed = ecr.images("app")
    assert [(i.digest == d1, i.tags, i.size) for i in listed] == [(True, ("v1",), 110), (False, (), 210)]
    assert [i.tags for i in ecr.images("app", tag_status="TAGGED")] == [("v1",)]
    found, failures = ecr.find_images("app", [ImageId(tag="v1"), ImageId(tag="nope"), ImageId(digest="bad")])
    assert [f.digest for f in found] == [d1]
    assert [f.code for f in failures] == ["ImageNotFound", "InvalidImageDigest"]


def test_immutable_tags_refuse_pushes_and_put_image(env: tuple[EcrService, MemoryImages]) -> None:
    ecr, images = env
    ecr.create_repository("app", account="1", region="r", mutability="IMMUTABLE")
    images.push("app", "latest", manifest(1))
    with pytest.raises(ImageTagAlreadyExists, match="cannot be overwritten because the repository is immutable"):
        images.push("app", "latest", manifest(2))          # docker push path (the registry's tag guard)
    with pytest.raises(ImageTagAlreadyExists):
        ecr.put_image("app", manifest(2), tag="latest")    # PutImage path
    with pytest.raises(ImageAlreadyExists):
        ecr.put_image("app", manifest(1), tag="latest")
    images.push("app", "latest", manifest(1))              # same digest again is fine
    ecr.set_mutability("app", "MUTABLE")
    images.push("app", "latest", manifest(2))


def test_mutability_exclusions(env: tuple[EcrService, MemoryImages]) -> None:
    ecr, images = env
    ecr.create_repository("app", account="1", region="r", mutability="IMMUTABLE_WITH_EXCLUSION",
                          exclusions=[{"filterType": "WILDCARD", "filter": "dev-*"}])
    images.push("app", "dev-1", manifest(1))
    images.push("app", "dev-1", manifest(2))
    images.push("app", "v1", manifest(3))
    with pytest.raises(ImageTagAlreadyExists):
        images.push("app", "v1", manifest(4))


def test_batch_delete_by_tag_and_digest(env: tuple[EcrService, MemoryImages]) -> None:
    ecr, images = env
    ecr.create_repository("app", account="1", region="r")
    d1 = images.push("app", "a", manifest(1))
    images.push("app", "b", manifest(1))
    deleted, failures = ecr.batch_delete("app", [ImageId(tag="a")])
    assert [i.tag for i in deleted] == ["a"] and not failures
    assert ecr.images("app")[0].tags == ("b",)
    deleted, _ = ecr.batch_delete("app", [ImageId(tag="b")])       # the last tag takes the image along
    assert ecr.images("app") == [] and deleted[0].digest == d1
    _, failures = ecr.batch_delete("app", [ImageId(digest=d1)])
    assert failures[0].code == "ImageNotFound"


def test_lifecycle_expires_by_count_and_by_age(env: tuple[EcrService, MemoryImages]) -> None:
    ecr, images = env
    ecr.create_repository("app", account="1", region="r")
    for n in range(1, 5):
        images.push("app", f"v{n}", manifest(n), at=images.now - (5 - n) * DAY)
    images.push("app", None, manifest(9), at=images.now - 10 * DAY)
    policy = {"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                          "countUnit": "days", "countNumber": 7}, "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"],
                                          "countType": "imageCountMoreThan", "countNumber": 2},
         "action": {"type": "expire"}}]}
    preview = ecr.start_preview("app", json.dumps(policy))
    assert len(preview.expiring) == 3
    expired = ecr.put_lifecycle_policy("app", json.dumps(policy))
    assert sorted(e.rule_priority for e in expired) == [1, 2, 2]
    assert [i.tags for i in ecr.images("app")] == [("v3",), ("v4",)]
    ecr.delete_lifecycle_policy("app")
    with pytest.raises(LifecyclePolicyNotFound):
        ecr.lifecycle_policy("app")


@pytest.mark.parametrize("policy", [
    "not json", {"rules": []},
    {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan",
                                                 "countNumber": 1}, "action": {"type": "expire"}}]},
    {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "sinceImagePushed",
                                                 "countNumber": 1}, "action": {"type": "expire"}}]},
])
def test_invalid_policies(policy: object) -> None:
    with pytest.raises(InvalidParameter):
        parse_policy(policy if isinstance(policy, str) else json.dumps(policy))


def test_authorization_tokens() -> None:
    now = [1000.0]
    tokens = EcrTokens(b"k" * 32, clock=lambda: now[0])
    token, expires = tokens.authorization_token("123456789012")
    user, password = base64.b64decode(token).decode().split(":")   # exactly two parts, as the AWS CLI needs
    assert user == "AWS" and expires == 1000 + 12 * 3600
    assert tokens.authenticate("AWS", password)
    assert not tokens.authenticate("bob", password)
    assert not tokens.authenticate("AWS", password[:-2] + "xx")
    assert not EcrTokens(b"other" * 8).authenticate("AWS", password)
    now[0] += 13 * 3600
    assert not tokens.authenticate("AWS", password)


# -- layers: InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload / BatchCheck / download URL --

def test_layer_upload_in_parts_then_available(env: tuple[EcrService, MemoryImages]) -> None:
    from berth.types import Digest

    ecr, _ = env
    ecr.create_repository("app", account="1", region="r")
    data = b"layer-bytes" * 1000
    digest = str(Digest.of(data))
    upload = ecr.layers.initiate("app")
    assert ecr.layers.upload_part("app", upload, 0, 4999, data[:5000]) == 4999
    assert ecr.layers.upload_part("app", upload, 5000, len(data) - 1, data[5000:]) == len(data) - 1
    assert ecr.layers.complete("app", upload, [digest]) == digest
    layers, failures = ecr.layers.check("app", [digest, "sha256:" + "0" * 64, "nope"])
    assert [(layer.digest, layer.size) for layer in layers] == [(digest, len(data))]
    assert [(f.digest, f.code) for f in failures] == [("sha256:" + "0" * 64, "MissingLayerDigest"),
                                                      ("nope", "InvalidLayerDigest")]
    assert ecr.layers.download_url("app", digest) == f"http://127.0.0.1:5000/v2/app/blobs/{digest}"


def test_layer_upload_errors(env: tuple[EcrService, MemoryImages]) -> None:
    from berth.ecr._errors import (
        EmptyUpload, InvalidLayerPart, LayerAlreadyExists, LayerDigestMismatch, LayersNotFound, UploadNotFound,
    )
    from berth.types import Digest

    ecr, _ = env
    ecr.create_repository("app", account="1", region="r")
    with pytest.raises(RepositoryNotFound):
        ecr.layers.initiate("nope")
    upload = ecr.layers.initiate("app")
    with pytest.raises(EmptyUpload):
        ecr.layers.complete("app", upload, ["sha256:" + "1" * 64])
    with pytest.raises(InvalidLayerPart):           # last byte does not match the data
        ecr.layers.upload_part("app", upload, 0, 10, b"abc")
    with pytest.raises(InvalidLayerPart):           # not where the upload stands
        ecr.layers.upload_part("app", upload, 5, 7, b"abc")
    with pytest.raises(UploadNotFound):
        ecr.layers.upload_part("app", "no-such-upload", 0, 2, b"abc")
    ecr.layers.upload_part("app", upload, 0, 2, b"abc")
    with pytest.raises(InvalidParameter):
        ecr.layers.complete("app", upload, ["sha256:a", "sha256:b"])
    with pytest.raises(LayerDigestMismatch):
        ecr.layers.complete("app", upload, ["sha256:" + "1" * 64])
    with pytest.raises(UploadNotFound):             # a failed completion ends the upload
        ecr.layers.complete("app", upload, [str(Digest.of(b"abc"))])
    again = ecr.layers.initiate("app")
    ecr.layers.upload_part("app", again, 0, 2, b"abc")
    ecr.layers.complete("app", again, [str(Digest.of(b"abc"))])
    third = ecr.layers.initiate("app")
    ecr.layers.upload_part("app", third, 0, 2, b"abc")
    with pytest.raises(LayerAlreadyExists):
        ecr.layers.complete("app", third, [str(Digest.of(b"abc"))])
    with pytest.raises(LayersNotFound):
        ecr.layers.download_url("app", "sha256:" + "2" * 64)
    with pytest.raises(InvalidParameter):
        ecr.layers.check("app", [])


# -- repositories as control-plane records (kind "ecr.repository", key = name) --

def test_repository_settings_live_in_the_store(store: ObjectStore) -> None:
    images = MemoryImages()
    ecr = EcrService(store, images, EcrTokens(b"k" * 32), "127.0.0.1:5000", clock=lambda: images.now)
    changes: list[tuple[str, str]] = []
    store.watch(lambda c: changes.append((c.kind, c.key)), kinds=["ecr.repository"])
    repo = ecr.create_repository("team/app", account="123456789012", region="eu-west-1", mutability="IMMUTABLE_WITH_EXCLUSION",
                                 exclusions=[{"filterType": "WILDCARD", "filter": "dev-*"}], scan_on_push=True,
                                 encryption={"encryptionType": "KMS", "kmsKey": "k1"}, tags={"team": "a"})
    ecr.create_repository("team/web", account="210987654321", region="us-east-1")
    ecr.create_repository("other", account="123456789012", region="eu-west-1")
    ecr.tag_resource(repo.arn, {"env": "prod"})
    ecr.untag_resource(repo.arn, ["team"])
    ecr.set_repository_policy("team/app", '{"Version": "2012-10-17", "Statement": []}')
    policy = json.dumps({"rules": [{"rulePriority": 1, "action": {"type": "expire"}, "selection": {
        "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 5}}]})
    ecr.put_lifecycle_policy("team/app", policy)
    assert changes[:3] == [("ecr.repository", "team/app"), ("ecr.repository", "team/web"), ("ecr.repository", "other")]
    record = store.get("ecr.repository", "team/app")
    assert record is not None and record.version == 6     # created, tagged, untagged, two policies, evaluated
    assert record.value["lifecycle_evaluated_at"] == images.now
    assert record.value["tags"] == {"env": "prod"} and record.value["registry_id"] == "123456789012"
    assert [r.key for r in store.list("ecr.repository", "team/")] == ["team/app", "team/web"]

    # a second service on the same store (a restart) sees everything
    again = EcrService(store, MemoryImages(), EcrTokens(b"k" * 32), "127.0.0.1:5000")
    found = again.repository("team/app")
    assert found == ecr.repository("team/app")
    assert (found.mutability, found.mutability_exclusions, found.scan_on_push, found.encryption, found.tags,
            found.created_at, found.region) == (
        "IMMUTABLE_WITH_EXCLUSION", ({"filterType": "WILDCARD", "filter": "dev-*"},), True,
        {"encryptionType": "KMS", "kmsKey": "k1"}, {"env": "prod"}, images.now, "eu-west-1")
    assert found.lifecycle_policy == policy and found.repository_policy is not None
    assert [r.name for r in again.repositories()] == ["other", "team/app", "team/web"]
    again.delete_lifecycle_policy("team/app")
    again.delete_repository_policy("team/app")
    assert (ecr.repository("team/app").lifecycle_policy, ecr.repository("team/app").repository_policy) == (None, None)
    ecr.delete_repository("team/app")
    assert store.get("ecr.repository", "team/app") is None
    with pytest.raises(RepositoryNotFound):
        ecr.set_mutability("team/app", "MUTABLE")
    with pytest.raises(RepositoryNotFound):
        ecr.tag_resource(repo.arn, {"a": "b"})


class _Interleaving:
    """An ObjectStore that runs `meddle` once, just before the first conditional update of an
    ecr.repository record: another writer gets in between ECR's read and its put-if-version."""

    def __init__(self, inner: ObjectStore, meddle: Callable[[], None]) -> None:
        self.inner = inner
        self.meddle: Callable[[], None] | None = meddle
        self.conflicts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, kind: str, key: str, value: Any, *, expected_version: int | None = None) -> Any:
        if self.meddle is not None and kind == "ecr.repository" and expected_version:
            meddle, self.meddle = self.meddle, None
            meddle()
        try:
            return self.inner.put(kind, key, value, expected_version=expected_version)
        except VersionConflict:
            self.conflicts += 1
            raise


def test_concurrent_updates_retry_instead_of_losing_a_change(store: ObjectStore) -> None:
    other = EcrService(store, MemoryImages(), EcrTokens(b"k" * 32), "127.0.0.1:5000")
    repo = other.create_repository("app", account="1", region="r", tags={"a": "1"})
    racing = _Interleaving(store, lambda: other.tag_resource(repo.arn, {"b": "2"}))
    ecr = EcrService(racing, MemoryImages(), EcrTokens(b"k" * 32), "127.0.0.1:5000")  # type: ignore[arg-type]
    updated = ecr.set_repository_policy("app", "{}")
    assert racing.conflicts == 1                          # the first put lost the race, the retry won
    assert updated.tags == {"a": "1", "b": "2"} and updated.repository_policy == "{}"
    assert other.repository("app") == updated

    racing.meddle = lambda: other.set_mutability("app", "IMMUTABLE")
    ecr.tag_resource(repo.arn, {"c": "3"})
    final = other.repository("app")
    assert racing.conflicts == 2
    assert (final.mutability, final.tags, final.repository_policy) == ("IMMUTABLE", {"a": "1", "b": "2", "c": "3"}, "{}")


def test_many_threads_tagging_one_repository(store: ObjectStore) -> None:
    ecr = EcrService(store, MemoryImages(), EcrTokens(b"k" * 32), "127.0.0.1:5000")
    repo = ecr.create_repository("app", account="1", region="r")

    def tag(n: int) -> None:
        for i in range(10):
            ecr.tag_resource(repo.arn, {f"t{n}-{i}": "x"})

    threads = [threading.Thread(target=tag, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ecr.repository("app").tags) == 80


def test_create_is_create_only(store: ObjectStore) -> None:
    ecr = EcrService(store, MemoryImages(), EcrTokens(b"k" * 32), "127.0.0.1:5000")
    ecr.create_repository("app", account="1", region="r", tags={"keep": "me"})
    with pytest.raises(RepositoryAlreadyExists):
        ecr.create_repository("app", account="2", region="r2")   # names are one namespace: one registry
    assert ecr.repository("app").tags == {"keep": "me"} and ecr.repository("app").registry_id == "1"
