"""The AWS endpoint through boto3: JSON 1.1 dispatch, error shapes, SigV4 scopes, ECR paging.

The server runs on a loopback port in a background event loop; ECR sits on the in-memory registry.
It checks SigV4 against one known key, `test`/`test` (test_aws_sigv4.py covers the refusals).
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from berth.api.aws import AwsApi, Authenticator, AwsServer, Credential, StaticKeys, parse_scope
from berth.api.aws.ecr import ecr_service
from berth.ecr import EcrService, EcrTokens
from berth.ecr.testing import MemoryImages
from berth.errors import InvalidArgument
from berth.state import MemoryStore

boto3 = pytest.importorskip("boto3")
botocore_exceptions = pytest.importorskip("botocore.exceptions")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[str, MemoryImages]]:
    images = MemoryImages()
    api = AwsApi(authenticator=Authenticator([StaticKeys([Credential("test", "test")])]))
    api.add_json_service(ecr_service(EcrService(MemoryStore(), images, EcrTokens(b"k" * 32), "127.0.0.1:5000")))
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


def ecr(url: str, region: str = "us-east-1") -> Any:
    return boto3.client("ecr", endpoint_url=url, region_name=region, aws_access_key_id="test",
                        aws_secret_access_key="test")


def test_create_and_describe_repository(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    client = ecr(url, "eu-west-1")
    repo = client.create_repository(repositoryName="proto/app", imageTagMutability="IMMUTABLE",
                                    tags=[{"Key": "team", "Value": "cats"}])["repository"]
    assert repo["repositoryUri"] == "127.0.0.1:5000/proto/app"
    assert repo["repositoryArn"] == "arn:aws:ecr:eu-west-1:123456789012:repository/proto/app"
    assert repo["createdAt"].year >= 2024
    described = client.describe_repositories(repositoryNames=["proto/app"])["repositories"]
    assert described[0]["imageTagMutability"] == "IMMUTABLE"
    tags = client.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
    assert tags == [{"Key": "team", "Value": "cats"}]


def test_modelled_errors(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    client = ecr(url)
    with pytest.raises(client.exceptions.RepositoryNotFoundException):
        client.describe_images(repositoryName="proto/missing")
    client.create_repository(repositoryName="proto/dup")
    with pytest.raises(client.exceptions.RepositoryAlreadyExistsException) as err:
        client.create_repository(repositoryName="proto/dup")
    assert "already exists" in err.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.create_repository(repositoryName="UPPER")
    with pytest.raises(client.exceptions.LifecyclePolicyNotFoundException):
        client.get_lifecycle_policy(repositoryName="proto/dup")


def test_images_paging_and_put_image(endpoint: tuple[str, MemoryImages]) -> None:
    url, images = endpoint
    client = ecr(url)
    client.create_repository(repositoryName="proto/paged")
    for n in range(5):
        images.push("proto/paged", f"t{n}", json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "n": n,
                                                  "layers": []}).encode())
    pages = list(client.get_paginator("describe_images").paginate(repositoryName="proto/paged",
                                                                 PaginationConfig={"PageSize": 2}))
    assert [len(p["imageDetails"]) for p in pages] == [2, 2, 1]
    ids = client.list_images(repositoryName="proto/paged")["imageIds"]
    assert sorted(i["imageTag"] for i in ids) == ["t0", "t1", "t2", "t3", "t4"]
    got = client.batch_get_image(repositoryName="proto/paged", imageIds=[{"imageTag": "t1"}, {"imageTag": "zz"}])
    assert json.loads(got["images"][0]["imageManifest"])["n"] == 1
    assert got["failures"][0]["failureCode"] == "ImageNotFound"
    put = client.put_image(repositoryName="proto/paged", imageManifest=got["images"][0]["imageManifest"],
                           imageTag="copy")["image"]
    assert put["imageId"]["imageDigest"] == got["images"][0]["imageId"]["imageDigest"]
    with pytest.raises(client.exceptions.ImageAlreadyExistsException):
        client.put_image(repositoryName="proto/paged", imageManifest=got["images"][0]["imageManifest"],
                         imageTag="copy")


def test_authorization_token_shape(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    data = ecr(url).get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == "http://127.0.0.1:5000"
    assert data["expiresAt"].timestamp() > 0


def test_unknown_operation_and_bad_json(endpoint: tuple[str, MemoryImages]) -> None:
    url, _ = endpoint
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    for target, body in [("AmazonEC2ContainerRegistry_V20150921.Nope", b"{}"),
                         ("AmazonEC2ContainerRegistry_V20150921.ListImages", b"not json")]:
        signed = AWSRequest(method="POST", url=url + "/", data=body,
                            headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(Credentials("test", "test"), "ecr", "us-east-1").add_auth(signed)
        req = urllib.request.Request(url + "/", data=body, method="POST", headers=dict(signed.headers.items()))
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 400
        doc = json.loads(err.value.read())
        assert doc["__type"] in ("UnknownOperationException", "SerializationException")
        assert err.value.headers["x-amzn-ErrorType"] == doc["__type"]


def test_parse_scope() -> None:
    scope = parse_scope({"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20261129/eu-west-1/ecr/aws4_request, "
                                          "SignedHeaders=host, Signature=abc"})
    assert scope is not None and (scope.access_key, scope.region, scope.service) == ("AKID", "eu-west-1", "ecr")
    assert parse_scope({}) is None
    assert parse_scope({}, {"X-Amz-Credential": "K/20260101/us-west-2/ecs/aws4_request"}).region == "us-west-2"  # type: ignore[union-attr]


def test_listen_addr() -> None:
    from berth.api.aws import parse_listen_addr

    assert parse_listen_addr("off") is None
    assert parse_listen_addr("127.0.0.1:4566") == ("127.0.0.1", 4566)
    with pytest.raises(InvalidArgument):
        parse_listen_addr("nope")
