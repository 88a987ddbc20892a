"""ECR through the AWS CLI and boto3 against a berth daemon serving its registry and AWS APIs.

create-repository → get-login-password | docker login → docker push → describe-images; an
IMMUTABLE tag refuses a second push; a lifecycle policy expires old images.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BerthDaemon, free_port

pytestmark = pytest.mark.root

AWS = str(Path(sys.executable).parent / "aws")


@dataclass
class Env:
    engine: BerthDaemon
    registry: str
    endpoint: str

    def aws(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.engine.aws_env, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        return subprocess.run([AWS, "--endpoint-url", self.endpoint, *args], env=env, input=input,
                              capture_output=True, text=True, timeout=60)

    def ecr(self) -> Any:
        boto3 = pytest.importorskip("boto3")
        key, secret = self.engine.aws_credentials()
        return boto3.client("ecr", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key=secret)

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
        engine.bootstrap_busybox()
        yield Env(engine, registry, f"http://127.0.0.1:{aws_port}")
    finally:
        engine.destroy()


def test_create_login_push_describe(env: Env) -> None:
    created = env.aws("ecr", "create-repository", "--repository-name", "cats")
    assert created.returncode == 0, created.stderr
    uri = json.loads(created.stdout)["repository"]["repositoryUri"]
    assert uri == f"{env.registry}/cats"
    env.login()
    env.engine.docker("tag", "busybox", f"{uri}:v1", check=True)
    push = env.engine.docker("push", f"{uri}:v1", timeout=120)
    assert push.returncode == 0, push.stderr
    digest = push.stdout.split("digest: ")[1].split()[0]

    described = env.aws("ecr", "describe-images", "--repository-name", "cats")
    assert described.returncode == 0, described.stderr
    [detail] = json.loads(described.stdout)["imageDetails"]
    assert detail["imageDigest"] == digest
    assert detail["imageTags"] == ["v1"]
    assert detail["imageSizeInBytes"] > 100_000
    assert detail["imageManifestMediaType"] == "application/vnd.docker.distribution.manifest.v2+json"

    env.engine.docker("rmi", f"{uri}:v1", check=True)
    run = env.engine.docker("run", "--rm", f"{uri}:v1", "echo", "from ecr", timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "from ecr\n"


def test_immutable_tag_cannot_be_overwritten(env: Env) -> None:
    client = env.ecr()
    uri = client.create_repository(repositoryName="frozen", imageTagMutability="IMMUTABLE")["repository"]["repositoryUri"]
    env.login()
    first, second = env.image("one"), env.image("two")
    env.engine.docker("tag", first, f"{uri}:stable", check=True)
    assert env.engine.docker("push", f"{uri}:stable", timeout=120).returncode == 0
    env.engine.docker("tag", second, f"{uri}:stable", check=True)
    again = env.engine.docker("push", f"{uri}:stable", timeout=120)
    assert again.returncode == 1
    assert "cannot be overwritten because the repository is immutable" in again.stdout + again.stderr
    tags = [d.get("imageTags") for d in client.describe_images(repositoryName="frozen")["imageDetails"]]
    assert tags == [["stable"]]
    manifest = client.batch_get_image(repositoryName="frozen", imageIds=[{"imageTag": "stable"}])["images"][0]
    with pytest.raises(client.exceptions.ImageTagAlreadyExistsException):
        client.put_image(repositoryName="frozen", imageManifest=manifest["imageManifest"].replace("  ", " "),
                         imageTag="stable")


def test_lifecycle_policy_expires_old_images(env: Env) -> None:
    client = env.ecr()
    uri = client.create_repository(repositoryName="aging")["repository"]["repositoryUri"]
    env.login()
    for n in range(3):
        image = env.image(f"generation {n}")
        env.engine.docker("tag", image, f"{uri}:g{n}", check=True)
        assert env.engine.docker("push", f"{uri}:g{n}", timeout=120).returncode == 0
    policy = {"rules": [{"rulePriority": 1, "description": "keep one",
                         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
                         "action": {"type": "expire"}}]}
    preview_start = client.start_lifecycle_policy_preview(repositoryName="aging",
                                                         lifecyclePolicyText=json.dumps(policy))
    assert preview_start["status"] in ("IN_PROGRESS", "COMPLETE")
    preview = client.get_lifecycle_policy_preview(repositoryName="aging")
    assert preview["summary"]["expiringImageTotalCount"] == 2
    client.put_lifecycle_policy(repositoryName="aging", lifecyclePolicyText=json.dumps(policy))
    left = client.describe_images(repositoryName="aging")["imageDetails"]
    assert [d["imageTags"] for d in left] == [["g2"]]
    assert json.loads(client.get_lifecycle_policy(repositoryName="aging")["lifecyclePolicyText"]) == policy


def test_delete_repository_needs_force(env: Env) -> None:
    client = env.ecr()
    with pytest.raises(client.exceptions.RepositoryNotEmptyException):
        client.delete_repository(repositoryName="aging")
    client.delete_repository(repositoryName="aging", force=True)
    names = [r["repositoryName"] for r in client.describe_repositories()["repositories"]]
    assert "aging" not in names


def test_push_through_the_layer_api_then_docker_pull(env: Env, tmp_path: Path) -> None:
    """InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload / PutImage with boto3, as ECR's
    proxy would; the result is an ordinary image that `docker pull` and `docker run` use."""
    import hashlib
    import urllib.request

    from botocore.exceptions import ClientError

    ecr = env.ecr()
    ecr.create_repository(repositoryName="layered")
    archive = tmp_path / "busybox.tar"
    env.engine.docker("save", "-o", str(archive), "busybox", check=True)
    with tarfile.open(archive) as tar:
        [entry] = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config = tar.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
        layer = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def upload(data: bytes) -> str:
        upload_id = ecr.initiate_layer_upload(repositoryName="layered")["uploadId"]
        half = len(data) // 2
        for first, part in ((0, data[:half]), (half, data[half:])):
            sent = ecr.upload_layer_part(repositoryName="layered", uploadId=upload_id, partFirstByte=first,
                                         partLastByte=first + len(part) - 1, layerPartBlob=part)
            assert sent["lastByteReceived"] == first + len(part) - 1
        done = ecr.complete_layer_upload(repositoryName="layered", uploadId=upload_id, layerDigests=[digest(data)])
        assert done["layerDigest"] == digest(data)
        return done["layerDigest"]

    upload_id = ecr.initiate_layer_upload(repositoryName="layered")["uploadId"]
    with pytest.raises(ClientError) as err:
        ecr.upload_layer_part(repositoryName="layered", uploadId=upload_id, partFirstByte=5, partLastByte=7,
                              layerPartBlob=b"abc")
    assert err.value.response["Error"]["Code"] == "InvalidLayerPartException"

    config_digest, layer_digest = upload(config), upload(layer)
    checked = ecr.batch_check_layer_availability(repositoryName="layered",
                                                 layerDigests=[layer_digest, "sha256:" + "0" * 64])
    assert [(x["layerDigest"], x["layerAvailability"], x["layerSize"]) for x in checked["layers"]] == [
        (layer_digest, "AVAILABLE", len(layer))]
    assert [f["failureCode"] for f in checked["failures"]] == ["MissingLayerDigest"]
    url = ecr.get_download_url_for_layer(repositoryName="layered", layerDigest=layer_digest)["downloadUrl"]
    with urllib.request.urlopen(url, timeout=30) as resp:  # loopback: the daemon's own registry
        assert hashlib.sha256(resp.read()).hexdigest() == layer_digest.split(":")[1]

    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                    "size": len(layer)}]})
    ecr.put_image(repositoryName="layered", imageManifest=manifest, imageTag="v1",
                  imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")
    env.login()
    ref = f"{env.registry}/layered:v1"
    pull = env.engine.docker("pull", ref, timeout=120)
    assert pull.returncode == 0, pull.stderr
    run = env.engine.docker("run", "--rm", ref, "echo", "pushed-by-layer-api", timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "pushed-by-layer-api\n"
    env.engine.docker("rmi", ref, check=True)
