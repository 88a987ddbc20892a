"""SSM Parameter Store on the JSON 1.1 endpoint (`AmazonSSM.*`): parse → ParameterStore → SSM's
output shapes. Values leave sealed unless the caller asks WithDecryption (String and StringList
values are always returned in clear, as SSM does)."""

from __future__ import annotations

from typing import Any

from berth.api.aws._errors import AwsError
from berth.api.aws._secrets_common import Params, json_service, page, required, tags_in, tags_out, with_token
from berth.api.aws._server import AwsContext, JsonService
from berth.api.shapes import BOOL, INT, STRING, ListOf, Shape, Struct
from berth.secrets import Parameter, ParameterStore, ParameterVersion, PutParameter, Selected, parse_filters

TARGET_PREFIX = "AmazonSSM"

_STRINGS = ListOf(STRING)
_TAG = Struct("Tag", {"Key": STRING, "Value": STRING})
# The JSON type of every input member the handlers read (botocore's ssm model).
PARAMS: dict[str, Shape] = {
    "Name": STRING, "Value": STRING, "Type": STRING, "Description": STRING, "KeyId": STRING, "Overwrite": BOOL,
    "AllowedPattern": STRING, "Tags": ListOf(_TAG), "Tier": STRING, "Policies": STRING, "DataType": STRING,
    "WithDecryption": BOOL, "Names": _STRINGS, "Path": STRING, "Recursive": BOOL,
    "ParameterFilters": ListOf(Struct("ParameterStringFilter", {"Key": STRING, "Option": STRING, "Values": _STRINGS})),
    "Filters": ListOf(Struct("ParametersFilter", {"Key": STRING, "Values": _STRINGS})),
    "MaxResults": INT, "NextToken": STRING, "Shared": BOOL, "ParameterVersion": INT, "Labels": _STRINGS,
    "ResourceType": STRING, "ResourceId": STRING, "TagKeys": _STRINGS,
}


def _user(ctx: AwsContext) -> str:
    return f"arn:aws:iam::{ctx.account}:root"


class SsmHandlers:
    """One method per operation: parse, call the Parameter Store, shape the output."""

    def __init__(self, ssm: ParameterStore) -> None:
        self.ssm = ssm

    # shapes

    def _value(self, p: Parameter, v: ParameterVersion, decrypt: bool) -> str:
        return v.sealed if v.type == "SecureString" and not decrypt else self.ssm.reveal(p, v)

    def _parameter(self, s: Selected, decrypt: bool) -> dict[str, Any]:
        p, v = s.parameter, s.version
        out = {"Name": p.name, "Type": v.type, "Value": self._value(p, v, decrypt), "Version": v.version,
               "LastModifiedDate": v.modified_at, "ARN": p.arn, "DataType": v.data_type}
        if s.selector:
            out["Selector"] = s.selector
        return out

    @staticmethod
    def _metadata(p: Parameter) -> dict[str, Any]:
        v = p.latest
        out: dict[str, Any] = {"Name": p.name, "ARN": p.arn, "Type": v.type, "LastModifiedDate": v.modified_at,
                               "LastModifiedUser": v.modified_user, "Version": v.version, "Tier": v.tier,
                               "Policies": [], "DataType": v.data_type}
        for member, value in (("KeyId", v.key_id), ("Description", v.description),
                              ("AllowedPattern", v.allowed_pattern)):
            if value:
                out[member] = value
        return out

    def _history(self, p: Parameter, v: ParameterVersion, decrypt: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"Name": p.name, "Type": v.type, "LastModifiedDate": v.modified_at,
                               "LastModifiedUser": v.modified_user, "Value": self._value(p, v, decrypt),
                               "Version": v.version, "Labels": list(v.labels), "Tier": v.tier, "Policies": [],
                               "DataType": v.data_type}
        for member, value in (("KeyId", v.key_id), ("Description", v.description),
                              ("AllowedPattern", v.allowed_pattern)):
            if value:
                out[member] = value
        return out

    # parameters

    def PutParameter(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        if p.get("Policies"):
            raise AwsError("ValidationException", "Parameter policies (expiration and notification) are not "
                           "supported by berth's Parameter Store.")
        req = PutParameter(
            name=required(p, "Name", str), value=str(p.get("Value") or ""), type=p.get("Type"),
            overwrite=bool(p.get("Overwrite")), description=p.get("Description"), key_id=p.get("KeyId"),
            allowed_pattern=p.get("AllowedPattern"), tags=tags_in(p), tier=p.get("Tier"),
            data_type=p.get("DataType"))
        v = self.ssm.put(req, account=ctx.account, region=ctx.region, user=_user(ctx))
        return {"Version": v.version, "Tier": v.tier}

    def GetParameter(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        s = self.ssm.get(required(p, "Name", str), account=ctx.account, region=ctx.region)
        return {"Parameter": self._parameter(s, bool(p.get("WithDecryption")))}

    def GetParameters(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        found, invalid = self.ssm.get_many(required(p, "Names", list), account=ctx.account, region=ctx.region)
        decrypt = bool(p.get("WithDecryption"))
        return {"Parameters": [self._parameter(s, decrypt) for s in found], "InvalidParameters": invalid}

    def GetParametersByPath(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        filters = parse_filters(_string_filters(p), by_path=True)
        found = self.ssm.by_path(required(p, "Path", str), recursive=bool(p.get("Recursive")), filters=filters,
                                 account=ctx.account, region=ctx.region)
        chunk, token = page(found, p, default=10, limit=10, bad_token="InvalidNextToken")
        decrypt = bool(p.get("WithDecryption"))
        return with_token({"Parameters": [self._parameter(s, decrypt) for s in chunk]}, token)

    def DeleteParameter(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.ssm.delete(required(p, "Name", str), account=ctx.account, region=ctx.region)
        return {}

    def DeleteParameters(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        deleted, invalid = self.ssm.delete_many(required(p, "Names", list), account=ctx.account, region=ctx.region)
        return {"DeletedParameters": deleted, "InvalidParameters": invalid}

    def DescribeParameters(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        legacy = [(str(f.get("Key") or ""), list(f.get("Values") or [])) for f in p.get("Filters") or []]
        found = self.ssm.describe(filters=legacy, parameter_filters=parse_filters(_string_filters(p), by_path=False),
                                  account=ctx.account, region=ctx.region)
        chunk, token = page(found, p, default=10, limit=50, bad_token="InvalidNextToken")
        return with_token({"Parameters": [self._metadata(x) for x in chunk]}, token)

    def GetParameterHistory(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        param = self.ssm.history(required(p, "Name", str), account=ctx.account, region=ctx.region)
        chunk, token = page(param.versions, p, default=50, limit=50, bad_token="InvalidNextToken")
        decrypt = bool(p.get("WithDecryption"))
        return with_token({"Parameters": [self._history(param, v, decrypt) for v in chunk]}, token)

    # labels

    def LabelParameterVersion(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        invalid, version = self.ssm.label(required(p, "Name", str), required(p, "Labels", list),
                                          version=p.get("ParameterVersion"), account=ctx.account, region=ctx.region)
        return {"InvalidLabels": invalid, "ParameterVersion": version}

    def UnlabelParameterVersion(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        removed, invalid = self.ssm.unlabel(required(p, "Name", str), required(p, "ParameterVersion", int),
                                            required(p, "Labels", list), account=ctx.account, region=ctx.region)
        return {"RemovedLabels": removed, "InvalidLabels": invalid}

    # tags

    def AddTagsToResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.ssm.add_tags(required(p, "ResourceType", str), required(p, "ResourceId", str), tags_in(p),
                          account=ctx.account, region=ctx.region)
        return {}

    def RemoveTagsFromResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.ssm.remove_tags(required(p, "ResourceType", str), required(p, "ResourceId", str),
                             required(p, "TagKeys", list), account=ctx.account, region=ctx.region)
        return {}

    def ListTagsForResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        tags = self.ssm.tags(required(p, "ResourceType", str), required(p, "ResourceId", str),
                             account=ctx.account, region=ctx.region)
        return {"TagList": tags_out(tags)}


def _string_filters(p: Params) -> list[tuple[str, str | None, list[str] | None]]:
    out = []
    for f in p.get("ParameterFilters") or []:
        key = f.get("Key")
        if not key:
            raise AwsError("ValidationException", "1 validation error detected: Value null at "
                           "'parameterFilters.member.key' failed to satisfy constraint: Member must not be null")
        out.append((str(key), f.get("Option"), f.get("Values")))
    return out


def ssm_service(ssm: ParameterStore) -> JsonService:
    """The SSM JsonService (target prefix AmazonSSM, signing name ssm)."""
    return json_service(SsmHandlers(ssm), TARGET_PREFIX, "ssm", PARAMS)
