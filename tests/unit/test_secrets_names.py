"""Name rules as AWS applies them: SSM parameter names and paths, labels, secret names."""

from __future__ import annotations

import pytest

from berth.errors import InvalidArgument
from berth.secrets._errors import AccessDenied, HierarchyLevelLimitExceeded, InvalidParameter, SsmValidation
from berth.secrets._names import (
    PATH_RULES, PREFIX_RULES, check_parameter_name, check_path, check_secret_name, parameter_arn, valid_label,
)

A, R = "123456789012", "us-east-1"


@pytest.mark.parametrize("name", [
    "db-pass", "/app/db-pass", "a.b_c-d", "/" + "/".join(f"l{i}" for i in range(15)), "my-ssm-key",
    "/app/aws/key", "X" * 900,
])
def test_valid_parameter_names(name: str) -> None:
    assert check_parameter_name(name, account=A, region=R) == name


@pytest.mark.parametrize("name, kind, message", [
    ("", SsmValidation, "greater than or equal to 1"),
    ("aws-thing", SsmValidation, PREFIX_RULES),
    ("SSM", SsmValidation, PREFIX_RULES),
    ("/ssm/x", SsmValidation, PATH_RULES),
    ("/SSM-test/x", SsmValidation, PATH_RULES),
    ("/aws/service/x", AccessDenied, "No access to reserved parameter name: /aws/service/x."),
    ("has space", SsmValidation, PATH_RULES),
    ("bad*char", SsmValidation, PATH_RULES),
    ("app/db", SsmValidation, "fully qualified"),
    ("/app//db", SsmValidation, PATH_RULES),
    ("/app/", SsmValidation, PATH_RULES),
    ("/" + "/".join(f"l{i}" for i in range(16)), HierarchyLevelLimitExceeded, "maximum of 15 levels"),
    ("x" * 1000, SsmValidation, "1011"),
])
def test_invalid_parameter_names(name: str, kind: type[Exception], message: str) -> None:
    with pytest.raises(kind) as err:
        check_parameter_name(name, account=A, region=R)
    assert message in str(err.value)
    assert isinstance(err.value, InvalidArgument)


def test_parameter_arns_drop_the_leading_slash() -> None:
    assert parameter_arn("/app/x", account=A, region=R) == f"arn:aws:ssm:{R}:{A}:parameter/app/x"
    assert parameter_arn("x", account=A, region=R) == f"arn:aws:ssm:{R}:{A}:parameter/x"


@pytest.mark.parametrize("path", ["/", "/app", "/app/", "/a/b.c/d-e_f"])
def test_valid_paths(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize("path, kind", [
    ("app", SsmValidation), ("/app//x", SsmValidation), ("/a b", SsmValidation), ("/aws/x", SsmValidation),
    ("/ssm", SsmValidation), ("/" + "/".join("x" * 16), HierarchyLevelLimitExceeded),
])
def test_invalid_paths(path: str, kind: type[Exception]) -> None:
    with pytest.raises(kind):
        check_path(path)


@pytest.mark.parametrize("label, ok", [
    ("prod", True), ("Prod_1.2-x", True), ("1st", False), ("awsx", False), ("SSMy", False), ("a b", False),
    ("x" * 100, True), ("x" * 101, False), ("", False),
])
def test_labels(label: str, ok: bool) -> None:
    assert valid_label(label) is ok


@pytest.mark.parametrize("name, ok", [
    ("web/creds", True), ("a+b=c.d@e-f_g", True), ("x" * 512, True), ("x" * 513, False), ("", False),
    ("sp ace", False), ("star*", False), ("colon:x", False),
])
def test_secret_names(name: str, ok: bool) -> None:
    if ok:
        assert check_secret_name(name) == name
    else:
        with pytest.raises(InvalidParameter, match="Invalid name. Must be a valid name containing alphanumeric"):
            check_secret_name(name)
