"""EcrService's newer operations over the in-memory registry: registry policy, replication and
scanning configuration, image scans (always FAILED: berth has no vulnerability database), kmsKey,
tag-mutability exclusion filters, PutImage validation, lifecycle lastEvaluatedAt, out-of-order
layer parts and `registryId` of another account.

Every test using `env` runs on both control-plane stores (MemoryStore and SqliteStore).
"""

from __future__ import annotations

import json

import pytest

from berth.ecr import (
    AccessDenied, EcrService, EcrTokens, ImageDigestDoesNotMatch, ImageId, ImageNotFound, ImageTagAlreadyExists,
    InvalidLayerPart, InvalidParameter, RegistryPolicyNotFound, RegistrySettings, RepositoryNotFound,
    ScanLimitExceeded, ScanNotFound, ScanningRule, ValidationFailed, policy_allows, replication_from_wire,
    replication_to_wire, repository_scanning, scanning_from_wire,
)
from berth.ecr.testing import MemoryImages
from berth.state import Database, MemoryStore, ObjectStore, SqliteStore

ACCOUNT, OTHER = "123456789012", "210987654321"
DAY = 86400.0
OCI = "application/vnd.oci.image.manifest.v1+json"


def manifest(n: int, media_type: str | None = OCI) -> bytes:
    doc: dict[str, object] = {"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                                             "size": 10, "digest": "sha256:" + "c" * 64},
                              "layers": [{"size": 100 * n, "digest": "sha256:" + f"{n:x}" * 64}]}
    if media_type:
        doc["mediaType"] = media_type
    return json.dumps(doc).encode()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return MemoryStore() if request.param == "memory" else SqliteStore(Database(":memory:"))


Env = tuple[EcrService, MemoryImages]


@pytest.fixture
def env(store: ObjectStore) -> Env:
    images = MemoryImages()
    ecr = EcrService(store, images, EcrTokens(b"k" * 32), "127.0.0.1:5000", clock=lambda: images.now)
    return ecr, images


# --- registry policy -----------------------------------------------------------------------------

POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "repl", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
     "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"], "Resource": "*"}]})


def test_registry_policy_put_get_delete(env: Env, store: ObjectStore) -> None:
    ecr, _ = env
    with pytest.raises(RegistryPolicyNotFound, match=f"Registry policy does not exist in the registry with id '{ACCOUNT}'"):
        ecr.settings.policy(ACCOUNT)
    ecr.settings.put_policy(ACCOUNT, POLICY)
    assert ecr.settings.policy(ACCOUNT) == POLICY
    with pytest.raises(RegistryPolicyNotFound):
        ecr.settings.policy(OTHER)                      # one registry per account
    again = EcrService(store, MemoryImages(), EcrTokens(b"k" * 32), "127.0.0.1:5000")
    assert again.settings.policy(ACCOUNT) == POLICY     # kept in the store (a restart sees it)
    assert ecr.settings.delete_policy(ACCOUNT) == POLICY
    with pytest.raises(RegistryPolicyNotFound):
        ecr.settings.delete_policy(ACCOUNT)


@pytest.mark.parametrize("text", ["not json", "[]", '{"Version": "2012-10-17"}', '"x"', ""])
def test_registry_policy_must_be_a_json_policy(env: Env, text: str) -> None:
    ecr, _ = env
    with pytest.raises(InvalidParameter, match="Invalid registry policy provided"):
        ecr.settings.put_policy(ACCOUNT, text)
    with pytest.raises(RegistryPolicyNotFound):
        ecr.settings.policy(ACCOUNT)                    # nothing half-stored


# --- replication -----------------------------------------------------------------------------------

def test_replication_rules_recorded_and_returned(env: Env, store: ObjectStore) -> None:
    ecr, _ = env
    config = {"rules": [
        {"destinations": [{"region": "eu-west-1", "registryId": ACCOUNT}, {"region": "us-east-1", "registryId": OTHER}],
         "repositoryFilters": [{"filter": "team/", "filterType": "PREFIX_MATCH"}]},
        {"destinations": [{"region": "ap-south-1", "registryId": ACCOUNT}], "deleteReplication": {"enabled": True}}]}
    rules = replication_from_wire(config, "us-east-1", ACCOUNT)
    ecr.settings.put_replication(ACCOUNT, rules)
    again = EcrService(store, MemoryImages(), EcrTokens(b"k" * 32), "127.0.0.1:5000")
    assert replication_to_wire(again.settings.get(ACCOUNT).replication) == config
    assert again.settings.get(OTHER).replication == ()
    ecr.settings.put_replication(ACCOUNT, replication_from_wire({"rules": []}, "us-east-1", ACCOUNT))
    assert ecr.settings.get(ACCOUNT).replication == ()


@pytest.mark.parametrize("config, error, text", [
    (None, InvalidParameter, "replicationConfiguration"),
    ({}, InvalidParameter, "replicationConfiguration"),
    ({"rules": [{"destinations": [{"region": "us-east-1", "registryId": ACCOUNT}]}]}, InvalidParameter,
     "Replication destination cannot be the same as the source registry"),
    ({"rules": [{"destinations": [{"region": "Not A Region", "registryId": ACCOUNT}]}]}, ValidationFailed,
     "at 'replicationConfiguration.rules.1.member.destinations.1.member.region'"),
    ({"rules": [{"destinations": [{"region": "eu-west-1", "registryId": "12"}]}]}, ValidationFailed,
     "Member must satisfy regular expression pattern: [0-9]{12}"),
    ({"rules": [{"destinations": [{"region": "eu-west-1"}]}]}, ValidationFailed, "Member must not be null"),
    ({"rules": [{}]}, ValidationFailed, "destinations"),
    ({"rules": [{"destinations": [], "deleteReplication": {}}]}, ValidationFailed, "deleteReplication.enabled"),
    ({"rules": [{"destinations": [], "repositoryFilters": [{"filter": "a", "filterType": "WILDCARD"}]}]},
     ValidationFailed, "Member must satisfy enum value set: [PREFIX_MATCH]"),
    ({"rules": [{"destinations": [], "repositoryFilters": []}]}, ValidationFailed,
     "Member must have length greater than or equal to 1"),
    ({"rules": [{"destinations": []}] * 26}, ValidationFailed, "Member must have length less than or equal to 25"),
])
def test_replication_validation(config: object, error: type[Exception], text: str) -> None:
    with pytest.raises(error) as err:
        replication_from_wire(config, "us-east-1", ACCOUNT)
    assert text in str(err.value)
    if error is ValidationFailed:
        assert str(err.value).startswith("1 validation error detected: Value ")


# --- registry scanning configuration -------------------------------------------------------------

def test_scanning_configuration_and_per_repository_result(env: Env) -> None:
    ecr, _ = env
    scan_type, rules = scanning_from_wire("BASIC", [
        {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "prod-*", "filterType": "WILDCARD"}]}])
    ecr.settings.put_scanning(ACCOUNT, scan_type, rules)
    prod = ecr.create_repository("prod-api", account=ACCOUNT, region="r")
    dev = ecr.create_repository("dev-api", account=ACCOUNT, region="r")
    own = ecr.create_repository("own-scan", account=ACCOUNT, region="r", scan_on_push=True)
    assert ecr.scanning(prod) == ("SCAN_ON_PUSH", ("prod-*",))
    assert ecr.scanning(dev) == ("MANUAL", ())
    assert ecr.scanning(own) == ("SCAN_ON_PUSH", ())
    assert ecr.settings.get(ACCOUNT).scan_type == "BASIC"


def test_continuous_rules_win_over_scan_on_push() -> None:
    settings = RegistrySettings(ACCOUNT, scan_type="ENHANCED", scan_rules=(
        ScanningRule("SCAN_ON_PUSH", ("*",)), ScanningRule("CONTINUOUS_SCAN", ("app*",))))
    assert repository_scanning(settings, "app/web", False) == ("CONTINUOUS_SCAN", ("app*",))
    assert repository_scanning(settings, "db", False) == ("SCAN_ON_PUSH", ("*",))


@pytest.mark.parametrize("scan_type, rules, text", [
    ("DEEP", [], "at 'scanType' failed to satisfy constraint: Member must satisfy enum value set: [BASIC, ENHANCED]"),
    ("BASIC", [{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": []}], "rules.1.member.scanFrequency"),
    ("ENHANCED", [{"scanFrequency": "MANUAL", "repositoryFilters": []}], "rules.1.member.scanFrequency"),
    ("BASIC", [{"scanFrequency": "HOURLY", "repositoryFilters": []}], "Member must satisfy enum value set"),
    ("BASIC", [{"scanFrequency": "SCAN_ON_PUSH"}], "repositoryFilters' failed to satisfy constraint: Member must "
                                                   "not be null"),
    ("BASIC", [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "UPPER", "filterType": "WILDCARD"}]}],
     "Member must satisfy regular expression pattern"),
    ("BASIC", [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": []}] * 3, "less than or equal to 2"),
])
def test_scanning_validation(scan_type: str, rules: object, text: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        scanning_from_wire(scan_type, rules)
    assert text in str(err.value)


def test_scanning_defaults_to_basic_without_rules() -> None:
    assert scanning_from_wire(None, None) == ("BASIC", ())


# --- image scans ----------------------------------------------------------------------------------

def test_scan_fails_honestly_and_is_limited_to_one_a_day(env: Env) -> None:
    ecr, images = env
    ecr.create_repository("app", account=ACCOUNT, region="r")
    digest = images.push("app", "v1", manifest(1))
    with pytest.raises(ScanNotFound, match="Image scan does not exist for the image with "
                                           "'{imageDigest:'null', imageTag:'v1'}' in the repository with name 'app'"):
        ecr.scan_findings("app", ImageId(tag="v1"))
    _, image, scan = ecr.start_scan("app", ImageId(tag="v1"))
    assert image.digest == digest
    assert scan.status == "FAILED" and "no vulnerability database" in scan.description
    assert "not a clean result" in scan.description
    _, _, found = ecr.scan_findings("app", ImageId(digest=digest))
    assert found == scan and found.completed_at == images.now
    with pytest.raises(ScanLimitExceeded, match="The scan quota per image has been exceeded"):
        ecr.start_scan("app", ImageId(digest=digest))
    images.now += DAY
    assert ecr.start_scan("app", ImageId(digest=digest))[2].completed_at == images.now


def test_scan_errors_for_missing_repositories_and_images(env: Env) -> None:
    ecr, images = env
    with pytest.raises(RepositoryNotFound, match="The repository with name 'nope' does not exist"):
        ecr.start_scan("nope", ImageId(tag="v1"))
    with pytest.raises(RepositoryNotFound):
        ecr.scan_findings("nope", ImageId(tag="v1"))
    ecr.create_repository("app", account=ACCOUNT, region="r")
    with pytest.raises(ImageNotFound, match="The image with imageId {imageDigest:'null', imageTag:'v9'} does not exist "
                                            f"within the repository with name 'app' in the registry with id '{ACCOUNT}'"):
        ecr.start_scan("app", ImageId(tag="v9"))
    with pytest.raises(ImageNotFound):
        ecr.scan_findings("app", ImageId(digest="sha256:" + "0" * 64))
    with pytest.raises(InvalidParameter):
        ecr.start_scan("app", ImageId())
    with pytest.raises(InvalidParameter):
        ecr.start_scan("app", ImageId(digest="not-a-digest"))


def test_scan_on_push_repositories_report_the_failure_from_push_time(env: Env) -> None:
    ecr, images = env
    ecr.create_repository("app", account=ACCOUNT, region="r", scan_on_push=True)
    images.push("app", "v1", manifest(1), at=images.now - 60)
    _, _, scan = ecr.scan_findings("app", ImageId(tag="v1"))
    assert (scan.status, scan.completed_at) == ("FAILED", images.now - 60)
    assert ecr.scan_of(ecr.repository("app"), ecr.images("app")[0]) == scan       # DescribeImages shows it too
    ecr.set_scanning("app", False)
    with pytest.raises(ScanNotFound):
        ecr.scan_findings("app", ImageId(tag="v1"))


def test_scans_of_deleted_images_are_dropped(env: Env) -> None:
    ecr, images = env
    ecr.create_repository("app", account=ACCOUNT, region="r")
    first = images.push("app", "a", manifest(1))
    second = images.push("app", "b", manifest(2))
    ecr.start_scan("app", ImageId(digest=first))
    ecr.batch_delete("app", [ImageId(digest=first)])
    ecr.start_scan("app", ImageId(digest=second))
    assert set(ecr.repository("app").scans) == {second}


# --- encryption (kmsKey) --------------------------------------------------------------------------

def test_kms_key_rules(env: Env) -> None:
    ecr, _ = env
    with pytest.raises(InvalidParameter, match="kmsKey can only be specified when encryptionType is KMS"):
        ecr.create_repository("a1", account=ACCOUNT, region="eu-west-1",
                              encryption={"encryptionType": "AES256", "kmsKey": "alias/mine"})
    with pytest.raises(RepositoryNotFound):
        ecr.repository("a1")                                   # refused: nothing created
    managed = ecr.create_repository("k1", account=ACCOUNT, region="eu-west-1", encryption={"encryptionType": "KMS"})
    assert managed.encryption == {"encryptionType": "KMS", "kmsKey": f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/aws/ecr"}
    own = ecr.create_repository("k2", account=ACCOUNT, region="eu-west-1",
                                encryption={"encryptionType": "KMS_DSSE", "kmsKey": "alias/mine"})
    assert own.encryption == {"encryptionType": "KMS_DSSE", "kmsKey": "alias/mine"}
    with pytest.raises(InvalidParameter):
        ecr.create_repository("k3", account=ACCOUNT, region="r", encryption={"encryptionType": "KMS", "kmsKey": ""})
    assert ecr.create_repository("a2", account=ACCOUNT, region="r",
                                 encryption={"encryptionType": "AES256"}).encryption == {"encryptionType": "AES256"}


# --- tag mutability with exclusion filters ---------------------------------------------------------

def test_mutable_with_exclusion_freezes_the_matching_tags(env: Env) -> None:
    ecr, images = env
    ecr.create_repository("app", account=ACCOUNT, region="r", mutability="MUTABLE_WITH_EXCLUSION",
                          exclusions=[{"filterType": "WILDCARD", "filter": "release-*"},
                                      {"filterType": "WILDCARD", "filter": "v*.*-final"}])
    images.push("app", "latest", manifest(1))
    images.push("app", "latest", manifest(2))               # mutable
    images.push("app", "release-1", manifest(1))
    with pytest.raises(ImageTagAlreadyExists):
        images.push("app", "release-1", manifest(2))        # docker push path (the tag guard)
    with pytest.raises(ImageTagAlreadyExists):
        ecr.put_image("app", manifest(3), tag="release-1")  # PutImage path
    images.push("app", "v1.2-final", manifest(1))
    with pytest.raises(ImageTagAlreadyExists):
        images.push("app", "v1.2-final", manifest(3))       # a wildcard in the middle
    images.push("app", "v1.2-rc", manifest(3))
    images.push("app", "v1.2-rc", manifest(4))


def test_immutable_with_exclusion_lets_the_matching_tags_move(env: Env) -> None:
    ecr, images = env
    ecr.create_repository("app", account=ACCOUNT, region="r", mutability="IMMUTABLE_WITH_EXCLUSION",
                          exclusions=[{"filterType": "WILDCARD", "filter": "*-snapshot"}])
    images.push("app", "1.0-snapshot", manifest(1))
    ecr.put_image("app", manifest(2), tag="1.0-snapshot")
    images.push("app", "1.0", manifest(1))
    with pytest.raises(ImageTagAlreadyExists, match="cannot be overwritten because the repository is immutable"):
        ecr.put_image("app", manifest(2), tag="1.0")
    ecr.set_mutability("app", "IMMUTABLE_WITH_EXCLUSION", [{"filterType": "WILDCARD", "filter": "1.*"}])
    images.push("app", "1.0", manifest(3))                  # the new filter frees it


@pytest.mark.parametrize("mutability, filters, error, text", [
    ("IMMUTABLE_WITH_EXCLUSION", [], InvalidParameter, "Between 1 and 5 exclusion filters"),
    ("MUTABLE_WITH_EXCLUSION", [{"filterType": "WILDCARD", "filter": f"t{n}*"} for n in range(6)], InvalidParameter,
     "Between 1 and 5"),
    ("IMMUTABLE", [{"filterType": "WILDCARD", "filter": "a*"}], InvalidParameter,
     "can only be specified when imageTagMutability is IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION"),
    ("MUTABLE_WITH_EXCLUSION", [{"filterType": "PREFIX", "filter": "a"}], ValidationFailed,
     "imageTagMutabilityExclusionFilters.1.member.filterType"),
    ("MUTABLE_WITH_EXCLUSION", [{"filterType": "WILDCARD", "filter": "a?[b]"}], ValidationFailed,
     "imageTagMutabilityExclusionFilters.1.member.filter"),
    ("MUTABLE_WITH_EXCLUSION", [{"filterType": "WILDCARD"}], ValidationFailed, "member.filter"),
    ("SOMETIMES", [], InvalidParameter, "imageTagMutability"),
])
def test_mutability_validation(env: Env, mutability: str, filters: list[dict[str, str]], error: type[Exception],
                               text: str) -> None:
    ecr, _ = env
    with pytest.raises(error) as err:
        ecr.create_repository("app", account=ACCOUNT, region="r", mutability=mutability, exclusions=filters)
    assert text in str(err.value)
    ecr.create_repository("app", account=ACCOUNT, region="r")
    with pytest.raises(error):
        ecr.set_mutability("app", mutability, filters)
    assert ecr.repository("app").mutability == "MUTABLE"


# --- PutImage validation ---------------------------------------------------------------------------

def test_put_image_digest_and_media_type(env: Env) -> None:
    ecr, images = env
    ecr.create_repository("app", account=ACCOUNT, region="r")
    from berth.types import Digest

    data = manifest(1)
    actual = str(Digest.of(data))
    other = "sha256:" + "9" * 64
    with pytest.raises(ImageDigestDoesNotMatch, match=f"The specified image digest '{other}' does not match the "
                                                      f"digest that Amazon ECR calculated for the image: '{actual}'"):
        ecr.put_image("app", data, tag="v1", digest=other)
    with pytest.raises(InvalidParameter, match="Invalid parameter at 'imageDigest'"):
        ecr.put_image("app", data, tag="v1", digest="md5-nope")
    with pytest.raises(InvalidParameter, match="image manifest mediatype not provided in manifest or parameter"):
        ecr.put_image("app", manifest(2, media_type=None), tag="v2")
    with pytest.raises(InvalidParameter, match="Invalid JSON syntax"):
        ecr.put_image("app", b"{not json", tag="v3")
    assert images.images("app") == []                      # nothing stored by a refused PutImage
    assert ecr.put_image("app", data, tag="v1", digest=actual).image_id.digest == actual
    stored = ecr.put_image("app", manifest(2, media_type=None), tag="v2", media_type=OCI)
    assert stored.media_type == OCI


# --- ListImages on a missing repository, lifecycle lastEvaluatedAt --------------------------------

def test_images_of_a_missing_repository(env: Env) -> None:
    ecr, _ = env
    with pytest.raises(RepositoryNotFound, match=f"'nope' does not exist in the registry with id '{ACCOUNT}'"):
        ecr.images("nope", account=ACCOUNT)


def test_lifecycle_last_evaluated_at_follows_evaluation(env: Env) -> None:
    ecr, images = env
    ecr.create_repository("app", account=ACCOUNT, region="r")
    policy = json.dumps({"rules": [{"rulePriority": 1, "action": {"type": "expire"}, "selection": {
        "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}}]})
    ecr.start_preview("app", policy)
    assert ecr.repository("app").lifecycle_evaluated_at is None    # a preview is not an evaluation
    ecr.put_lifecycle_policy("app", policy)
    assert ecr.lifecycle_policy("app").lifecycle_evaluated_at == images.now
    images.now += 300
    ecr.apply_lifecycle()                                          # the daemon's sweep
    assert ecr.lifecycle_policy("app").lifecycle_evaluated_at == images.now
    ecr.create_repository("other", account=ACCOUNT, region="r")
    ecr.apply_lifecycle()
    assert ecr.repository("other").lifecycle_evaluated_at is None  # no policy, nothing evaluated


# --- layer parts out of order -----------------------------------------------------------------------

def test_out_of_order_part_reports_the_last_valid_byte(env: Env) -> None:
    ecr, _ = env
    ecr.create_repository("app", account=ACCOUNT, region="r")
    upload = ecr.layers.initiate("app")
    with pytest.raises(InvalidLayerPart) as err:
        ecr.layers.upload_part("app", upload, 5, 7, b"abc")
    assert (err.value.upload_id, err.value.last_valid_byte) == (upload, None)   # nothing received yet
    ecr.layers.upload_part("app", upload, 0, 9, b"0123456789")
    with pytest.raises(InvalidLayerPart) as err:
        ecr.layers.upload_part("app", upload, 20, 22, b"abc")
    assert err.value.last_valid_byte == 9
    assert ecr.layers.upload_part("app", upload, 10, 12, b"abc") == 12          # the upload goes on


# --- registryId of another account -----------------------------------------------------------------

def test_registry_id_names_the_repository_owner(env: Env) -> None:
    ecr, _ = env
    repo = ecr.create_repository("app", account=ACCOUNT, region="us-east-1")
    assert ecr.access("app", ACCOUNT, ACCOUNT, "DescribeImages") == repo
    with pytest.raises(RepositoryNotFound, match=f"does not exist in the registry with id '{OTHER}'"):
        ecr.access("app", OTHER, OTHER, "DescribeImages")
    with pytest.raises(InvalidParameter, match="registryId"):
        ecr.access("app", "12", ACCOUNT, "DescribeImages")
    with pytest.raises(AccessDenied, match=f"User: arn:aws:iam::{OTHER}:root is not authorized to perform: "
                                           f"ecr:BatchGetImage on resource: {repo.arn}"):
        ecr.access("app", ACCOUNT, OTHER, "BatchGetImage")
    ecr.set_repository_policy("app", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{OTHER}:root"]},
         "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}))
    assert ecr.access("app", ACCOUNT, OTHER, "BatchGetImage").name == "app"
    with pytest.raises(AccessDenied):
        ecr.access("app", ACCOUNT, OTHER, "PutImage")


def test_creating_in_another_registry_needs_its_registry_policy(env: Env) -> None:
    ecr, _ = env
    ecr.may_create_in(ACCOUNT, ACCOUNT, "mine", "r")
    with pytest.raises(AccessDenied, match="ecr:CreateRepository"):
        ecr.may_create_in(ACCOUNT, OTHER, "theirs", "r")
    ecr.settings.put_policy(ACCOUNT, POLICY)                 # lets OTHER create repositories here
    ecr.may_create_in(ACCOUNT, OTHER, "theirs", "r")


@pytest.mark.parametrize("statement, allowed", [
    ({"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}, True),
    ({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "ecr:Batch*"}, True),
    ({"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": ["ECR:BATCHGETIMAGE"]}, True),
    ({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:role/puller"}, "Action": "ecr:BatchGetImage"},
     True),
    ({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "ecr:*"}, False),
    ({"Effect": "Allow", "Principal": "*", "Action": "ecr:PutImage"}, False),
    ({"Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Condition": {"StringEquals": {"aws:x": "y"}}}, False),
    ({"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "ecr:*"}, False),
])
def test_policy_allows(statement: dict[str, object], allowed: bool) -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    assert policy_allows(text, OTHER, "ecr:BatchGetImage") is allowed


def test_policy_deny_wins_and_bad_documents_allow_nothing() -> None:
    allow = {"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}
    deny = {"Effect": "Deny", "Principal": {"AWS": OTHER}, "Action": "ecr:BatchGetImage"}
    assert not policy_allows(json.dumps({"Statement": [allow, deny]}), OTHER, "ecr:BatchGetImage")
    assert policy_allows(json.dumps({"Statement": allow}), OTHER, "ecr:BatchGetImage")   # one statement, no list
    for text in (None, "", "not json", "[]", '{"Statement": 5}', '{"Statement": [5]}'):
        assert not policy_allows(text, OTHER, "ecr:BatchGetImage")
