"""ECS resource names: ARNs in ECS's long format, and the short forms callers may pass instead.

    arn:aws:ecs:<region>:<account>:cluster/<name>
    arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>
    arn:aws:ecs:<region>:<account>:task/<cluster>/<id>
    arn:aws:ecs:<region>:<account>:service/<cluster>/<name>
    arn:aws:ecs:<region>:<account>:container-instance/<cluster>/<id>
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from berth.ecs._errors import InvalidParameter

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FAMILY_REV_RE = re.compile(r"^([A-Za-z0-9_-]{1,255})(?::(\d+))?$")


@dataclass(frozen=True)
class Scope:
    region: str
    account: str

    def arn(self, resource: str) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:{resource}"


def split_arn(text: str, resource_type: str, field: str = "") -> str | None:
    """The part after `<type>/` of an ECS ARN of that type, None when `text` is not an ARN.
    `field` names the request member in the refusal.

    Raises:
        InvalidParameter: an ARN that is malformed or of another resource type.
    """
    if not text.startswith("arn:"):
        return None
    where = f"{field} " if field else ""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[1] not in ("aws", "aws-cn", "aws-us-gov") or parts[2] != "ecs":
        raise InvalidParameter(f"Invalid identifier: {where}{text!r} is not a valid ECS ARN.")
    kind, sep, rest = parts[5].partition("/")
    if kind != resource_type or not sep or not rest:
        raise InvalidParameter(f"Invalid identifier: {where}{text!r} is not a valid {resource_type} ARN.")
    return rest


def cluster_name(ref: str | None) -> str:
    """`default`, a name, or a cluster ARN → the cluster name."""
    if not ref:
        return "default"
    if not isinstance(ref, str):
        raise InvalidParameter("cluster must be a string")
    rest = split_arn(ref, "cluster", "cluster")
    name = ref if rest is None else rest
    if not _NAME_RE.match(name):
        raise InvalidParameter(f"Invalid identifier: cluster {ref!r} is not a valid cluster name or ARN.")
    return name


def child_id(ref: str, resource_type: str, cluster: str, field: str) -> str:
    """A task / container instance / service reference (short id or long ARN) → its id or name.

    A long ARN names its cluster: it must be the cluster the request is about.
    """
    if not isinstance(ref, str) or not ref:
        raise InvalidParameter(f"{field} must not be empty.")
    rest = split_arn(ref, resource_type, field)
    if rest is None:
        value = ref
    else:
        owner, sep, value = rest.partition("/")
        if not sep:  # old short ARN format: task/<id>
            value = owner
        elif owner != cluster:
            raise InvalidParameter(f"{field} {ref!r} does not belong to cluster {cluster!r}.")
    if not _NAME_RE.match(value):
        raise InvalidParameter(f"Invalid identifier: {field} {ref!r} is malformed.")
    return value


def taskdef_ref(ref: str, field: str = "taskDefinition") -> tuple[str, int | None]:
    """`family`, `family:revision` or a task-definition ARN → (family, revision or None = latest ACTIVE)."""
    if not isinstance(ref, str) or not ref:
        raise InvalidParameter(f"{field} must not be empty.")
    rest = split_arn(ref, "task-definition", field)
    m = _FAMILY_REV_RE.match(ref if rest is None else rest)
    if not m:
        raise InvalidParameter(f"Invalid revision number. Number: {ref!r} is not a valid {field}.")
    return m.group(1), int(m.group(2)) if m.group(2) else None
