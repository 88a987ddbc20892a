"""Image config JSON as the legacy builder writes it (pure).

An image config is `{"architecture", "os", "config": {...Docker's capitalised keys...},
"created", "history": [...], "rootfs"}`; every build step appends one history entry, with
`empty_layer: true` when it added no layer, so `docker history` shows one row per step.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from typing import Any

from berth.errors import InvalidArgument

Config = dict[str, Any]
DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DROPPED_KEYS = ("rootfs", "id", "parent", "container", "container_config", "docker_version")


def start_config(base: Config | None, architecture: str) -> Config:
    """The config a stage starts from: its base image's, or scratch's (only a default PATH)."""
    if base is None:
        config: Config = {"architecture": architecture, "os": "linux", "config": {}, "history": []}
    else:
        config = {k: copy.deepcopy(v) for k, v in base.items() if k not in _DROPPED_KEYS}
        config.setdefault("config", {})
        config["config"] = dict(config["config"] or {})
        config.setdefault("history", [])
    env = list(config["config"].get("Env") or [])
    if not any(e.startswith("PATH=") for e in env):
        config["config"]["Env"] = env + [DEFAULT_PATH]
    return config


def with_history(config: Config, created_by: str, *, empty_layer: bool, created: str) -> Config:
    out = dict(config)
    entry: dict[str, Any] = {"created": created, "created_by": created_by}
    if empty_layer:
        entry["empty_layer"] = True
    out["history"] = list(config.get("history") or []) + [entry]
    out["created"] = created
    return out


def nop(text: str, shell: Iterable[str] = DEFAULT_SHELL) -> str:
    """`created_by` of a metadata step, in moby's `#(nop) ` form (two blanks before the text)."""
    return " ".join([*shell, "#(nop) ", text])


def go_list(items: Iterable[str]) -> str:
    """Go's %q of a []string, as moby prints commands in history: ["a" "b"]."""
    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


# -- metadata instructions: each returns a new `config` sub-dict ------------------------------


def set_env(c: Config, pairs: Iterable[tuple[str, str]]) -> Config:
    env = list(c.get("Env") or [])
    for key, value in pairs:
        env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
    return {**c, "Env": env}


def env_map(c: Config) -> dict[str, str]:
    return dict(e.partition("=")[::2] for e in (c.get("Env") or []))


def set_labels(c: Config, pairs: Iterable[tuple[str, str]]) -> Config:
    return {**c, "Labels": {**(c.get("Labels") or {}), **dict(pairs)}}


def expose(c: Config, specs: Iterable[str]) -> Config:
    ports = dict(c.get("ExposedPorts") or {})
    for spec in specs:
        for port in expand_port_spec(spec):
            ports[port] = {}
    return {**c, "ExposedPorts": ports}


def expand_port_spec(spec: str) -> list[str]:
    """`80`, `80/udp`, `8000-8002/tcp` -> ["80/tcp"], ... ; raises InvalidArgument."""
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    low, _, high = port.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError as err:
        raise InvalidArgument(f"invalid containerPort: {port}") from err
    if not 0 < first <= last <= 65535:
        raise InvalidArgument(f"invalid containerPort: {port}")
    return [f"{n}/{proto}" for n in range(first, last + 1)]


def add_volumes(c: Config, paths: Iterable[str]) -> Config:
    volumes = dict(c.get("Volumes") or {})
    for path in paths:
        if not path.strip():
            raise InvalidArgument("VOLUME specified can not be an empty string")
        volumes[path] = {}
    return {**c, "Volumes": volumes}


def set_key(c: Config, key: str, value: Any) -> Config:
    return {**c, key: value}


def add_onbuild(c: Config, trigger: str) -> Config:
    return {**c, "OnBuild": list(c.get("OnBuild") or []) + [trigger]}


def healthcheck(test: list[str], flags: dict[str, str | None]) -> dict[str, Any]:
    """The config `Healthcheck` object; durations in nanoseconds as Docker stores them."""
    check: dict[str, Any] = {"Test": test}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        if flags.get(flag):
            check[key] = parse_duration(str(flags[flag]), flag)
    if flags.get("retries"):
        try:
            check["Retries"] = int(str(flags["retries"]))
        except ValueError as err:
            raise InvalidArgument(f"invalid retries value {flags['retries']!r}") from err
    return check


def parse_duration(text: str, what: str = "duration") -> int:
    """Go's time.ParseDuration for the units Dockerfiles use: "30s", "1m30s", "500ms"."""
    if text == "0":
        return 0
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise InvalidArgument(f"invalid {what} duration {text!r}")
    return int(total)
