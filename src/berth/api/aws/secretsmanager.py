"""Secrets Manager on the JSON 1.1 endpoint (`secretsmanager.*`): parse → SecretsManager →
Secrets Manager's output shapes. SecretBinary travels base64-encoded, as in every JSON protocol."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from berth.api.aws._errors import AwsError
from berth.api.aws._secrets_common import Params, json_service, page, required, tags_in, tags_out, with_token
from berth.api.aws._server import AwsContext, JsonService
from berth.api.shapes import BOOL, INT, STRING, ListOf, Shape, Struct
from berth.secrets import Secret, SecretsManager, Value

TARGET_PREFIX = "secretsmanager"

_STRINGS = ListOf(STRING)
# The JSON type of every input member the handlers read (botocore's secretsmanager model).
PARAMS: dict[str, Shape] = {
    "Name": STRING, "ClientRequestToken": STRING, "Description": STRING, "KmsKeyId": STRING,
    "SecretBinary": STRING, "SecretString": STRING, "Tags": ListOf(Struct("Tag", {"Key": STRING, "Value": STRING})),
    "ForceOverwriteReplicaSecret": BOOL, "SecretId": STRING, "VersionId": STRING, "VersionStage": STRING,
    "VersionStages": _STRINGS, "IncludePlannedDeletion": BOOL, "MaxResults": INT, "NextToken": STRING,
    "Filters": ListOf(Struct("Filter", {"Key": STRING, "Values": _STRINGS})), "SortOrder": STRING,
    "SortBy": STRING, "RecoveryWindowInDays": INT, "ForceDeleteWithoutRecovery": BOOL,
    "RemoveFromVersionId": STRING, "MoveToVersionId": STRING, "TagKeys": _STRINGS, "IncludeDeprecated": BOOL,
}


def _value(p: Params) -> Value:
    binary = p.get("SecretBinary")
    if binary is None:
        return Value(string=p.get("SecretString"))
    try:
        raw = base64.b64decode(binary, validate=True)
    except (binascii.Error, ValueError) as err:
        raise AwsError("SerializationException", "SecretBinary is not valid base64") from err
    return Value(string=p.get("SecretString"), binary=raw)


def _id(p: Params) -> str:
    return required(p, "SecretId", str)


def _stages(s: Secret) -> dict[str, list[str]]:
    return {v.version_id: list(v.stages) for v in s.versions if v.stages}


def _entry(s: Secret, *, versions_member: str) -> dict[str, Any]:
    out: dict[str, Any] = {"ARN": s.arn, "Name": s.name, "LastChangedDate": s.last_changed_at,
                           "CreatedDate": s.created_at, versions_member: _stages(s), "RotationEnabled": False}
    if s.description:
        out["Description"] = s.description
    if s.kms_key_id:
        out["KmsKeyId"] = s.kms_key_id
    if s.tags:
        out["Tags"] = tags_out(s.tags)
    if s.last_accessed_at is not None:
        out["LastAccessedDate"] = s.last_accessed_at
    if s.deleted_at is not None:
        out["DeletedDate"] = s.deleted_at
    return out


class SecretsManagerHandlers:
    """One method per operation: parse, call SecretsManager, shape the output."""

    def __init__(self, sm: SecretsManager) -> None:
        self.sm = sm

    def CreateSecret(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        if p.get("AddReplicaRegions"):
            raise AwsError("InvalidParameterException", "Replicating secrets to other regions is not supported by "
                           "berth.")
        secret, version_id = self.sm.create(
            required(p, "Name", str), _value(p), account=ctx.account, region=ctx.region,
            token=p.get("ClientRequestToken"), description=p.get("Description"), kms_key_id=p.get("KmsKeyId"),
            tags=tags_in(p))
        out = {"ARN": secret.arn, "Name": secret.name}
        if version_id:
            out["VersionId"] = version_id
        return out

    def GetSecretValue(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        got = self.sm.get_value(_id(p), account=ctx.account, region=ctx.region, version_id=p.get("VersionId"),
                                stage=p.get("VersionStage"))
        out: dict[str, Any] = {"ARN": got.secret.arn, "Name": got.secret.name, "VersionId": got.version.version_id,
                               "VersionStages": list(got.version.stages), "CreatedDate": got.version.created_at}
        if got.value.string is not None:
            out["SecretString"] = got.value.string
        if got.value.binary is not None:
            out["SecretBinary"] = base64.b64encode(got.value.binary).decode()
        return out

    def PutSecretValue(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        secret, version = self.sm.put_value(_id(p), _value(p), account=ctx.account, region=ctx.region,
                                            token=p.get("ClientRequestToken"), stages=p.get("VersionStages"))
        return {"ARN": secret.arn, "Name": secret.name, "VersionId": version.version_id,
                "VersionStages": list(version.stages)}

    def UpdateSecret(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        secret, version_id = self.sm.update(_id(p), _value(p), account=ctx.account, region=ctx.region,
                                            token=p.get("ClientRequestToken"), description=p.get("Description"),
                                            kms_key_id=p.get("KmsKeyId"))
        out = {"ARN": secret.arn, "Name": secret.name}
        if version_id:
            out["VersionId"] = version_id
        return out

    def DescribeSecret(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return _entry(self.sm.describe(_id(p), account=ctx.account, region=ctx.region),
                      versions_member="VersionIdsToStages")

    def ListSecrets(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        filters = [(str(f.get("Key") or ""), list(f.get("Values") or [])) for f in p.get("Filters") or []]
        order = p.get("SortOrder") or "desc"
        if order not in ("asc", "desc"):
            raise AwsError("ValidationException", f"1 validation error detected: Value '{order}' at 'sortOrder' "
                           "failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]")
        found = self.sm.list(account=ctx.account, region=ctx.region, filters=filters,
                             include_deleted=bool(p.get("IncludePlannedDeletion")),
                             sort_by=p.get("SortBy") or "created-date", descending=order == "desc")
        chunk, token = page(found, p, default=100, limit=100, bad_token="InvalidNextTokenException")
        return with_token({"SecretList": [_entry(s, versions_member="SecretVersionsToStages") for s in chunk]}, token)

    def DeleteSecret(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        s = self.sm.delete(_id(p), account=ctx.account, region=ctx.region,
                           recovery_days=p.get("RecoveryWindowInDays"), force=bool(p.get("ForceDeleteWithoutRecovery")))
        return {"ARN": s.arn, "Name": s.name, "DeletionDate": s.deletion_date}

    def RestoreSecret(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        s = self.sm.restore(_id(p), account=ctx.account, region=ctx.region)
        return {"ARN": s.arn, "Name": s.name}

    def UpdateSecretVersionStage(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        s = self.sm.update_stage(_id(p), required(p, "VersionStage", str), account=ctx.account, region=ctx.region,
                                 remove_from=p.get("RemoveFromVersionId"), move_to=p.get("MoveToVersionId"))
        return {"ARN": s.arn, "Name": s.name}

    def TagResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        required(p, "Tags", list)
        self.sm.tag(_id(p), tags_in(p), account=ctx.account, region=ctx.region)
        return {}

    def UntagResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.sm.untag(_id(p), required(p, "TagKeys", list), account=ctx.account, region=ctx.region)
        return {}

    def ListSecretVersionIds(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        s = self.sm.describe(_id(p), account=ctx.account, region=ctx.region)
        versions = [v for v in reversed(s.versions) if v.stages or p.get("IncludeDeprecated")]
        chunk, token = page(versions, p, default=100, limit=100, bad_token="InvalidNextTokenException")
        entries = [{"VersionId": v.version_id, "VersionStages": list(v.stages), "CreatedDate": v.created_at}
                   for v in chunk]
        return with_token({"Versions": entries, "ARN": s.arn, "Name": s.name}, token)


def secretsmanager_service(sm: SecretsManager) -> JsonService:
    """The Secrets Manager JsonService (target prefix and signing name `secretsmanager`)."""
    return json_service(SecretsManagerHandlers(sm), TARGET_PREFIX, "secretsmanager", PARAMS)
