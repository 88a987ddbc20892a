"""ECR's registry-wide settings, image scans and stricter validation through the AWS CLI, boto3 and
`docker push` against a berth daemon serving its registry and AWS APIs; and the endpoint's 400
(never a retried 5xx) for what berth does not implement.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BerthDaemon, free_port

pytestmark = pytest.mark.root

AWS = str(Path(sys.executable).parent / "aws")
ACCOUNT, OTHER = "123456789012", "210987654321"
CLI_ERROR = 255  # what AWS CLI v1 exits with on a service error (and a failed waiter)


@dataclass
class Env:
    engine: BerthDaemon
    registry: str
    endpoint: str

    def aws(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**self.engine.aws_env, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        return subprocess.run([AWS, "--endpoint-url", self.endpoint, "--output", "json", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    def ok(self, *args: str) -> Any:
        result = self.aws(*args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    def ecr(self) -> Any:
        return self.engine.aws_client("ecr")

    def login(self) -> None:
        password = self.aws("ecr", "get-login-password")
        assert password.returncode == 0, password.stderr
        login = self.engine.docker("login", "--username", "AWS", "--password-stdin", self.registry,
                                   input=password.stdout.encode())
        assert login.returncode == 0, login.stderr

    def image(self, content: str) -> str:
        """A distinct small image (one file), imported through the docker CLI; returns its ID."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = content.encode()
            info = tarfile.TarInfo("content.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        result = self.engine.docker("import", "-", input=buf.getvalue())
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def push(self, image: str, ref: str) -> subprocess.CompletedProcess[str]:
        self.engine.docker("tag", image, ref, check=True)
        return self.engine.docker("push", ref, timeout=120)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    if not Path(AWS).exists():
        pytest.skip("the AWS CLI is not installed (test extras)")
    registry, aws_port = f"127.0.0.1:{free_port()}", free_port()
    engine = BerthDaemon(extra_args=("--registry-addr", registry, "--aws-addr", f"127.0.0.1:{aws_port}"))
    try:
        engine.start()
        yield Env(engine, registry, f"http://127.0.0.1:{aws_port}")
    finally:
        engine.destroy()


def test_unimplemented_operations_answer_400_at_once(env: Env) -> None:
    """The AWS CLI retries a 5xx up to five times (legacy mode): a 400 ends the call at once."""
    started = time.monotonic()
    result = env.aws("ecr", "create-pull-through-cache-rule", "--ecr-repository-prefix", "hub",
                     "--upstream-registry-url", "registry.example")
    assert result.returncode == CLI_ERROR, result.stderr
    assert "UnknownOperationException" in result.stderr
    assert time.monotonic() - started < 30
    cloudformation = env.engine.aws_client("cloudformation")
    with pytest.raises(cloudformation.exceptions.ClientError) as err:
        cloudformation.list_stacks()
    meta = err.value.response["ResponseMetadata"]
    assert (err.value.response["Error"]["Code"], meta["HTTPStatusCode"], meta["RetryAttempts"]) == (
        "InvalidAction", 400, 0)


def test_registry_policy_with_the_cli(env: Env) -> None:
    missing = env.aws("ecr", "get-registry-policy")
    assert missing.returncode == CLI_ERROR and "RegistryPolicyNotFoundException" in missing.stderr
    bad = env.aws("ecr", "put-registry-policy", "--policy-text", "{not json")
    assert bad.returncode == CLI_ERROR and "InvalidParameterException" in bad.stderr
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "replicate", "Effect": "Allow",
                         "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": ["ecr:ReplicateImage"]}]})
    put = env.ok("ecr", "put-registry-policy", "--policy-text", policy)
    assert put == {"registryId": ACCOUNT, "policyText": policy}
    assert env.ok("ecr", "get-registry-policy")["policyText"] == policy
    assert env.ok("ecr", "delete-registry-policy")["policyText"] == policy
    assert env.aws("ecr", "delete-registry-policy").returncode == CLI_ERROR


def test_replication_is_recorded_with_the_cli(env: Env) -> None:
    assert env.ok("ecr", "describe-registry")["replicationConfiguration"] == {"rules": []}
    config = {"rules": [{"destinations": [{"region": "eu-central-1", "registryId": ACCOUNT}],
                         "repositoryFilters": [{"filter": "prod", "filterType": "PREFIX_MATCH"}]}]}
    put = env.ok("ecr", "put-replication-configuration", "--replication-configuration", json.dumps(config))
    assert put["replicationConfiguration"] == config
    assert env.ok("ecr", "describe-registry") == {"registryId": ACCOUNT, "replicationConfiguration": config}
    same = {"rules": [{"destinations": [{"region": "us-east-1", "registryId": ACCOUNT}]}]}
    refused = env.aws("ecr", "put-replication-configuration", "--replication-configuration", json.dumps(same))
    assert refused.returncode == CLI_ERROR
    assert "Replication destination cannot be the same as the source registry" in refused.stderr
    bad_region = {"rules": [{"destinations": [{"region": "EU WEST", "registryId": ACCOUNT}]}]}
    refused = env.aws("ecr", "put-replication-configuration", "--replication-configuration", json.dumps(bad_region))
    assert refused.returncode == CLI_ERROR and "ValidationException" in refused.stderr
    assert env.ok("ecr", "describe-registry")["replicationConfiguration"] == config


def test_scanning_configuration_and_a_failed_scan_of_a_pushed_image(env: Env) -> None:
    ecr = env.ecr()
    rules = [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "scan*", "filterType": "WILDCARD"}]}]
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=rules)
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"] == {"scanType": "BASIC",
                                                                                   "rules": rules}
    uri = ecr.create_repository(repositoryName="scanned")["repository"]["repositoryUri"]
    ecr.create_repository(repositoryName="unscanned")
    batch = ecr.batch_get_repository_scanning_configuration(repositoryNames=["scanned", "unscanned", "ghost"])
    assert [(c["repositoryName"], c["scanFrequency"]) for c in batch["scanningConfigurations"]] == [
        ("scanned", "SCAN_ON_PUSH"), ("unscanned", "MANUAL")]
    assert [f["failureCode"] for f in batch["failures"]] == ["REPOSITORY_NOT_FOUND"]

    env.login()
    assert env.push(env.image("scan me"), f"{uri}:v1").returncode == 0
    # scan on push: berth has no vulnerability database, so the scan failed, and says so
    findings = ecr.describe_image_scan_findings(repositoryName="scanned", imageId={"imageTag": "v1"})
    assert findings["imageScanStatus"]["status"] == "FAILED"
    assert "no vulnerability database" in findings["imageScanStatus"]["description"]
    assert "imageScanFindings" not in findings
    waited = env.aws("ecr", "wait", "image-scan-complete", "--repository-name", "scanned", "--image-id", "imageTag=v1")
    assert waited.returncode == CLI_ERROR and "FAILED" in waited.stderr  # the waiter's failure acceptor
    with pytest.raises(ecr.exceptions.ScanNotFoundException):
        _scan_not_found(env)
    started = ecr.start_image_scan(repositoryName="scanned", imageId={"imageTag": "v1"})
    assert started["imageScanStatus"]["status"] == "FAILED"
    again = env.aws("ecr", "start-image-scan", "--repository-name", "scanned", "--image-id", "imageTag=v1")
    assert again.returncode == CLI_ERROR and "LimitExceededException" in again.stderr
    for call, code in ((lambda: ecr.start_image_scan(repositoryName="ghost", imageId={"imageTag": "v1"}),
                        "RepositoryNotFoundException"),
                       (lambda: ecr.start_image_scan(repositoryName="scanned", imageId={"imageTag": "v9"}),
                        "ImageNotFoundException")):
        with pytest.raises(ecr.exceptions.ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == code
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])


def _scan_not_found(env: Env) -> None:
    """An image in a repository that does not scan on push, never scanned: ScanNotFoundException."""
    ecr = env.ecr()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": _upload(ecr, "unscanned", b"{}"), "size": 2}, "layers": []})
    ecr.put_image(repositoryName="unscanned", imageManifest=manifest, imageTag="v1")
    ecr.describe_image_scan_findings(repositoryName="unscanned", imageId={"imageTag": "v1"})


def _upload(ecr: Any, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    upload = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    ecr.upload_layer_part(repositoryName=repo, uploadId=upload, partFirstByte=0, partLastByte=len(data) - 1,
                          layerPartBlob=data)
    ecr.complete_layer_upload(repositoryName=repo, uploadId=upload, layerDigests=[digest])
    return digest


def test_tag_mutability_exclusions_hold_for_docker_push(env: Env) -> None:
    ecr = env.ecr()
    frozen = ecr.create_repository(repositoryName="semi-frozen", imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                                   imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD",
                                                                        "filter": "dev-*"}])["repository"]
    loose = ecr.create_repository(repositoryName="semi-loose", imageTagMutability="MUTABLE_WITH_EXCLUSION",
                                  imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD",
                                                                       "filter": "release-*"}])["repository"]
    env.login()
    one, two = env.image("mutability one"), env.image("mutability two")
    for uri, moves, stays in ((frozen["repositoryUri"], "dev-main", "1.0"),
                              (loose["repositoryUri"], "latest", "release-1.0")):
        for tag in (moves, stays):
            assert env.push(one, f"{uri}:{tag}").returncode == 0
        assert env.push(two, f"{uri}:{moves}").returncode == 0, f"{uri}:{moves} should be mutable"
        refused = env.push(two, f"{uri}:{stays}")
        assert refused.returncode == 1, f"{uri}:{stays} should be immutable"
        assert "cannot be overwritten because the repository is immutable" in refused.stdout + refused.stderr
    refused = env.aws("ecr", "put-image-tag-mutability", "--repository-name", "semi-loose",
                      "--image-tag-mutability", "IMMUTABLE_WITH_EXCLUSION")
    assert refused.returncode == CLI_ERROR and "InvalidParameterException" in refused.stderr


def test_kms_key_put_image_checks_and_missing_repositories(env: Env) -> None:
    refused = env.aws("ecr", "create-repository", "--repository-name", "enc-bad",
                      "--encryption-configuration", "encryptionType=AES256,kmsKey=alias/mine")
    assert refused.returncode == CLI_ERROR and "kmsKey can only be specified" in refused.stderr
    created = env.ok("ecr", "create-repository", "--repository-name", "enc-kms",
                     "--encryption-configuration", "encryptionType=KMS,kmsKey=alias/mine")
    assert created["repository"]["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": "alias/mine"}
    missing = env.aws("ecr", "list-images", "--repository-name", "enc-bad")
    assert missing.returncode == CLI_ERROR and "RepositoryNotFoundException" in missing.stderr

    ecr = env.ecr()
    config = _upload(ecr, "enc-kms", b'{"architecture": "amd64", "os": "linux"}')
    doc = {"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                                          "size": 40}, "layers": []}
    with pytest.raises(ecr.exceptions.InvalidParameterException, match="mediatype not provided"):
        ecr.put_image(repositoryName="enc-kms", imageManifest=json.dumps(doc), imageTag="v1")
    doc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    text = json.dumps(doc)
    with pytest.raises(ecr.exceptions.ImageDigestDoesNotMatchException):
        ecr.put_image(repositoryName="enc-kms", imageManifest=text, imageTag="v1", imageDigest="sha256:" + "1" * 64)
    digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    put = ecr.put_image(repositoryName="enc-kms", imageManifest=text, imageTag="v1", imageDigest=digest)
    assert put["image"]["imageId"]["imageDigest"] == digest
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException, match=f"registry with id '{OTHER}'"):
        ecr.describe_images(repositoryName="enc-kms", registryId=OTHER)
    assert ecr.describe_images(repositoryName="enc-kms", registryId=ACCOUNT)["imageDetails"]


def test_lifecycle_last_evaluated_and_out_of_order_parts(env: Env) -> None:
    ecr = env.ecr()
    ecr.create_repository(repositoryName="evaluated")
    before = time.time()
    policy = json.dumps({"rules": [{"rulePriority": 1, "action": {"type": "expire"}, "selection": {
        "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}}]})
    ecr.put_lifecycle_policy(repositoryName="evaluated", lifecyclePolicyText=policy)
    assert ecr.get_lifecycle_policy(repositoryName="evaluated")["lastEvaluatedAt"].timestamp() >= before - 1

    upload = ecr.initiate_layer_upload(repositoryName="evaluated")["uploadId"]
    ecr.upload_layer_part(repositoryName="evaluated", uploadId=upload, partFirstByte=0, partLastByte=4,
                          layerPartBlob=b"hello")
    with pytest.raises(ecr.exceptions.InvalidLayerPartException) as err:
        ecr.upload_layer_part(repositoryName="evaluated", uploadId=upload, partFirstByte=10, partLastByte=11,
                              layerPartBlob=b"!!")
    assert err.value.response["lastValidByteReceived"] == 4
    assert err.value.response["uploadId"] == upload
    raw = env.aws("ecr", "upload-layer-part", "--repository-name", "evaluated", "--upload-id", upload,
                  "--part-first-byte", "7", "--part-last-byte", "7",
                  "--layer-part-blob", base64.b64encode(b"x").decode())
    assert raw.returncode == CLI_ERROR and "InvalidLayerPartException" in raw.stderr
