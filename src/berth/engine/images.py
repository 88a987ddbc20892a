"""ImageService: Docker semantics and JSON shapes for images over the ImageStore.

Shapes follow the Engine API 1.50 (`GET /images/json`, `/images/{name}/json`,
`/images/{name}/history`); the filter rules are moby's (`reference` uses path.Match on the
familiar name, `dangling`, `label`, `before`, `since`, `until`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO

from berth.errors import InvalidArgument, NotFound
from berth.engine.image_prune import labels_match, prune_images
from berth.images import Image, ImageStore, ImageUser
from berth.types import parse_reference
from berth.types.pathmatch import path_match

ZERO_TIME = "0001-01-01T00:00:00Z"
_FILTER_KEYS = {"reference", "dangling", "label", "before", "since", "until"}
_CONFIG_DEFAULTS: dict[str, Any] = {
    "Cmd": None, "Entrypoint": None, "Env": None, "Labels": None, "OnBuild": None,
    "User": "", "Volumes": None, "WorkingDir": "",
}

Filters = Mapping[str, Iterable[str] | Mapping[str, bool]]


class ImageService:
    """The engine's image verbs; blocking (the API runs them in threads)."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store

    def list_json(self, *, all: bool = False, filters: Filters | None = None) -> list[dict[str, Any]]:
        """`GET /images/json` items, newest first."""
        wanted = normalise_filters(filters or {})
        images = self.store.list()
        with_children = {i.parent for i in images if i.parent}
        window = self._time_window(wanted)
        items = []
        for image in images:
            item = _list_item(image, wanted, show_dangling=all or image.id not in with_children)
            if item is not None and window(image) and labels_match(image, wanted.get("label", [])):
                items.append(item)
        return sorted(items, key=lambda i: (i["Created"], i["Id"]), reverse=True)

    def _time_window(self, wanted: dict[str, list[str]]) -> Callable[[Image], bool]:
        before = [_unix(self.store.resolve(n).created) for n in wanted.get("before", [])]
        since = [_unix(self.store.resolve(n).created) for n in wanted.get("since", [])]
        until = [_timestamp(v) for v in wanted.get("until", [])]

        def inside(image: Image) -> bool:
            created = _unix(image.created)
            return (all(created < b for b in before) and all(created > s for s in since)
                    and all(created <= u for u in until))
        return inside

    def inspect_json(self, name: str) -> dict[str, Any]:
        """`GET /images/{name}/json`."""
        image = self.store.resolve(name)
        config = image.config
        return {
            "Id": image.id,
            "RepoTags": list(image.repo_tags),
            "RepoDigests": list(image.repo_digests),
            "Parent": image.parent,
            "Comment": config.get("comment", ""),
            "Created": image.created,
            "DockerVersion": config.get("docker_version", ""),
            "Author": config.get("author", ""),
            "Config": {**_CONFIG_DEFAULTS, **(config.get("config") or {})},
            "Architecture": config.get("architecture", ""),
            **({"Variant": config["variant"]} if config.get("variant") else {}),
            "Os": config.get("os", ""),
            "Size": image.size,
            "GraphDriver": {"Name": "overlay2", "Data": self._graph_data(image)},
            "RootFS": {"Type": "layers", "Layers": list(image.layers)},
            "Metadata": {"LastTagTime": image.last_tag_time or ZERO_TIME},
        }

    def _graph_data(self, image: Image) -> dict[str, str]:
        paths = [str(p) for p in self.store.layer_paths(image)]
        data = {"UpperDir": paths[0]} if paths else {}
        if len(paths) > 1:
            data["LowerDir"] = ":".join(paths[1:])
        return data

    def history_json(self, name: str) -> list[dict[str, Any]]:
        """`GET /images/{name}/history`: newest first; rows below the image read "<missing>"."""
        image = self.store.resolve(name)
        rows = history_rows(image, self.store.layer_sizes(image))
        current: Image | None = image
        for row in rows:
            if current is None:
                break
            row["Id"] = current.id
            row["Tags"] = list(current.repo_tags) or None
            current = self._parent(current)
        return rows

    def _parent(self, image: Image) -> Image | None:
        if not image.parent:
            return None
        try:
            return self.store.resolve(image.parent)
        except NotFound:  # a parent deleted with --force; Docker stops the walk there too
            return None

    def tag(self, source: str, repo: str, tag: str | None) -> None:
        """`POST /images/{name}/tag?repo=&tag=`."""
        if not repo:
            raise InvalidArgument("repository name must have at least one component")
        self.store.tag(source, f"{repo}:{tag}" if tag else repo)

    def remove(self, name: str, *, force: bool, noprune: bool,
               users: Callable[[str], Sequence[ImageUser | str]]) -> list[dict[str, str]]:
        """`DELETE /images/{name}`."""
        return self.store.delete(name, force=force, prune=not noprune, users=users)

    def prune(self, filters: Filters, users: Callable[[str], Sequence[ImageUser | str]]) -> dict[str, Any]:
        """`POST /images/prune`: {"ImagesDeleted": [...], "SpaceReclaimed": bytes}."""
        return prune_images(self.store, {k: list(v) for k, v in filters.items()}, users)

    def load(self, stream: BinaryIO, quiet: bool = False) -> list[str]:
        """`POST /images/load`: the "Loaded image: ..." lines (the API frames them as a stream)."""
        return self.store.load(stream)

    def save(self, names: list[str], out: BinaryIO) -> None:
        """`GET /images/get?names=..` and `GET /images/{name}/get`."""
        self.store.save(names, out)

    def import_(self, stream: BinaryIO, repo: str | None, tag: str | None, changes: list[str],
                message: str, platform: str | None = None) -> str:
        """`POST /images/create?fromSrc=-`; returns the new image id."""
        reference = None
        if repo:
            reference = f"{repo}:{tag}" if tag else repo
            parse_reference(reference)
        image = self.store.import_tar(stream, reference, changes, message, platform=platform)
        return image.id


# pure helpers: filters and shapes


def normalise_filters(filters: Filters) -> dict[str, list[str]]:
    """Accept `{k: {v: true}}` (current clients) and `{k: [v]}` (old ones); check the keys."""
    out: dict[str, list[str]] = {}
    for key, values in filters.items():
        if key not in _FILTER_KEYS:
            raise InvalidArgument(f"invalid filter '{key}'")
        if isinstance(values, Mapping):
            out[key] = [v for v, on in values.items() if on]
        elif isinstance(values, str):
            out[key] = [values]
        else:
            out[key] = list(values)
    for value in out.get("dangling", []):
        if value.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"Invalid filter 'dangling={value}'")
    return out


def _list_item(image: Image, wanted: dict[str, list[str]], *, show_dangling: bool) -> dict[str, Any] | None:
    patterns = wanted.get("reference", [])
    tags = [t for t in image.repo_tags if not patterns or _reference_match(patterns, t)]
    digests = [d for d in image.repo_digests if not patterns or _reference_match(patterns, d)]
    dangling = [v.lower() in ("true", "1") for v in wanted.get("dangling", [])]
    if not tags and not digests:
        if patterns or not show_dangling or (dangling and not any(dangling)):
            return None
    elif dangling and all(dangling) and tags:
        return None
    config = image.config.get("config") or {}
    return {
        "Containers": -1,
        "Created": _unix(image.created),
        "Id": image.id,
        "Labels": config.get("Labels") or {},
        "ParentId": image.parent,
        "RepoDigests": digests,
        "RepoTags": tags,
        "SharedSize": -1,
        "Size": image.size,
    }


def _reference_match(patterns: list[str], familiar: str) -> bool:
    """moby's reference.FamiliarMatch: the pattern against `repo:tag`, then against `repo`."""
    repo = familiar.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    return any(path_match(p, familiar) or path_match(p, repo) for p in patterns)






def history_rows(image: Image, layer_sizes: Sequence[int]) -> list[dict[str, Any]]:
    """One row per history entry (or per layer when the config has none), newest first."""
    history = image.config.get("history") or [
        {"created": image.created, "created_by": ""} for _ in image.layers
    ]
    rows, layer = [], 0
    for entry in history:
        size = 0
        if not entry.get("empty_layer"):
            size = layer_sizes[layer] if layer < len(layer_sizes) else 0
            layer += 1
        rows.append({
            "Comment": entry.get("comment", ""),
            "Created": _unix(entry.get("created", "")),
            "CreatedBy": entry.get("created_by", ""),
            "Id": "<missing>",
            "Size": size,
            "Tags": None,
        })
    return rows[::-1]


def _unix(created: str) -> int:
    """Unix seconds of an RFC3339 timestamp (nanoseconds allowed); 0 when absent or malformed."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", created or "")
    if not match:
        return 0
    zone = match.group(3) or "Z"
    stamp = datetime.fromisoformat(match.group(1) + ("+00:00" if zone == "Z" else zone))
    return int(stamp.astimezone(UTC).timestamp())


def _timestamp(value: str) -> int:
    """A filter timestamp: unix seconds (maybe fractional) or RFC3339."""
    try:
        return int(float(value))
    except ValueError:
        pass
    except OverflowError as err:  # "1e400"
        raise InvalidArgument(f"invalid filter value {value!r}: not a timestamp") from err
    seconds = _unix(value if "T" in value else value + "T00:00:00Z")
    if not seconds:
        raise InvalidArgument(f"invalid filter value {value!r}: not a timestamp")
    return seconds
