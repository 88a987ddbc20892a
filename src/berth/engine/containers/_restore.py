"""What a starting daemon finds: containers that kept running while no daemon ran, containers
that exited meanwhile, removals that were cut short, and runtime containers no record explains.
ContainerService.restore applies it.

`classify` is the pure decision; `survey` asks the runtime for the facts it needs.

A SIGKILLed daemon can leave runtime containers no record explains as running: it dies between
`<runtime> create` and saving the record as running (the record says "created"), or even before
conmon reported the pid (conmon then gives up and the created init is orphaned, its pid file
maybe unwritten), or while a builder step ran (no record at all). Every one of them is killed and
deleted, so nothing waits forever on its exec FIFO once its files are gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from berth.engine.containers._model import Container
from berth.runtime import Runtime

UNKNOWN_EXIT_CODE = 255   # the runtime kept no exit code (e.g. the host rebooted)


@dataclass
class RestoreSurvey:
    removing: list[Container] = field(default_factory=list)          # finish the removal
    live: list[Container] = field(default_factory=list)              # adopt: watch it again
    # recorded as not running, yet the runtime has something of it (a process, its state, its
    # bundle): the daemon died between creating it and saving that it runs (a start cut short);
    # killed and deleted, so the record is true again
    half_started: list[Container] = field(default_factory=list)
    exited: list[tuple[Container, int]] = field(default_factory=list)  # settle with this exit code
    # runtime containers without any record (a builder step, a record removed before its
    # runtime container): killed and deleted
    strays: list[str] = field(default_factory=list)

    @property
    def settled(self) -> set[str]:
        """Containers whose state restore decides (no daemon-start restart for them)."""
        return {c.id for c in self.live} | {c.id for c, _ in self.exited}


def classify(
    containers: Iterable[Container], *, alive: Collection[str], exit_codes: Mapping[str, int | None],
    on_runtime: Collection[str],
) -> RestoreSurvey:  # fmt: skip
    """Sort the records: `alive` = ids whose init runs under its conmon, `exit_codes` = what
    conmon wrote for the recorded-running ones that are not alive, `on_runtime` = every id the
    runtime has anything of (bundle, state, exit file). Pure."""
    found = RestoreSurvey()
    recorded = set()
    for container in containers:
        recorded.add(container.id)
        if container.state.status == "removing":
            found.removing.append(container)
        elif container.state.running:
            if container.id in alive:
                found.live.append(container)
            else:
                code = exit_codes.get(container.id)
                found.exited.append((container, UNKNOWN_EXIT_CODE if code is None else code))
        elif container.id in alive or container.id in on_runtime:
            found.half_started.append(container)
    found.strays = sorted(set(on_runtime) - recorded)
    return found


async def survey(
    containers: Iterable[Container], runtime: Runtime, on_runtime: Collection[str] | None = None,
) -> RestoreSurvey:  # fmt: skip
    """Ask the runtime about every container recorded as running or being removed, and (when
    `on_runtime` is None) which ids it has anything of."""
    records = list(containers)
    if on_runtime is None:
        on_runtime = await asyncio.to_thread(runtime.container_ids)
    alive: set[str] = set()
    exit_codes: dict[str, int | None] = {}
    for container in records:
        if container.state.status == "removing":
            continue
        if container.state.running or container.id in on_runtime:
            if await asyncio.to_thread(runtime.is_running, container.id):
                alive.add(container.id)
            elif container.state.running:
                exit_codes[container.id] = await asyncio.to_thread(runtime.exit_code, container.id)
    return classify(records, alive=alive, exit_codes=exit_codes, on_runtime=on_runtime)
