"""What a starting daemon finds: containers that kept running while no daemon ran, containers
that exited meanwhile, and removals that were cut short. ContainerService.restore applies it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from berth.engine.container_model import Container
from berth.runtime import Runtime

UNKNOWN_EXIT_CODE = 255   # the runtime kept no exit code (e.g. the host rebooted)


@dataclass
class RestoreSurvey:
    removing: list[Container] = field(default_factory=list)          # finish the removal
    live: list[Container] = field(default_factory=list)              # adopt: watch it again
    # recorded as not running, yet the runtime has it: the daemon died between starting it and
    # saving that (a start cut short); killed and deleted, so the record is true again
    half_started: list[Container] = field(default_factory=list)
    exited: list[tuple[Container, int]] = field(default_factory=list)  # settle with this exit code

    @property
    def settled(self) -> set[str]:
        """Containers whose state restore decides (no daemon-start restart for them)."""
        return {c.id for c in self.live} | {c.id for c, _ in self.exited}


async def survey(containers: Iterable[Container], runtime: Runtime) -> RestoreSurvey:
    """Ask the runtime about every container recorded as running or being removed."""
    found = RestoreSurvey()
    for container in containers:
        if container.state.status == "removing":
            found.removing.append(container)
        elif container.state.running:
            if await asyncio.to_thread(runtime.is_running, container.id):
                found.live.append(container)
            else:
                code = await asyncio.to_thread(runtime.exit_code, container.id)
                found.exited.append((container, UNKNOWN_EXIT_CODE if code is None else code))
        elif await asyncio.to_thread(runtime.is_running, container.id):
            found.half_started.append(container)
    return found
