"""The ECS `valueFrom` resolver: every form the interface names, and every error (kind + message)."""

from __future__ import annotations

import uuid

import pytest

from berth.errors import InvalidArgument, NotFound
from berth.secrets import PutParameter, SecretResolver, Value
from berth.secrets.testing import Kit, memory_kit

A, R = "123456789012", "us-east-1"
AR = {"account": A, "region": R}
SM = f"arn:aws:secretsmanager:{R}:{A}:secret:web/creds"
FULL = SM + "-AbCdEf"


@pytest.fixture
def kit() -> Kit:
    kit = memory_kit()
    put = kit.ssm.put
    put(PutParameter("/app/db-pass", "pass-v1", type="SecureString"), **AR)
    put(PutParameter("/app/db-pass", "pass-v2", overwrite=True), **AR)
    kit.ssm.label("/app/db-pass", ["stable"], version=1, **AR)
    put(PutParameter("plain", "plain-value", type="String"), **AR)
    put(PutParameter("/west", "west-value", type="String"), account=A, region="us-west-2")
    kit.secretsmanager.create("web/creds", Value(string='{"password": "pw1", "port": 5432, "nested": {"a": 1}}'),
                              token=V1, **AR)
    kit.secretsmanager.put_value("web/creds", Value(string='{"password": "pw2"}'), token=V2, **AR)
    kit.secretsmanager.create("raw", Value(string="not json"), **AR)
    kit.secretsmanager.create("bin", Value(binary=b"binary-text"), **AR)
    kit.secretsmanager.create("badbin", Value(binary=b"\xff\xfe"), **AR)
    kit.secretsmanager.create("list", Value(string="[1, 2]"), **AR)
    return kit


V1, V2 = str(uuid.uuid4()), str(uuid.uuid4())


def resolve(kit: Kit, value_from: str, region: str = R) -> str:
    return SecretResolver(kit.ssm, kit.secretsmanager).resolve(value_from, account=A, region=region)


@pytest.mark.parametrize("value_from, expected", [
    ("/app/db-pass", "pass-v2"),
    ("/app/db-pass:1", "pass-v1"),
    ("/app/db-pass:stable", "pass-v1"),
    ("plain", "plain-value"),
    (f"arn:aws:ssm:{R}:{A}:parameter/app/db-pass", "pass-v2"),
    (f"arn:aws:ssm:{R}:{A}:parameter/app/db-pass:1", "pass-v1"),
    (f"arn:aws:ssm:{R}:{A}:parameter/plain", "plain-value"),
    (f"arn:aws:ssm:us-west-2:{A}:parameter/west", "west-value"),  # another region by ARN
    (FULL, '{"password": "pw2"}'),
    (SM, '{"password": "pw2"}'),
    (FULL + ":password::", "pw2"),
    (SM + ":password::", "pw2"),
    (FULL + ":password:AWSPREVIOUS:", "pw1"),
    (FULL + f":password::{V1}", "pw1"),
    (FULL + f":port:AWSPREVIOUS:{V1}", "5432"),
    (FULL + ":nested:AWSPREVIOUS:", '{"a": 1}'),
    (FULL + "::AWSPREVIOUS:", '{"password": "pw1", "port": 5432, "nested": {"a": 1}}'),
    (f"arn:aws:secretsmanager:{R}:{A}:secret:bin", "binary-text"),
])
def test_forms(kit: Kit, value_from: str, expected: str) -> None:
    assert resolve(kit, value_from) == expected


@pytest.mark.parametrize("value_from, kind, message", [
    ("/app/missing", NotFound, "ParameterNotFound: Parameter /app/missing not found."),
    ("/app/db-pass:7", NotFound, "ParameterVersionNotFound: Systems Manager could not find version 7"),
    ("/app/db-pass:nolabel", NotFound, "ParameterNotFound"),
    ("/west", NotFound, "ParameterNotFound"),  # a bare name is looked up in the task's region
    (f"arn:aws:ssm:{R}:{A}:parameter/nope", NotFound, "ParameterNotFound"),
    (f"arn:aws:secretsmanager:{R}:{A}:secret:nope", NotFound,
     "ResourceNotFoundException: Secrets Manager can't find the specified secret."),
    (FULL + ":missing::", NotFound, "json key 'missing' not found in secret " + FULL),
    (FULL + "::AWSPENDING:", NotFound, "ResourceNotFoundException: Secrets Manager can't find the specified "
     "secret value for staging label: AWSPENDING"),
    (FULL + f":::{uuid.uuid4()}", NotFound, "ResourceNotFoundException"),
    (FULL + ":::short", InvalidArgument, "ValidationException"),
    (f"arn:aws:secretsmanager:{R}:{A}:secret:raw:key::", InvalidArgument, "not a JSON object"),
    (f"arn:aws:secretsmanager:{R}:{A}:secret:list:key::", InvalidArgument, "not a JSON object"),
    (f"arn:aws:secretsmanager:{R}:{A}:secret:badbin", InvalidArgument, "not UTF-8"),
    (FULL + ":a:b:c:d", InvalidArgument, "invalid Secrets Manager valueFrom"),
    (f"arn:aws:secretsmanager:{R}:{A}:notsecret:x", InvalidArgument, "invalid Secrets Manager valueFrom"),
    ("arn:aws:s3:::bucket/key", InvalidArgument, "unsupported valueFrom"),
    ("", InvalidArgument, "empty"),
])
def test_errors(kit: Kit, value_from: str, kind: type[Exception], message: str) -> None:
    with pytest.raises(kind) as err:
        resolve(kit, value_from)
    assert message in str(err.value)
    for clear in ("pass-v", "pw1", "pw2", "binary-text"):
        assert clear not in str(err.value)


def test_a_secret_marked_for_deletion_is_refused(kit: Kit) -> None:
    kit.secretsmanager.delete("web/creds", recovery_days=7, **AR)
    with pytest.raises(InvalidArgument, match="InvalidRequestException: You can't perform this operation on the "
                                              "secret because it was marked for deletion."):
        resolve(kit, FULL + ":password::")


def test_rotation_is_seen_on_the_next_resolve(kit: Kit) -> None:
    assert resolve(kit, FULL + ":password::") == "pw2"
    kit.secretsmanager.put_value("web/creds", Value(string='{"password": "pw3"}'), **AR)
    assert resolve(kit, FULL + ":password::") == "pw3"


def test_it_fits_the_agents_secret_source() -> None:
    import inspect

    from berth.agent import SecretSource

    want = inspect.signature(SecretSource.resolve).parameters
    got = inspect.signature(SecretResolver.resolve).parameters
    assert [(p.name, p.kind, str(p.annotation)) for p in got.values()] == \
        [(p.name, p.kind, str(p.annotation)) for p in want.values()]
