"""SSM Parameter Store: parameters with versions, labels and tags; every value sealed at rest.

Lifecycle of one parameter::

    absent --PutParameter--> version 1 --PutParameter(Overwrite)--> version 2 ... (100 kept)
           <--DeleteParameter-- (all versions and tags go)

Selectors: "name", "name:<version>", "name:<label>", and the parameter's ARN
(`arn:aws:ssm:<region>:<account>:parameter/<name without leading slash>`) in place of the name.
A label sits on at most one version; labelling another version moves it.

Values are sealed (`_crypto.Sealer`) with the context ``ssm|<account>|<region>|<name>|<version>``;
`reveal` opens one. String and StringList values are sealed too: one path, nothing in clear.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from berth.secrets import _filters
from berth.secrets._crypto import Sealer
from berth.secrets._errors import (
    HierarchyTypeMismatch, InvalidAllowedPattern, InvalidKeyId, InvalidResourceId, InvalidResourceType, ParameterAlreadyExists,
    ParameterLimitExceeded, ParameterMaxVersionLimitExceeded, ParameterNotFound, ParameterPatternMismatch,
    ParameterVersionLabelLimitExceeded, ParameterVersionNotFound, SsmValidation, TooManyTagsError,
)
from berth.secrets._model import DEFAULT_SSM_KEY, PARAMETER_TYPES, TIERS, Parameter, ParameterVersion
from berth.secrets._names import check_parameter_name, check_path, valid_label
from berth.secrets._store import Records, key
from berth.state import ObjectStore

Clock = Callable[[], float]
KIND = "ssm.parameter"
MAX_VERSIONS = 100
MAX_LABELS = 10
MAX_TAGS = 50
STANDARD_LIMIT = 4096
ADVANCED_LIMIT = 8192
RESOURCE_TYPES = ("Document", "ManagedInstance", "MaintenanceWindow", "Parameter", "PatchBaseline", "OpsItem",
                  "OpsMetadata", "Automation", "Association", "CloudConnector")
_KEY_ID = re.compile(r"alias/[A-Za-z0-9/_-]+|[0-9a-fA-F-]{36}|mrk-[0-9a-f]{32}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:"
                     r"(key/[0-9a-fA-F-]{36}|key/mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]+)")


@dataclass(frozen=True)
class PutParameter:
    """PutParameter's input, as the handler parsed it (None: not given)."""

    name: str
    value: str
    type: str | None = None
    overwrite: bool = False
    description: str | None = None
    key_id: str | None = None
    allowed_pattern: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    tier: str | None = None
    data_type: str | None = None


@dataclass(frozen=True)
class Selected:
    """A parameter version picked by a selector; `selector` is ":3" / ":prod" / ""."""

    parameter: Parameter
    version: ParameterVersion
    selector: str = ""


class ParameterStore:
    """The Parameter Store of every account and region, over the control-plane store.

    Raises the `_errors` kinds (each with SSM's wire code); messages never quote a value.
    """

    def __init__(self, store: ObjectStore, sealer: Sealer, *, clock: Clock = time.time,
                 max_parameters: int = 10_000) -> None:
        self._records: Records[Parameter] = Records(store, KIND, Parameter)
        self._sealer = sealer
        self._clock = clock
        self.max_parameters = max_parameters

    # --- values ------------------------------------------------------------------------------

    def reveal(self, p: Parameter, v: ParameterVersion) -> str:
        """The clear value of one version."""
        return self._sealer.open(v.sealed, _context(p, v.version)).decode()

    # --- writes ------------------------------------------------------------------------------

    def put(self, req: PutParameter, *, account: str, region: str, user: str = "") -> ParameterVersion:
        """Create the parameter or, with `overwrite`, add a version. Returns the new version."""
        _check_put(req, account=account, region=region)
        k = key(account, region, req.name)
        made: list[ParameterVersion] = []

        def change(p: Parameter) -> Parameter:
            if not req.overwrite:
                raise ParameterAlreadyExists("The parameter already exists. To overwrite this value, set the "
                                             "overwrite option in the request to true.")
            new = self._version(req, p, account=account, region=region, user=user)
            made[:] = [new]
            return replace(p, versions=(*_room_for_one(p), new))

        while True:
            if self._records.get(k) is None:
                if len(self._records.list(key(account, region, ""))) >= self.max_parameters:
                    raise ParameterLimitExceeded(
                        "You have exceeded the number of parameters for this Amazon Web Services account. "
                        "Delete one or more parameters and try again.")
                first = self._version(req, None, account=account, region=region, user=user)
                if self._records.create(k, Parameter(req.name, account, region, (first,), dict(req.tags))):
                    return first
                continue  # created meanwhile: overwrite rules apply
            if self._records.update(k, change) is not None:
                return made[0]

    def _version(self, req: PutParameter, p: Parameter | None, *, account: str, region: str,
                 user: str) -> ParameterVersion:
        prev = p.latest if p is not None else None
        kind = req.type or (prev.type if prev else None)
        if kind is None:
            raise SsmValidation("A parameter type is required when you create a parameter.")
        if prev is not None and kind != prev.type:
            raise HierarchyTypeMismatch("Parameter Store doesn't support changing a parameter type in a hierarchy. "
                                        f"You can't change this parameter from a {prev.type} type to a {kind} type. "
                                        "You must create a new, unique parameter.")
        pattern = req.allowed_pattern if req.allowed_pattern is not None else (prev.allowed_pattern if prev else "")
        if pattern and not re.fullmatch(pattern, req.value, re.DOTALL):
            raise ParameterPatternMismatch(f"Parameter value, cannot be validated against allowedPattern: {pattern}")
        key_id = ""
        if kind == "SecureString":
            key_id = req.key_id or (prev.key_id if prev and prev.type == "SecureString" else "") or DEFAULT_SSM_KEY
        number = (prev.version if prev else 0) + 1
        holder = Parameter(req.name, account, region, ())
        return ParameterVersion(
            version=number, type=kind, sealed=self._sealer.seal(req.value.encode(), _context(holder, number)),
            modified_at=self._clock(), modified_user=user,
            description=req.description if req.description is not None else (prev.description if prev else ""),
            allowed_pattern=pattern, key_id=key_id, tier=_tier(req, prev),
            data_type=req.data_type or (prev.data_type if prev else "text"))

    def delete(self, name: str, *, account: str, region: str) -> None:
        k = key(account, region, self._plain_name(name, account, region))
        if not self._records.delete(k):
            raise ParameterNotFound(f"Parameter {name} not found.")

    def delete_many(self, names: Sequence[str], *, account: str, region: str) -> tuple[list[str], list[str]]:
        """(deleted, invalid) names, each in request order."""
        _check_names(names)
        deleted: list[str] = []
        invalid: list[str] = []
        for name in dict.fromkeys(names):
            try:
                self.delete(name, account=account, region=region)
                deleted.append(name)
            except ParameterNotFound:
                invalid.append(name)
        return deleted, invalid

    # --- reads -------------------------------------------------------------------------------

    def get(self, selector: str, *, account: str, region: str) -> Selected:
        """The version a selector names ("name", "name:3", "name:label", or an ARN for the name)."""
        name, sel, account, region = _split(selector, account, region)
        p = self._find(self._arn_name(name, account, region) if selector.startswith("arn:") else name,
                       account, region)
        if p is None:
            raise ParameterNotFound(f"Parameter {selector} not found.")
        if sel is None:
            return Selected(p, p.latest)
        if sel.isdigit():
            found = p.version(int(sel))
            if found is None:
                raise ParameterVersionNotFound(f"Systems Manager could not find version {sel} of {p.name}. "
                                               "Verify the version and try again.")
            return Selected(p, found, f":{sel}")
        labelled = p.labelled(sel)
        if labelled is None:
            raise ParameterNotFound(f"Parameter {selector} not found.")
        return Selected(p, labelled, f":{sel}")

    def get_many(self, selectors: Sequence[str], *, account: str, region: str) -> tuple[list[Selected], list[str]]:
        """(found, invalid selectors), each in request order, duplicates once."""
        _check_names(selectors)
        found: list[Selected] = []
        invalid: list[str] = []
        for s in dict.fromkeys(selectors):
            try:
                found.append(self.get(s, account=account, region=region))
            except (ParameterNotFound, ParameterVersionNotFound, SsmValidation):
                invalid.append(s)
        return found, invalid

    def by_path(self, path: str, *, recursive: bool, filters: Sequence[_filters.StringFilter] = (),
                account: str, region: str) -> list[Selected]:
        """Parameters below `path`, by name; a Label filter picks the labelled version."""
        check_path(path)
        _filters.check_values(filters)
        label = next((f for f in filters if f.key == "Label"), None)
        out: list[Selected] = []
        for p in self._records.list(key(account, region, "")):
            if not _filters.under(p.name, path, recursive):
                continue
            v = next((x for x in reversed(p.versions) if any(lb in label.values for lb in x.labels)), None) \
                if label is not None else p.latest
            if v is not None and all(_filters.matches(p, v, f) for f in filters):
                out.append(Selected(p, v))
        return sorted(out, key=lambda s: s.parameter.name)

    def describe(self, *, filters: Sequence[tuple[str, Sequence[str]]] = (),
                 parameter_filters: Sequence[_filters.StringFilter] = (), account: str, region: str
                 ) -> list[Parameter]:
        """Parameters matching the legacy `Filters` (Name prefix, Type, KeyId) or `ParameterFilters`."""
        if filters and parameter_filters:
            raise SsmValidation("You can use either Filters or ParameterFilters in a single request.")
        _filters.check_values(parameter_filters)
        legacy = [_filters.StringFilter(k, "BeginsWith" if k == "Name" else "Equals", tuple(v)) for k, v in filters]
        for f in legacy:
            if f.key not in ("Name", "Type", "KeyId"):
                raise SsmValidation(f"1 validation error detected: Value '{f.key}' at 'filters.1.member.key' failed "
                                    "to satisfy constraint: Member must satisfy enum value set: [Name, Type, KeyId]")
        wanted = [*legacy, *parameter_filters]
        return [p for p in self._records.list(key(account, region, ""))
                if all(_filters.matches(p, p.latest, f) for f in wanted)]

    def history(self, name: str, *, account: str, region: str) -> Parameter:
        p = self._find(self._plain_name(name, account, region), account, region)
        if p is None:
            raise ParameterNotFound(f"Parameter {name} not found.")
        return p

    # --- labels ------------------------------------------------------------------------------

    def label(self, name: str, labels: Sequence[str], *, version: int | None = None, account: str,
              region: str) -> tuple[list[str], int]:
        """Attach labels to a version (default: the latest), moving them off other versions.
        Returns (invalid labels, the version labelled)."""
        _check_labels(labels)
        invalid = [lb for lb in labels if not valid_label(lb)]
        good = [lb for lb in dict.fromkeys(labels) if valid_label(lb)]
        plain = self._plain_name(name, account, region)
        target: list[int] = []

        def change(p: Parameter) -> Parameter:
            number = p.latest.version if version is None else version
            v = p.version(number)
            if v is None:
                raise ParameterVersionNotFound(f"Systems Manager could not find version {number} of {p.name}. "
                                               "Verify the version and try again.")
            merged = (*v.labels, *(lb for lb in good if lb not in v.labels))
            if len(merged) > MAX_LABELS:
                raise ParameterVersionLabelLimitExceeded(
                    "A parameter version can have maximum 10 labels. Move one or more labels to another version "
                    "and try again.")
            target[:] = [number]
            return replace(p, versions=tuple(
                replace(x, labels=merged) if x.version == number else
                replace(x, labels=tuple(lb for lb in x.labels if lb not in good)) for x in p.versions))

        if self._records.update(key(account, region, plain), change) is None:
            raise ParameterNotFound(f"Parameter {name} not found.")
        return invalid, target[0]

    def unlabel(self, name: str, version: int, labels: Sequence[str], *, account: str,
                region: str) -> tuple[list[str], list[str]]:
        """Detach labels from one version. Returns (removed, invalid: not on that version)."""
        _check_labels(labels)
        plain = self._plain_name(name, account, region)
        removed: list[str] = []

        def change(p: Parameter) -> Parameter:
            v = p.version(version)
            if v is None:
                raise ParameterVersionNotFound(f"Systems Manager could not find version {version} of {p.name}. "
                                               "Verify the version and try again.")
            removed[:] = [lb for lb in dict.fromkeys(labels) if lb in v.labels]
            return replace(p, versions=tuple(
                replace(x, labels=tuple(lb for lb in x.labels if lb not in removed)) if x.version == version else x
                for x in p.versions))

        if self._records.update(key(account, region, plain), change) is None:
            raise ParameterNotFound(f"Parameter {name} not found.")
        return removed, [lb for lb in dict.fromkeys(labels) if lb not in removed]

    # --- tags --------------------------------------------------------------------------------

    def tags(self, resource_type: str, resource_id: str, *, account: str, region: str) -> dict[str, str]:
        _check_resource_type(resource_type)
        p = self._find(self._plain_name(resource_id, account, region), account, region)
        if p is None:
            raise InvalidResourceId("The resource ID isn't valid. Verify that you entered the correct ID and try "
                                    "again.")
        return dict(p.tags)

    def add_tags(self, resource_type: str, resource_id: str, tags: Mapping[str, str], *, account: str,
                 region: str) -> None:
        _check_resource_type(resource_type)
        _check_tags(tags)

        def change(p: Parameter) -> Parameter:
            merged = {**p.tags, **tags}
            if len(merged) > MAX_TAGS:
                raise TooManyTagsError("The Targets parameter includes too many tags. Remove one or more tags and "
                                       "try the command again.")
            return replace(p, tags=merged)

        self._update_resource(resource_id, change, account, region)

    def remove_tags(self, resource_type: str, resource_id: str, keys: Sequence[str], *, account: str,
                    region: str) -> None:
        _check_resource_type(resource_type)
        self._update_resource(resource_id, lambda p: replace(p, tags={
            k: v for k, v in p.tags.items() if k not in keys}), account, region)

    def _update_resource(self, resource_id: str, change: Callable[[Parameter], Parameter], account: str,
                         region: str) -> None:
        plain = self._plain_name(resource_id, account, region)
        if self._records.update(key(account, region, plain), change) is None:
            raise InvalidResourceId("The resource ID isn't valid. Verify that you entered the correct ID and try "
                                    "again.")

    # --- lookup ------------------------------------------------------------------------------

    def _find(self, name: str, account: str, region: str) -> Parameter | None:
        return self._records.get(key(account, region, name)) if name else None

    def _plain_name(self, name: str, account: str, region: str) -> str:
        """A name as given, or the one its ARN names (no selector allowed)."""
        if not name.startswith("arn:"):
            return name
        plain, sel, arn_account, arn_region = _split(name, account, region)
        if sel is not None or (arn_account, arn_region) != (account, region):
            return ""
        return self._arn_name(plain, account, region)

    def _arn_name(self, name: str, account: str, region: str) -> str:
        """An ARN names "/x" and "x" alike: whichever exists (the hierarchical one first)."""
        if not name or self._find(name, account, region) is not None:
            return name
        bare = name.lstrip("/")
        return bare if self._find(bare, account, region) is not None else name


def _split(selector: str, account: str, region: str) -> tuple[str, str | None, str, str]:
    """(name, version-or-label, account, region) of "name[:sel]" or "arn:...:parameter/name[:sel]"."""
    rest = selector
    if selector.startswith("arn:"):
        parts = selector.split(":", 5)
        if len(parts) < 6 or parts[2] != "ssm" or not parts[5].startswith("parameter/"):
            return "", None, account, region
        region, account, rest = parts[3], parts[4], parts[5][len("parameter"):]
    name, colon, sel = rest.partition(":")
    if colon and (not sel or ":" in sel):
        return "", None, account, region
    return name, (sel if colon else None), account, region


def _context(p: Parameter, version: int) -> str:
    return f"ssm|{p.account}|{p.region}|{p.name}|{version}"


def _tier(req: PutParameter, prev: ParameterVersion | None) -> str:
    size = len(req.value.encode())
    tier = req.tier or (prev.tier if prev else "Standard")
    if tier == "Intelligent-Tiering":
        tier = "Standard" if size <= STANDARD_LIMIT and not (prev and prev.tier == "Advanced") else "Advanced"
    if prev is not None and prev.tier == "Advanced" and tier == "Standard":
        raise SsmValidation("This parameter uses the advanced-parameter tier. You can't downgrade a parameter from "
                            "the advanced-parameter tier to the standard-parameter tier. If necessary, you can "
                            "delete the advanced parameter and recreate it as a standard parameter.")
    if tier == "Standard" and size > STANDARD_LIMIT:
        raise SsmValidation("Standard tier parameters support a maximum parameter value of 4096 characters. To "
                            "create a larger parameter value, upgrade the parameter to use the advanced-parameter "
                            "tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/"
                            "userguide/advanced-parameters.html")
    if size > ADVANCED_LIMIT:
        raise SsmValidation("Advanced tier parameters support a maximum parameter value of 8192 characters.")
    return tier


def _check_put(req: PutParameter, *, account: str, region: str) -> None:
    if not req.value:
        raise SsmValidation("1 validation error detected: Value at 'value' failed to satisfy constraint: Member "
                            "must have length greater than or equal to 1.")
    if req.overwrite and req.tags:
        raise SsmValidation("Invalid request: tags and overwrite can't be used together. To create a parameter "
                            "with tags, please remove overwrite flag. To update tags for an existing parameter, "
                            "please use AddTagsToResource or RemoveTagsFromResource.")
    check_parameter_name(req.name, account=account, region=region)
    _enum("type", req.type, PARAMETER_TYPES)
    _enum("tier", req.tier, TIERS)
    if req.data_type not in (None, "text", "aws:ec2:image"):
        raise SsmValidation(f"The following data type is not supported: {req.data_type} (Data type names are all "
                            "lowercase.)")
    if req.description is not None and len(req.description) > 1024:
        raise SsmValidation("1 validation error detected: Value at 'description' failed to satisfy constraint: "
                            "Member must have length less than or equal to 1024")
    if req.key_id is not None:
        if req.type not in (None, "SecureString"):
            raise SsmValidation("KeyId is required for SecureString type parameter only.")
        if not _KEY_ID.fullmatch(req.key_id):
            raise InvalidKeyId(f"Invalid keyId {req.key_id}")
    if req.allowed_pattern is not None:
        if len(req.allowed_pattern) > 1024:
            raise InvalidAllowedPattern("The allowed pattern can be at most 1024 characters long.")
        try:
            re.compile(req.allowed_pattern)
        except re.error as err:
            raise InvalidAllowedPattern(f"The allowed pattern is not a valid regular expression: {err}") from err
    _check_tags(req.tags)


def _check_tags(tags: Mapping[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise TooManyTagsError("The Targets parameter includes too many tags. Remove one or more tags and try the "
                               "command again.")
    for k, v in tags.items():
        if not 1 <= len(k) <= 128 or len(v) > 256:
            raise SsmValidation("1 validation error detected: Value at 'tags' failed to satisfy constraint: a tag "
                                "key has 1 to 128 characters and a tag value at most 256")


def _enum(member: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is not None and value not in allowed:
        raise SsmValidation(f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
                            f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]")


def _check_names(names: Sequence[str]) -> None:
    if not 1 <= len(names) <= 10:
        raise SsmValidation("1 validation error detected: Value at 'names' failed to satisfy constraint: Member "
                            "must have length less than or equal to 10 and greater than or equal to 1")


def _check_labels(labels: Sequence[str]) -> None:
    if not 1 <= len(labels) <= MAX_LABELS:
        raise SsmValidation("1 validation error detected: Value at 'labels' failed to satisfy constraint: Member "
                            "must have length less than or equal to 10 and greater than or equal to 1")


def _check_resource_type(resource_type: str) -> None:
    if resource_type not in RESOURCE_TYPES:
        raise SsmValidation(f"1 validation error detected: Value '{resource_type}' at 'resourceType' failed to "
                            f"satisfy constraint: Member must satisfy enum value set: [{', '.join(RESOURCE_TYPES)}]")
    if resource_type != "Parameter":
        raise InvalidResourceType("The resource type isn't valid. berth's Parameter Store tags parameters only.")


def _room_for_one(p: Parameter) -> tuple[ParameterVersion, ...]:
    """The versions kept when one more is added: the oldest goes at 100, unless it is labelled."""
    if len(p.versions) < MAX_VERSIONS:
        return p.versions
    oldest = p.versions[0]
    if oldest.labels:
        raise ParameterMaxVersionLimitExceeded(
            f"You attempted to create a new version of {p.name} by calling the PutParameter API with the overwrite "
            f"flag. Version {oldest.version}, the oldest version, can't be deleted because it has a label "
            "associated with it. Move the label to another version of the parameter, and try again.")
    return p.versions[1:]
