"""What the Docker API routes need from the engine, declared by the consumer (STYLE rule 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from berth.engine.containers import ContainerService
    from berth.engine.events import EventBus
    from berth.engine.execs import ExecService


@dataclass(frozen=True)
class Backend:
    containers: "ContainerService"
    execs: "ExecService"
    images: Any               # berth.engine.images.ImageService
    image_store: Any          # berth.images.ImageStore (berth's own extension endpoints)
    events: "EventBus"
    info: Callable[[], dict[str, Any]]
    tmp_dir: str              # where request bodies (load/import) are spooled
    builder: Any = None       # berth.builder.Builder (POST /build); None when not wired
    distribution: Any = None  # berth.engine.distribution.DistributionService (pull, push, login)
    volumes: Any = None       # berth.engine.volumes.VolumeService
    networks: Any = None      # berth.engine.networks.NetworkService
    archive: Any = None       # berth.engine.archive.ArchiveService (cp, diff, commit)
