"""Docker's restart policies and back-off, as pure functions (moby's restartmanager).

- `no`: never restart.
- `on-failure[:N]`: restart after a non-zero exit, at most N times (0 = unlimited).
- `always`: restart after every exit; a manual stop/kill suspends it until the next daemon start.
- `unless-stopped`: like always, but a manual stop also survives daemon restarts.

Back-off: 100 ms before the first restart, doubling each time up to one minute; a run that lasted
at least 10 s resets it.
"""

from __future__ import annotations

from berth.types.host_config import HostConfig, RestartPolicy

INITIAL_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


def policy_of(host_config: HostConfig) -> RestartPolicy:
    """The container's policy; an unnamed one (records of older versions) is `no`."""
    policy = host_config.restart_policy
    return policy if policy.name else RestartPolicy(name="no", maximum_retry_count=policy.maximum_retry_count)


def should_restart(policy: RestartPolicy, *, exit_code: int, manually_stopped: bool,
                   restart_count: int) -> bool:
    """Whether this exit leads to a restart (exit-on-next kills are filtered by the caller)."""
    if policy.name == "always":
        return not manually_stopped
    if policy.name == "unless-stopped":
        return not manually_stopped
    if policy.name == "on-failure":
        within = policy.maximum_retry_count == 0 or restart_count < policy.maximum_retry_count
        return exit_code != 0 and within
    return False


def starts_with_daemon(policy: RestartPolicy, *, manually_stopped: bool) -> bool:
    """Whether a stopped container is started when the daemon starts."""
    return policy.name == "always" or (policy.name == "unless-stopped" and not manually_stopped)


def next_delay(previous: float, run_seconds: float) -> float:
    """The wait before the next restart, given the previous wait (0 = none yet) and the last run's length."""
    if previous == 0 or run_seconds >= RESET_AFTER:
        return INITIAL_DELAY
    return min(previous * 2, MAX_DELAY)
