"""Registry-wide ECR settings, one set per account: the registry policy, the replication
configuration and the registry scanning configuration (PutRegistryPolicy, PutReplicationConfiguration
/ DescribeRegistry, Put/GetRegistryScanningConfiguration).

They are recorded and returned as AWS returns them. berth runs one registry on one host: it
replicates nothing to other regions or accounts, and it has no vulnerability database, so the
scanning configuration only decides which repositories count as scan-on-push (`repository_scanning`).

Each account's settings are one record of kind `ecr.registry` in the ObjectStore, keyed by the
account id; updates are read-modify-write with put-if-version, as for repositories.

The `*_from_wire` functions turn the request members into typed rules, refusing what AWS's
request validation refuses (ValidationException, worded as AWS words it).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from berth.ecr._errors import InvalidParameter, RegistryPolicyNotFound, ValidationFailed
from berth.errors import Conflict
from berth.state import ObjectStore, VersionConflict

KIND = "ecr.registry"
_RETRIES = 50

SCAN_TYPES = ("BASIC", "ENHANCED")
SCAN_FREQUENCIES = ("SCAN_ON_PUSH", "CONTINUOUS_SCAN", "MANUAL")
_PRECEDENCE = ("CONTINUOUS_SCAN", "SCAN_ON_PUSH", "MANUAL")  # which rule wins when several match
_REGION_RE = re.compile(r"[0-9a-z-]{2,25}")
_REGISTRY_ID_RE = re.compile(r"[0-9]{12}")
_PREFIX_FILTER_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$")
_SCAN_FILTER_RE = re.compile(r"^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$")


@dataclass(frozen=True)
class Destination:
    region: str
    registry_id: str


@dataclass(frozen=True)
class ReplicationRule:
    destinations: tuple[Destination, ...]
    prefixes: tuple[str, ...] = ()          # repositoryFilters of type PREFIX_MATCH; () = every repository
    delete_replication: bool | None = None  # deleteReplication.enabled, as given


@dataclass(frozen=True)
class ScanningRule:
    frequency: str                          # SCAN_ON_PUSH | CONTINUOUS_SCAN | MANUAL
    filters: tuple[str, ...]                # WILDCARD filters on repository names

    def matching(self, repository: str) -> tuple[str, ...]:
        return tuple(f for f in self.filters if fnmatch.fnmatchcase(repository, f))


@dataclass(frozen=True)
class RegistrySettings:
    registry_id: str
    policy: str | None = None
    replication: tuple[ReplicationRule, ...] = ()
    scan_type: str = "BASIC"
    scan_rules: tuple[ScanningRule, ...] = ()


def repository_scanning(settings: RegistrySettings, repository: str, scan_on_push: bool) -> tuple[str, tuple[str, ...]]:
    """(scanFrequency, appliedScanFilters) for a repository: the registry rules that match its name
    (CONTINUOUS_SCAN before SCAN_ON_PUSH), else the repository's own scanOnPush setting."""
    ranked = sorted(settings.scan_rules, key=lambda r: _PRECEDENCE.index(r.frequency))
    for rule in ranked:
        matched = rule.matching(repository)
        if matched:
            return rule.frequency, matched
    return ("SCAN_ON_PUSH" if scan_on_push else "MANUAL"), ()


# --- requests → typed settings -------------------------------------------------------------------


def check_policy_text(text: str) -> str:
    """A registry policy must be a JSON policy document (an object with a Statement)."""
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise InvalidParameter("Invalid parameter at 'PolicyText' failed to satisfy constraint: "
                               "'Invalid registry policy provided'") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("Statement"), (list, dict)):
        raise InvalidParameter("Invalid parameter at 'PolicyText' failed to satisfy constraint: "
                               "'Invalid registry policy provided'")
    return text


def replication_from_wire(config: Any, source_region: str, source_registry: str) -> tuple[ReplicationRule, ...]:
    """The rules of a PutReplicationConfiguration `replicationConfiguration`.

    Raises:
        InvalidParameter: a missing configuration, or a destination that is the source registry.
        ValidationFailed: a member outside the model's constraints.
    """
    path = "replicationConfiguration"
    if not isinstance(config, dict) or not isinstance(config.get("rules"), list):
        raise InvalidParameter(f"Invalid parameter at '{path}' failed to satisfy constraint: "
                               "'rules must be specified'")
    rules = config["rules"]
    _length(rules, f"{path}.rules", 0, 25)
    return tuple(_replication_rule(r, f"{path}.rules.{n}.member", source_region, source_registry)
                 for n, r in enumerate(rules, 1))


def _replication_rule(rule: Any, path: str, source_region: str, source_registry: str) -> ReplicationRule:
    if not isinstance(rule, dict) or not isinstance(rule.get("destinations"), list):
        raise ValidationFailed("null", f"{path}.destinations", "Member must not be null")
    destinations = rule["destinations"]
    _length(destinations, f"{path}.destinations", 0, 100)
    parsed = tuple(_destination(d, f"{path}.destinations.{n}.member") for n, d in enumerate(destinations, 1))
    if Destination(source_region, source_registry) in parsed:
        raise InvalidParameter("Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
                               "'Replication destination cannot be the same as the source registry'")
    delete = rule.get("deleteReplication")
    enabled = delete.get("enabled") if isinstance(delete, dict) else None
    if delete is not None and not isinstance(enabled, bool):
        raise ValidationFailed("null", f"{path}.deleteReplication.enabled", "Member must not be null")
    filters = rule.get("repositoryFilters")
    if filters is None:
        return ReplicationRule(parsed, (), enabled)
    if not isinstance(filters, list):
        raise ValidationFailed(filters, f"{path}.repositoryFilters", "Member must be a list")
    _length(filters, f"{path}.repositoryFilters", 1, 100)
    return ReplicationRule(parsed, tuple(_prefix_filter(f, f"{path}.repositoryFilters.{n}.member")
                                         for n, f in enumerate(filters, 1)), enabled)


def _destination(doc: Any, path: str) -> Destination:
    region = _string(doc, "region", path)
    registry = _string(doc, "registryId", path)
    if not _REGION_RE.fullmatch(region):
        raise ValidationFailed(region, f"{path}.region", "Member must satisfy regular expression pattern: "
                                                         "[0-9a-z-]{2,25}")
    if not _REGISTRY_ID_RE.fullmatch(registry):
        raise ValidationFailed(registry, f"{path}.registryId", "Member must satisfy regular expression "
                                                               "pattern: [0-9]{12}")
    return Destination(region, registry)


def _prefix_filter(doc: Any, path: str) -> str:
    value, kind = _string(doc, "filter", path), _string(doc, "filterType", path)
    if kind != "PREFIX_MATCH":
        raise ValidationFailed(kind, f"{path}.filterType", "Member must satisfy enum value set: [PREFIX_MATCH]")
    if not 2 <= len(value) <= 256 or not _PREFIX_FILTER_RE.match(value):
        raise ValidationFailed(value, f"{path}.filter", "Member must satisfy regular expression pattern: "
                                                        + _PREFIX_FILTER_RE.pattern)
    return value


def scanning_from_wire(scan_type: Any, rules: Any) -> tuple[str, tuple[ScanningRule, ...]]:
    """scanType (default BASIC) and rules of PutRegistryScanningConfiguration.

    Raises:
        ValidationFailed: a member outside the model's constraints, or a frequency the scan type lacks
            (continuous scanning is part of enhanced scanning only).
    """
    kind = "BASIC" if scan_type is None else str(scan_type)
    if kind not in SCAN_TYPES:
        raise ValidationFailed(kind, "scanType", "Member must satisfy enum value set: [BASIC, ENHANCED]")
    rules = [] if rules is None else rules
    if not isinstance(rules, list):
        raise ValidationFailed(rules, "rules", "Member must be a list")
    _length(rules, "rules", 0, 2)
    parsed = tuple(_scanning_rule(r, f"rules.{n}.member") for n, r in enumerate(rules, 1))
    for n, rule in enumerate(parsed, 1):
        if kind == "BASIC" and rule.frequency == "CONTINUOUS_SCAN":
            raise ValidationFailed(rule.frequency, f"rules.{n}.member.scanFrequency",
                                   "Member must satisfy enum value set: [SCAN_ON_PUSH, MANUAL] for scanType BASIC")
        if kind == "ENHANCED" and rule.frequency == "MANUAL":
            raise ValidationFailed(rule.frequency, f"rules.{n}.member.scanFrequency",
                                   "Member must satisfy enum value set: [SCAN_ON_PUSH, CONTINUOUS_SCAN] for "
                                   "scanType ENHANCED")
    return kind, parsed


def _scanning_rule(doc: Any, path: str) -> ScanningRule:
    frequency = _string(doc, "scanFrequency", path)
    if frequency not in SCAN_FREQUENCIES:
        raise ValidationFailed(frequency, f"{path}.scanFrequency",
                               f"Member must satisfy enum value set: [{', '.join(SCAN_FREQUENCIES)}]")
    filters = doc.get("repositoryFilters")
    if not isinstance(filters, list):
        raise ValidationFailed("null", f"{path}.repositoryFilters", "Member must not be null")
    _length(filters, f"{path}.repositoryFilters", 0, 100)
    return ScanningRule(frequency, tuple(_scan_filter(f, f"{path}.repositoryFilters.{n}.member")
                                         for n, f in enumerate(filters, 1)))


def _scan_filter(doc: Any, path: str) -> str:
    value, kind = _string(doc, "filter", path), _string(doc, "filterType", path)
    if kind != "WILDCARD":
        raise ValidationFailed(kind, f"{path}.filterType", "Member must satisfy enum value set: [WILDCARD]")
    if not 1 <= len(value) <= 255 or not _SCAN_FILTER_RE.match(value):
        raise ValidationFailed(value, f"{path}.filter", "Member must satisfy regular expression pattern: "
                                                        + _SCAN_FILTER_RE.pattern)
    return value


def _string(doc: Any, key: str, path: str) -> str:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, str):
        raise ValidationFailed("null", f"{path}.{key}", "Member must not be null")
    return value


def _length(items: Sequence[Any], path: str, low: int, high: int) -> None:
    if not low <= len(items) <= high:
        bound = f"greater than or equal to {low}" if len(items) < low else f"less than or equal to {high}"
        raise ValidationFailed(f"[{len(items)} items]", path, f"Member must have length {bound}")


# --- typed settings → the shapes AWS returns -------------------------------------------------------


def replication_to_wire(rules: Sequence[ReplicationRule]) -> dict[str, Any]:
    out = []
    for rule in rules:
        doc: dict[str, Any] = {"destinations": [{"region": d.region, "registryId": d.registry_id}
                                                for d in rule.destinations]}
        if rule.prefixes:
            doc["repositoryFilters"] = [{"filter": p, "filterType": "PREFIX_MATCH"} for p in rule.prefixes]
        if rule.delete_replication is not None:
            doc["deleteReplication"] = {"enabled": rule.delete_replication}
        out.append(doc)
    return {"rules": out}


def scanning_to_wire(settings: RegistrySettings) -> dict[str, Any]:
    return {"scanType": settings.scan_type,
            "rules": [{"scanFrequency": r.frequency, "repositoryFilters": _wildcards(r.filters)}
                      for r in settings.scan_rules]}


def _wildcards(filters: Sequence[str]) -> list[dict[str, str]]:
    return [{"filter": f, "filterType": "WILDCARD"} for f in filters]


applied_filters_to_wire = _wildcards


# --- the store ------------------------------------------------------------------------------------


class RegistrySettingsStore:
    """The `ecr.registry` records of an ObjectStore, one per account."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def get(self, account: str) -> RegistrySettings:
        record = self._store.get(KIND, account)
        return RegistrySettings(account) if record is None else _decode(account, record.value)

    def update(self, account: str, change: Callable[[RegistrySettings], RegistrySettings]) -> RegistrySettings:
        """Apply `change` and write it back if nobody wrote in between (else re-read and retry)."""
        for _ in range(_RETRIES):
            record = self._store.get(KIND, account)
            current = RegistrySettings(account) if record is None else _decode(account, record.value)
            new = change(current)
            if new == current and record is not None:
                return current
            try:
                self._store.put(KIND, account, _encode(new), expected_version=record.version if record else 0)
            except VersionConflict:
                continue
            return new
        raise Conflict(f"the registry settings of {account} are being changed concurrently; try again")


class RegistrySettingsService:
    """The registry-level operations of one ECR (`EcrService.settings`)."""

    def __init__(self, store: ObjectStore) -> None:
        self._settings = RegistrySettingsStore(store)

    def get(self, account: str) -> RegistrySettings:
        return self._settings.get(account)

    def put_policy(self, account: str, text: str) -> RegistrySettings:
        check_policy_text(text)
        return self._settings.update(account, lambda s: replace(s, policy=text))

    def policy(self, account: str) -> str:
        text = self._settings.get(account).policy
        if text is None:
            raise RegistryPolicyNotFound(f"Registry policy does not exist in the registry with id '{account}'")
        return text

    def delete_policy(self, account: str) -> str:
        text = self.policy(account)
        self._settings.update(account, lambda s: replace(s, policy=None))
        return text

    def put_replication(self, account: str, rules: tuple[ReplicationRule, ...]) -> RegistrySettings:
        return self._settings.update(account, lambda s: replace(s, replication=rules))

    def put_scanning(self, account: str, scan_type: str, rules: tuple[ScanningRule, ...]) -> RegistrySettings:
        return self._settings.update(account, lambda s: replace(s, scan_type=scan_type, scan_rules=rules))


def _encode(s: RegistrySettings) -> dict[str, Any]:
    return {"policy": s.policy, "replication": replication_to_wire(s.replication)["rules"],
            "scan_type": s.scan_type, "scan_rules": scanning_to_wire(s)["rules"]}


def _decode(account: str, v: Mapping[str, Any]) -> RegistrySettings:
    replication = tuple(ReplicationRule(tuple(Destination(str(d["region"]), str(d["registryId"]))
                                              for d in r.get("destinations") or ()),
                                        tuple(str(f["filter"]) for f in r.get("repositoryFilters") or ()),
                                        (r.get("deleteReplication") or {}).get("enabled"))
                        for r in v.get("replication") or ())
    rules = tuple(ScanningRule(str(r["scanFrequency"]), tuple(str(f["filter"]) for f in r.get("repositoryFilters") or ()))
                  for r in v.get("scan_rules") or ())
    return RegistrySettings(account, v.get("policy"), replication, str(v.get("scan_type") or "BASIC"), rules)
