from __future__ import annotations

import pytest

from berth.engine.containers._restart_policy import (
    INITIAL_DELAY, MAX_DELAY, next_delay, policy_of, should_restart, starts_with_daemon,
)
from berth.types.host_config import HostConfig, RestartPolicy


def policy(name: str, n: int = 0) -> RestartPolicy:
    return policy_of(HostConfig(restart_policy=RestartPolicy(name=name, maximum_retry_count=n)))


@pytest.mark.parametrize("name,code,manual,count,expected", [
    ("no", 1, False, 0, False),
    ("", 1, False, 0, False),
    ("always", 0, False, 5, True),
    ("always", 0, True, 0, False),
    ("unless-stopped", 3, False, 0, True),
    ("unless-stopped", 3, True, 0, False),
    ("on-failure", 0, False, 0, False),
    ("on-failure", 2, False, 100, True),
])
def test_should_restart(name: str, code: int, manual: bool, count: int, expected: bool) -> None:
    assert should_restart(policy(name), exit_code=code, manually_stopped=manual, restart_count=count) is expected


def test_on_failure_limit() -> None:
    p = policy("on-failure", 3)
    assert [should_restart(p, exit_code=1, manually_stopped=False, restart_count=c) for c in range(5)] == \
        [True, True, True, False, False]


def test_daemon_start() -> None:
    assert starts_with_daemon(policy("always"), manually_stopped=True)
    assert not starts_with_daemon(policy("unless-stopped"), manually_stopped=True)
    assert starts_with_daemon(policy("unless-stopped"), manually_stopped=False)
    assert not starts_with_daemon(policy("on-failure", 2), manually_stopped=False)


def test_backoff_doubles_caps_and_resets() -> None:
    delays = [INITIAL_DELAY]
    for _ in range(12):
        delays.append(next_delay(delays[-1], run_seconds=0.5))
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8] and delays[-1] == MAX_DELAY
    assert next_delay(MAX_DELAY, run_seconds=10) == INITIAL_DELAY
    assert next_delay(0, run_seconds=0) == INITIAL_DELAY
