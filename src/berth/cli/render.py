"""Rows for `ps` and `images`: the daemon's list items -> the strings docker-cli prints."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from berth.cli.humanize import ago, human_size
from berth.cli.ports import display_ports

PS_HEADERS = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
IMAGES_HEADERS = ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")
_NONE = "<none>"


def short_id(object_id: str) -> str:
    """stringid.TruncateID: drop any `algo:` prefix, keep 12 characters."""
    return object_id.partition(":")[2][:12] if ":" in object_id else object_id[:12]


def ellipsis(text: str, width: int) -> str:
    """Cut to `width` characters, the last one an ellipsis, as docker-cli's formatter.Ellipsis."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


def _names(names: Sequence[str], trunc: bool) -> str:
    stripped = [name[1:] for name in names]
    if trunc:
        # Legacy link names look like `other/alias`; the truncated view shows the real name only.
        stripped = [name for name in stripped if "/" not in name][:1]
    return ",".join(stripped)


def _image(item: Mapping[str, Any], trunc: bool) -> str:
    image = str(item.get("Image") or "")
    if not image:
        return "<no image>"
    if trunc:
        image_id = str(item.get("ImageID") or "")
        if image_id and short_id(image_id) == short_id(image):
            return short_id(image_id)
        if "@" in image:
            return image.partition("@")[0]
    return image


def container_row(item: Mapping[str, Any], now: float, trunc: bool = True) -> list[str]:
    """One `ps` row from a `GET /containers/json` item."""
    command = str(item.get("Command") or "")
    created = item.get("Created")
    return [
        short_id(str(item.get("Id") or "")) if trunc else str(item.get("Id") or ""),
        _image(item, trunc),
        json.dumps(ellipsis(command, 20) if trunc else command, ensure_ascii=False),
        ago(float(created), now) if created else "",
        str(item.get("Status") or ""),
        display_ports(item.get("Ports") or []),
        _names(item.get("Names") or [], trunc),
    ]


def _split_tag(repo_tag: str) -> tuple[str, str]:
    repo, sep, tag = repo_tag.rpartition(":")
    if not sep or "/" in tag:
        return repo_tag, _NONE
    return repo, tag


def _repos_and_tags(item: Mapping[str, Any]) -> list[tuple[str, str]]:
    tags = [t for t in item.get("RepoTags") or [] if t != "<none>:<none>"]
    if tags:
        return [_split_tag(tag) for tag in tags]
    digests = [d for d in item.get("RepoDigests") or [] if d != "<none>@<none>"]
    if digests:
        return [(digests[0].partition("@")[0], _NONE)]
    return [(_NONE, _NONE)]


def image_rows(item: Mapping[str, Any], now: float, trunc: bool = True) -> list[list[str]]:
    """`images` rows for one `GET /images/json` item: one per tag, `<none>` when untagged."""
    image_id = str(item.get("Id") or "")
    shown_id = short_id(image_id) if trunc else image_id
    created = item.get("Created")
    created_text = ago(float(created), now) if created else ""
    size = human_size(float(item.get("Size") or 0))
    return [[repo, tag, shown_id, created_text, size] for repo, tag in _repos_and_tags(item)]
