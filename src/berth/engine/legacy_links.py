"""The environment variables a legacy `--link` gives a container on the default bridge. Pure.

For `docker run --link db:web-db --name app ...`, dockerd (daemon/links) adds, per link:

    WEB_DB_PORT=tcp://172.17.0.2:5432                  lowest exposed port, tcp first
    WEB_DB_PORT_5432_TCP=tcp://172.17.0.2:5432         and _ADDR, _PORT, _PROTO, per port
    WEB_DB_PORT_8000_TCP_START=tcp://...:8000          3+ consecutive ports also get _START,
                                                       _END, _PORT_START, _PORT_END, _ADDR, _PROTO
    WEB_DB_NAME=/app/web-db
    WEB_DB_ENV_POSTGRES_DB=x                           every Env of the target but HOME and PATH

They come before the container's own Env, which wins on a clash. Links on user networks are
name aliases only (no variables), as in Docker.
"""

from __future__ import annotations

from collections.abc import Iterable


def _port_key(spec: str) -> tuple[int, str]:
    number, _, proto = spec.partition("/")
    return int(number), (proto or "tcp").lower()


def _sorted_ports(exposed: Iterable[str]) -> list[tuple[int, str]]:
    """moby's sort: by number, tcp before other protocols of the same number."""
    ports = []
    for spec in exposed:
        try:
            ports.append(_port_key(spec))
        except ValueError:
            continue
    return sorted(ports, key=lambda p: (p[0], p[1] != "tcp", p[1]))


def _next_contiguous(ports: list[tuple[int, str]], value: int, index: int) -> int:
    """The last index of the run of consecutive numbers starting at `index` (moby's nextContiguous)."""
    if index + 1 == len(ports):
        return index
    for i in range(index + 1, len(ports)):
        if ports[i][0] > value + 1:
            return i - 1
        value += 1
    return len(ports) - 1


def link_env(parent_name: str, alias: str, child_ip: str, exposed_ports: Iterable[str],
             child_env: Iterable[str]) -> list[str]:
    """The variables of one link `alias` of container `parent_name` to a target at `child_ip`."""
    name = f"/{parent_name.lstrip('/')}/{alias}"
    prefix = alias.upper().replace("-", "_")
    ports = _sorted_ports(exposed_ports)
    env = []
    if ports:
        number, proto = ports[0]
        env.append(f"{prefix}_PORT={proto}://{child_ip}:{number}")
    i = 0
    while i < len(ports):
        number, proto = ports[i]
        j = _next_contiguous(ports, number, i)
        if j > i + 1:
            key = f"{prefix}_PORT_{number}_{proto.upper()}"
            last_number, last_proto = ports[j]
            env += [f"{key}_START={proto}://{child_ip}:{number}", f"{key}_ADDR={child_ip}",
                    f"{key}_PROTO={proto}", f"{key}_PORT_START={number}",
                    f"{prefix}_PORT_{number}_{last_proto.upper()}_END={last_proto}://{child_ip}:{last_number}",
                    f"{prefix}_PORT_{number}_{last_proto.upper()}_PORT_END={last_number}"]
            i = j + 1
            continue
        i += 1
    for number, proto in ports:
        key = f"{prefix}_PORT_{number}_{proto.upper()}"
        env += [f"{key}={proto}://{child_ip}:{number}", f"{key}_ADDR={child_ip}", f"{key}_PORT={number}",
                f"{key}_PROTO={proto}"]
    env.append(f"{prefix}_NAME={name}")
    for item in child_env:
        key, sep, value = item.partition("=")
        if sep and key not in ("HOME", "PATH"):
            env.append(f"{prefix}_ENV_{key}={value}")
    return env
