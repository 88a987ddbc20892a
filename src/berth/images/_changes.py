"""`docker import --change`: Dockerfile instructions applied to an image's runtime config.

Supported: CMD, ENTRYPOINT (JSON or shell form), ENV, LABEL, EXPOSE, WORKDIR, USER, VOLUME,
STOPSIGNAL. The function is pure: it returns a new `config` dict (the `config` member of an image
config, with Docker's capitalised keys).
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Callable, Sequence
from typing import Any

from berth.errors import InvalidArgument

Config = dict[str, Any]


def apply_changes(config: Config, changes: Sequence[str]) -> Config:
    """Apply each change line in order; raises InvalidArgument for anything else."""
    out = copy.deepcopy(config)
    for line in changes:
        for change in line.splitlines():
            if change.strip():
                _apply(out, change.strip())
    return out


def _apply(config: Config, change: str) -> None:
    instruction, _, arg = change.partition(" ")
    handler = _HANDLERS.get(instruction.upper())
    if handler is None:
        raise InvalidArgument(f"{instruction.upper()} is not a valid change command")
    arg = arg.strip()
    if not arg:
        raise InvalidArgument(f"{instruction.upper()} requires at least one argument")
    handler(config, arg)


def command_form(arg: str) -> list[str]:
    """JSON (exec) form if `arg` is a JSON list of strings, else the shell form."""
    if arg.startswith("["):
        try:
            parsed = json.loads(arg)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return parsed
    return ["/bin/sh", "-c", arg]


def _cmd(config: Config, arg: str) -> None:
    config["Cmd"] = command_form(arg)


def _entrypoint(config: Config, arg: str) -> None:
    config["Entrypoint"] = command_form(arg)


def _pairs(arg: str, instruction: str) -> list[tuple[str, str]]:
    """`k=v k2="v 2"` pairs; the legacy `ENV key value words` form gives one pair."""
    try:
        words = shlex.split(arg)
    except ValueError as err:
        raise InvalidArgument(f"{instruction}: {err}") from err
    if words and "=" not in words[0]:
        key, _, value = arg.partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{instruction} names can not be blank: {word!r}")
        pairs.append((key, value))
    return pairs


def _env(config: Config, arg: str) -> None:
    env = list(config.get("Env") or [])
    for key, value in _pairs(arg, "ENV"):
        env = [e for e in env if e.partition("=")[0] != key]
        env.append(f"{key}={value}")
    config["Env"] = env


def _label(config: Config, arg: str) -> None:
    labels = dict(config.get("Labels") or {})
    labels.update(_pairs(arg, "LABEL"))
    config["Labels"] = labels


def _expose(config: Config, arg: str) -> None:
    ports = dict(config.get("ExposedPorts") or {})
    for spec in arg.split():
        port, _, proto = spec.partition("/")
        for number in _port_range(port):
            ports[f"{number}/{(proto or 'tcp').lower()}"] = {}
    config["ExposedPorts"] = ports


def _port_range(port: str) -> list[int]:
    low, _, high = port.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError as err:
        raise InvalidArgument(f"invalid containerPort: {port}") from err
    if not 0 < first <= last <= 65535:
        raise InvalidArgument(f"invalid containerPort: {port}")
    return list(range(first, last + 1))


def _volume(config: Config, arg: str) -> None:
    volumes = dict(config.get("Volumes") or {})
    paths = command_form(arg) if arg.startswith("[") else arg.split()
    if paths[:2] == ["/bin/sh", "-c"]:
        paths = arg.split()
    for path in paths:
        volumes[path] = {}
    config["Volumes"] = volumes


def _setter(key: str) -> Callable[[Config, str], None]:
    def set_value(config: Config, arg: str) -> None:
        config[key] = arg
    return set_value


_HANDLERS: dict[str, Callable[[Config, str], None]] = {
    "CMD": _cmd,
    "ENTRYPOINT": _entrypoint,
    "ENV": _env,
    "LABEL": _label,
    "EXPOSE": _expose,
    "WORKDIR": _setter("WorkingDir"),
    "USER": _setter("User"),
    "STOPSIGNAL": _setter("StopSignal"),
    "VOLUME": _volume,
}
