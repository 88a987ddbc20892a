"""`docker image prune` (POST /images/prune): remove dangling images, or with `-a` every unused one.

Dangling means untagged with no child image, e.g. the previous result of a rebuilt tag or the
intermediate images of a build whose tag moved on. Deleting one also prunes its untagged
parents (build steps), as `docker rmi` does. Images a container uses are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from berth.engine.filters import label_matches
from berth.errors import Conflict, InvalidArgument, NotFound
from berth.images import Image, ImageStore, ImageUser

Users = Callable[[str], Sequence[ImageUser | str]]


def prune_images(store: ImageStore, filters: Mapping[str, list[str]], users: Users) -> dict[str, Any]:
    dangling_only = _dangling_only(filters)
    labels = filters.get("label", [])
    before = _layer_sizes(store)
    deleted: list[dict[str, str]] = []
    progress = True
    while progress:  # deleting a child can turn its parent into a candidate
        progress = False
        for image in _candidates(store, dangling_only, users):
            if not labels_match(image, labels):
                continue
            try:
                records = store.delete(image.id, force=False, prune=True, users=users)
            except (Conflict, NotFound):
                continue
            deleted += records
            progress = progress or any("Deleted" in r for r in records)
    after = _layer_sizes(store)
    reclaimed = sum(size for diff_id, size in before.items() if diff_id not in after)
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}




def _dangling_only(filters: Mapping[str, list[str]]) -> bool:
    for key in filters:
        if key not in ("dangling", "label"):
            raise InvalidArgument(f"invalid filter '{key}'")
    values = [v.lower() for v in filters.get("dangling", [])]
    for value in values:
        if value not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={value}'")
    return not values or any(v in ("true", "1") for v in values)


def _candidates(store: ImageStore, dangling_only: bool, users: Users) -> list[Image]:
    images = store.list()
    parents = {i.parent for i in images if i.parent}
    return [i for i in images
            if i.id not in parents and not users(i.id) and (not dangling_only or not (i.repo_tags or i.repo_digests))]


def _layer_sizes(store: ImageStore) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for image in store.list():
        sizes.update(zip(image.layers, store.layer_sizes(image)))
    return sizes


def labels_match(image: Image, wanted: list[str]) -> bool:
    """`label=k` or `label=k=v`: every one must match (`label!=` is not supported)."""
    labels = (image.config.get("config") or {}).get("Labels") or {}
    return all(label_matches(labels, spec) for spec in wanted)
