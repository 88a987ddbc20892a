"""What the SSM and Secrets Manager handlers share: `NextToken`/`MaxResults` paging (capitalised,
unlike ECS/ECR's), required members, and the Key/Value tag list."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, TypeVar

from berth.api.aws._errors import AwsError
from berth.api.aws._server import JsonService, Operation

T = TypeVar("T")
Params = dict[str, Any]


def page(items: Sequence[T], p: Params, *, default: int, limit: int, bad_token: str) -> tuple[list[T], str | None]:
    """One page and the next token (None at the end).

    Raises:
        AwsError: ValidationException for MaxResults out of 1..limit; `bad_token` for a token we
            did not issue.
    """
    size = p.get("MaxResults")
    size = default if size is None else size
    if not 1 <= size <= limit:
        raise AwsError("ValidationException", f"1 validation error detected: Value '{size}' at 'maxResults' failed "
                       f"to satisfy constraint: Member must have value between 1 and {limit}")
    start = 0
    token = p.get("NextToken")
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("berth:"))
        except (ValueError, binascii.Error, UnicodeDecodeError) as err:
            raise AwsError(bad_token, "The specified token isn't valid." if bad_token == "InvalidNextToken"
                           else "The NextToken value isn't valid.") from err
        if start < 0:
            raise AwsError(bad_token, "The NextToken value isn't valid.")
    end = start + size
    more = end < len(items)
    return list(items[start:end]), (base64.urlsafe_b64encode(f"berth:{end}".encode()).decode() if more else None)


def with_token(output: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token:
        output["NextToken"] = token
    return output


def required(p: Params, member: str, kind: type[T]) -> T:
    """A required member of its JSON type (the shapes table checked types already)."""
    value = p.get(member)
    if value is None or (isinstance(value, (str, list)) and not value and kind is not list):
        wire = member[0].lower() + member[1:]
        raise AwsError("ValidationException", f"1 validation error detected: Value null at '{wire}' failed to "
                       "satisfy constraint: Member must not be null")
    assert isinstance(value, kind)
    return value


def tags_in(p: Params, member: str = "Tags") -> dict[str, str]:
    out: dict[str, str] = {}
    for t in p.get(member) or []:
        if not isinstance(t, dict) or t.get("Key") is None:
            raise AwsError("ValidationException", f"1 validation error detected: Value null at '{member.lower()}."
                           "member.key' failed to satisfy constraint: Member must not be null")
        out[str(t["Key"])] = str(t.get("Value") or "")
    return out


def tags_out(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def json_service(handlers: object, prefix: str, signing_name: str, params: dict[str, Any]) -> JsonService:
    """Every public CamelCase method of `handlers` is an operation."""
    operations: dict[str, Operation] = {}
    for name in dir(handlers):
        if name[:1].isupper():
            operations[name] = getattr(handlers, name)
    return JsonService(prefix, signing_name, operations, params)

