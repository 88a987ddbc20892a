"""SigV4 in front of ECS (issue 9, "Authentication"): with ECS the AWS endpoint is as powerful as the
Docker socket (a RunTask of a privileged task mounting / is root on the host), so an unsigned
request, a wrong secret, a tampered body, a 20-minute-old signature and an unknown key are refused
with AWS's codes, and neither a cluster is created nor a task run. Local users without the keys get
nowhere, the task-role keys berth issues are root's alone on disk, and expired ones are refused.

tests/e2e/test_aws_auth.py covers the same for ECR, the generated key file and `--aws-auth none`.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tests.helpers import AMZ_JSON as JSON
from tests.helpers import BerthDaemon, running_aws_daemon, wait_for, wait_task

pytestmark = pytest.mark.root

boto3 = pytest.importorskip("boto3")
from botocore import auth as botocore_auth  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

TARGET = "AmazonEC2ContainerServiceV20141113."
ROLE = "arn:aws:iam::123456789012:role/app"
# What an attacker on the host would run: root's filesystem, privileged.
ROOT_ON_THE_HOST = {"family": "root-on-the-host", "containerDefinitions": [{
    "name": "pwn", "image": "busybox", "memory": 32, "privileged": True, "command": ["sleep", "3600"],
    "mountPoints": [{"sourceVolume": "host", "containerPath": "/host"}]}],
    "volumes": [{"name": "host", "host": {"sourcePath": "/"}}]}
OPERATIONS = {
    "CreateCluster": lambda name: {"clusterName": name},
    "RunTask": lambda name: {"taskDefinition": "root-on-the-host", "startedBy": name},
}


class Endpoint:
    def __init__(self, daemon: BerthDaemon) -> None:
        self.daemon, self.url = daemon, daemon.aws_url

    def ecs(self, key: str | None = None, secret: str | None = None, token: str | None = None) -> Any:
        return self.daemon.aws_client("ecs", key, secret, token)

    def state(self) -> dict[str, Any]:
        """Everything a refused request could have changed: clusters, tasks, engine containers."""
        ecs = self.ecs()
        tasks = sorted(ecs.list_tasks(cluster="default")["taskArns"]
                       + ecs.list_tasks(cluster="default", desiredStatus="STOPPED")["taskArns"])
        containers = self.daemon.docker("ps", "-aq", check=True).stdout.split()
        return {"clusters": sorted(ecs.list_clusters()["clusterArns"]), "tasks": tasks, "containers": containers}

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        status, answer = self.daemon.aws_post(body, headers)
        return status, json.loads(answer)

    def signed_headers(self, operation: str, body: bytes) -> dict[str, str]:
        return self.daemon.aws_sign("ecs", TARGET + operation, body)

    def call(self, client: Any, operation: str, name: str) -> Any:
        method = {"CreateCluster": client.create_cluster, "RunTask": client.run_task}[operation]
        return method(**OPERATIONS[operation](name))


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    with running_aws_daemon("--ecs-healthy-after", "1") as daemon:
        e = Endpoint(daemon)
        e.ecs().register_task_definition(**ROOT_ON_THE_HOST)
        yield e


@pytest.fixture()
def unchanged(endpoint: Endpoint) -> Iterator[Endpoint]:
    """The endpoint; the test must leave clusters, tasks and containers as it found them."""
    before = endpoint.state()
    yield endpoint
    assert endpoint.state() == before, "a refused request changed something"


def _refused(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as err:
        call()
    return err.value


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_unsigned_request_is_refused(unchanged: Endpoint, operation: str) -> None:
    body = json.dumps(OPERATIONS[operation]("unsigned")).encode()
    status, doc = unchanged.post(body, {"X-Amz-Target": TARGET + operation, "Content-Type": JSON})
    assert (status, doc) == (403, {"__type": "MissingAuthenticationTokenException",
                                   "message": "Missing Authentication Token"})


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_wrong_secret_is_refused(unchanged: Endpoint, operation: str) -> None:
    key, _ = unchanged.daemon.aws_credentials()
    err = _refused(lambda: unchanged.call(unchanged.ecs(key, "not-the-secret"), operation, "wrong-secret"))
    assert err.response["Error"]["Code"] == "InvalidSignatureException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_twenty_minute_old_signature_is_refused(unchanged: Endpoint, operation: str) -> None:
    client = unchanged.ecs()
    then = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    with mock.patch.object(botocore_auth, "get_current_datetime", return_value=then):
        err = _refused(lambda: unchanged.call(client, operation, "too-old"))
    assert err.response["Error"]["Code"] == "InvalidSignatureException"
    assert err.response["Error"]["Message"].startswith("Signature expired: ")


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_unknown_key_is_refused(unchanged: Endpoint, operation: str) -> None:
    err = _refused(lambda: unchanged.call(unchanged.ecs("BKIANOBODYNOBODYNOBO", "whatever"), operation, "stranger"))
    assert err.response["Error"]["Code"] == "UnrecognizedClientException"
    assert err.response["Error"]["Message"] == "The security token included in the request is invalid."


def test_tampered_body_is_refused(endpoint: Endpoint) -> None:
    before = endpoint.state()
    signed = b'{"clusterName": "innocent"}'
    headers = endpoint.signed_headers("CreateCluster", signed)
    status, doc = endpoint.post(b'{"clusterName": "tampered"}', headers)
    assert (status, doc["__type"]) == (400, "InvalidSignatureException")
    # RunTask with a body swapped for another task definition's: refused as well
    run = json.dumps({"taskDefinition": "root-on-the-host", "count": 1}).encode()
    run_headers = endpoint.signed_headers("RunTask", run)
    status, doc = endpoint.post(run.replace(b'"count": 1', b'"count": 9'), run_headers)
    assert (status, doc["__type"]) == (400, "InvalidSignatureException")
    # ... and the operation swapped under an untouched body: X-Amz-Target is signed too
    status, doc = endpoint.post(signed, {**headers, "X-Amz-Target": TARGET + "DeleteCluster"})
    assert (status, doc["__type"]) == (400, "InvalidSignatureException")
    assert endpoint.state() == before
    # the untouched request goes through: the signing was right
    status, doc = endpoint.post(signed, headers)
    assert status == 200 and doc["cluster"]["clusterName"] == "innocent"
    endpoint.ecs().delete_cluster(cluster="innocent")


def test_aws_cli_with_a_wrong_secret_runs_nothing(unchanged: Endpoint) -> None:
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip("the AWS CLI is not installed (test extras)")
    env = {**unchanged.daemon.aws_env, "AWS_SECRET_ACCESS_KEY": "wrong", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    result = subprocess.run([str(aws), "--endpoint-url", unchanged.url, "ecs", "run-task", "--task-definition",
                             "root-on-the-host"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "InvalidSignatureException" in result.stderr


def _as_nobody(script: str) -> subprocess.CompletedProcess[str]:
    """Python as the unprivileged `nobody`, with this interpreter (its venv is world-readable)."""
    return subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=60, cwd="/")


def test_a_local_user_without_the_keys_cannot_run_a_task(unchanged: Endpoint) -> None:
    # the endpoint listens on TCP where every local user reaches it: without the keys, no RunTask
    result = _as_nobody(f"""
        import json, urllib.request, urllib.error
        req = urllib.request.Request({unchanged.url + '/'!r}, method="POST",
                                     data=b'{{"taskDefinition": "root-on-the-host"}}',
                                     headers={{"X-Amz-Target": "{TARGET}RunTask", "Content-Type": "{JSON}"}})
        try:
            urllib.request.urlopen(req, timeout=30)
            print("ACCEPTED")
        except urllib.error.HTTPError as err:
            print(err.code, json.loads(err.read())["__type"])
        try:
            open({str(unchanged.daemon.root / "aws" / "credentials")!r}).read()
            print("READ THE KEYS")
        except OSError as err:
            print(type(err).__name__)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["403 MissingAuthenticationTokenException", "PermissionError"]


def _task_role_credentials(e: Endpoint) -> tuple[dict[str, Any], str]:
    """Run a task with a role; return the credentials it read from the credentials endpoint."""
    ecs = e.ecs()
    script = ('wget -qO- "http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"; echo; echo =END=; '
              'exec sleep 3600')
    ecs.register_task_definition(family="with-role", taskRoleArn=ROLE, containerDefinitions=[{
        "name": "app", "image": "busybox", "memory": 32, "stopTimeout": 1, "command": ["sh", "-c", script]}])
    task = ecs.run_task(taskDefinition="with-role")["tasks"][0]
    task = wait_task(ecs, task["taskArn"], "RUNNING")
    runtime_id = task["containers"][0]["runtimeId"]
    out = wait_for("the credentials printed", lambda: "=END=" in (o := e.daemon.docker("logs", runtime_id).stdout)
                   and o)
    return json.loads(out.split("=END=", 1)[0]), task["taskArn"]


def test_task_role_keys_are_root_only_and_refused_once_expired(endpoint: Endpoint) -> None:
    e = endpoint
    creds, task_arn = _task_role_credentials(e)
    try:
        client = e.ecs(creds["AccessKeyId"], creds["SecretAccessKey"], creds["Token"])
        assert any(a.endswith(":cluster/default") for a in client.list_clusters()["clusterArns"])

        # on disk, root's alone (they sign requests to an endpoint that runs privileged containers)
        path = e.daemon.root / "aws" / "task-credentials.json"
        assert creds["AccessKeyId"] in path.read_text()
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, 0)
        opened = [p for p in [path.parent, *path.parent.parents] if str(p).startswith(str(e.daemon.base))]
        modes = {p: stat.S_IMODE(p.stat().st_mode) for p in opened}
        try:
            for p in opened:
                os.chmod(p, modes[p] | 0o005)
            cat = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(path)], capture_output=True,
                                 text=True, timeout=30)
            assert cat.returncode != 0 and "Permission denied" in cat.stderr
        finally:
            for p, mode in modes.items():
                os.chmod(p, mode)

        # let them expire: the clock cannot be moved in the daemon, so while it is down their
        # recorded expiry is moved into the past (the file is what a restarted daemon trusts)
        e.daemon.stop()
        issued = json.loads(path.read_text())
        for item in issued:
            if item["access_key"] == creds["AccessKeyId"]:
                item["expires_at"] = time.time() - 5
        path.write_text(json.dumps(issued))
        e.daemon.start()
        before = e.state()
        err = _refused(lambda: client.create_cluster(clusterName="expired"))
        assert err.response["Error"]["Code"] == "ExpiredTokenException"
        assert err.response["Error"]["Message"] == "The security token included in the request is expired"
        err = _refused(lambda: client.run_task(taskDefinition="root-on-the-host"))
        assert err.response["Error"]["Code"] == "ExpiredTokenException"
        assert e.state() == before
    finally:
        e.ecs().stop_task(task=task_arn)
        wait_task(e.ecs(), task_arn, "STOPPED")
