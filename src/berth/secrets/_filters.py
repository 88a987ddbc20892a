"""DescribeParameters / GetParametersByPath filters (`ParameterStringFilter`, legacy `ParametersFilter`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from berth.secrets._errors import InvalidFilterKey, InvalidFilterOption, InvalidFilterValue, SsmValidation
from berth.secrets._model import PARAMETER_TYPES, TIERS, Parameter, ParameterVersion

_KEY = re.compile(r"tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType")
_KEY_RULE = "tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType"


@dataclass(frozen=True)
class StringFilter:
    key: str
    option: str
    values: tuple[str, ...]


def normalized(name: str) -> str:
    """Filters and paths see every name as absolute ("db" is "/db")."""
    return "/" + name.lstrip("/")


def parse_filters(raw: Sequence[tuple[str, str | None, Sequence[str] | None]], *, by_path: bool) -> list[StringFilter]:
    """(key, option, values) triples as sent → checked filters.

    Raises:
        SsmValidation, InvalidFilterKey, InvalidFilterOption, InvalidFilterValue: as SSM words them.
    """
    seen: set[str] = set()
    out: list[StringFilter] = []
    for index, (key, option, values) in enumerate(raw, start=1):
        if not _KEY.fullmatch(key) or len(key) > 132:
            raise SsmValidation(f"1 validation error detected: Value '{key}' at 'parameterFilters.{index}.member.key' "
                                f"failed to satisfy constraint: Member must satisfy regular expression pattern: "
                                f"{_KEY_RULE}")
        allowed_keys = "[Type, KeyId]" if by_path else "[Path, Name, Type, KeyId, Tier]"
        if (by_path and key in ("Name", "Path", "Tier")) or (not by_path and key == "Label"):
            raise InvalidFilterKey(f"The following filter key is not valid: {key}. Valid filter keys include: "
                                   f"{allowed_keys}.")
        if key in seen:
            raise InvalidFilterKey(f"The following filter is duplicated in the request: {key}. A request can contain "
                                   "only one occurrence of a specific filter.")
        seen.add(key)
        vals = tuple(values or ())
        if not vals and not key.startswith("tag:"):
            raise InvalidFilterValue(f"The following filter values are missing : null for filter key {key}.")
        if len(vals) > 50 or any(not 1 <= len(v) <= 1024 for v in vals):
            raise SsmValidation(f"1 validation error detected: Value at 'parameterFilters.{index}.member.values' "
                                "failed to satisfy constraint: Member must have length less than or equal to 50, "
                                "each between 1 and 1024 characters")
        out.append(StringFilter(key, _option(key, option), vals))
    return out


def _option(key: str, option: str | None) -> str:
    if key == "Path":
        option = option or "OneLevel"
        if option not in ("OneLevel", "Recursive"):
            raise InvalidFilterOption(f"The following filter option is not valid: {option}. Valid options include: "
                                      "[Recursive, OneLevel].")
        return option
    option = option or "Equals"
    allowed: tuple[str, ...] = ("Equals", "BeginsWith", "Contains") if key == "Name" else ("Equals", "BeginsWith")
    if key == "Label":
        allowed = ("Equals",)
    if option not in allowed:
        raise InvalidFilterOption(f"The following filter option is not valid: {option}. Valid options include: "
                                  f"[{', '.join(allowed)}].")
    return option


def check_values(filters: Sequence[StringFilter]) -> None:
    """Enumerated filter values (Type, Tier). Raises InvalidFilterValue."""
    for f in filters:
        valid = PARAMETER_TYPES if f.key == "Type" else TIERS if f.key == "Tier" else None
        if valid is None or f.option != "Equals":
            continue
        for value in f.values:
            if value not in valid:
                raise InvalidFilterValue(f"The following filter value is not valid: {value}. Valid values include: "
                                         f"[{', '.join(valid)}].")


def matches(p: Parameter, v: ParameterVersion, f: StringFilter) -> bool:
    if f.key.startswith("tag:"):
        tag = p.tags.get(f.key[4:])
        return tag is not None and (not f.values or _compare(tag, f.option, f.values))
    if f.key == "Label":
        return any(label in f.values for label in v.labels)
    if f.key == "Path":
        return any(_under(normalized(p.name), value, f.option == "Recursive") for value in f.values)
    if f.key == "Name":
        values = f.values if f.option == "Contains" else tuple(normalized(x) for x in f.values)
        return _compare(normalized(p.name), f.option, values)
    field = {"Type": v.type, "KeyId": v.key_id, "Tier": v.tier, "DataType": v.data_type}[f.key]
    return bool(field) and _compare(field, f.option, f.values)


def _compare(actual: str, option: str, values: Sequence[str]) -> bool:
    if option == "BeginsWith":
        return any(actual.startswith(x) for x in values)
    if option == "Contains":
        return any(x in actual for x in values)
    return actual in values


def _under(name: str, path: str, recursive: bool) -> bool:
    prefix = normalized(path).rstrip("/") + "/"
    if not name.startswith(prefix):
        return False
    return recursive or "/" not in name[len(prefix):]


def under(name: str, path: str, recursive: bool) -> bool:
    """Whether parameter `name` is below `path` (one level, or any depth when recursive)."""
    return _under(normalized(name), path, recursive)
