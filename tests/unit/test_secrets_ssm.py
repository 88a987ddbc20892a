"""Parameter Store semantics over the in-memory store: versions, selectors, labels, paths, filters,
tags, limits, and every refusal (with SSM's code) leaving the store as it was."""

from __future__ import annotations

from typing import Any

import pytest

from berth.secrets import PutParameter, parse_filters
from berth.secrets._errors import (
    HierarchyTypeMismatch, InvalidAllowedPattern, InvalidFilterKey, InvalidFilterOption, InvalidFilterValue, InvalidKeyId,
    InvalidResourceId, InvalidResourceType, ParameterAlreadyExists, ParameterLimitExceeded,
    ParameterMaxVersionLimitExceeded, ParameterNotFound, ParameterPatternMismatch,
    ParameterVersionLabelLimitExceeded, ParameterVersionNotFound, SsmValidation, TooManyTagsError,
)
from berth.secrets.testing import Kit, memory_kit

A, R = "123456789012", "us-east-1"
AR = {"account": A, "region": R}


@pytest.fixture
def kit() -> Kit:
    return memory_kit()


def put(kit: Kit, name: str, value: str, **kw: Any) -> int:
    return kit.ssm.put(PutParameter(name, value, **kw), **AR).version


def value(kit: Kit, selector: str) -> str:
    s = kit.ssm.get(selector, **AR)
    return kit.ssm.reveal(s.parameter, s.version)


def snapshot(kit: Kit) -> list[Any]:
    return [(r.key, r.version, dict(r.value)) for r in kit.store.list("ssm.parameter")]


def test_versions_increment_on_overwrite_and_keep_history(kit: Kit) -> None:
    assert put(kit, "/app/db", "one", type="SecureString", description="db password") == 1
    kit.clock.advance(5)
    assert put(kit, "/app/db", "two", overwrite=True) == 2
    p = kit.ssm.history("/app/db", **AR)
    assert [v.version for v in p.versions] == [1, 2]
    assert p.latest.type == "SecureString" and p.latest.description == "db password"  # kept from before
    assert p.latest.key_id == "alias/aws/ssm" and p.latest.modified_at == p.versions[0].modified_at + 5
    assert value(kit, "/app/db") == "two" and value(kit, "/app/db:1") == "one"
    assert kit.ssm.get("/app/db:1", **AR).selector == ":1"


def test_a_type_is_needed_to_create_and_overwrite_is_needed_to_change(kit: Kit) -> None:
    with pytest.raises(SsmValidation, match="A parameter type is required"):
        put(kit, "x", "v")
    put(kit, "x", "v", type="String")
    before = snapshot(kit)
    with pytest.raises(ParameterAlreadyExists, match="set the overwrite option"):
        put(kit, "x", "w", type="String")
    with pytest.raises(SsmValidation, match="tags and overwrite can't be used together"):
        put(kit, "x", "w", overwrite=True, tags={"a": "b"})
    assert snapshot(kit) == before
    with pytest.raises(HierarchyTypeMismatch, match="from a String type to a SecureString type"):
        put(kit, "x", "w", type="SecureString", overwrite=True)
    assert snapshot(kit) == before
    assert put(kit, "x", "w", type="String", overwrite=True) == 2
    assert put(kit, "x", "z", overwrite=True) == 3  # the type may be left out
    assert kit.ssm.get("x", **AR).version.type == "String"


@pytest.mark.parametrize("kw, kind, message", [
    ({"value": ""}, SsmValidation, "at 'value'"),
    ({"type": "Secret"}, SsmValidation, "enum value set: [String, StringList, SecureString]"),
    ({"tier": "Premium"}, SsmValidation, "at 'tier'"),
    ({"data_type": "TEXT"}, SsmValidation, "data type is not supported"),
    ({"key_id": "alias/mine", "type": "String"}, SsmValidation, "SecureString type parameter only"),
    ({"key_id": "not a key", "type": "SecureString"}, InvalidKeyId, "Invalid keyId"),
    ({"allowed_pattern": "[unclosed"}, InvalidAllowedPattern, "not a valid regular expression"),
    ({"allowed_pattern": r"\d+"}, ParameterPatternMismatch, r"allowedPattern: \d+"),
    ({"value": "x" * 4097}, SsmValidation, "4096"),
    ({"value": "x" * 8193, "tier": "Advanced"}, SsmValidation, "8192"),
    ({"description": "d" * 1025}, SsmValidation, "description"),
    ({"tags": {f"k{i}": "v" for i in range(51)}}, TooManyTagsError, "too many tags"),
    ({"tags": {"": "v"}}, SsmValidation, "tag key"),
    ({"name": "aws-x"}, SsmValidation, "prefixed"),
])
def test_put_refusals_write_nothing(kit: Kit, kw: dict[str, Any], kind: type[Exception], message: str) -> None:
    args = {"name": "/p", "value": "secret-value", "type": "String", **kw}
    with pytest.raises(kind) as err:
        kit.ssm.put(PutParameter(**args), **AR)
    assert message in str(err.value)
    assert "secret-value" not in str(err.value)
    assert snapshot(kit) == []


def test_tiers(kit: Kit) -> None:
    assert kit.ssm.put(PutParameter("/big", "x" * 5000, type="String", tier="Intelligent-Tiering"), **AR).tier == \
        "Advanced"
    with pytest.raises(SsmValidation, match="can't downgrade"):
        put(kit, "/big", "small", overwrite=True, tier="Standard")
    assert kit.ssm.put(PutParameter("/big", "small", overwrite=True), **AR).tier == "Advanced"
    assert kit.ssm.put(PutParameter("/small", "s", type="String", tier="Intelligent-Tiering"), **AR).tier == \
        "Standard"


def test_parameter_count_limit() -> None:
    kit = memory_kit()
    kit.ssm.max_parameters = 2
    put(kit, "a", "1", type="String")
    put(kit, "b", "1", type="String")
    with pytest.raises(ParameterLimitExceeded):
        put(kit, "c", "1", type="String")
    assert put(kit, "a", "2", overwrite=True) == 2  # new versions do not count
    kit.ssm.put(PutParameter("c", "1", type="String"), account="999999999999", region=R)  # per account


def test_a_hundred_versions_are_kept_and_a_labelled_oldest_blocks(kit: Kit) -> None:
    put(kit, "v", "0", type="String")
    for i in range(1, 100):
        put(kit, "v", str(i), overwrite=True)
    assert put(kit, "v", "100", overwrite=True) == 101
    p = kit.ssm.history("v", **AR)
    assert len(p.versions) == 100 and p.versions[0].version == 2
    kit.ssm.label("v", ["keep"], version=2, **AR)
    with pytest.raises(ParameterMaxVersionLimitExceeded, match="Version 2, the oldest version"):
        put(kit, "v", "101", overwrite=True)


def test_selectors_versions_labels_and_arns(kit: Kit) -> None:
    put(kit, "/app/x", "one", type="String")
    put(kit, "/app/x", "two", overwrite=True)
    put(kit, "plain", "p", type="String")
    kit.ssm.label("/app/x", ["prod"], version=1, **AR)
    assert value(kit, "/app/x:prod") == "one"
    assert kit.ssm.get("/app/x:prod", **AR).selector == ":prod"
    assert value(kit, f"arn:aws:ssm:{R}:{A}:parameter/app/x") == "two"
    assert value(kit, f"arn:aws:ssm:{R}:{A}:parameter/app/x:1") == "one"
    assert value(kit, f"arn:aws:ssm:{R}:{A}:parameter/plain") == "p"
    with pytest.raises(ParameterVersionNotFound, match="could not find version 3 of /app/x"):
        kit.ssm.get("/app/x:3", **AR)
    for missing in ("/app/y", "/app/x:nolabel", "/app/x:1:2", "/app/x:", f"arn:aws:ssm:{R}:{A}:parameter/nope",
                    "arn:aws:s3:::bucket"):
        with pytest.raises(ParameterNotFound):
            kit.ssm.get(missing, **AR)
    with pytest.raises(ParameterNotFound):
        kit.ssm.get("/app/x", account=A, region="eu-west-1")  # regions are separate


def test_get_many_reports_invalid_names(kit: Kit) -> None:
    put(kit, "a", "1", type="String")
    put(kit, "b", "2", type="SecureString")
    found, invalid = kit.ssm.get_many(["a", "b", "a", "zz", "a:9"], **AR)
    assert [s.parameter.name for s in found] == ["a", "b"]
    assert invalid == ["zz", "a:9"]
    with pytest.raises(SsmValidation, match="names"):
        kit.ssm.get_many([f"n{i}" for i in range(11)], **AR)
    with pytest.raises(SsmValidation):
        kit.ssm.get_many([], **AR)


def test_by_path_one_level_recursive_and_filters(kit: Kit) -> None:
    put(kit, "/app/a", "1", type="String")
    put(kit, "/app/b", "2", type="SecureString")
    put(kit, "/app/deep/c", "3", type="String")
    put(kit, "/other/d", "4", type="String")
    put(kit, "top", "5", type="String")
    names = lambda found: [s.parameter.name for s in found]  # noqa: E731
    assert names(kit.ssm.by_path("/app", recursive=False, **AR)) == ["/app/a", "/app/b"]
    assert names(kit.ssm.by_path("/app/", recursive=True, **AR)) == ["/app/a", "/app/b", "/app/deep/c"]
    assert names(kit.ssm.by_path("/", recursive=False, **AR)) == ["top"]
    secure = parse_filters([("Type", "Equals", ["SecureString"])], by_path=True)
    assert names(kit.ssm.by_path("/app", recursive=True, filters=secure, **AR)) == ["/app/b"]
    put(kit, "/app/a", "1b", overwrite=True)
    kit.ssm.label("/app/a", ["old"], version=1, **AR)
    labelled = kit.ssm.by_path("/app", recursive=False, filters=parse_filters([("Label", None, ["old"])],
                                                                             by_path=True), **AR)
    assert [(s.parameter.name, s.version.version) for s in labelled] == [("/app/a", 1)]
    with pytest.raises(InvalidFilterKey, match="Valid filter keys include: \\[Type, KeyId\\]"):
        parse_filters([("Name", None, ["x"])], by_path=True)
    with pytest.raises(SsmValidation):
        kit.ssm.by_path("app", recursive=False, **AR)


def test_describe_filters(kit: Kit) -> None:
    put(kit, "/app/a", "1", type="String")
    put(kit, "/app/b", "2", type="SecureString", key_id="alias/custom")
    put(kit, "/app/deep/c", "3", type="String", tags={"team": "web"})
    names = lambda ps: [p.name for p in ps]  # noqa: E731
    assert names(kit.ssm.describe(**AR)) == ["/app/a", "/app/b", "/app/deep/c"]
    assert names(kit.ssm.describe(filters=[("Type", ["SecureString"])], **AR)) == ["/app/b"]
    assert names(kit.ssm.describe(filters=[("Name", ["/app/d"])], **AR)) == ["/app/deep/c"]
    f = lambda *raw: parse_filters(list(raw), by_path=False)  # noqa: E731
    assert names(kit.ssm.describe(parameter_filters=f(("Path", "Recursive", ["/app"])), **AR)) == \
        ["/app/a", "/app/b", "/app/deep/c"]
    assert names(kit.ssm.describe(parameter_filters=f(("Path", None, ["/app"])), **AR)) == ["/app/a", "/app/b"]
    assert names(kit.ssm.describe(parameter_filters=f(("Name", "Contains", ["dee"])), **AR)) == ["/app/deep/c"]
    assert names(kit.ssm.describe(parameter_filters=f(("KeyId", None, ["alias/custom"])), **AR)) == ["/app/b"]
    assert names(kit.ssm.describe(parameter_filters=f(("tag:team", None, ["web"])), **AR)) == ["/app/deep/c"]
    assert names(kit.ssm.describe(parameter_filters=f(("tag:team", None, None)), **AR)) == ["/app/deep/c"]
    with pytest.raises(SsmValidation, match="either Filters or ParameterFilters"):
        kit.ssm.describe(filters=[("Type", ["String"])], parameter_filters=f(("Type", None, ["String"])), **AR)
    with pytest.raises(InvalidFilterValue, match="Valid values include"):
        kit.ssm.describe(parameter_filters=f(("Type", None, ["Bogus"])), **AR)


@pytest.mark.parametrize("raw, kind, message", [
    (("Colour", None, ["x"]), SsmValidation, "regular expression pattern"),
    (("Label", None, ["x"]), InvalidFilterKey, "Label"),
    (("Path", "Equals", ["/a"]), InvalidFilterOption, "[Recursive, OneLevel]"),
    (("Type", "Contains", ["x"]), InvalidFilterOption, "[Equals, BeginsWith]"),
    (("Name", None, []), InvalidFilterValue, "missing"),
    (("Name", None, ["x"] * 51), SsmValidation, "50"),
])
def test_filter_refusals(raw: tuple[str, str | None, list[str]], kind: type[Exception], message: str) -> None:
    with pytest.raises(kind) as err:
        parse_filters([raw], by_path=False)
    assert message in str(err.value)


def test_duplicate_filter_keys() -> None:
    with pytest.raises(InvalidFilterKey, match="duplicated"):
        parse_filters([("Type", None, ["String"]), ("Type", None, ["String"])], by_path=False)


def test_labels_move_between_versions_and_are_limited(kit: Kit) -> None:
    put(kit, "p", "1", type="String")
    put(kit, "p", "2", overwrite=True)
    assert kit.ssm.label("p", ["prod", "1bad", "awsy"], **AR) == (["1bad", "awsy"], 2)
    assert kit.ssm.label("p", ["prod"], version=1, **AR) == ([], 1)
    p = kit.ssm.history("p", **AR)
    assert p.versions[0].labels == ("prod",) and p.versions[1].labels == ()
    kit.ssm.label("p", [f"l{i}" for i in range(9)], version=1, **AR)
    before = snapshot(kit)
    with pytest.raises(ParameterVersionLabelLimitExceeded, match="maximum 10 labels"):
        kit.ssm.label("p", ["one-more"], version=1, **AR)
    with pytest.raises(ParameterVersionNotFound):
        kit.ssm.label("p", ["x"], version=7, **AR)
    with pytest.raises(ParameterNotFound):
        kit.ssm.label("nope", ["x"], **AR)
    with pytest.raises(SsmValidation):
        kit.ssm.label("p", [f"m{i}" for i in range(11)], **AR)
    assert snapshot(kit) == before
    assert kit.ssm.unlabel("p", 1, ["prod", "absent"], **AR) == (["prod"], ["absent"])
    with pytest.raises(ParameterVersionNotFound):
        kit.ssm.unlabel("p", 9, ["l1"], **AR)
    with pytest.raises(ParameterNotFound):
        kit.ssm.unlabel("nope", 1, ["l1"], **AR)


def test_tags(kit: Kit) -> None:
    put(kit, "/t", "1", type="String", tags={"a": "1"})
    kit.ssm.add_tags("Parameter", "/t", {"b": "2"}, **AR)
    kit.ssm.remove_tags("Parameter", f"arn:aws:ssm:{R}:{A}:parameter/t", ["a"], **AR)
    assert kit.ssm.tags("Parameter", "/t", **AR) == {"b": "2"}
    with pytest.raises(InvalidResourceId):
        kit.ssm.tags("Parameter", "/none", **AR)
    with pytest.raises(InvalidResourceId):
        kit.ssm.add_tags("Parameter", "/none", {"a": "b"}, **AR)
    with pytest.raises(InvalidResourceType):
        kit.ssm.tags("Document", "/t", **AR)
    with pytest.raises(SsmValidation):
        kit.ssm.tags("Bogus", "/t", **AR)
    with pytest.raises(TooManyTagsError):
        kit.ssm.add_tags("Parameter", "/t", {f"k{i}": "v" for i in range(50)}, **AR)
    assert kit.ssm.tags("Parameter", "/t", **AR) == {"b": "2"}


def test_delete(kit: Kit) -> None:
    put(kit, "a", "1", type="String")
    put(kit, "b", "1", type="String")
    put(kit, "c", "1", type="String")
    kit.ssm.delete("a", **AR)
    with pytest.raises(ParameterNotFound, match="Parameter a not found."):
        kit.ssm.delete("a", **AR)
    assert kit.ssm.delete_many(["b", "zz", "c"], **AR) == (["b", "c"], ["zz"])
    assert snapshot(kit) == []
    put(kit, "a", "again", type="String")
    assert kit.ssm.get("a", **AR).version.version == 1  # a later put starts over
