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
