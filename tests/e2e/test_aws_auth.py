"""SigV4 on the AWS endpoint of a real daemon: the generated keys work (boto3, AWS CLI), and an
unsigned request, a wrong secret, a tampered body, a 20-minute-old signature and an unknown key are
refused with AWS's codes and change nothing. The key file is root's alone; `--aws-auth none` says so
loudly and accepts anyone.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tests.helpers import AMZ_JSON, BERTH, BerthDaemon, aws_daemon, running_aws_daemon

pytestmark = pytest.mark.root

boto3 = pytest.importorskip("boto3")
from botocore import auth as botocore_auth  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

AWS = str(Path(sys.executable).parent / "aws")
TARGET = "AmazonEC2ContainerRegistry_V20150921."
EXTRA = ("BKIAEXTRAEXTRAEXTRA1", "extra-secret/extra+secret", "210987654321")


class Endpoint:
    def __init__(self, daemon: BerthDaemon) -> None:
        self.daemon, self.url = daemon, daemon.aws_url

    def ecr(self, key: str | None = None, secret: str | None = None) -> Any:
        return self.daemon.aws_client("ecr", key, secret)

    def names(self) -> set[str]:
        return {r["repositoryName"] for r in self.ecr().describe_repositories()["repositories"]}

    def post(self, operation: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        status, answer = self.daemon.aws_post(body, headers)
        return status, json.loads(answer)

    def signed_headers(self, operation: str, body: bytes) -> dict[str, str]:
        return self.daemon.aws_sign("ecr", TARGET + operation, body)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    extra = tmp_path_factory.mktemp("keys") / "keys.txt"
    extra.write_text("# a team key, in another account\n\n" + " ".join(EXTRA) + "\n")
    with running_aws_daemon("--aws-credentials", str(extra), registry=True, busybox=False) as daemon:
        yield Endpoint(daemon)


def _refused(endpoint: Endpoint, call: Any) -> ClientError:
    with pytest.raises(ClientError) as err:
        call()
    return err.value


def test_generated_keys_work_and_extra_keys_carry_their_account(endpoint: Endpoint) -> None:
    repo = endpoint.ecr().create_repository(repositoryName="signed-ok")["repository"]
    assert repo["repositoryArn"] == "arn:aws:ecr:us-east-1:123456789012:repository/signed-ok"
    other = endpoint.ecr(EXTRA[0], EXTRA[1]).create_repository(repositoryName="team-ok")["repository"]
    assert other["repositoryArn"].split(":")[4] == EXTRA[2]
    assert {"signed-ok", "team-ok"} <= endpoint.names()


def test_unsigned_request_is_refused(endpoint: Endpoint) -> None:
    status, doc = endpoint.post("CreateRepository", b'{"repositoryName": "unsigned"}',
                                {"X-Amz-Target": TARGET + "CreateRepository", "Content-Type": AMZ_JSON})
    assert (status, doc) == (403, {"__type": "MissingAuthenticationTokenException",
                                   "message": "Missing Authentication Token"})
    assert "unsigned" not in endpoint.names()


def test_wrong_secret_is_refused(endpoint: Endpoint) -> None:
    key, _ = endpoint.daemon.aws_credentials()
    client = endpoint.ecr(key, "not-the-secret")
    err = _refused(endpoint, lambda: client.create_repository(repositoryName="wrong-secret"))
    assert err.response["Error"]["Code"] == "InvalidSignatureException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "wrong-secret" not in endpoint.names()


def test_tampered_body_is_refused(endpoint: Endpoint) -> None:
    headers = endpoint.signed_headers("CreateRepository", b'{"repositoryName": "innocent"}')
    status, doc = endpoint.post("CreateRepository", b'{"repositoryName": "tampered"}', headers)
    assert (status, doc["__type"]) == (400, "InvalidSignatureException")
    # the untouched request goes through: the signing was right
    assert endpoint.post("CreateRepository", b'{"repositoryName": "innocent"}', headers)[0] == 200
    assert "tampered" not in endpoint.names() and "innocent" in endpoint.names()


def test_twenty_minute_old_signature_is_refused(endpoint: Endpoint) -> None:
    client = endpoint.ecr()
    then = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    with mock.patch.object(botocore_auth, "get_current_datetime", return_value=then):
        err = _refused(endpoint, lambda: client.create_repository(repositoryName="too-old"))
    assert err.response["Error"]["Code"] == "InvalidSignatureException"
    assert err.response["Error"]["Message"].startswith("Signature expired: ")
    assert "too-old" not in endpoint.names()


def test_unknown_key_is_refused(endpoint: Endpoint) -> None:
    client = endpoint.ecr("BKIANOBODYNOBODYNOBO", "whatever")
    err = _refused(endpoint, lambda: client.create_repository(repositoryName="stranger"))
    assert err.response["Error"]["Code"] == "UnrecognizedClientException"
    assert err.response["Error"]["Message"] == "The security token included in the request is invalid."
    assert "stranger" not in endpoint.names()


def test_aws_cli_get_login_password(endpoint: Endpoint) -> None:
    if not Path(AWS).exists():
        pytest.skip("the AWS CLI is not installed (test extras)")
    env = {**endpoint.daemon.aws_env, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    cmd = [AWS, "--endpoint-url", endpoint.url, "ecr", "get-login-password"]
    good = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert len(good.stdout.strip()) > 20
    bad = subprocess.run(cmd, env={**env, "AWS_SECRET_ACCESS_KEY": "wrong"}, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and "InvalidSignatureException" in bad.stderr


def test_key_file_is_root_only(endpoint: Endpoint) -> None:
    path = endpoint.daemon.root / "aws" / "credentials"
    info = path.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, 0)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # even with every directory above it opened up, another user cannot read it
    opened = [p for p in [*path.parent.parents][:4] if str(p).startswith(str(endpoint.daemon.base))]
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in opened}
    try:
        for p in opened:
            os.chmod(p, modes[p] | 0o005)
        cat = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(path)], capture_output=True, text=True,
                             timeout=30)
        assert cat.returncode != 0 and "Permission denied" in cat.stderr
        cli = subprocess.run(["runuser", "-u", "nobody", "--", BERTH, "aws-credentials", "--root",
                              str(endpoint.daemon.root)], capture_output=True, text=True, timeout=60)
        assert cli.returncode == 1 and "permission denied" in cli.stderr and "BKIA" not in cli.stdout
    finally:
        for p, mode in modes.items():
            os.chmod(p, mode)


def test_berth_aws_credentials_prints_the_keys(endpoint: Endpoint, tmp_path: Path) -> None:
    key, secret = endpoint.daemon.aws_credentials()
    printed = subprocess.run([BERTH, "aws-credentials", "--root", str(endpoint.daemon.root)],
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines() == [f"AWS_ACCESS_KEY_ID={key}", f"AWS_SECRET_ACCESS_KEY={secret}"]
    env = {**os.environ, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
           "AWS_CONFIG_FILE": str(tmp_path / "config")}
    profile = subprocess.run([BERTH, "aws-credentials", "--root", str(endpoint.daemon.root), "--profile", "berth",
                              "--endpoint-url", endpoint.url], env=env, capture_output=True, text=True, timeout=60)
    assert profile.returncode == 0, profile.stderr
    for name in ("credentials", "config"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    with mock.patch.dict(os.environ, env):  # boto3 reads the two files named there
        session = boto3.session.Session(profile_name="berth")
        client = session.client("ecr")
        assert client.meta.endpoint_url == endpoint.url
        assert "signed-ok" in {r["repositoryName"] for r in client.describe_repositories()["repositories"]}


def test_auth_none_accepts_unsigned_and_says_so() -> None:
    with running_aws_daemon("--aws-auth", "none", registry=True, busybox=False) as daemon:
        assert "AWS endpoint authentication is OFF (--aws-auth none): anyone who can reach 127.0.0.1:" in daemon.log()
        status, answer = daemon.aws_post(b'{"repositoryName": "open"}', {
            "X-Amz-Target": TARGET + "CreateRepository", "Content-Type": AMZ_JSON})
        assert status == 200 and json.loads(answer)["repository"]["repositoryName"] == "open"


def test_malformed_credentials_file_stops_the_daemon(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    keys = tmp_path / "keys.txt"
    keys.write_text("GOODKEY goodsecret\nonly-one-field\n")
    daemon = aws_daemon("--aws-credentials", str(keys), registry=True)
    try:
        with pytest.raises(RuntimeError, match="daemon exited early"):
            daemon.start()
        assert f"{keys}:2: expected 'ACCESS_KEY_ID SECRET_ACCESS_KEY" in daemon.log()
    finally:
        daemon.destroy()
