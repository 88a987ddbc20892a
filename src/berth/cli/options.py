"""Small flag-value parsers shared by several verbs: filters, labels, restart policies, refs."""

from __future__ import annotations

import json
from collections.abc import Iterable

from berth.errors import InvalidArgument
from berth.types import parse_reference


def parse_filters(items: Iterable[str]) -> dict[str, dict[str, bool]]:
    """`-f name=web -f status=running` -> `{"name":{"web":true},"status":{"running":true}}`.

    Raises:
        ValueError: an item has no `=`, Docker's `bad format of filter (expected name=value)`.
    """
    filters: dict[str, dict[str, bool]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError("bad format of filter (expected name=value)")
        filters.setdefault(key.strip().lower(), {})[value.strip()] = True
    return filters


def filters_param(filters: dict[str, dict[str, bool]]) -> dict[str, str]:
    """The query parameters for a filter map: none when empty, as the docker CLI sends them."""
    return {"filters": json.dumps(filters, separators=(",", ":"))} if filters else {}


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    """`-l a=b -l c` -> `{"a": "b", "c": ""}`."""
    labels = {}
    for item in items:
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


def parse_restart_policy(text: str) -> dict[str, object]:
    """`on-failure:3` -> `{"Name": "on-failure", "MaximumRetryCount": 3}`.

    Raises:
        ValueError: unknown policy name or a bad retry count.
    """
    name, _, count = text.partition(":")
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise ValueError(f"invalid restart policy: {text}")
    if count and name != "on-failure":
        raise ValueError("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    try:
        retries = int(count) if count else 0
    except ValueError:
        raise ValueError("invalid restart policy format: maximum retry count must be an integer") from None
    return {"Name": name, "MaximumRetryCount": retries}


def split_repo_tag(text: str) -> tuple[str, str]:
    """`localhost:5000/bob/cats` -> (`localhost:5000/bob/cats`, `latest`), for `POST /images/X/tag`.

    Raises:
        ValueError: not a valid reference, or a digest reference (cannot be a tag target).
    """
    try:
        ref = parse_reference(text)
    except InvalidArgument as err:
        raise ValueError(str(err)) from None
    if ref.digest:
        raise ValueError("refusing to create a tag with a digest reference")
    return ref.familiar_repository, ref.tag or "latest"


def familiar_ref(text: str) -> str:
    """`busybox` -> `busybox:latest`; the text itself when it does not parse (the daemon decides)."""
    try:
        return parse_reference(text).familiar()
    except InvalidArgument:
        return text


def pull_params(text: str) -> dict[str, str]:
    """The `POST /images/create` query for a pull: full repository name and tag (or digest)."""
    ref = parse_reference(text)
    return {"fromImage": ref.repository, "tag": ref.digest or ref.tag or "latest"}
