"""ECR's newer operations and the endpoint's answers for what berth does not implement, through
boto3 against an in-process AWS endpoint (loopback port) with ECR on the in-memory registry.

Two keys: `test` (account 123456789012) and `other` (account 210987654321), for `registryId` of
another account.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from berth.api.aws import AwsApi, Authenticator, AwsServer, Credential, JsonService, StaticKeys
from berth.api.aws.ecr import ecr_service
from berth.ecr import EcrService, EcrTokens
from berth.ecr.testing import MemoryImages
from berth.state import MemoryStore
from berth.types import Digest

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError, WaiterError  # noqa: E402

ACCOUNT, OTHER = "123456789012", "210987654321"
OCI = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[str, MemoryImages]]:
    images = MemoryImages()
    keys = StaticKeys([Credential("test", "test", ACCOUNT), Credential("other", "other", OTHER)])
    api = AwsApi(authenticator=Authenticator([keys]))
    api.add_json_service(ecr_service(EcrService(MemoryStore(), images, EcrTokens(b"k" * 32), "127.0.0.1:5000")))

    def unimplemented(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        raise NotImplementedError("not yet")

    api.add_json_service(JsonService("Berth_Test_20260101", "ecr", {"Half": unimplemented}))
    server = AwsServer(api)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}", images
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def client(url: str, service: str = "ecr", key: str = "test") -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=key, config=Config(retries={"mode": "standard", "max_attempts": 3}))


def manifest(n: int) -> str:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI, "n": n, "layers": []})


def error(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, int]:
    meta = err.value.response["ResponseMetadata"]
    return err.value.response["Error"]["Code"], meta["HTTPStatusCode"], meta.get("RetryAttempts", 0)


# --- what berth does not implement: 400, never 5xx (SDKs would retry it) ---------------------------

def test_unimplemented_ecr_operation_is_unknown_operation(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    with pytest.raises(ClientError) as err:
        client(url).create_pull_through_cache_rule(ecrRepositoryPrefix="hub", upstreamRegistryUrl="registry.example")
    assert error(err) == ("UnknownOperationException", 400, 0)


def test_operation_raising_not_implemented_is_a_client_error(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    status, body, headers = raw_post(url, {"X-Amz-Target": "Berth_Test_20260101.Half",
                                           "Content-Type": "application/x-amz-json-1.1"}, b"{}")
    assert status == 400 and body["__type"] == "UnknownOperationException" and "not yet" in body["message"]
    assert headers["x-amzn-ErrorType"] == "UnknownOperationException"


def test_query_client_of_a_service_berth_lacks_gets_xml_400(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    with pytest.raises(ClientError) as err:
        client(url, "cloudformation").list_stacks()
    assert error(err) == ("InvalidAction", 400, 0)


def test_unknown_json_service_and_missing_target(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    for headers in ({"X-Amz-Target": "AmazonSSM.GetParameter"}, {}):
        status, body, _ = raw_post(url, {**headers, "Content-Type": "application/x-amz-json-1.1"}, b"{}")
        assert (status, body["__type"]) == (400, "UnknownOperationException"), headers


def test_body_over_the_limit_is_a_client_error(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    status, body, _ = raw_post(url, {"X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.ListImages",
                                     "Content-Type": "application/x-amz-json-1.1"}, b" " * (33 * 1024 * 1024))
    assert status == 413 and body["__type"] == "SerializationException"


def raw_post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    signed = AWSRequest(method="POST", url=url + "/", data=body, headers=headers)
    SigV4Auth(Credentials("test", "test"), "ecr", "us-east-1").add_auth(signed)
    request = urllib.request.Request(url + "/", data=body, method="POST", headers=dict(signed.headers.items()))
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers.items())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers.items())


# --- registry policy, replication, scanning configuration ------------------------------------------

def test_registry_policy(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    ecr = client(url)
    with pytest.raises(ecr.exceptions.RegistryPolicyNotFoundException):
        ecr.get_registry_policy()
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.put_registry_policy(policyText="{nope")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"]}]})
    assert ecr.put_registry_policy(policyText=policy)["registryId"] == ACCOUNT
    assert ecr.get_registry_policy()["policyText"] == policy
    with pytest.raises(client(url, key="other").exceptions.RegistryPolicyNotFoundException):
        client(url, key="other").get_registry_policy()         # each account has its registry
    assert ecr.delete_registry_policy()["policyText"] == policy
    with pytest.raises(ecr.exceptions.RegistryPolicyNotFoundException):
        ecr.delete_registry_policy()


def test_replication_configuration(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    ecr = client(url)
    assert ecr.describe_registry()["replicationConfiguration"] == {"rules": []}
    config = {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": ACCOUNT}],
                         "repositoryFilters": [{"filter": "prod", "filterType": "PREFIX_MATCH"}]}]}
    assert ecr.put_replication_configuration(replicationConfiguration=config)["replicationConfiguration"] == config
    described = ecr.describe_registry()
    assert (described["registryId"], described["replicationConfiguration"]) == (ACCOUNT, config)
    with pytest.raises(ecr.exceptions.InvalidParameterException) as err:
        ecr.put_replication_configuration(replicationConfiguration={"rules": [
            {"destinations": [{"region": "us-east-1", "registryId": ACCOUNT}]}]})
    assert "cannot be the same as the source registry" in str(err.value)
    with pytest.raises(ecr.exceptions.ValidationException):
        ecr.put_replication_configuration(replicationConfiguration={"rules": [
            {"destinations": [{"region": "eu-west-1", "registryId": ACCOUNT}],
             "repositoryFilters": [{"filter": "prod", "filterType": "SUFFIX"}]}]})
    assert ecr.describe_registry()["replicationConfiguration"] == config   # a refused put changes nothing


def test_registry_scanning_configuration(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    ecr = client(url)
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"] == {"scanType": "BASIC", "rules": []}
    rules = [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "scan-*", "filterType": "WILDCARD"}]}]
    put = ecr.put_registry_scanning_configuration(scanType="BASIC", rules=rules)
    assert put["registryScanningConfiguration"] == {"scanType": "BASIC", "rules": rules}
    got = ecr.get_registry_scanning_configuration()
    assert (got["registryId"], got["scanningConfiguration"]["rules"]) == (ACCOUNT, rules)
    with pytest.raises(ecr.exceptions.ValidationException):
        ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[
            {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}])
    ecr.create_repository(repositoryName="scan-me")
    ecr.create_repository(repositoryName="plain", imageScanningConfiguration={"scanOnPush": True})
    batch = ecr.batch_get_repository_scanning_configuration(repositoryNames=["scan-me", "plain", "missing"])
    by_name = {c["repositoryName"]: c for c in batch["scanningConfigurations"]}
    assert by_name["scan-me"]["scanFrequency"] == "SCAN_ON_PUSH"
    assert by_name["scan-me"]["appliedScanFilters"] == [{"filter": "scan-*", "filterType": "WILDCARD"}]
    assert (by_name["plain"]["scanFrequency"], by_name["plain"]["scanOnPush"]) == ("SCAN_ON_PUSH", True)
    assert batch["failures"] == [{"repositoryName": "missing", "failureCode": "REPOSITORY_NOT_FOUND",
                                  "failureReason": "REPOSITORY_NOT_FOUND"}]
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])


# --- image scans ------------------------------------------------------------------------------------

def test_image_scan_fails_and_says_why(endpoint: tuple[str, MemoryImages]) -> None:
    url, images = endpoint
    ecr = client(url)
    ecr.create_repository(repositoryName="scanned")
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.start_image_scan(repositoryName="nope", imageId={"imageTag": "v1"})
    with pytest.raises(ecr.exceptions.ImageNotFoundException):
        ecr.start_image_scan(repositoryName="scanned", imageId={"imageTag": "v1"})
    digest = images.push("scanned", "v1", manifest(1).encode())
    with pytest.raises(ecr.exceptions.ScanNotFoundException):
        ecr.describe_image_scan_findings(repositoryName="scanned", imageId={"imageTag": "v1"})
    started = ecr.start_image_scan(repositoryName="scanned", imageId={"imageTag": "v1"})
    assert started["imageId"] == {"imageDigest": digest, "imageTag": "v1"}
    assert started["imageScanStatus"]["status"] == "FAILED"
    assert "no vulnerability database" in started["imageScanStatus"]["description"]
    found = ecr.describe_image_scan_findings(repositoryName="scanned", imageId={"imageDigest": digest})
    assert found["imageScanStatus"]["status"] == "FAILED" and "imageScanFindings" not in found
    with pytest.raises(WaiterError, match="FAILED|failure"):
        ecr.get_waiter("image_scan_complete").wait(repositoryName="scanned", imageId={"imageTag": "v1"})
    with pytest.raises(ecr.exceptions.LimitExceededException):
        ecr.start_image_scan(repositoryName="scanned", imageId={"imageTag": "v1"})
    [detail] = ecr.describe_images(repositoryName="scanned")["imageDetails"]
    assert detail["imageScanStatus"]["status"] == "FAILED"


# --- repositories, images, layers --------------------------------------------------------------------

def test_kms_key_and_list_images_of_a_missing_repository(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    ecr = client(url)
    with pytest.raises(ecr.exceptions.InvalidParameterException, match="kmsKey"):
        ecr.create_repository(repositoryName="enc-a", encryptionConfiguration={"encryptionType": "AES256",
                                                                               "kmsKey": "alias/x"})
    repo = ecr.create_repository(repositoryName="enc-k", encryptionConfiguration={"encryptionType": "KMS"})
    assert repo["repository"]["encryptionConfiguration"]["kmsKey"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/ecr"
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException, match="'enc-a' does not exist"):
        ecr.list_images(repositoryName="enc-a")


def test_lifecycle_last_evaluated_at(endpoint: tuple[str, MemoryImages]) -> None:
    url, images = endpoint
    ecr = client(url)
    ecr.create_repository(repositoryName="aging")
    policy = json.dumps({"rules": [{"rulePriority": 1, "action": {"type": "expire"}, "selection": {
        "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 9}}]})
    ecr.put_lifecycle_policy(repositoryName="aging", lifecyclePolicyText=policy)
    got = ecr.get_lifecycle_policy(repositoryName="aging")
    assert got["lastEvaluatedAt"].timestamp() > 1_700_000_000


def test_put_image_digest_and_media_type(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    ecr = client(url)
    ecr.create_repository(repositoryName="putter")
    body = manifest(7)
    with pytest.raises(ecr.exceptions.ImageDigestDoesNotMatchException):
        ecr.put_image(repositoryName="putter", imageManifest=body, imageDigest="sha256:" + "0" * 64)
    bare = json.dumps({"schemaVersion": 2, "layers": []})
    with pytest.raises(ecr.exceptions.InvalidParameterException, match="mediatype not provided"):
        ecr.put_image(repositoryName="putter", imageManifest=bare, imageTag="bare")
    put = ecr.put_image(repositoryName="putter", imageManifest=body, imageTag="v1",
                        imageDigest=str(Digest.of(body.encode())))
    assert put["image"]["imageId"]["imageDigest"] == str(Digest.of(body.encode()))
    ecr.put_image(repositoryName="putter", imageManifest=bare, imageTag="bare", imageManifestMediaType=OCI)


def test_out_of_order_layer_part(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    ecr = client(url)
    ecr.create_repository(repositoryName="parts")
    upload = ecr.initiate_layer_upload(repositoryName="parts")["uploadId"]
    ecr.upload_layer_part(repositoryName="parts", uploadId=upload, partFirstByte=0, partLastByte=3,
                          layerPartBlob=b"abcd")
    with pytest.raises(ecr.exceptions.InvalidLayerPartException) as err:
        ecr.upload_layer_part(repositoryName="parts", uploadId=upload, partFirstByte=9, partLastByte=10,
                              layerPartBlob=b"xy")
    response = err.value.response
    assert (response["lastValidByteReceived"], response["uploadId"], response["repositoryName"],
            response["registryId"]) == (3, upload, "parts", ACCOUNT)
    assert ecr.upload_layer_part(repositoryName="parts", uploadId=upload, partFirstByte=4, partLastByte=5,
                                 layerPartBlob=b"ef")["lastByteReceived"] == 5


def test_exclusion_filters_through_the_api(endpoint: tuple[str, MemoryImages]) -> None:
    url, images = endpoint
    ecr = client(url)
    created = ecr.create_repository(repositoryName="semi", imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                                    imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "dev*"}])
    assert created["repository"]["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD",
                                                                            "filter": "dev*"}]
    ecr.put_image(repositoryName="semi", imageManifest=manifest(1), imageTag="dev")
    ecr.put_image(repositoryName="semi", imageManifest=manifest(2), imageTag="dev")
    ecr.put_image(repositoryName="semi", imageManifest=manifest(1), imageTag="1.0")
    with pytest.raises(ecr.exceptions.ImageTagAlreadyExistsException):
        ecr.put_image(repositoryName="semi", imageManifest=manifest(2), imageTag="1.0")
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.put_image_tag_mutability(repositoryName="semi", imageTagMutability="MUTABLE_WITH_EXCLUSION")
    changed = ecr.put_image_tag_mutability(repositoryName="semi", imageTagMutability="MUTABLE_WITH_EXCLUSION",
                                           imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD",
                                                                                "filter": "1.*"}])
    assert changed["imageTagMutability"] == "MUTABLE_WITH_EXCLUSION"
    ecr.put_image(repositoryName="semi", imageManifest=manifest(3), imageTag="dev")   # now mutable


# --- registryId of another account -------------------------------------------------------------------

def test_registry_id_of_another_account(endpoint: tuple[str, MemoryImages]) -> None:
    url, images = endpoint
    mine, theirs = client(url), client(url, key="other")
    mine.create_repository(repositoryName="shared")
    images.push("shared", "v1", manifest(1).encode())
    assert mine.describe_images(repositoryName="shared", registryId=ACCOUNT)["imageDetails"]
    with pytest.raises(mine.exceptions.RepositoryNotFoundException, match=f"registry with id '{OTHER}'"):
        mine.describe_images(repositoryName="shared", registryId=OTHER)
    with pytest.raises(mine.exceptions.InvalidParameterException, match="registryId"):
        mine.list_images(repositoryName="shared", registryId="123")
    with pytest.raises(ClientError) as err:
        theirs.batch_get_image(repositoryName="shared", registryId=ACCOUNT, imageIds=[{"imageTag": "v1"}])
    assert error(err) == ("AccessDeniedException", 400, 0)
    mine.set_repository_policy(repositoryName="shared", policyText=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": ["ecr:BatchGetImage", "ecr:DescribeRepositories"]}]}))
    got = theirs.batch_get_image(repositoryName="shared", registryId=ACCOUNT, imageIds=[{"imageTag": "v1"}])
    assert got["images"][0]["registryId"] == ACCOUNT
    listed = theirs.describe_repositories(registryId=ACCOUNT)["repositories"]
    assert [r["repositoryName"] for r in listed] == ["shared"]
    with pytest.raises(ClientError) as err:
        theirs.create_repository(repositoryName="intruder", registryId=ACCOUNT)
    assert error(err)[0] == "AccessDeniedException"
    token = mine.get_authorization_token(registryIds=[ACCOUNT, OTHER])["authorizationData"]
    assert len(token) == 2 and all(base64.b64decode(t["authorizationToken"]).startswith(b"AWS:") for t in token)
