"""Resource limits: moby's normalisation and refusals, host ceilings, `docker update` merging."""

from __future__ import annotations

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed
from berth.api.docker.container_spec import update_from_wire
from berth.engine.containers import _limits as limits
from berth.errors import InvalidArgument
from berth.types.host_config import RestartPolicy

HOST = limits.HostLimits(rlimit_ceilings={"nofile": 20000}, ncpu=2, cpus=frozenset({0, 1}))
MB = 1024 * 1024


def test_normalize_swap_and_pids() -> None:
    hc = limits.normalize(typed({"Memory": 64 * MB, "MemorySwap": 0, "PidsLimit": 0}))
    assert hc.memory_swap == 128 * MB and hc.pids_limit is None
    assert limits.normalize(typed({"Memory": 64 * MB, "MemorySwap": -1})).memory_swap == -1
    assert limits.normalize(typed({"PidsLimit": 20})).pids_limit == 20


@pytest.mark.parametrize(("hc", "message"), [
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"MemorySwap": 64 * MB}, "You should always set the Memory limit when using Memoryswap limit"),
    ({"Memory": 64 * MB, "MemorySwap": 32 * MB}, "Minimum memoryswap limit should be larger than memory limit"),
    ({"NanoCpus": 3_000_000_000}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"NanoCpus": 1_000_000_000, "CpuQuota": 50000}, "Nano CPUs and CPU Quota cannot both be set"),
    ({"NanoCpus": 1_000_000_000, "CpuPeriod": 50000}, "Nano CPUs and CPU Period cannot both be set"),
    ({"CpusetCpus": "0-3"}, "Requested CPUs are not available - requested 0-3, available: 0-1"),
    ({"CpusetCpus": "a"}, "Invalid value a for cpuset cpus"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 999999, "Hard": 999999}]}, "above this host's hard limit for nofile \\(20000\\)"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]}, "soft limit must be less than or equal to hard limit"),
    ({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: bogus"),
])
def test_refusals(hc: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        limits.validate(typed(hc), HOST)


def test_accepted() -> None:
    limits.validate(typed({"Memory": 64 * MB, "MemorySwap": 128 * MB, "NanoCpus": 1_500_000_000,
                           "CpusetCpus": "0,1", "CpuShares": 512, "PidsLimit": 20,
                           "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                                       {"Name": "nproc", "Soft": 10, "Hard": 10}]}), HOST)


def test_cpuset_formatting() -> None:
    assert limits.parse_cpuset("0-2,4") == {0, 1, 2, 4}
    assert limits.format_cpuset(frozenset({0, 1, 2, 4, 6, 7})) == "0-2,4,6-7"


def test_resources() -> None:
    r = limits.resources(typed({"Memory": 64 * MB, "MemorySwap": 128 * MB, "PidsLimit": None, "NanoCpus": 5}))
    assert (r.memory, r.memory_swap, r.pids_limit, r.nano_cpus) == (64 * MB, 128 * MB, 0, 5)


def test_update_merges_only_given_fields() -> None:
    hc = typed({"Memory": 64 * MB, "MemorySwap": 128 * MB, "CpuShares": 100, "PidsLimit": 20,
                "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}})
    new = limits.merge_update(hc, update_from_wire({
        "Memory": 128 * MB, "MemorySwap": 0, "CpuShares": 0, "PidsLimit": None,
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}))
    assert new.memory == 128 * MB and new.memory_swap == 128 * MB and new.cpu_shares == 100
    assert new.pids_limit == 20 and new.restart_policy == RestartPolicy("on-failure", 3)
    assert hc.memory == 64 * MB  # the input is not changed
    assert limits.merge_update(hc, update_from_wire({"PidsLimit": -1})).pids_limit is None


@pytest.mark.parametrize(("hc", "update", "message"), [
    ({"Memory": 64 * MB, "MemorySwap": 128 * MB}, {"Memory": 256 * MB},
     "Memory limit should be smaller than already set memoryswap limit"),
    ({"CpuQuota": 5000}, {"NanoCpus": 1_000_000_000}, "Nano CPUs cannot be updated as CPU Quota"),
    ({"NanoCpus": 1_000_000_000}, {"CpuPeriod": 5000}, "CPU Period cannot be updated as NanoCPUs"),
    ({"AutoRemove": True}, {"RestartPolicy": {"Name": "always"}}, "AutoRemove is enabled"),
])
def test_update_conflicts(hc: dict, update: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        limits.merge_update(typed(hc), update_from_wire(update))


def test_update_memory_without_previous_limit() -> None:
    assert limits.merge_update(typed({"Memory": 0, "MemorySwap": 0}),
                               update_from_wire({"Memory": 128 * MB})).memory == 128 * MB
