"""Matching `/v2/...` paths to endpoints (pure).

Repository names contain slashes, so the fixed suffixes are matched from the right (spec §1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    """`kind` is one of: base, catalog, tags, manifest, blob, uploads (start), upload, referrers."""

    kind: str
    name: str = ""
    ref: str = ""


_SUFFIXES = (("/blobs/uploads/", "upload"), ("/manifests/", "manifest"), ("/blobs/", "blob"),
             ("/referrers/", "referrers"))


def match(path: str) -> Route | None:
    """`path` is what follows `/v2/`; None when it names no endpoint."""
    if path == "":
        return Route("base")
    if path == "_catalog":
        return Route("catalog")
    if path.endswith("/tags/list"):
        return Route("tags", path[: -len("/tags/list")])
    for suffix in ("/blobs/uploads/", "/blobs/uploads"):
        if path.endswith(suffix):
            return Route("uploads", path[: -len(suffix)])
    for marker, kind in _SUFFIXES:
        name, sep, ref = path.rpartition(marker)
        if sep and name and ref and "/" not in ref:
            return Route(kind, name, ref)
    return None


def action_for(method: str) -> str:
    if method in ("GET", "HEAD"):
        return "pull"
    if method == "DELETE":
        return "delete"
    return "push"
