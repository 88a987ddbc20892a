"""What the Docker API routes need from the engine, declared by the consumer (STYLE rule 2).

Each Protocol lists exactly what the route modules call on one collaborator, with the engine's
real signatures; the daemon (berth.daemon.main) hands in the engine's services, and mypy checks
that they satisfy these. Values typed `dict[str, Any]` are Docker wire JSON (arbitrary nesting,
serialised as is by the routes), the one place `Any` stands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    from berth.builder import BuildOptions
    from berth.engine.containers import ContainerService
    from berth.engine.events import EventBus
    from berth.engine.execs import ExecService
    from berth.images import Image, ImageUser
    from berth.images.distribution import Credentials

Json = dict[str, Any]             # a Docker wire object (JSON), as the routes send it
Filters = Mapping[str, list[str]]  # `?filters=` as parse_filters reads it
ImageUsers = Callable[[str], Sequence["ImageUser | str"]]   # image id → the containers using it
Emit = Callable[[Json], None]      # a progress message of a pull or push (called from a thread)


class Images(Protocol):
    """berth.engine.images.ImageService (api/docker/images.py, system.py); blocking calls."""

    def list_json(self, *, all: bool, filters: Filters) -> list[Json]: ...
    def inspect_json(self, name: str) -> Json: ...
    def history_json(self, name: str) -> list[Json]: ...
    def tag(self, source: str, repo: str, tag: str | None) -> None: ...
    def remove(self, name: str, *, force: bool, noprune: bool, users: ImageUsers) -> list[dict[str, str]]: ...
    def load(self, stream: BinaryIO, quiet: bool) -> list[str]: ...
    def save(self, names: list[str], out: BinaryIO) -> None: ...
    def import_(self, stream: BinaryIO, repo: str | None, tag: str | None, changes: list[str],
                message: str) -> str: ...
    def prune(self, filters: Filters, users: ImageUsers) -> Json: ...


class ImageBootstrap(Protocol):
    """berth.images.ImageStore, for berth's own extension endpoint (`POST /berth/images/bootstrap`)."""

    def bootstrap_busybox(self, reference: str) -> Image: ...


class ImageBuilder(Protocol):
    """berth.builder.Builder (api/docker/build.py)."""

    async def build(self, options: BuildOptions, raw_context: Path,
                    emit: Callable[[Json], Awaitable[None]]) -> str: ...
    def clear_cache(self, older_than: float | None) -> list[str]: ...


class Distribution(Protocol):
    """berth.engine.distribution.DistributionService (api/docker/distribution.py); blocking calls."""

    def login(self, auth: Json) -> Json: ...
    def pull(self, image: str, tag: str, credentials: Credentials, emit: Emit, *, platform: str) -> None: ...
    def push(self, name: str, tag: str, credentials: Credentials, emit: Emit) -> None: ...


class Volumes(Protocol):
    """berth.engine.volumes.VolumeService (api/docker/volumes.py, system.py); blocking calls."""

    def create_json(self, body: Mapping[str, Any] | None) -> Json: ...
    def list_json(self, filters: Filters) -> Json: ...
    def inspect_json(self, name: str) -> Json: ...
    def remove(self, name: str, *, force: bool) -> None: ...
    def prune(self, filters: Filters, *, all_volumes: bool) -> Json: ...


class Networks(Protocol):
    """berth.engine.networks.NetworkService (api/docker/networks.py); blocking calls."""

    def create_json(self, body: Mapping[str, Any] | None) -> Json: ...
    def list_json(self, filters: Filters) -> list[Json]: ...
    def inspect_json(self, ref: str) -> Json: ...
    def remove(self, ref: str) -> None: ...
    def prune(self, filters: Filters) -> Json: ...
    def connect(self, ref: str, container_ref: str, endpoint_config: Mapping[str, Any] | None) -> None: ...
    def disconnect(self, ref: str, container_ref: str, force: bool) -> None: ...
    def remove_link(self, link_name: str) -> None: ...


class Archive(Protocol):
    """berth.engine.archive.ArchiveService (api/docker/archive.py): cp, export, diff, commit."""

    async def stat(self, ref: str, path: str) -> Json: ...
    async def get(self, ref: str, path: str) -> tuple[Json, Path]: ...
    async def export(self, ref: str) -> Path: ...
    async def put(self, ref: str, path: str, tar_file: Path, *, no_overwrite_dir_non_dir: bool,
                  copy_uid_gid: bool) -> None: ...
    def diff(self, ref: str) -> list[Json]: ...
    async def commit_container(self, ref: str, *, pause: bool, reference: str | None, comment: str,
                               author: str, changes_: list[str], config: Json | None) -> str: ...


@dataclass(frozen=True)
class Backend:
    containers: ContainerService
    execs: ExecService
    images: Images
    image_store: ImageBootstrap      # berth's own extension endpoints
    events: EventBus
    info: Callable[[], Json]
    tmp_dir: str                  # where request bodies (load/import) are spooled
    distribution: Distribution
    volumes: Volumes
    networks: Networks
    archive: Archive
    builder: ImageBuilder | None = None   # None: POST /build answers that the builder is not enabled
