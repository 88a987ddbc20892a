"""ImageStore: images by ID and reference, over a blob store, layer snapshots and the Database.

Vocabulary:
    image id   "sha256:<hex>" of the config JSON bytes exactly as stored
    diff_id    digest of one uncompressed layer tar; layer blobs are stored uncompressed, so a
               layer's blob digest is its diff_id
    chain id   identity of a layer together with all layers below it; names the snapshot dir
    reference  a normalised name, "docker.io/library/busybox:latest" (or "<repo>@sha256:..");
               shown to users in familiar form, "busybox:latest"

Every write is staged first (blobs in blobs/tmp, snapshots in layers/.tmp-*), checked, and only
then made visible: blobs are renamed into place, then one database transaction adds the images and
tags. A failed load or import therefore leaves no visible blob, image or tag behind.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import logging
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from berth.errors import BerthError, Conflict, InvalidArgument, NotFound
from berth.images import _busybox
from berth.images._archive_load import ArchiveImage, SpooledArchive, read_images, spool
from berth.images._archive_save import SaveImage, write_archive
from berth.images._blobs import BlobStore
from berth.images._changes import apply_changes
from berth.images._layers import SnapshotStore, StagedLayer, chain_ids, stage_layer
from berth.images._metadata import ImageIndex, ImageRow, TagRow
from berth.state import Database
from berth.types import Digest, Reference, parse_reference

log = logging.getLogger(__name__)

_FULL_ID_RE = re.compile(r"^(sha256:)?[0-9a-f]{64}$")
_ID_PREFIX_RE = re.compile(r"^(sha256:)?[0-9a-f]{1,64}$")


@dataclass(frozen=True)
class Image:
    id: str                         # "sha256:<hex>" of the config blob
    config: dict[str, Any]          # parsed image config JSON
    repo_tags: tuple[str, ...]      # familiar form, "busybox:latest"
    repo_digests: tuple[str, ...]   # familiar form, "busybox@sha256:..."
    layers: tuple[str, ...]         # diff_ids, lowest first
    size: int                       # sum of the layers' file sizes
    created: str                    # RFC3339 from the config
    parent: str = ""                # builder parent image id, "" when none
    last_tag_time: str = ""         # RFC3339 of the latest tag change, "" when never tagged


@dataclass(frozen=True)
class ImageUser:
    """A container using an image, as `delete`'s `users` callback reports it.

    The callback may also return bare container ids; those count as stopped containers.
    """

    container_id: str
    running: bool = False


Users = Callable[[str], Sequence["ImageUser | str"]]


@dataclass(frozen=True)
class _NewImage:
    """An image about to be committed: exact config bytes, layers, and references to set."""

    config: bytes
    diff_ids: tuple[str, ...]
    refs: tuple[Reference, ...]
    parent: str = ""


class ImageStore:
    """Local images: see the module docstring for the vocabulary and the write protocol."""

    def __init__(self, root: Path, db: Database) -> None:
        self.root = Path(root)
        self._blobs = BlobStore(self.root)
        self._snapshots = SnapshotStore(self.root, self._blobs)
        self._index = ImageIndex(db)
        self._db = db
        # Serialises reference moves and deletions with layer garbage collection; reads do not
        # take it (SQLite gives them a consistent view).
        self._lock = threading.RLock()

    def recover(self) -> None:
        """Drop staging left by a crash (half-written blobs, half-unpacked layers).

        Call once at daemon start, before any load or unpack runs.
        """
        self._blobs.clear_tmp()
        self._snapshots.clear_tmp()

    # lookup

    def resolve(self, name: str) -> Image:
        """An image by reference, full ID, or unique ID prefix (with or without `sha256:`).

        Raises:
            NotFound: "No such image: <name>" (the name in familiar form when it parses).
            InvalidArgument: `name` is neither a reference nor an ID prefix.
        """
        image_id = self._lookup(name)
        image = self._image(image_id) if image_id else None
        if image is None:
            raise NotFound(f"No such image: {_familiar_or_raw(name)}")
        return image

    def list(self) -> builtins.list[Image]:
        tags = self._tags_by_image()
        return [self._to_image(row, tags.get(row.id, [])) for row in self._index.images()]

    def _lookup(self, name: str) -> str | None:
        if _FULL_ID_RE.match(name):
            return "sha256:" + name.removeprefix("sha256:")
        ref = _try_parse(name)
        if ref is not None:
            image_id = self._index.tag_target(str(ref))
            if image_id:
                return image_id
        if _ID_PREFIX_RE.match(name):
            ids = self._index.ids_with_prefix(name.removeprefix("sha256:"))
            return ids[0] if len(ids) == 1 else None
        if ref is None:
            parse_reference(name)  # raises InvalidArgument with Docker's wording
        return None

    def _image(self, image_id: str) -> Image | None:
        row = self._index.image(image_id)
        return self._to_image(row, self._index.tags(image_id)) if row else None

    def _tags_by_image(self) -> dict[str, builtins.list[TagRow]]:
        out: dict[str, builtins.list[TagRow]] = {}
        for tag in self._index.tags():
            out.setdefault(tag.image_id, []).append(tag)
        return out

    @staticmethod
    def _to_image(row: ImageRow, tags: Sequence[TagRow]) -> Image:
        refs = [parse_reference(t.reference) for t in tags]
        return Image(
            id=row.id,
            config=json.loads(row.config),
            repo_tags=tuple(r.familiar() for r in refs if not r.digest),
            repo_digests=tuple(r.familiar() for r in refs if r.digest),
            layers=row.layers,
            size=row.size,
            created=row.created,
            parent=row.parent,
            last_tag_time=max((t.tagged_at for t in tags), default=""),
        )

    # references

    def tag(self, source: str, target_ref: str) -> None:
        """Point `target_ref` (e.g. "127.0.0.1:5000/bob/cats:latest") at the image `source`."""
        image = self.resolve(source)
        ref = parse_reference(target_ref)
        if ref.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        with self._lock, self._db.transaction() as conn:
            self._index.set_tag(conn, _tag_row(ref, image.id))

    def untag(self, ref: str) -> None:
        parsed = parse_reference(ref)
        with self._lock, self._db.transaction() as conn:
            if not self._index.remove_tag(conn, str(parsed)):
                raise NotFound(f"No such image: {parsed.familiar()}")

    def references(self, image_id: str) -> builtins.list[Reference]:
        return [parse_reference(t.reference) for t in self._index.tags(image_id)]

    # deletion (Docker rmi semantics, after moby daemon/images/image_delete.go)

    def delete(self, name: str, *, force: bool, prune: bool, users: Users) -> builtins.list[dict[str, str]]:
        """Untag and/or delete like `docker rmi`; returns [{"Untagged": ..}, {"Deleted": ..}].

        Deviation from Docker: `force` never deletes the data of an image a container still uses
        (its layers are that container's lowerdirs); the image is untagged and kept, dangling.

        Raises:
            NotFound: no such image.
            Conflict: in use, or referenced in several repositories, in moby's wording.
        """
        with self._lock:
            image = self.resolve(name)
            if _is_id_prefix(image.id, name):
                return self._delete_by_id(image, force=force, prune=prune, users=users)
            return self._delete_by_ref(name, image, force=force, prune=prune, users=users)

    def _delete_by_ref(self, name: str, image: Image, *, force: bool, prune: bool,
                       users: Users) -> builtins.list[dict[str, str]]:
        refs = self.references(image.id)
        if not force and _single_repository(refs):
            in_use = _users(users, image.id)
            if in_use:
                raise Conflict(
                    f"conflict: unable to remove repository reference {json.dumps(name)} (must force)"
                    f" - container {in_use[0].container_id[:12]} is using its referenced image"
                    f" {Digest(image.id).short}")
        ref = parse_reference(name)
        records = self._untag(ref)
        remaining = self.references(image.id)
        if not ref.digest and not any(r.repository == ref.repository and not r.digest for r in remaining):
            # The last tag of this repository went: its digest references go too (as Docker).
            for other in [r for r in remaining if r.digest and r.repository == ref.repository]:
                records += self._untag(other)
        if self.references(image.id):
            return records
        return records + self._delete_helper(image, force=force, prune=prune, quiet=True, users=users)

    def _delete_by_id(self, image: Image, *, force: bool, prune: bool,
                      users: Users) -> builtins.list[dict[str, str]]:
        records: builtins.list[dict[str, str]] = []
        refs = self.references(image.id)
        if _single_repository(refs):
            self._check_conflicts(image, users, hard=True, soft=not force, references=False)
            for ref in refs:
                records += self._untag(ref)
        return records + self._delete_helper(image, force=force, prune=prune, quiet=False, users=users)

    def _delete_helper(self, image: Image, *, force: bool, prune: bool, quiet: bool,
                       users: Users) -> builtins.list[dict[str, str]]:
        try:
            self._check_conflicts(image, users, hard=True, soft=not force, references=True)
        except _DeleteConflict as conflict:
            # moby ignores the conflict unless the image is dangling (untagged and childless).
            if quiet and (self.references(image.id) or self._index.children(image.id) or conflict.used):
                return []
            raise
        records: builtins.list[dict[str, str]] = []
        for ref in self.references(image.id):
            records += self._untag(ref)
        if _users(users, image.id):
            return records  # forced while a (stopped) container uses it: keep the data
        records += self._remove_image(image)
        parent = self._image(image.parent) if prune and image.parent else None
        if parent is not None:
            records += self._delete_helper(parent, force=False, prune=True, quiet=True, users=users)
        return records

    def _check_conflicts(self, image: Image, users: Users, *, hard: bool, soft: bool,
                         references: bool) -> None:
        in_use = _users(users, image.id)
        running = [u for u in in_use if u.running]
        stopped = [u for u in in_use if not u.running]
        if hard and self._index.children(image.id):
            raise _DeleteConflict(image.id, True, False, "image has dependent child images")
        if hard and running:
            raise _DeleteConflict(image.id, True, True,
                                  f"image is being used by running container {running[0].container_id[:12]}")
        if soft and references and self.references(image.id):
            raise _DeleteConflict(image.id, False, False, "image is referenced in multiple repositories")
        if soft and stopped:
            raise _DeleteConflict(image.id, False, True,
                                  f"image is being used by stopped container {stopped[0].container_id[:12]}")

    def _untag(self, ref: Reference) -> builtins.list[dict[str, str]]:
        with self._db.transaction() as conn:
            removed = self._index.remove_tag(conn, str(ref))
        return [{"Untagged": ref.familiar()}] if removed else []

    def _remove_image(self, image: Image) -> builtins.list[dict[str, str]]:
        """Delete the image row, then whatever blobs and snapshots nothing else uses."""
        with self._db.transaction() as conn:
            orphans = set(self._index.delete_image(conn, image.id))
        records = [{"Deleted": image.id}]
        in_use = {c for row in self._index.images() for c in chain_ids(row.layers)}
        for diff_id, chain_id in zip(image.layers, chain_ids(image.layers)):
            if chain_id not in in_use:
                self._snapshots.remove(chain_id)
                records.append({"Deleted": chain_id})
            if diff_id in orphans:
                self._blobs.delete(Digest(diff_id))
        self._blobs.delete(Digest(image.id))
        return records

    # snapshots

    def layer_dirs(self, image: Image) -> builtins.list[Path]:
        """Snapshot dirs of `image`, topmost first (overlay lowerdir order), unpacking as needed."""
        dirs = [self._snapshots.ensure(c, d) for c, d in zip(chain_ids(image.layers), image.layers)]
        return dirs[::-1]

    def layer_paths(self, image: Image) -> builtins.list[Path]:
        """Where `layer_dirs` puts the snapshots, topmost first, without unpacking anything."""
        return [self._snapshots.path(c) for c in chain_ids(image.layers)][::-1]

    def layer_sizes(self, image: Image) -> builtins.list[int]:
        """Each layer's file-size total, lowest first (for `docker history`)."""
        return [self._index.layer_size(d) for d in image.layers]

    def blob_path(self, digest: str) -> Path:
        """Path of a committed blob (config or uncompressed layer tar), for push and export."""
        return self._blobs.path(Digest(digest))

    # loading and creating images

    def load(self, stream: BinaryIO) -> builtins.list[str]:
        """`docker load`: a docker-archive or OCI-layout tar; returns Docker's "Loaded image" lines.

        Raises:
            InvalidArgument: not a valid archive, or a layer does not match the config's diff_ids.
        """
        with self._staging() as staging:
            archive = spool(stream, staging)
            found = read_images(archive, ("linux", _busybox.host_architecture()))
            with contextlib.ExitStack() as writers:
                staged: dict[str, StagedLayer] = {}
                new = [self._stage_archive_image(a, archive, staged, writers) for a in found]
                committed = self._commit(new, list(staged.values()))
        return [line for n, (image, moved) in zip(new, committed) for line in _load_messages(n, image, moved)]

    def _stage_archive_image(self, found: ArchiveImage, archive: SpooledArchive,
                             staged: dict[str, StagedLayer], writers: contextlib.ExitStack) -> _NewImage:
        diff_ids = _config_diff_ids(found.config)
        if len(diff_ids) != len(found.layers):
            raise InvalidArgument(
                f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, got {len(found.layers)}")
        for i, (member, expected) in enumerate(zip(found.layers, diff_ids)):
            if member not in staged:
                with archive.get(member).open() as src:
                    staged[member] = stage_layer(self._blobs, src, writers.enter_context(self._blobs.writer()))
            if str(staged[member].diff_id) != expected:
                raise InvalidArgument(
                    f"invalid diffID for layer {i}: expected {expected!r}, got {str(staged[member].diff_id)!r}")
        return _NewImage(config=found.config, diff_ids=tuple(diff_ids),
                         refs=tuple(parse_reference(r) for r in found.refs))

    def import_tar(self, stream: BinaryIO, reference: str | None, changes: Sequence[str] = (),
                   message: str = "", *, platform: str | None = None) -> Image:
        """`docker import`: a rootfs tar (maybe compressed) becomes a one-layer image."""
        refs = (parse_reference(reference),) if reference else ()
        config_changes = apply_changes({}, changes)
        os_name, arch = _platform(platform)
        with self._blobs.writer() as writer:
            layer = stage_layer(self._blobs, stream, writer)
            now = _now()
            comment = message or "Imported from -"
            config = {
                "architecture": arch,
                "comment": comment,
                "config": config_changes,
                "created": now,
                "history": [{"created": now, "comment": comment}],
                "os": os_name,
                "rootfs": {"type": "layers", "diff_ids": [str(layer.diff_id)]},
            }
            new = _NewImage(_json_bytes(config), (str(layer.diff_id),), refs)
            image, _ = self._commit([new], [layer])[0]
        return image

    def add_image(self, config: dict[str, Any], layer_tars: builtins.list[Path], reference: str | None, *,
                  parent: str = "", base_layers: Sequence[str] = ()) -> Image:
        """Create an image from a config and layer tars (the builder's entry point).

        `base_layers` are diff_ids already in the store that go below the new tars (a build
        step's parent layers, so they are not copied again). `config.rootfs.diff_ids` is
        filled in (and checked if already present).

        Raises:
            NotFound: a base layer is not in the store.
        """
        refs = (parse_reference(reference),) if reference else ()
        for diff_id in base_layers:
            if not self._blobs.has(Digest(diff_id)):
                raise NotFound(f"layer {diff_id} not found")
        with contextlib.ExitStack() as writers:
            layers = []
            for path in layer_tars:
                with path.open("rb") as src:
                    layers.append(stage_layer(self._blobs, src, writers.enter_context(self._blobs.writer())))
            diff_ids = [*base_layers, *(str(layer.diff_id) for layer in layers)]
            existing = (config.get("rootfs") or {}).get("diff_ids")
            if existing is not None and list(existing) != diff_ids:
                raise InvalidArgument("config rootfs.diff_ids do not match the layer tars")
            config = {**config, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
            new = _NewImage(_json_bytes(config), tuple(diff_ids), refs, parent)
            image, _ = self._commit([new], layers)[0]
        return image

    def add_pulled(self, config: bytes, layers: Sequence[Path | None], references: Sequence[str], *,
                   staged: Callable[[int], None] | None = None) -> Image:
        """Commit a pulled image (the distribution client's entry point).

        `config` is kept byte for byte (its digest is the image id). `layers` holds one downloaded
        blob per config diff_id, lowest first, compressed or not, or None for a layer stored
        already. `references` may mix tags and `repo@sha256:..` digests. `staged(i)` is called
        after layer i is unpacked into staging (for progress).

        Raises:
            InvalidArgument: a layer does not match its diff_id, or the counts differ.
        """
        diff_ids = _config_diff_ids(config)
        if len(diff_ids) != len(layers):
            raise InvalidArgument(
                f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, got {len(layers)}")
        refs = tuple(parse_reference(r) for r in references)
        with contextlib.ExitStack() as writers:
            new_layers: builtins.list[StagedLayer] = []
            for i, (path, expected) in enumerate(zip(layers, diff_ids)):
                if path is not None and not self.has_layer(expected):
                    with path.open("rb") as src:
                        layer = stage_layer(self._blobs, src, writers.enter_context(self._blobs.writer()))
                    if str(layer.diff_id) != expected:
                        raise InvalidArgument(
                            f"invalid diffID for layer {i}: expected {expected!r}, got {str(layer.diff_id)!r}")
                    new_layers.append(layer)
                if staged is not None:
                    staged(i)
            image, _ = self._commit([_NewImage(config, tuple(diff_ids), refs)], new_layers)[0]
        return image

    def has_layer(self, diff_id: str) -> bool:
        """True when the layer's (uncompressed) blob is stored, so a pull can skip it."""
        return self._blobs.has(Digest(diff_id))

    def add_digest_reference(self, image_id: str, reference: str) -> None:
        """Record `repo@sha256:..` for an image (after a push), shown as one of its RepoDigests."""
        ref = parse_reference(reference)
        if not ref.digest:
            raise InvalidArgument(f"{reference!r} is not a digest reference")
        with self._lock, self._db.transaction() as conn:
            self._index.set_tag(conn, _tag_row(ref, image_id))

    def bootstrap_busybox(self, reference: str = "busybox:latest") -> Image:
        """Create (or re-tag) the busybox image built from the host's /bin/busybox."""
        ref = parse_reference(reference)
        binary, applets = _busybox.read_busybox()
        tar_bytes = _busybox.rootfs_tar(binary, applets)
        with self._blobs.writer() as writer:
            layer = stage_layer(self._blobs, io.BytesIO(tar_bytes), writer)
            config = _busybox.image_config(str(layer.diff_id), _busybox.host_architecture())
            image, _ = self._commit([_NewImage(config, (str(layer.diff_id),), (ref,))], [layer])[0]
        return image

    def _commit(self, images: builtins.list[_NewImage], layers: builtins.list[StagedLayer]
                ) -> builtins.list[tuple[Image, builtins.list[tuple[Reference, str]]]]:
        """Make staged layers, configs, images and tags visible; returns each image with the
        references it took from other images (for Docker's "renaming the old one" message)."""
        rows = [self._image_row(new, layers) for new in images]
        with self._lock:
            # Layers a caller found stored before it staged the rest may have been deleted since
            # (`docker rmi` during a pull): re-check under the lock that guards deletion.
            staged = {str(layer.diff_id) for layer in layers}
            for new in images:
                for diff_id in new.diff_ids:
                    if diff_id not in staged and not self.has_layer(diff_id):
                        raise Conflict(f"layer {diff_id} was removed while the image was being added; retry")
            for layer in layers:
                layer.writer.commit(layer.diff_id)
            for new in images:
                self._blobs.put(new.config)
            moved: builtins.list[builtins.list[tuple[Reference, str]]] = []
            with self._db.transaction() as conn:
                for layer in layers:
                    self._index.insert_layer(conn, str(layer.diff_id), layer.size)
                for new, row in zip(images, rows):
                    self._index.insert_image(conn, row)
                    moved.append(self._set_tags(conn, new.refs, row.id))
        results = []
        for row, took in zip(rows, moved):
            image = self._image(row.id)
            assert image is not None
            self._unpack_quietly(image)
            results.append((image, took))
        return results

    def _image_row(self, new: _NewImage, layers: builtins.list[StagedLayer]) -> ImageRow:
        config = _parse_config(new.config)
        sizes = {str(layer.diff_id): layer.size for layer in layers}
        size = sum(sizes.get(d, self._index.layer_size(d)) for d in new.diff_ids)
        return ImageRow(
            id=str(Digest.of(new.config)), config=new.config.decode(), created=str(config.get("created") or ""),
            size=size, layers=new.diff_ids, parent=new.parent, added_at=_now(),
        )

    def _set_tags(self, conn: Any, refs: Sequence[Reference], image_id: str) -> builtins.list[tuple[Reference, str]]:
        took = []
        for ref in refs:
            old = self._index.set_tag(conn, _tag_row(ref, image_id))
            if old:
                took.append((ref, old))
        return took

    def _unpack_quietly(self, image: Image) -> None:
        """Unpack now so the first container start does not pay for it; failures wait for then."""
        try:
            self.layer_dirs(image)
        except (OSError, BerthError) as err:
            log.warning("unpacking %s failed (retried on use): %s", image.id, err)

    @contextlib.contextmanager
    def _staging(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(dir=self._blobs.tmp_dir, prefix="load-") as tmp:
            yield Path(tmp)

    # saving

    def save(self, names: builtins.list[str], out: BinaryIO) -> None:
        """`docker save`: a docker-archive tar that is also an OCI layout (Docker 25+ format)."""
        selected: dict[str, builtins.list[Reference]] = {}
        for name in names:
            for image_id, refs in self._save_selection(name):
                known = selected.setdefault(image_id, [])
                known.extend(r for r in refs if r not in known)
        images = []
        for image_id, refs in selected.items():
            image = self._image(image_id)
            assert image is not None
            images.append(SaveImage(Digest(image.id), tuple(Digest(d) for d in image.layers), tuple(refs)))
        write_archive(out, images, self._blobs)

    def _save_selection(self, name: str) -> builtins.list[tuple[str, builtins.list[Reference]]]:
        """What `docker save NAME` writes: an ID saves no tag, `repo:tag` that tag, and a bare
        `repo` every tagged image of the repository."""
        ref = _try_parse(name)
        if ref is not None and not _has_tag_or_digest(name):
            tags = [t for t in self._index.tags() if t.repository == ref.repository
                    and not parse_reference(t.reference).digest]
            if tags:
                by_image: dict[str, builtins.list[Reference]] = {}
                for t in tags:
                    by_image.setdefault(t.image_id, []).append(parse_reference(t.reference))
                return list(by_image.items())
        image = self.resolve(name)
        if _is_id_prefix(image.id, name) or ref is None or ref.digest:
            return [(image.id, [])]
        return [(image.id, [ref])]


class _DeleteConflict(Conflict):
    """moby's imageDeleteConflict: `hard` ones cannot be forced; `used` means a container."""

    def __init__(self, image_id: str, hard: bool, used: bool, message: str) -> None:
        force = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {Digest(image_id).short} ({force}) - {message}")
        self.hard = hard
        self.used = used


# small pure helpers


def _users(users: Users, image_id: str) -> list[ImageUser]:
    return [u if isinstance(u, ImageUser) else ImageUser(str(u)) for u in users(image_id)]


def _single_repository(refs: Sequence[Reference]) -> bool:
    """moby's isSingleReference: at most one tag, and every reference in one repository."""
    tags = [r for r in refs if not r.digest]
    return len(tags) <= 1 and len({r.repository for r in refs}) <= 1


def _is_id_prefix(image_id: str, name: str) -> bool:
    return image_id.startswith(name) or image_id.removeprefix("sha256:").startswith(name)


def _has_tag_or_digest(name: str) -> bool:
    return "@" in name or ":" in name.rsplit("/", 1)[-1]


def _try_parse(name: str) -> Reference | None:
    try:
        return parse_reference(name)
    except InvalidArgument:
        return None


def _familiar_or_raw(name: str) -> str:
    if _FULL_ID_RE.match(name):
        return "sha256:" + name.removeprefix("sha256:")
    ref = _try_parse(name)
    return ref.familiar() if ref else name


def _tag_row(ref: Reference, image_id: str) -> TagRow:
    return TagRow(reference=str(ref), repository=ref.repository, image_id=image_id, tagged_at=_now())


def _parse_config(data: bytes) -> dict[str, Any]:
    try:
        config = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidArgument(f"invalid image config: {err}") from err
    if not isinstance(config, dict):
        raise InvalidArgument("invalid image config: not a JSON object")
    return config


def _config_diff_ids(data: bytes) -> list[str]:
    rootfs = _parse_config(data).get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise InvalidArgument("invalid image config: rootfs.diff_ids missing")
    for d in diff_ids:
        Digest(d)
    return diff_ids


def _load_messages(new: _NewImage, image: Image, moved: list[tuple[Reference, str]]) -> list[str]:
    lines = [
        f"The image {ref.familiar()} already exists, renaming the old one with ID {old} to empty string"
        for ref, old in moved
    ]
    if new.refs:
        return lines + [f"Loaded image: {ref.familiar()}" for ref in new.refs]
    return lines + [f"Loaded image ID: {image.id}"]


def _platform(text: str | None) -> tuple[str, str]:
    if not text:
        return "linux", _busybox.host_architecture()
    os_name, _, arch = text.partition("/")
    return os_name or "linux", (arch.split("/")[0] or _busybox.host_architecture())


def _json_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _now() -> str:
    """RFC3339 with nanoseconds in UTC, as Docker writes timestamps."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"
