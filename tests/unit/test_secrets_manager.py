"""Secrets Manager semantics over the in-memory store: idempotent tokens, staging labels, the
recovery window on a fake clock, lookups by name / full / partial ARN, filters, and refusals that
leave the store as it was."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from berth.secrets import MARKED_FOR_DELETION, SECRET_NOT_FOUND, Value
from berth.secrets._errors import (
    InvalidParameter, InvalidRequest, LimitExceeded, ResourceExists, ResourceNotFound, SecretsValidation,
)
from berth.secrets._secretsmanager import DAY
from berth.secrets.testing import Kit, memory_kit

A, R = "123456789012", "us-east-1"
AR = {"account": A, "region": R}
ARN = f"arn:aws:secretsmanager:{R}:{A}:secret:app/db-AbCdEf"


@pytest.fixture
def kit() -> Kit:
    return memory_kit()


def tok() -> str:
    return str(uuid.uuid4())


def current(kit: Kit, secret_id: str = "app/db", **kw: Any) -> str | None:
    return kit.secretsmanager.get_value(secret_id, **AR, **kw).value.string


def stages(kit: Kit, secret_id: str = "app/db") -> dict[str, tuple[str, ...]]:
    return {v.version_id: v.stages for v in kit.secretsmanager.describe(secret_id, **AR).versions}


def snapshot(kit: Kit) -> list[Any]:
    return [(r.key, r.version, dict(r.value)) for r in kit.store.list("secretsmanager.secret")]


def test_create_get_and_lookups(kit: Kit) -> None:
    t = tok()
    secret, vid = kit.secretsmanager.create("app/db", Value(string="pw1"), token=t, description="d",
                                            kms_key_id="alias/mine", tags={"team": "web"}, **AR)
    assert secret.arn == ARN and vid == t
    for secret_id in ("app/db", ARN, ARN[:-7]):
        assert current(kit, secret_id) == "pw1"
    for missing in ("app/other", ARN[:-1] + "X", f"arn:aws:secretsmanager:eu-west-1:{A}:secret:app/db",
                    "arn:aws:secretsmanager:broken"):
        with pytest.raises(ResourceNotFound, match=SECRET_NOT_FOUND.replace(".", r"\.")):
            kit.secretsmanager.describe(missing, **AR)
    d = kit.secretsmanager.describe("app/db", **AR)
    assert (d.description, d.kms_key_id, d.tags) == ("d", "alias/mine", {"team": "web"})


def test_create_is_idempotent_per_token(kit: Kit) -> None:
    t = tok()
    first, _ = kit.secretsmanager.create("s", Value(string="v"), token=t, **AR)
    again, vid = kit.secretsmanager.create("s", Value(string="v"), token=t, **AR)
    assert again.arn == first.arn and vid == t
    before = snapshot(kit)
    with pytest.raises(ResourceExists, match="The operation failed because the secret s already exists."):
        kit.secretsmanager.create("s", Value(string="other"), token=t, **AR)
    with pytest.raises(ResourceExists):
        kit.secretsmanager.create("s", Value(string="v"), token=tok(), **AR)
    assert snapshot(kit) == before


def test_a_secret_without_a_value_has_no_current_version(kit: Kit) -> None:
    _, vid = kit.secretsmanager.create("empty", Value(), **AR)
    assert vid is None
    with pytest.raises(ResourceNotFound, match="for staging label: AWSCURRENT"):
        current(kit, "empty")
    kit.secretsmanager.put_value("empty", Value(string="now"), **AR)
    assert current(kit, "empty") == "now"


def test_rotation_moves_current_and_previous(kit: Kit) -> None:
    t1, t2, t3 = tok(), tok(), tok()
    kit.secretsmanager.create("app/db", Value(string="v1"), token=t1, **AR)
    _, v2 = kit.secretsmanager.put_value("app/db", Value(string="v2"), token=t2, **AR)
    assert v2.stages == ("AWSCURRENT",)
    assert stages(kit) == {t1: ("AWSPREVIOUS",), t2: ("AWSCURRENT",)}
    kit.secretsmanager.put_value("app/db", Value(string="v3"), token=t3, **AR)
    assert stages(kit) == {t1: (), t2: ("AWSPREVIOUS",), t3: ("AWSCURRENT",)}
    assert current(kit) == "v3"
    assert current(kit, stage="AWSPREVIOUS") == "v2"
    assert current(kit, version_id=t1) == "v1"
    assert current(kit, version_id=t2, stage="AWSPREVIOUS") == "v2"
    with pytest.raises(ResourceNotFound, match=f"VersionId: {t1}"):
        current(kit, version_id=t1, stage="AWSCURRENT")
    with pytest.raises(ResourceNotFound, match="staging label: nope"):
        current(kit, stage="nope")
    with pytest.raises(SecretsValidation):
        current(kit, version_id="short")


def test_custom_stages_leave_current_alone(kit: Kit) -> None:
    t1, t2 = tok(), tok()
    kit.secretsmanager.create("app/db", Value(string="v1"), token=t1, **AR)
    kit.secretsmanager.put_value("app/db", Value(string="next"), token=t2, stages=["AWSPENDING", "blue"], **AR)
    assert stages(kit) == {t1: ("AWSCURRENT",), t2: ("AWSPENDING", "blue")}
    assert current(kit) == "v1" and current(kit, stage="blue") == "next"


def test_put_value_idempotency_and_refusals(kit: Kit) -> None:
    t1, t2 = tok(), tok()
    kit.secretsmanager.create("app/db", Value(string="v1"), token=t1, **AR)
    kit.secretsmanager.put_value("app/db", Value(string="v2"), token=t2, **AR)
    kit.secretsmanager.put_value("app/db", Value(string="v2"), token=t2, **AR)  # a retried request
    assert len(stages(kit)) == 2
    before = snapshot(kit)
    cases: list[tuple[Value, dict[str, Any], type[Exception], str]] = [
        (Value(string="v9"), {"token": t2}, ResourceExists, "can't modify an existing version"),
        (Value(), {}, InvalidRequest, "either SecretString or SecretBinary"),
        (Value(string="a", binary=b"b"), {}, InvalidParameter, "both a binary secret value and a string"),
        (Value(string="x" * 65537), {}, SecretsValidation, "65536"),
        (Value(string="x"), {"token": "short"}, SecretsValidation, "clientRequestToken"),
        (Value(string="x"), {"stages": []}, SecretsValidation, "versionStages"),
    ]
    for v, kw, kind, message in cases:
        with pytest.raises(kind) as err:
            kit.secretsmanager.put_value("app/db", v, **AR, **kw)
        assert message in str(err.value) and "x" * 20 not in str(err.value)
    with pytest.raises(ResourceNotFound):
        kit.secretsmanager.put_value("nope", Value(string="x"), **AR)
    assert snapshot(kit) == before


def test_binary_values(kit: Kit) -> None:
    kit.secretsmanager.create("bin", Value(binary=b"\x00\xffdata"), **AR)
    got = kit.secretsmanager.get_value("bin", **AR).value
    assert got.binary == b"\x00\xffdata" and got.string is None


def test_update_secret(kit: Kit) -> None:
    t1, t2 = tok(), tok()
    kit.secretsmanager.create("app/db", Value(string="v1"), token=t1, **AR)
    s, vid = kit.secretsmanager.update("app/db", Value(), description="new", **AR)
    assert vid is None and s.description == "new" and current(kit) == "v1"
    _, vid = kit.secretsmanager.update("app/db", Value(string="v2"), token=t2, kms_key_id="alias/k", **AR)
    assert vid == t2 and current(kit) == "v2" and stages(kit)[t1] == ("AWSPREVIOUS",)
    assert kit.secretsmanager.describe("app/db", **AR).kms_key_id == "alias/k"
    with pytest.raises(SecretsValidation):
        kit.secretsmanager.update("app/db", Value(), description="d" * 2049, **AR)


def test_update_version_stage(kit: Kit) -> None:
    t1, t2 = tok(), tok()
    kit.secretsmanager.create("app/db", Value(string="v1"), token=t1, **AR)
    kit.secretsmanager.put_value("app/db", Value(string="v2"), token=t2, stages=["AWSPENDING"], **AR)
    before = snapshot(kit)
    with pytest.raises(InvalidParameter, match=f"currently attached to version {t1}"):
        kit.secretsmanager.update_stage("app/db", "AWSCURRENT", move_to=t2, **AR)
    with pytest.raises(InvalidParameter, match="not attached"):
        kit.secretsmanager.update_stage("app/db", "AWSCURRENT", move_to=t2, remove_from=t2, **AR)
    with pytest.raises(ResourceNotFound, match="VersionId"):
        kit.secretsmanager.update_stage("app/db", "AWSCURRENT", move_to=tok(), remove_from=t1, **AR)
    with pytest.raises(InvalidParameter, match="AWSCURRENT"):
        kit.secretsmanager.update_stage("app/db", "AWSCURRENT", remove_from=t1, **AR)
    assert snapshot(kit) == before
    kit.secretsmanager.update_stage("app/db", "AWSCURRENT", move_to=t2, remove_from=t1, **AR)
    assert stages(kit) == {t1: ("AWSPREVIOUS",), t2: ("AWSPENDING", "AWSCURRENT")}
    kit.secretsmanager.update_stage("app/db", "AWSPENDING", remove_from=t2, **AR)
    kit.secretsmanager.update_stage("app/db", "blue", move_to=t1, **AR)
    assert stages(kit) == {t1: ("AWSPREVIOUS", "blue"), t2: ("AWSCURRENT",)}
    kit.secretsmanager.update_stage("app/db", "AWSCURRENT", move_to=t1, remove_from=t2, **AR)  # roll back
    assert stages(kit) == {t1: ("blue", "AWSCURRENT"), t2: ("AWSPREVIOUS",)}


def test_recovery_window_on_a_fake_clock(kit: Kit) -> None:
    kit.secretsmanager.create("app/db", Value(string="v1"), **AR)
    now = kit.clock.now
    for bad in (6, 31, 0):
        with pytest.raises(InvalidParameter, match="between 7 and 30 days"):
            kit.secretsmanager.delete("app/db", recovery_days=bad, **AR)
    with pytest.raises(InvalidParameter, match="in conjunction with RecoveryWindowInDays"):
        kit.secretsmanager.delete("app/db", recovery_days=7, force=True, **AR)
    deleted = kit.secretsmanager.delete("app/db", recovery_days=7, **AR)
    assert deleted.deletion_date == now + 7 * DAY and deleted.deleted_at == now
    for call in (lambda: current(kit), lambda: kit.secretsmanager.put_value("app/db", Value(string="x"), **AR),
                 lambda: kit.secretsmanager.delete("app/db", **AR),
                 lambda: kit.secretsmanager.tag("app/db", {"a": "b"}, **AR),
                 lambda: kit.secretsmanager.create("app/db", Value(string="x"), **AR)):
        with pytest.raises(InvalidRequest) as err:
            call()
        assert "deletion" in str(err.value)
    with pytest.raises(InvalidRequest, match=MARKED_FOR_DELETION):
        current(kit)
    assert kit.secretsmanager.list(**AR) == []
    assert [s.name for s in kit.secretsmanager.list(include_deleted=True, **AR)] == ["app/db"]
    kit.secretsmanager.restore("app/db", **AR)
    assert current(kit) == "v1"
    kit.secretsmanager.delete("app/db", recovery_days=7, **AR)
    kit.clock.advance(7 * DAY - 1)
    assert kit.secretsmanager.describe("app/db", **AR).deleted
    kit.clock.advance(1)
    with pytest.raises(ResourceNotFound):
        kit.secretsmanager.describe("app/db", **AR)
    assert snapshot(kit) == []  # gone from the store too
    recreated, _ = kit.secretsmanager.create("app/db", Value(string="fresh"), **AR)
    assert current(kit) == "fresh" and recreated.created_at == kit.clock.now


def test_default_window_and_forced_deletion(kit: Kit) -> None:
    kit.secretsmanager.create("a", Value(string="1"), **AR)
    kit.secretsmanager.create("b", Value(string="2"), **AR)
    assert kit.secretsmanager.delete("a", **AR).deletion_date == kit.clock.now + 30 * DAY
    kit.secretsmanager.delete("b", force=True, **AR)
    kit.secretsmanager.delete("a", force=True, **AR)  # a scheduled secret can still be forced out
    assert snapshot(kit) == []
    kit.secretsmanager.create("x", Value(string="1"), **AR)
    kit.secretsmanager.delete("x", recovery_days=7, **AR)
    kit.clock.advance(8 * DAY)
    assert kit.secretsmanager.purge_expired() == 1 and snapshot(kit) == []


def test_list_filters_and_order(kit: Kit) -> None:
    for name, desc, tags in (("app/db", "database", {"team": "web"}), ("app/api", "", {"team": "api"}),
                             ("other", "misc", {})):
        kit.secretsmanager.create(name, Value(string="v"), description=desc, tags=tags, **AR)
        kit.clock.advance(1)
    names = lambda **kw: [s.name for s in kit.secretsmanager.list(**AR, **kw)]  # noqa: E731
    assert names() == ["other", "app/api", "app/db"]  # newest first
    assert names(descending=False, sort_by="name") == ["app/api", "app/db", "other"]
    assert names(filters=[("name", ["app/"])]) == ["app/api", "app/db"]
    assert names(filters=[("name", ["app/", "!app/api"])]) == ["app/db"]
    assert names(filters=[("tag-key", ["team"]), ("tag-value", ["web"])]) == ["app/db"]
    assert names(filters=[("description", ["data"])]) == ["app/db"]
    assert names(filters=[("all", ["misc"])]) == ["other"]
    with pytest.raises(SecretsValidation, match="enum value set"):
        names(filters=[("colour", ["x"])])
    with pytest.raises(InvalidParameter):
        names(filters=[("name", [])])


def test_tags(kit: Kit) -> None:
    kit.secretsmanager.create("t", Value(string="v"), tags={"a": "1"}, **AR)
    kit.secretsmanager.tag("t", {"b": "2"}, **AR)
    kit.secretsmanager.untag("t", ["a", "zz"], **AR)
    assert kit.secretsmanager.describe("t", **AR).tags == {"b": "2"}
    with pytest.raises(LimitExceeded):
        kit.secretsmanager.tag("t", {f"k{i}": "v" for i in range(50)}, **AR)
    with pytest.raises(InvalidParameter, match="aws:"):
        kit.secretsmanager.tag("t", {"aws:x": "v"}, **AR)
    with pytest.raises(ResourceNotFound):
        kit.secretsmanager.untag("nope", ["a"], **AR)


def test_old_stageless_versions_are_pruned(kit: Kit) -> None:
    kit.secretsmanager.create("many", Value(string="0"), **AR)
    for i in range(1, 105):
        kit.secretsmanager.put_value("many", Value(string=str(i)), **AR)
    versions = kit.secretsmanager.describe("many", **AR).versions
    assert len(versions) == 100
    assert current(kit, "many") == "104" and current(kit, "many", stage="AWSPREVIOUS") == "103"


def test_last_accessed_is_a_day(kit: Kit) -> None:
    kit.secretsmanager.create("s", Value(string="v"), **AR)
    assert kit.secretsmanager.describe("s", **AR).last_accessed_at is None
    current(kit, "s")
    assert kit.secretsmanager.describe("s", **AR).last_accessed_at == kit.clock.now // DAY * DAY
