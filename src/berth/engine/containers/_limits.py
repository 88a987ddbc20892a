"""HostConfig's resource limits: normalised and checked like moby, merged for `docker update`,
and turned into the runtime's Resources. Pure: the host's facts (rlimit ceilings, CPUs) are
passed in as a HostLimits value.

    hc = container_limits.normalize(hc)                  # at create
    container_limits.validate(hc, HostLimits.current(runtime.hard_limits))
    new_hc = container_limits.merge_update(hc, update_body)   # `docker update`
    runtime.update(container_id, container_limits.resources(new_hc))
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument
from berth.runtime.oci import RLIMITS
from berth.runtime.spec import Resources

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


def normalize(host_config: dict[str, Any]) -> dict[str, Any]:
    """Fill in what moby derives at create: swap defaults to twice the memory, pids ≤ 0 = unlimited."""
    result = dict(host_config)
    memory = int(result.get("Memory") or 0)
    if memory > 0 and not result.get("MemorySwap"):
        result["MemorySwap"] = 2 * memory
    pids = result.get("PidsLimit")
    if pids is not None and int(pids) <= 0:
        result["PidsLimit"] = None
    return result


def validate(host_config: dict[str, Any], host: HostLimits) -> None:
    """Refuse what moby refuses (its words), and rlimits the host cannot grant."""
    _check_memory(host_config)
    _check_cpu(host_config, host)
    check_ulimits(host_config.get("Ulimits"), host.rlimit_ceilings)


def _check_memory(hc: dict[str, Any]) -> None:
    memory = int(hc.get("Memory") or 0)
    swap = int(hc.get("MemorySwap") or 0)
    if memory and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if swap > 0 and not memory:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if swap > 0 and memory and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")


def _check_cpu(hc: dict[str, Any], host: HostLimits) -> None:
    nano = int(hc.get("NanoCpus") or 0)
    if nano > 0 and int(hc.get("CpuPeriod") or 0) > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and int(hc.get("CpuQuota") or 0) > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano < 0 or nano > host.ncpu * 1_000_000_000:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {host.ncpu}.00, as there are only "
                              f"{host.ncpu} CPUs available")
    if int(hc.get("CpuShares") or 0) < 0:
        raise InvalidArgument("invalid CPU shares: must be positive")
    cpuset = hc.get("CpusetCpus") or ""
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


def check_ulimits(ulimits: Any, ceilings: dict[str, int]) -> None:  # ulimits: any JSON value, checked here
    """Each `--ulimit name=soft:hard` must be known, soft ≤ hard, and within the host's hard limit.

    The daemon has no CAP_SYS_RESOURCE, so a limit above its own hard limit cannot be granted;
    refusing here names the ceiling instead of failing later inside the runtime.
    """
    for entry in ulimits or []:
        if not isinstance(entry, dict):
            raise InvalidArgument(f"invalid ulimit: {entry!r}")
        name = str(entry.get("Name") or "")
        soft, hard = int(entry.get("Soft") or 0), int(entry.get("Hard") or 0)
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


def resources(hc: dict[str, Any]) -> Resources:
    return Resources(
        memory=int(hc.get("Memory") or 0), memory_swap=int(hc.get("MemorySwap") or 0),
        cpu_shares=int(hc.get("CpuShares") or 0), nano_cpus=int(hc.get("NanoCpus") or 0),
        cpu_period=int(hc.get("CpuPeriod") or 0), cpu_quota=int(hc.get("CpuQuota") or 0),
        cpuset_cpus=hc.get("CpusetCpus") or "", pids_limit=int(hc.get("PidsLimit") or 0),
    )


# Fields `docker update` may change; a zero value means "leave as is" (moby's UpdateContainer).
_UPDATABLE = ("CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems", "Memory",
              "MemorySwap", "MemoryReservation", "BlkioWeight")


def merge_update(host_config: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The HostConfig after `POST /containers/{id}/update` with body `update`."""
    if not isinstance(update, dict):
        raise InvalidArgument("invalid update body")
    current = host_config
    _check_cpu_conflicts(current, update)
    memory, swap = int(update.get("Memory") or 0), int(update.get("MemorySwap") or 0)
    current_swap = int(current.get("MemorySwap") or 0)
    if memory and not swap and current_swap > 0 and memory > current_swap:
        raise InvalidArgument("Memory limit should be smaller than already set memoryswap limit, "
                              "update the memoryswap at the same time")
    result = dict(current)
    for key in _UPDATABLE:
        if update.get(key):
            result[key] = update[key]
    if update.get("PidsLimit") is not None:
        result["PidsLimit"] = update["PidsLimit"]
    policy = update.get("RestartPolicy") or {}
    if policy.get("Name"):
        if current.get("AutoRemove") and policy["Name"] != "no":
            raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
        result["RestartPolicy"] = {"Name": policy["Name"], "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0)}
    pids = result.get("PidsLimit")
    if pids is not None and int(pids) <= 0:
        result["PidsLimit"] = None
    return result


def _check_cpu_conflicts(current: dict[str, Any], update: dict[str, Any]) -> None:
    """NanoCpus rewrites period/quota: once one style is set, the other cannot be updated."""
    pairs = (("NanoCpus", "CpuPeriod", "Nano CPUs cannot be updated as CPU Period has already been set"),
             ("NanoCpus", "CpuQuota", "Nano CPUs cannot be updated as CPU Quota has already been set"),
             ("CpuPeriod", "NanoCpus", "CPU Period cannot be updated as NanoCPUs has already been set"),
             ("CpuQuota", "NanoCpus", "CPU Quota cannot be updated as NanoCPUs has already been set"))
    for wanted, existing, message in pairs:
        if int(update.get(wanted) or 0) > 0 and int(current.get(existing) or 0) > 0:
            raise InvalidArgument(f"Conflicting options: {message}")
