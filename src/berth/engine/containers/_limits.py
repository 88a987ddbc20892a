"""HostConfig's resource limits: normalised and checked like moby, merged for `docker update`,
and turned into the runtime's Resources. Pure: the host's facts (rlimit ceilings, CPUs) are
passed in as a HostLimits value.

    hc = container_limits.normalize(hc)                  # at create
    container_limits.validate(hc, HostLimits.current(runtime.hard_limits))
    new_hc = container_limits.merge_update(hc, update)   # `docker update` (a ContainerUpdate)
    runtime.update(container_id, container_limits.resources(new_hc))
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from berth.errors import InvalidArgument
from berth.runtime.oci import RLIMITS
from berth.runtime.spec import Resources as RuntimeResources
from berth.types.host_config import ContainerUpdate, HostConfig, Resources, Ulimit

MIN_MEMORY = 6 * 1024 * 1024  # moby's linuxMinMemory


@dataclass(frozen=True)
class HostLimits:
    """What this host lets a container have."""

    rlimit_ceilings: dict[str, int] = field(default_factory=dict)  # rlimit name -> hard limit
    ncpu: int = 1
    cpus: frozenset[int] = frozenset({0})

    @classmethod
    def current(cls, rlimit_ceilings: dict[str, int]) -> HostLimits:
        cpus = frozenset(os.sched_getaffinity(0))
        return cls(rlimit_ceilings=dict(rlimit_ceilings), ncpu=os.cpu_count() or len(cpus), cpus=cpus)


def normalize(host_config: HostConfig) -> HostConfig:
    """Fill in what moby derives at create: swap defaults to twice the memory, pids ≤ 0 = unlimited."""
    swap = host_config.memory_swap
    if host_config.memory > 0 and not swap:
        swap = 2 * host_config.memory
    return replace(host_config, memory_swap=swap, pids_limit=_pids_limit(host_config.pids_limit))


def _pids_limit(pids: int | None) -> int | None:
    """PidsLimit 0 or below means unlimited: stored as unset, as moby does."""
    return None if pids is None or pids <= 0 else pids


def validate(host_config: HostConfig, host: HostLimits) -> None:
    """Refuse what moby refuses (its words), and rlimits the host cannot grant."""
    _check_memory(host_config)
    _check_cpu(host_config, host)
    check_ulimits(host_config.ulimits or (), host.rlimit_ceilings)


def _check_memory(hc: Resources) -> None:
    memory, swap = hc.memory, hc.memory_swap
    if memory and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if swap > 0 and not memory:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if swap > 0 and memory and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")


def _check_cpu(hc: Resources, host: HostLimits) -> None:
    nano = hc.nano_cpus
    if nano > 0 and hc.cpu_period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and hc.cpu_quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano < 0 or nano > host.ncpu * 1_000_000_000:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {host.ncpu}.00, as there are only "
                              f"{host.ncpu} CPUs available")
    if hc.cpu_shares < 0:
        raise InvalidArgument("invalid CPU shares: must be positive")
    cpuset = hc.cpuset_cpus
    if cpuset:
        wanted = parse_cpuset(cpuset)
        if not wanted <= host.cpus:
            raise InvalidArgument(f"Requested CPUs are not available - requested {cpuset}, "
                                  f"available: {format_cpuset(host.cpus)}")


def parse_cpuset(text: str) -> frozenset[int]:
    """`0-2,4` → {0, 1, 2, 4}; InvalidArgument in moby's words otherwise."""
    cpus: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise InvalidArgument(f"Invalid value {text} for cpuset cpus")
        cpus.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    return frozenset(cpus)


def format_cpuset(cpus: frozenset[int]) -> str:
    ranges: list[str] = []
    for cpu in sorted(cpus):
        if ranges and ranges[-1].rpartition("-")[2] == str(cpu - 1):
            ranges[-1] = f"{ranges[-1].partition('-')[0]}-{cpu}"
        else:
            ranges.append(str(cpu))
    return ",".join(ranges)


def check_ulimits(ulimits: Iterable[Ulimit], ceilings: dict[str, int]) -> None:
    """Each `--ulimit name=soft:hard` must be known, soft ≤ hard, and within the host's hard limit.

    The daemon has no CAP_SYS_RESOURCE, so a limit above its own hard limit cannot be granted;
    refusing here names the ceiling instead of failing later inside the runtime.
    """
    for entry in ulimits:
        name, soft, hard = entry.name, entry.soft, entry.hard
        key = name.lower().removeprefix("rlimit_")
        if key not in RLIMITS:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        if soft > hard:
            raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        ceiling = ceilings.get(key)
        if ceiling is not None and hard > ceiling:
            raise InvalidArgument(
                f"ulimit {name}={soft}:{hard} is above this host's hard limit for {name} ({ceiling}); "
                f"use at most {name}={min(soft, ceiling)}:{ceiling}")


def resources(hc: Resources) -> RuntimeResources:
    return RuntimeResources(
        memory=hc.memory, memory_swap=hc.memory_swap, cpu_shares=hc.cpu_shares, nano_cpus=hc.nano_cpus,
        cpu_period=hc.cpu_period, cpu_quota=hc.cpu_quota, cpuset_cpus=hc.cpuset_cpus,
        pids_limit=hc.pids_limit or 0,
    )


# Fields `docker update` may change; a zero value means "leave as is" (moby's UpdateContainer).
_UPDATABLE = ("cpu_shares", "nano_cpus", "cpu_period", "cpu_quota", "cpuset_cpus", "cpuset_mems", "memory",
              "memory_swap", "memory_reservation", "blkio_weight")


def merge_update(host_config: HostConfig, update: ContainerUpdate) -> HostConfig:
    """The HostConfig after `POST /containers/{id}/update` with `update`."""
    current, wanted = host_config, update.resources
    _check_cpu_conflicts(current, wanted)
    if wanted.memory and not wanted.memory_swap and current.memory_swap > 0 and wanted.memory > current.memory_swap:
        raise InvalidArgument("Memory limit should be smaller than already set memoryswap limit, "
                              "update the memoryswap at the same time")
    changes: dict[str, Any] = {name: getattr(wanted, name) for name in _UPDATABLE if getattr(wanted, name)}
    pids = current.pids_limit if wanted.pids_limit is None else wanted.pids_limit
    changes["pids_limit"] = _pids_limit(pids)
    policy = update.restart_policy
    if policy.name:
        if current.auto_remove and policy.name != "no":
            raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
        changes["restart_policy"] = policy
    return replace(current, **changes)


def _check_cpu_conflicts(current: Resources, wanted: Resources) -> None:
    """NanoCpus rewrites period/quota: once one style is set, the other cannot be updated."""
    pairs = ((wanted.nano_cpus, current.cpu_period, "Nano CPUs cannot be updated as CPU Period has already been set"),
             (wanted.nano_cpus, current.cpu_quota, "Nano CPUs cannot be updated as CPU Quota has already been set"),
             (wanted.cpu_period, current.nano_cpus, "CPU Period cannot be updated as NanoCPUs has already been set"),
             (wanted.cpu_quota, current.nano_cpus, "CPU Quota cannot be updated as NanoCPUs has already been set"))
    for wanted_value, existing, message in pairs:
        if wanted_value > 0 and existing > 0:
            raise InvalidArgument(f"Conflicting options: {message}")
