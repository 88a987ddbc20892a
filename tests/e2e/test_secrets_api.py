"""SSM Parameter Store and Secrets Manager through boto3 and the AWS CLI (v1 and v2) against a berth
daemon: the operations users run, every refusal as AWS words it (never a 5xx, nothing written), and
no value in clear under --root or in the daemon log, also after a restart."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import AMZ_JSON, BerthDaemon, running_aws_daemon

pytestmark = pytest.mark.root

# AWS CLI v1 (the venv's, test extras) and v2 (Debian's awscli), each where installed.
CLIS = [pytest.param(path, id=version) for version, path in (("v1", str(Path(sys.executable).parent / "aws")),
                                                              ("v2", "/usr/bin/aws")) if Path(path).exists()]


@pytest.fixture(scope="module")
def daemon() -> Iterator[BerthDaemon]:
    with running_aws_daemon("--no-agent", busybox=False) as d:
        yield d


def clients(d: BerthDaemon, *, validate: bool = True) -> tuple[Any, Any]:
    from botocore.config import Config

    config = Config(parameter_validation=validate, retries={"max_attempts": 1, "mode": "standard"})
    return d.aws_client("ssm", config=config), d.aws_client("secretsmanager", config=config)


def cli(d: BerthDaemon, exe: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**d.aws_env, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    return subprocess.run([exe, "--endpoint-url", d.aws_url, *args], env=env, capture_output=True, text=True,
                          timeout=120)


def unique(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(8)}"


# --- SSM through boto3 -----------------------------------------------------------------------


def test_parameters_versions_labels_paths_and_tags(daemon: BerthDaemon) -> None:
    ssm, _ = clients(daemon)
    root = "/" + unique("app")
    value = unique("db-pass")
    assert ssm.put_parameter(Name=f"{root}/db/pass", Value=value, Type="SecureString",
                             Description="db", Tags=[{"Key": "team", "Value": "web"}])["Version"] == 1
    assert ssm.put_parameter(Name=f"{root}/db/pass", Value=value + "-2", Type="SecureString",
                             Overwrite=True)["Version"] == 2
    ssm.put_parameter(Name=f"{root}/db/user", Value="admin", Type="String")
    ssm.put_parameter(Name=f"{root}/hosts", Value="a,b", Type="StringList")
    got = ssm.get_parameter(Name=f"{root}/db/pass", WithDecryption=True)["Parameter"]
    assert (got["Value"], got["Version"], got["Type"]) == (value + "-2", 2, "SecureString")
    assert got["ARN"] == f"arn:aws:ssm:us-east-1:123456789012:parameter{root}/db/pass"
    assert value not in ssm.get_parameter(Name=f"{root}/db/pass")["Parameter"]["Value"]  # not decrypted
    assert ssm.get_parameter(Name=got["ARN"] + ":1", WithDecryption=True)["Parameter"]["Value"] == value

    ssm.label_parameter_version(Name=f"{root}/db/pass", ParameterVersion=1, Labels=["stable"])
    labelled = ssm.get_parameter(Name=f"{root}/db/pass:stable", WithDecryption=True)["Parameter"]
    assert (labelled["Value"], labelled["Selector"]) == (value, ":stable")
    history = ssm.get_parameter_history(Name=f"{root}/db/pass", WithDecryption=True)["Parameters"]
    assert [(h["Version"], h["Labels"], h["Value"]) for h in history] == \
        [(1, ["stable"], value), (2, [], value + "-2")]
    assert ssm.unlabel_parameter_version(Name=f"{root}/db/pass", ParameterVersion=1,
                                         Labels=["stable", "x"])["InvalidLabels"] == ["x"]

    many = ssm.get_parameters(Names=[f"{root}/db/user", f"{root}/nope"], WithDecryption=True)
    assert [p["Value"] for p in many["Parameters"]] == ["admin"]
    assert many["InvalidParameters"] == [f"{root}/nope"]

    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=root, Recursive=True, MaxResults=1)
    names = [p["Name"] for page in pages for p in page["Parameters"]]
    assert names == [f"{root}/db/pass", f"{root}/db/user", f"{root}/hosts"]
    assert [p["Name"] for p in ssm.get_parameters_by_path(Path=root)["Parameters"]] == [f"{root}/hosts"]

    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "Recursive",
                                                           "Values": [root]},
                                                          {"Key": "Type", "Values": ["SecureString"]}])
    assert [(p["Name"], p["KeyId"], p["Description"]) for p in described["Parameters"]] == \
        [(f"{root}/db/pass", "alias/aws/ssm", "db")]

    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=f"{root}/db/pass",
                             Tags=[{"Key": "env", "Value": "prod"}])
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=f"{root}/db/pass", TagKeys=["team"])
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{root}/db/pass")["TagList"] == \
        [{"Key": "env", "Value": "prod"}]

    ssm.delete_parameter(Name=f"{root}/hosts")
    deleted = ssm.delete_parameters(Names=[f"{root}/db/pass", f"{root}/db/user", f"{root}/gone"])
    assert deleted["DeletedParameters"] == [f"{root}/db/pass", f"{root}/db/user"]
    assert deleted["InvalidParameters"] == [f"{root}/gone"]
    assert ssm.get_parameters_by_path(Path=root, Recursive=True)["Parameters"] == []


# --- Secrets Manager through boto3 ---------------------------------------------------------------


def test_secrets_rotation_stages_deletion_and_restore(daemon: BerthDaemon) -> None:
    _, sm = clients(daemon)
    name = unique("web/creds")
    v1, v2 = json.dumps({"password": unique("pw")}), json.dumps({"password": unique("pw")})
    created = sm.create_secret(Name=name, SecretString=v1, Description="creds", KmsKeyId="alias/mine",
                               Tags=[{"Key": "team", "Value": "web"}])
    arn = created["ARN"]
    assert arn.startswith(f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-") and \
        len(arn) == len(f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-") + 6
    token = str(uuid.uuid4())
    put = sm.put_secret_value(SecretId=arn, SecretString=v2, ClientRequestToken=token)
    assert (put["VersionId"], put["VersionStages"]) == (token, ["AWSCURRENT"])
    assert sm.put_secret_value(SecretId=arn, SecretString=v2, ClientRequestToken=token)["VersionId"] == token
    for secret_id in (name, arn, arn[:-7]):
        assert sm.get_secret_value(SecretId=secret_id)["SecretString"] == v2
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == v1
    described = sm.describe_secret(SecretId=name)
    stages = described["VersionIdsToStages"]
    assert stages[token] == ["AWSCURRENT"] and stages[created["VersionId"]] == ["AWSPREVIOUS"]
    assert (described["Description"], described["KmsKeyId"], described["Tags"]) == \
        ("creds", "alias/mine", [{"Key": "team", "Value": "web"}])

    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=created["VersionId"],
                                   RemoveFromVersionId=token)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == v1
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert {v["VersionId"]: v["VersionStages"] for v in versions} == \
        {created["VersionId"]: ["AWSCURRENT"], token: ["AWSPREVIOUS"]}

    sm.update_secret(SecretId=name, SecretBinary=b"\x00binary\xff")
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == b"\x00binary\xff"
    sm.tag_resource(SecretId=name, Tags=[{"Key": "env", "Value": "prod"}])
    sm.untag_resource(SecretId=name, TagKeys=["team"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "env", "Value": "prod"}]

    listed = [s["Name"] for page in sm.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [name]}], PaginationConfig={"PageSize": 1}) for s in page["SecretList"]]
    assert listed == [name]

    deleted = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert (deleted["DeletionDate"] - sm.describe_secret(SecretId=name)["DeletedDate"]).days == 7
    with pytest.raises(sm.exceptions.InvalidRequestException, match="marked for deletion"):
        sm.get_secret_value(SecretId=name)
    assert name not in [s["Name"] for s in sm.list_secrets()["SecretList"]]
    assert name in [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]]
    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == b"\x00binary\xff"
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(sm.exceptions.ResourceNotFoundException, match="can't find the specified secret"):
        sm.describe_secret(SecretId=name)


# --- the AWS CLI ---------------------------------------------------------------------------------


@pytest.mark.parametrize("exe", CLIS)
def test_the_aws_cli(daemon: BerthDaemon, exe: str) -> None:
    def ok(*args: str) -> str:
        result = cli(daemon, exe, *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    param, value = "/" + unique("cli") + "/token", unique("cli-value")
    ok("ssm", "put-parameter", "--name", param, "--value", value, "--type", "SecureString")
    ok("ssm", "put-parameter", "--name", param, "--value", value + "-2", "--type", "SecureString", "--overwrite")
    assert ok("ssm", "get-parameter", "--name", param, "--with-decryption", "--query", "Parameter.Value",
              "--output", "text") == value + "-2"
    assert ok("ssm", "get-parameter", "--name", f"{param}:1", "--with-decryption", "--query", "Parameter.Value",
              "--output", "text") == value
    assert json.loads(ok("ssm", "get-parameters-by-path", "--path", param.rsplit("/", 1)[0],
                         "--query", "Parameters[].Name"))== [param]
    assert param in ok("ssm", "describe-parameters", "--query", "Parameters[].Name", "--output", "text").split()
    ok("ssm", "delete-parameter", "--name", param)
    missing = cli(daemon, exe, "ssm", "get-parameter", "--name", param)
    assert missing.returncode != 0 and "ParameterNotFound" in missing.stderr

    name, first, second = unique("cli/secret"), unique("first"), unique("second")
    arn = json.loads(ok("secretsmanager", "create-secret", "--name", name, "--secret-string", first))["ARN"]
    ok("secretsmanager", "put-secret-value", "--secret-id", arn, "--secret-string", second)
    assert ok("secretsmanager", "get-secret-value", "--secret-id", name, "--query", "SecretString",
              "--output", "text") == second
    assert ok("secretsmanager", "get-secret-value", "--secret-id", name, "--version-stage", "AWSPREVIOUS",
              "--query", "SecretString", "--output", "text") == first
    assert len(json.loads(ok("secretsmanager", "describe-secret", "--secret-id", name))["VersionIdsToStages"]) == 2
    assert name in ok("secretsmanager", "list-secrets", "--query", "SecretList[].Name", "--output", "text").split()
    ok("secretsmanager", "delete-secret", "--secret-id", name, "--recovery-window-in-days", "7")
    refused = cli(daemon, exe, "secretsmanager", "get-secret-value", "--secret-id", name)
    assert refused.returncode != 0
    assert "InvalidRequestException" in refused.stderr
    assert "You can't perform this operation on the secret because it was marked for deletion." in refused.stderr
    bad_window = cli(daemon, exe, "secretsmanager", "delete-secret", "--secret-id", name,
                     "--recovery-window-in-days", "3")
    assert bad_window.returncode != 0 and "InvalidParameterException" in bad_window.stderr
    ok("secretsmanager", "restore-secret", "--secret-id", name)
    assert ok("secretsmanager", "get-secret-value", "--secret-id", name, "--query", "SecretString",
              "--output", "text") == second
    ok("secretsmanager", "delete-secret", "--secret-id", name, "--force-delete-without-recovery")


# --- bad input ---------------------------------------------------------------------------------

NONE_ID = str(uuid.uuid4())
DEEP = "/" + "/".join(f"l{i}" for i in range(16))
P = "/bad-input/p"
S, GONE = "bad-input/s", "bad-input/deleted"

SSM_BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("get_parameter", {"Name": "/bad-input/none"}, "ParameterNotFound", "Parameter /bad-input/none not found."),
    ("get_parameter", {"Name": f"{P}:9"}, "ParameterVersionNotFound", "could not find version 9 of /bad-input/p"),
    ("get_parameter", {"Name": f"{P}:nolabel"}, "ParameterNotFound", "not found"),
    ("put_parameter", {"Name": P, "Value": "x", "Type": "String"}, "ParameterAlreadyExists", "overwrite option"),
    ("put_parameter", {"Name": "aws-x", "Value": "x", "Type": "String"}, "ValidationException", "prefixed"),
    ("put_parameter", {"Name": "/aws/x/y", "Value": "x", "Type": "String"}, "AccessDeniedException",
     "reserved parameter name"),
    ("put_parameter", {"Name": "/a/b c", "Value": "x", "Type": "String"}, "ValidationException", "sub-path"),
    ("put_parameter", {"Name": "a/b", "Value": "x", "Type": "String"}, "ValidationException", "fully qualified"),
    ("put_parameter", {"Name": DEEP, "Value": "x", "Type": "String"}, "HierarchyLevelLimitExceededException",
     "15 levels"),
    ("put_parameter", {"Name": "/n1", "Value": "x", "Type": "Bogus"}, "ValidationException", "enum value set"),
    ("put_parameter", {"Name": "/n1", "Value": "x"}, "ValidationException", "type is required"),
    ("put_parameter", {"Name": "/n1", "Value": "", "Type": "String"}, "ValidationException", "'value'"),
    ("put_parameter", {"Name": "/n1", "Value": "x", "Type": "String", "AllowedPattern": "["},
     "InvalidAllowedPatternException", "regular expression"),
    ("put_parameter", {"Name": "/n1", "Value": "abc", "Type": "String", "AllowedPattern": "\\d+"},
     "ParameterPatternMismatchException", "allowedPattern"),
    ("put_parameter", {"Name": "/n1", "Value": "x" * 4097, "Type": "String"}, "ValidationException", "4096"),
    ("put_parameter", {"Name": "/n1", "Value": "x", "Type": "SecureString", "KeyId": "no such key"},
     "InvalidKeyId", "keyId"),
    ("put_parameter", {"Name": P, "Value": "x", "Type": "SecureString", "Overwrite": True},
     "HierarchyTypeMismatchException", "changing a parameter type"),
    ("put_parameter", {"Name": P, "Value": "x", "Overwrite": True, "Tags": [{"Key": "a", "Value": "b"}]},
     "ValidationException", "tags and overwrite"),
    ("put_parameter", {"Name": "/n1", "Value": "x", "Type": "String", "Policies": "[]"}, "ValidationException",
     "policies"),
    ("get_parameters", {"Names": [f"/n{i}" for i in range(11)]}, "ValidationException", "names"),
    ("get_parameters_by_path", {"Path": "relative"}, "ValidationException", "forward slash"),
    ("get_parameters_by_path", {"Path": "/x", "ParameterFilters": [{"Key": "Name", "Values": ["a"]}]},
     "InvalidFilterKey", "Name"),
    ("get_parameters_by_path", {"Path": "/x", "NextToken": "garbage!"}, "InvalidNextToken", "token"),
    ("get_parameters_by_path", {"Path": "/x", "MaxResults": 11}, "ValidationException", "maxResults"),
    ("describe_parameters", {"Filters": [{"Key": "Type", "Values": ["String"]}],
                             "ParameterFilters": [{"Key": "Type", "Values": ["String"]}]},
     "ValidationException", "either Filters or ParameterFilters"),
    ("describe_parameters", {"ParameterFilters": [{"Key": "Path", "Option": "Equals", "Values": ["/x"]}]},
     "InvalidFilterOption", "Recursive, OneLevel"),
    ("describe_parameters", {"ParameterFilters": [{"Key": "Type", "Values": ["Bogus"]}]}, "InvalidFilterValue",
     "Bogus"),
    ("describe_parameters", {"ParameterFilters": [{"Key": "Colour", "Values": ["x"]}]}, "ValidationException",
     "pattern"),
    ("delete_parameter", {"Name": "/bad-input/none"}, "ParameterNotFound", "not found"),
    ("get_parameter_history", {"Name": "/bad-input/none"}, "ParameterNotFound", "not found"),
    ("label_parameter_version", {"Name": P, "ParameterVersion": 9, "Labels": ["a"]}, "ParameterVersionNotFound",
     "version 9"),
    ("label_parameter_version", {"Name": "/bad-input/none", "Labels": ["a"]}, "ParameterNotFound", "not found"),
    ("unlabel_parameter_version", {"Name": P, "ParameterVersion": 9, "Labels": ["a"]},
     "ParameterVersionNotFound", "version 9"),
    ("add_tags_to_resource", {"ResourceType": "Document", "ResourceId": P, "Tags": [{"Key": "a", "Value": "b"}]},
     "InvalidResourceType", "resource type"),
    ("add_tags_to_resource", {"ResourceType": "Parameter", "ResourceId": "/bad-input/none",
                              "Tags": [{"Key": "a", "Value": "b"}]}, "InvalidResourceId", "resource ID"),
    ("list_tags_for_resource", {"ResourceType": "Bogus", "ResourceId": P}, "ValidationException", "enum"),
]

NOT_FOUND = "Secrets Manager can't find the specified secret."
MARKED = "You can't perform this operation on the secret because it was marked for deletion."
SM_BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("get_secret_value", {"SecretId": "bad-input/none"}, "ResourceNotFoundException", NOT_FOUND),
    ("get_secret_value", {"SecretId": S, "VersionStage": "nope"}, "ResourceNotFoundException",
     "staging label: nope"),
    ("get_secret_value", {"SecretId": S, "VersionId": NONE_ID}, "ResourceNotFoundException", NONE_ID),
    ("get_secret_value", {"SecretId": S, "VersionId": "short"}, "ValidationException", "versionId"),
    ("get_secret_value", {"SecretId": GONE}, "InvalidRequestException", MARKED),
    ("create_secret", {"Name": S, "SecretString": "x"}, "ResourceExistsException", f"secret {S} already exists"),
    ("create_secret", {"Name": "has space", "SecretString": "x"}, "InvalidParameterException", "Invalid name"),
    ("create_secret", {"Name": GONE, "SecretString": "x"}, "InvalidRequestException", "scheduled for deletion"),
    ("create_secret", {"Name": "bad-input/both", "SecretString": "x", "SecretBinary": b"y"},
     "InvalidParameterException", "both a binary secret value and a string"),
    ("create_secret", {"Name": "bad-input/tok", "SecretString": "x", "ClientRequestToken": "short"},
     "ValidationException", "clientRequestToken"),
    ("create_secret", {"Name": "bad-input/big", "SecretString": "x" * 65537}, "ValidationException", "65536"),
    ("put_secret_value", {"SecretId": "bad-input/none", "SecretString": "x"}, "ResourceNotFoundException",
     NOT_FOUND),
    ("put_secret_value", {"SecretId": S}, "InvalidRequestException", "SecretString or SecretBinary"),
    ("put_secret_value", {"SecretId": GONE, "SecretString": "x"}, "InvalidRequestException", MARKED),
    ("update_secret", {"SecretId": GONE, "Description": "x"}, "InvalidRequestException", MARKED),
    ("delete_secret", {"SecretId": S, "RecoveryWindowInDays": 6}, "InvalidParameterException", "between 7 and 30"),
    ("delete_secret", {"SecretId": S, "RecoveryWindowInDays": 31}, "InvalidParameterException", "between 7 and 30"),
    ("delete_secret", {"SecretId": S, "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": True},
     "InvalidParameterException", "ForceDeleteWithoutRecovery"),
    ("delete_secret", {"SecretId": GONE}, "InvalidRequestException", MARKED),
    ("delete_secret", {"SecretId": "bad-input/none"}, "ResourceNotFoundException", NOT_FOUND),
    ("restore_secret", {"SecretId": "bad-input/none"}, "ResourceNotFoundException", NOT_FOUND),
    ("update_secret_version_stage", {"SecretId": S, "VersionStage": "AWSCURRENT", "MoveToVersionId": NONE_ID},
     "ResourceNotFoundException", NONE_ID),
    ("update_secret_version_stage", {"SecretId": "bad-input/none", "VersionStage": "x"},
     "ResourceNotFoundException", NOT_FOUND),
    ("tag_resource", {"SecretId": GONE, "Tags": [{"Key": "a", "Value": "b"}]}, "InvalidRequestException", MARKED),
    ("untag_resource", {"SecretId": "bad-input/none", "TagKeys": ["a"]}, "ResourceNotFoundException", NOT_FOUND),
    ("list_secrets", {"Filters": [{"Key": "colour", "Values": ["x"]}]}, "ValidationException", "enum"),
    ("list_secrets", {"NextToken": "garbage!"}, "InvalidNextTokenException", "NextToken"),
    ("list_secret_version_ids", {"SecretId": "bad-input/none"}, "ResourceNotFoundException", NOT_FOUND),
    ("describe_secret", {"SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bad-input/none-AbCdEf"},
     "ResourceNotFoundException", NOT_FOUND),
]


def _state(ssm: Any, sm: Any) -> Any:
    params = ssm.describe_parameters(MaxResults=50)["Parameters"]
    history = {p["Name"]: ssm.get_parameter_history(Name=p["Name"])["Parameters"] for p in params}
    tags = {p["Name"]: ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=p["Name"])["TagList"]
            for p in params}
    listed = sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]
    return params, history, tags, listed


@pytest.fixture(scope="module")
def seeded(daemon: BerthDaemon) -> tuple[Any, Any]:
    ssm, sm = clients(daemon, validate=False)
    ssm.put_parameter(Name=P, Value="p", Type="String")
    sm.create_secret(Name=S, SecretString="s")
    sm.create_secret(Name=GONE, SecretString="g")
    sm.delete_secret(SecretId=GONE, RecoveryWindowInDays=7)
    return ssm, sm


@pytest.mark.parametrize("service, op, kwargs, code, message", [
    pytest.param(service, *case, id=f"{service}-{case[0]}-{case[2]}-{i}")
    for service, table in (("ssm", SSM_BAD), ("secretsmanager", SM_BAD)) for i, case in enumerate(table)])
def test_bad_input(seeded: tuple[Any, Any], service: str, op: str, kwargs: dict[str, Any], code: str,
                   message: str) -> None:
    from botocore.exceptions import ClientError

    ssm, sm = seeded
    before = _state(ssm, sm)
    with pytest.raises(ClientError) as err:
        getattr(ssm if service == "ssm" else sm, op)(**kwargs)
    response = err.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == code
    assert message in response["Error"]["Message"]
    assert _state(ssm, sm) == before


@pytest.mark.parametrize("target, body, code", [
    ("AmazonSSM.GetParameter", {"Name": 5}, "SerializationException"),
    ("AmazonSSM.PutParameter", {"Name": "/x", "Value": "v", "Type": "String", "Tags": "nope"},
     "SerializationException"),
    ("AmazonSSM.GetParameter", {}, "ValidationException"),
    ("AmazonSSM.NoSuchOperation", {}, "UnknownOperationException"),
    ("secretsmanager.GetSecretValue", {"SecretId": ["x"]}, "SerializationException"),
    ("secretsmanager.CreateSecret", {"Name": "x", "SecretBinary": "***not base64***"}, "SerializationException"),
    ("secretsmanager.DeleteSecret", {"SecretId": S, "RecoveryWindowInDays": "7"}, "SerializationException"),
    ("secretsmanager.GetSecretValue", {}, "ValidationException"),
])
def test_malformed_requests(seeded: tuple[Any, Any], daemon: BerthDaemon, target: str, body: dict[str, Any],
                            code: str) -> None:
    service = "ssm" if target.startswith("AmazonSSM") else "secretsmanager"
    raw = json.dumps(body).encode()
    status, answer = daemon.aws_post(raw, {**daemon.aws_sign(service, target, raw), "Content-Type": AMZ_JSON})
    assert status == 400
    assert json.loads(answer)["__type"] == code


# --- nothing in clear at rest --------------------------------------------------------------------


def _grep(root: Path, needles: list[str]) -> str:
    found = subprocess.run(["grep", "-r", "-a", "-l", "-F", *[f"-e{n}" for n in needles], str(root)],
                           capture_output=True, text=True)
    assert found.returncode in (0, 1), found.stderr
    return found.stdout


def test_no_value_in_clear_under_root_or_in_the_log_also_after_a_restart() -> None:
    with running_aws_daemon("--no-agent", busybox=False) as d:
        ssm, sm = clients(d)
        values = {kind: unique(f"clear-{kind.lower()}") for kind in ("String", "StringList", "SecureString")}
        for kind, value in values.items():
            ssm.put_parameter(Name=f"/rest/{kind}", Value=value, Type=kind)
        secret_string, rotated = unique("clear-secret"), unique("clear-rotated")
        binary = unique("clear-binary").encode()
        sm.create_secret(Name="rest/s", SecretString=secret_string)
        sm.put_secret_value(SecretId="rest/s", SecretString=rotated)
        sm.create_secret(Name="rest/b", SecretBinary=binary)
        needles = [*values.values(), secret_string, rotated, binary.decode(), base64.b64encode(binary).decode()]

        assert _grep(d.root, needles) == ""
        key = d.root / "secrets" / "master.key"
        assert key.stat().st_mode & 0o777 == 0o600
        d.stop()
        assert _grep(d.root, needles) == ""  # WAL checkpointed, everything flushed
        d.start()
        ssm, sm = clients(d)
        assert ssm.get_parameter(Name="/rest/SecureString", WithDecryption=True)["Parameter"]["Value"] == \
            values["SecureString"]
        assert sm.get_secret_value(SecretId="rest/s")["SecretString"] == rotated
        assert sm.get_secret_value(SecretId="rest/s", VersionStage="AWSPREVIOUS")["SecretString"] == secret_string
        assert sm.get_secret_value(SecretId="rest/b")["SecretBinary"] == binary
        assert _grep(d.root, needles) == ""
        log = d.log()
        assert not [n for n in needles if n in log]
