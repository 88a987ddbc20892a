"""Docker HEALTHCHECKs without effects: the effective check, the probe state machine, texts.

moby's daemon/health.go is the reference. Vocabulary:

    Config.Healthcheck   the wire object (`Test`, durations in nanoseconds, `Retries`), the
                         container's merged over the image's (`merge`)
    HealthCheck          what the monitor runs: an argv and durations in seconds (`effective`);
                         None when nothing runs (no check, `Test: ["NONE"]`, unknown type)
    HealthState          `State.Health`: Status, FailingStreak and the last 5 results

Status transitions (`record`):

    starting ──success──► healthy ◄──success──┐
        │                    │                 │
        └──`retries` consecutive failures──► unhealthy

During the start period a failure does not count while the status is still `starting`; a
success ends that grace (the status is `healthy` from then on, so later failures count).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from collections.abc import Mapping, Sequence
from typing import Any

from berth.errors import InvalidArgument
from berth.types.container import HealthConfig

NS = 1_000_000_000
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_PERIOD = 0.0
DEFAULT_START_INTERVAL = 5.0
DEFAULT_RETRIES = 3
MAX_OUTPUT = 4096      # bytes of probe output kept (moby's maxOutputLen)
MAX_LOG = 5            # results kept in State.Health.Log
MINIMUM_DURATION_NS = 1_000_000   # moby's container.MinimumDuration (1ms)

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
FILTER_VALUES = (STARTING, HEALTHY, UNHEALTHY, NONE)   # `docker ps --filter health=`

_DEFAULT_SHELL = ("/bin/sh", "-c")


# --- configuration -------------------------------------------------------------------------------

def from_image(image: Mapping[str, Any] | None) -> HealthConfig | None:
    """An image config's Healthcheck (berth.images' OCI/Docker image JSON) as a HealthConfig."""
    if not image:
        return None
    return HealthConfig(
        test=tuple(str(t) for t in image.get("Test") or ()), interval=int(image.get("Interval") or 0),
        timeout=int(image.get("Timeout") or 0), start_period=int(image.get("StartPeriod") or 0),
        start_interval=int(image.get("StartInterval") or 0), retries=int(image.get("Retries") or 0))


def merge(container: HealthConfig | None, image: HealthConfig | None) -> HealthConfig | None:
    """Config.Healthcheck as inspect shows it (moby's merge in daemon/commit.go): the container's
    fields win, an empty Test and zero durations/retries fall back to the image's. None when
    nothing is left (Go's `omitempty` leaves the field out)."""
    if container is None:
        merged = image
    elif image is None:
        merged = container
    else:
        merged = HealthConfig(
            test=container.test or image.test, interval=container.interval or image.interval,
            timeout=container.timeout or image.timeout, start_period=container.start_period or image.start_period,
            start_interval=container.start_interval or image.start_interval,
            retries=container.retries or image.retries)
    return None if merged is None or merged == HealthConfig() else merged


def validate(healthcheck: HealthConfig | None) -> None:
    """moby's validateHealthCheck, with its wording."""
    if healthcheck is None:
        return
    durations = (("Interval", healthcheck.interval), ("Timeout", healthcheck.timeout),
                 ("StartPeriod", healthcheck.start_period), ("StartInterval", healthcheck.start_interval))
    for key, value in durations:
        if value and value < MINIMUM_DURATION_NS:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
    if healthcheck.retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")


@dataclass(frozen=True)
class HealthCheck:
    argv: tuple[str, ...]
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    start_period: float = DEFAULT_START_PERIOD
    start_interval: float = DEFAULT_START_INTERVAL
    retries: int = DEFAULT_RETRIES


def effective(healthcheck: HealthConfig | None, shell: Sequence[str] | None = None) -> HealthCheck | None:
    """The probe a merged Config.Healthcheck asks for: `CMD` execs its argv, `CMD-SHELL` runs
    through the container's Shell (default `/bin/sh -c`); None for `NONE` and unknown types."""
    if healthcheck is None or not healthcheck.test:
        return None
    kind, args = healthcheck.test[0], healthcheck.test[1:]
    if kind == "CMD":
        argv = tuple(args)
    elif kind == "CMD-SHELL":
        argv = (*(shell or _DEFAULT_SHELL), *args)
    else:
        return None
    if not argv:
        return None
    hc = healthcheck
    return HealthCheck(
        argv=argv, interval=_seconds(hc.interval, DEFAULT_INTERVAL), timeout=_seconds(hc.timeout, DEFAULT_TIMEOUT),
        start_period=_seconds(hc.start_period, DEFAULT_START_PERIOD),
        start_interval=_seconds(hc.start_interval, DEFAULT_START_INTERVAL),
        retries=hc.retries if hc.retries > 0 else DEFAULT_RETRIES,
    )


def _seconds(value_ns: int, default: float) -> float:
    return value_ns / NS if value_ns > 0 else default


# --- state machine -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProbeResult:
    start: datetime
    end: datetime
    exit_code: int    # 0 healthy; anything else (-1: timed out or could not run) a failure
    output: str

    def to_json(self) -> dict[str, Any]:
        return {"Start": rfc3339(self.start), "End": rfc3339(self.end), "ExitCode": self.exit_code,
                "Output": self.output}


@dataclass(frozen=True)
class HealthState:
    status: str = STARTING
    failing_streak: int = 0
    log: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"Status": self.status, "FailingStreak": self.failing_streak, "Log": list(self.log)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> HealthState:
        if not data:
            return cls()
        return cls(status=str(data.get("Status") or STARTING), failing_streak=int(data.get("FailingStreak") or 0),
                   log=tuple(data.get("Log") or ()))

    def restarted(self) -> HealthState:
        """A new run of the container (start, restart): starting again, the log kept (moby)."""
        return HealthState(STARTING, 0, self.log)


def record(state: HealthState, result: ProbeResult, *, check: HealthCheck, started_at: datetime) -> HealthState:
    """moby's handleProbeResult: the state after one probe of a container started at `started_at`."""
    log = (*state.log, result.to_json())[-MAX_LOG:]
    if result.exit_code == 0:
        return HealthState(HEALTHY, 0, log)
    in_grace = state.status == STARTING and (result.start - started_at).total_seconds() < check.start_period
    if in_grace:
        return HealthState(state.status, state.failing_streak, log)
    streak = state.failing_streak + 1
    return HealthState(UNHEALTHY if streak >= check.retries else state.status, streak, log)


def next_delay(check: HealthCheck, elapsed: float, status: str) -> float:
    """Seconds until the next probe, `elapsed` seconds after the container started.

    In the start period a `starting` container is probed every `start_interval`; and no wait
    runs past the end of the start period, so the first regular probe follows it at once
    (moby's getInterval)."""
    if elapsed >= check.start_period:
        return check.interval
    delay = check.start_interval if status == STARTING else check.interval
    return min(delay, check.start_period - elapsed)


# --- texts ---------------------------------------------------------------------------------------

def shown(health: dict[str, Any] | None, *, probed: bool) -> dict[str, Any] | None:
    """The Health a container shows: as recorded while it is probed (running, not paused);
    otherwise with Status "unhealthy", as moby's stopped monitor reads (CloseMonitorChannel)."""
    if not health or probed:
        return health
    return {**health, "Status": UNHEALTHY}


def status_suffix(health: dict[str, Any] | None) -> str:
    """What `docker ps` appends to `Up 3 seconds`: ` (healthy)`, ` (health: starting)`."""
    if not health:
        return ""
    status = health.get("Status") or STARTING
    return f" (health: {status})" if status == STARTING else f" ({status})"


def filter_status(health: dict[str, Any] | None) -> str:
    """The value `docker ps --filter health=` compares: the status, or `none` without a check."""
    return str(health.get("Status") or STARTING) if health else NONE


def output_text(data: bytes, truncated: bool) -> str:
    """Probe output as Docker keeps it: the first 4096 bytes, `...` when there was more."""
    text = data[:MAX_OUTPUT].decode("utf-8", errors="replace")
    return text + "..." if truncated or len(data) > MAX_OUTPUT else text


def timeout_output(timeout: float, output: str) -> str:
    message = f"Health check exceeded timeout ({go_duration(timeout)})"
    return f"{message}: {output}" if output else message


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String: `1s`, `500ms`, `1m30s`, `1h0m0s`, `1.5s`."""
    ns = round(seconds * NS)
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(ns / 1000)}µs"
    if ns < NS:
        return f"{sign}{_trim(ns / 1_000_000)}ms"
    hours, rest = divmod(ns, 3600 * NS)
    minutes, rest = divmod(rest, 60 * NS)
    text = f"{_trim(rest / NS)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime | None:
    """Times as berth records them (`now_rfc3339`); None for Docker's zero time or garbage."""
    if not text or text.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
