"""Test doubles for the ELB domain: `MemoryPlane`, a DataPlane that records what it is told."""

from __future__ import annotations

from collections.abc import Mapping

from berth.elb._plane import PlaneConfig, TargetHealth
from berth.errors import Unavailable


class MemoryPlane:
    """Keeps the last applied PlaneConfig; tests set `healths`, `busy_ports` and `fail_next`."""

    def __init__(self) -> None:
        self.config: PlaneConfig | None = None
        self.applied: list[PlaneConfig] = []
        self.healths: dict[tuple[str, str, int], TargetHealth] = {}
        self.busy_ports: set[int] = set()
        self.fail_next: Exception | None = None

    def apply(self, config: PlaneConfig) -> None:
        if self.fail_next is not None:
            err, self.fail_next = self.fail_next, None
            raise err
        self.config = config
        self.applied.append(config)

    def health(self) -> Mapping[tuple[str, str, int], TargetHealth]:
        return dict(self.healths)

    def port_free(self, bind: str, port: int) -> bool:
        return port not in self.busy_ports

    def set_health(self, backend: str, target_id: str, port: int, state: str, reason: str = "") -> None:
        self.healths[(backend, target_id, port)] = TargetHealth(state, reason)

    def fail(self, message: str = "the data plane refused the configuration") -> None:
        self.fail_next = Unavailable(message)
