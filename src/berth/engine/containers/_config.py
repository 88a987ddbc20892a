"""Pure translation of a Docker create request + image config into what the container runs.

Nothing here touches the host: it merges the image's defaults with the request the way moby
does (Env by key, Cmd replaced by an explicit Entrypoint, Labels merged), validates names and
limits, and turns HostConfig into runtime/network values.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from berth.engine import health
from berth.engine.awslogs_options import validate_log_config
from berth.errors import InvalidArgument
from berth.types.container import ContainerConfig, EndpointSettings
from berth.types.host_config import HostConfig, PortBinding

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_ADJECTIVES = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid",
               "merry", "nifty", "proud", "quirky", "relaxed", "sharp", "tender", "vibrant", "wise")
_NAMES = ("albattani", "babbage", "curie", "darwin", "euler", "feynman", "galileo", "hopper",
          "kepler", "lovelace", "mendel", "newton", "pascal", "ritchie", "shannon", "turing")


def generate_name(taken: set[str]) -> str:
    """A Docker-style `adjective_scientist` name not in `taken`."""
    for _ in range(100):
        name = f"{random.choice(_ADJECTIVES)}_{random.choice(_NAMES)}"
        if name not in taken:
            return name
    return f"{random.choice(_ADJECTIVES)}_{random.choice(_NAMES)}{random.randint(1, 99999)}"


def validate_name(name: str) -> str:
    """Return the name without its leading slash; InvalidArgument with Docker's wording otherwise."""
    if not NAME_RE.match(name):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def _env_key(item: str) -> str:
    return item.split("=", 1)[0]


def merge_env(image_env: list[str] | None, request_env: list[str] | None) -> list[str]:
    """Image Env first, request entries replace same-named ones (moby's ReplaceOrAppendEnvValues)."""
    merged: dict[str, str] = {}
    for item in (image_env or []) + (request_env or []):
        if not isinstance(item, str):
            raise InvalidArgument(f"invalid environment variable: {item!r}")
        # `NAME` without `=` is kept as given (it replaces the image's NAME=..), as moby keeps it in
        # Config.Env; the process does not get it (runtime/oci.py).
        merged[_env_key(item)] = item
    return list(merged.values())


def _strings(value: Any) -> tuple[str, ...] | None:
    """A list of strings from the image config (berth.images' JSON), None when absent."""
    return None if value is None else tuple(str(v) for v in value)


def merge_config(request: ContainerConfig, image_config: Mapping[str, Any], container_id: str) -> ContainerConfig:
    """The container's `Config` as `docker inspect` shows it: the request merged with the
    image's config (a berth.images config dict)."""
    img = image_config or {}
    entrypoint, cmd = request.entrypoint, request.cmd
    if entrypoint is None:
        entrypoint = _strings(img.get("Entrypoint"))
        if not cmd:
            cmd = _strings(img.get("Cmd"))
    # An explicit entrypoint keeps only the request's Cmd: the image's Cmd is dropped (moby).
    if entrypoint == ("",):
        entrypoint = None
    labels = {**(img.get("Labels") or {}), **request.labels}
    exposed = tuple(dict.fromkeys([*(img.get("ExposedPorts") or {}), *(request.exposed_ports or ())]))
    return ContainerConfig(
        hostname=request.hostname or container_id[:12],
        domainname=request.domainname,
        user=request.user or img.get("User") or "",
        attach_stdin=request.attach_stdin, attach_stdout=request.attach_stdout, attach_stderr=request.attach_stderr,
        exposed_ports=exposed or None,
        tty=request.tty, open_stdin=request.open_stdin, stdin_once=request.stdin_once,
        env=tuple(merge_env(img.get("Env"), list(request.env))),
        cmd=cmd,
        image=request.image,
        volumes=request.volumes or _strings(img.get("Volumes")),
        working_dir=request.working_dir or img.get("WorkingDir") or "",
        entrypoint=entrypoint,
        on_build=None,
        labels=labels,
        stop_signal=request.stop_signal or img.get("StopSignal") or None,
        stop_timeout=request.stop_timeout,
        # CMD-SHELL health probes run through Shell.
        healthcheck=health.merge(request.healthcheck, health.from_image(img.get("Healthcheck"))),
        shell=request.shell or _strings(img.get("Shell")) or None,
    )


def process_args(config: ContainerConfig) -> list[str]:
    """Entrypoint + Cmd; InvalidArgument with moby's wording when both are empty."""
    args = list(config.entrypoint or ()) + list(config.cmd or ())
    if not args:
        raise InvalidArgument("no command specified")
    return args


def port_key(key: str) -> tuple[int, str]:
    """`80/tcp` → (80, "tcp"); a bare `80` means tcp."""
    port, _, proto = key.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp", "sctp") or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"invalid port specification: {key!r}")
    return int(port), proto


def parse_host_port(value: str) -> int:
    if value in ("", None):
        return 0
    text = str(value).split("-", 1)[0]
    if not text.isdigit() or int(text) > 65535:
        raise InvalidArgument(f"invalid port specification: {value!r}")
    return int(text)


def port_bindings(host_config: HostConfig, config: ContainerConfig) -> list[tuple[int, str, str, int]]:
    """(container_port, proto, host_ip, host_port) for each binding; -P publishes every exposed port."""
    result: list[tuple[int, str, str, int]] = []
    for key, entries in host_config.port_bindings.items():
        port, proto = port_key(key)
        for entry in entries or (PortBinding(),):
            result.append((port, proto, entry.host_ip, parse_host_port(entry.host_port)))
    if host_config.publish_all_ports:
        bound = {(p, pr) for p, pr, _, _ in result}
        for key in config.exposed_ports or ():
            port, proto = port_key(key)
            if (port, proto) not in bound:
                result.append((port, proto, "", 0))
    return result


CONTAINER_MODE_PREFIX = "container:"


def network_mode(host_config: HostConfig) -> str:
    """Docker's NetworkMode: bridge, none, host, `container:<name|id>`, or the name/id of a
    user-defined network (engine/networks.py checks that networks and containers exist)."""
    mode = host_config.network_mode or "default"
    if mode in ("default", "bridge"):
        return "bridge"
    if mode.startswith(CONTAINER_MODE_PREFIX) and not joined_container(mode):
        raise InvalidArgument("Invalid network mode: invalid container format container:<name|id>")
    return mode


def joined_container(mode: str) -> str:
    """The name/id in `container:<ref>`; "" for any other network mode."""
    return mode[len(CONTAINER_MODE_PREFIX):] if mode.startswith(CONTAINER_MODE_PREFIX) else ""


# moby's runconfig errors, word for word: the CLI shows them as they are.
CONFLICT_HOSTNAME = "conflicting options: hostname and the network mode"
CONFLICT_LINKS = ("conflicting options: container type network can't be used with links. "
                  "This would result in undefined behavior")
CONFLICT_DNS = "conflicting options: dns and the network mode"
CONFLICT_EXTRA_HOSTS = "conflicting options: custom host-to-IP mapping and the network mode"
CONFLICT_MAC = "conflicting options: mac-address and the network mode"
CONFLICT_PUBLISH = "conflicting options: port publishing and the container type network mode"
CONFLICT_EXPOSE = "conflicting options: port exposing and the container type network mode"
CONFLICT_SHARED = ("container sharing network namespace with another container or host cannot be "
                   "connected to any other network")


def check_container_mode(request: ContainerConfig, host_config: HostConfig,
                         endpoints: Mapping[str, EndpointSettings]) -> None:
    """moby's validateNetContainerMode for `container:<ref>`: what the joined container owns
    (hostname, /etc files, addresses, ports) cannot be set on the joiner. `request` is the
    Config as requested (before the image's config is merged in), as moby checks it.

    NetworkingConfig may only name the mode itself (the CLI sends an empty endpoint for it)
    or `default`; an address or MAC there is refused like the flags that set them.
    """
    mode = host_config.network_mode
    if not joined_container(mode):
        return
    checks = (
        (request.hostname, CONFLICT_HOSTNAME),
        (host_config.links, CONFLICT_LINKS),
        (host_config.dns, CONFLICT_DNS),
        (host_config.extra_hosts, CONFLICT_EXTRA_HOSTS),
        (request.mac_address, CONFLICT_MAC),
        (host_config.port_bindings or host_config.publish_all_ports, CONFLICT_PUBLISH),
        (request.exposed_ports, CONFLICT_EXPOSE),
    )
    for value, message in checks:
        if value:
            raise InvalidArgument(message)
    _check_container_mode_endpoints(mode, endpoints)


def _check_container_mode_endpoints(mode: str, endpoints: Mapping[str, EndpointSettings]) -> None:
    for name, settings in endpoints.items():
        if name not in (mode, "default"):
            raise InvalidArgument(CONFLICT_SHARED)
        if settings.mac_address:  # the CLI puts --mac-address here since API 1.44
            raise InvalidArgument(CONFLICT_MAC)
        if settings.links:
            raise InvalidArgument(CONFLICT_LINKS)
        ipam = settings.ipam_config
        if ipam is not None and (ipam.ipv4_address or ipam.ipv6_address):
            raise InvalidArgument(CONFLICT_SHARED)


_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_memory(value: Any) -> int:  # any JSON value (a number or a size string)
    if value in (None, "", 0):
        return 0
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"(\d+)([bkmg]?)b?", str(value).lower())
    if not m:
        raise InvalidArgument(f"invalid size: {value!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


# moby's built-in log drivers: any of them is accepted (berth logs the same way for all but
# "none"); an unknown name is refused at create, as dockerd does.
LOG_DRIVERS = ("", "json-file", "local", "none", "journald", "syslog", "fluentd", "gelf", "awslogs", "splunk",
               "etwlogs", "gcplogs", "logentries", "k8s-file")


def validate_config(request: ContainerConfig) -> None:
    """Reject the Config values moby's verifyContainerSettings rejects, with its wording."""
    workdir = request.working_dir
    if workdir and not workdir.startswith("/"):
        raise InvalidArgument(f"the working directory '{workdir}' is invalid, it needs to be an absolute path")
    for key in request.exposed_ports or ():
        port_key(key)
    health.validate(request.healthcheck)


def validate_host_config(host_config: HostConfig) -> None:
    """Reject limits moby rejects, with its wording."""
    log_config = host_config.log_config
    # moby's ValidateLogOpts: mode/max-buffer-size, the driver, then its own options (awslogs)
    validate_log_config(log_config.type, log_config.config, LOG_DRIVERS)
    memory = host_config.memory
    if memory and memory < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    swap = host_config.memory_swap
    if swap > 0 and memory and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if host_config.nano_cpus < 0:
        raise InvalidArgument("Range of CPUs is from 0.01 to the number of CPUs available")
    restart = host_config.restart_policy.name or "no"
    if restart not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy: unknown policy '{restart}'; use one of "
                              "'no', 'always', 'on-failure', or 'unless-stopped'")
    if host_config.auto_remove and restart not in ("", "no"):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")


def normalize_host_config(host_config: HostConfig) -> HostConfig:
    """HostConfig as moby stores it: defaults filled in, `default` network mode named `bridge`,
    no restart policy named `no`.

    The log driver is reported as json-file: our k8s-file logs answer the same `logs` API, and
    clients (docker-py's `containers.run`) read container output only for json-file/journald.
    """
    log_config = host_config.log_config
    if not log_config.type:
        log_config = replace(log_config, type="json-file")
    network_mode = host_config.network_mode
    if (network_mode or "default") == "default":
        network_mode = "bridge"
    restart_policy = host_config.restart_policy
    if not restart_policy.name:
        restart_policy = replace(restart_policy, name="no")
    return replace(host_config, log_config=log_config, network_mode=network_mode, restart_policy=restart_policy)
