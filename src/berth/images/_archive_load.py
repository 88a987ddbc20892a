"""Read image archives: docker-archive (`docker save`) and OCI image-layout tars.

The archive arrives as a stream and the file that says what is in it (manifest.json, index.json)
may come after the layers, so `SpooledArchive` first copies every regular file aside (small ones in
memory, large ones into a private staging directory) and only then are the images read from it.
Nothing here touches the store: the result is a list of `ArchiveImage`s naming archive members.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from berth.errors import InvalidArgument
from berth.images._compression import decompressed
from berth.types import Digest

_IN_MEMORY_LIMIT = 1 << 20
_CHUNK = 1 << 20
_MAX_LINK_DEPTH = 16

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONTAINERD_NAME = "io.containerd.image.name"
OCI_REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Member:
    """One regular file of the archive, spooled; `digest` is the sha256 of its bytes."""

    digest: Digest
    size: int
    data: bytes | None = None
    path: Path | None = None

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return self.path.open("rb")

    def read(self) -> bytes:
        with self.open() as f:
            return f.read()


@dataclass
class SpooledArchive:
    """Regular files by normalised name; symlinks and hardlinks resolved to them on lookup."""

    members: dict[str, Member] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def __contains__(self, name: str) -> bool:
        return self._resolve(name) in self.members

    def get(self, name: str) -> Member:
        member = self.members.get(self._resolve(name))
        if member is None:
            raise InvalidArgument(f"invalid archive: {name} not found in the archive")
        return member

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.get(name).read())
        except (ValueError, UnicodeDecodeError) as err:
            raise InvalidArgument(f"invalid archive: {name} is not valid JSON: {err}") from err

    def _resolve(self, name: str) -> str:
        name = _normalise(name) or ""
        for _ in range(_MAX_LINK_DEPTH):
            if name not in self.links:
                return name
            name = self.links[name]
        raise InvalidArgument(f"invalid archive: too many links resolving {name}")


@dataclass(frozen=True)
class ArchiveImage:
    """An image found in an archive: its config bytes, layer member names and tag references."""

    config: bytes
    layers: tuple[str, ...]
    refs: tuple[str, ...]


def spool(stream: BinaryIO, staging: Path) -> SpooledArchive:
    """Copy every regular file of the (possibly compressed) tar `stream` aside.

    Raises:
        InvalidArgument: the stream is not a tar.
    """
    archive = SpooledArchive()
    try:
        with tarfile.open(fileobj=decompressed(stream), mode="r|") as tar:
            for info in tar:
                _spool_member(tar, info, staging, archive)
    except tarfile.ReadError as err:
        raise InvalidArgument("archive/tar: invalid tar header") from err
    except (tarfile.TarError, EOFError) as err:
        raise InvalidArgument(f"invalid archive: {err}") from err
    return archive


def _spool_member(tar: tarfile.TarFile, info: tarfile.TarInfo, staging: Path,
                  archive: SpooledArchive) -> None:
    name = _normalise(info.name)
    if name is None or ".." in info.name.split("/"):
        return  # never referenced by a well-formed manifest; not worth a guess
    if info.issym() and not info.linkname.startswith("/"):
        target = _normalise(posixpath.join(posixpath.dirname(name), info.linkname))
        if target is not None:
            archive.links[name] = target
    elif info.islnk():
        target = _normalise(info.linkname)
        if target is not None:
            archive.links[name] = target
    elif info.isreg():
        src = tar.extractfile(info)
        assert src is not None
        archive.members[name] = _spool_file(src, info.size, staging)


def _spool_file(src: IO[bytes], size: int, staging: Path) -> Member:
    digest = hashlib.sha256()
    if size <= _IN_MEMORY_LIMIT:
        data = src.read()
        digest.update(data)
        return Member(Digest("sha256:" + digest.hexdigest()), len(data), data=data)
    with tempfile.NamedTemporaryFile(dir=staging, delete=False) as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return Member(Digest("sha256:" + digest.hexdigest()), size, path=Path(out.name))


def _normalise(name: str) -> str | None:
    """Archive-relative name without `./`, `..` or a leading `/` (clamped at the archive root).

    Names are only lookup keys here (spooled files get random names), so clamping is safe.
    """
    return posixpath.normpath("/" + name).lstrip("/") or None


# reading images out of a spooled archive


def read_images(archive: SpooledArchive, platform: tuple[str, str]) -> list[ArchiveImage]:
    """The images in a docker-archive (manifest.json preferred, as Docker does) or OCI layout."""
    if "manifest.json" in archive:
        return _docker_images(archive)
    if "index.json" in archive:
        return _oci_images(archive, platform)
    raise InvalidArgument("invalid archive: neither manifest.json nor index.json found")


def _docker_images(archive: SpooledArchive) -> list[ArchiveImage]:
    manifest = archive.json("manifest.json")
    if not isinstance(manifest, list):
        raise InvalidArgument("invalid archive: manifest.json is not a list")
    images = []
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidArgument("invalid archive: manifest.json entry without Config")
        layers = entry.get("Layers") or []
        if not all(isinstance(layer, str) for layer in layers):
            raise InvalidArgument("invalid archive: manifest.json Layers must be strings")
        images.append(ArchiveImage(
            config=archive.get(entry["Config"]).read(),
            layers=tuple(layers),
            refs=tuple(str(t) for t in entry.get("RepoTags") or ()),
        ))
    return images


def _oci_images(archive: SpooledArchive, platform: tuple[str, str]) -> list[ArchiveImage]:
    index = archive.json("index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise InvalidArgument("invalid archive: index.json has no manifests")
    by_manifest: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for desc in index["manifests"]:
        found = _find_manifest(archive, _descriptor(desc), platform, depth=0)
        if found is None:
            continue
        digest, manifest = found
        refs = by_manifest.setdefault(digest, (manifest, []))[1]
        ref = _ref_from_annotations(desc.get("annotations") or {})
        if ref and ref not in refs:
            refs.append(ref)
    if not by_manifest:
        raise InvalidArgument(f"invalid archive: no image for platform {platform[0]}/{platform[1]}")
    return [_oci_image(archive, manifest, refs) for manifest, refs in by_manifest.values()]


def _find_manifest(archive: SpooledArchive, desc: dict[str, Any], platform: tuple[str, str],
                   depth: int) -> tuple[str, dict[str, Any]] | None:
    """Follow a descriptor through nested indexes to the manifest for our platform."""
    if depth > 4:
        raise InvalidArgument("invalid archive: indexes nested too deeply")
    doc = _parse_json(_blob(archive, desc), desc["digest"])
    media_type = desc.get("mediaType") or doc.get("mediaType")
    if media_type in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
        for child in _by_platform(doc.get("manifests") or [], platform):
            found = _find_manifest(archive, _descriptor(child), platform, depth + 1)
            if found is not None:
                return found
        return None
    return str(desc["digest"]), doc


def _by_platform(descs: list[Any], platform: tuple[str, str]) -> list[dict[str, Any]]:
    """Children matching our os/arch; a lone child without a platform counts as a match."""
    wanted_os, wanted_arch = platform
    matches = []
    for desc in descs:
        plat = desc.get("platform") if isinstance(desc, dict) else None
        if plat is None and len(descs) == 1 or plat and plat.get("os") == wanted_os and plat.get("architecture") == wanted_arch:
            matches.append(desc)
    return matches


def _oci_image(archive: SpooledArchive, manifest: dict[str, Any], refs: list[str]) -> ArchiveImage:
    config = manifest.get("config")
    layers = manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise InvalidArgument("invalid archive: image manifest without config or layers")
    return ArchiveImage(
        config=_blob(archive, _descriptor(config)),
        layers=tuple(_layer_member(archive, _descriptor(d)) for d in layers),
        refs=tuple(refs),
    )


def _layer_member(archive: SpooledArchive, desc: dict[str, Any]) -> str:
    """The member name of a layer blob, after checking the blob's bytes match its digest."""
    name = _blob_name(desc)
    member = archive.get(name)
    if str(member.digest) != desc["digest"]:
        raise InvalidArgument(f"invalid archive: blob {desc['digest']} has digest {member.digest}")
    return name


def _descriptor(desc: Any) -> dict[str, Any]:
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise InvalidArgument("invalid archive: malformed descriptor")
    Digest(desc["digest"])  # validates the form
    return desc


def _blob_name(desc: dict[str, Any]) -> str:
    return "blobs/sha256/" + Digest(desc["digest"]).hex


def _blob(archive: SpooledArchive, desc: dict[str, Any]) -> bytes:
    member = archive.get(_blob_name(desc))
    if str(member.digest) != desc["digest"]:
        raise InvalidArgument(f"invalid archive: blob {desc['digest']} has digest {member.digest}")
    return member.read()


def _parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidArgument(f"invalid archive: {what} is not valid JSON: {err}") from err
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid archive: {what} is not a JSON object")
    return doc


def _ref_from_annotations(annotations: dict[str, Any]) -> str | None:
    """containerd's full name wins; an OCI ref.name counts only if it is a full reference."""
    name = annotations.get(CONTAINERD_NAME)
    if isinstance(name, str) and name:
        return name
    ref_name = annotations.get(OCI_REF_NAME)
    if isinstance(ref_name, str) and (":" in ref_name or "/" in ref_name):
        return ref_name
    return None
