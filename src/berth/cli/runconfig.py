"""`berth run` flags -> the `POST /containers/create` body, built the way docker-cli builds it.

Pure apart from reading `--env-file` files; the request itself is sent by containers.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from berth.cli.envfile import merge_env
from berth.cli.options import parse_labels, parse_restart_policy
from berth.cli.parser import add_help_flag
from berth.cli.ports import port_config
from berth.cli.units import nano_cpus, ram_in_bytes


def _memory(text: str) -> int:
    try:
        return ram_in_bytes(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _cpus(text: str) -> int:
    try:
        return nano_cpus(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_create_options(parser: argparse.ArgumentParser) -> None:
    """The `run` flags, docker's names. `-h` is `--hostname` here, so help is `--help` only."""
    add_help_flag(parser)
    flag = parser.add_argument
    flag("-d", "--detach", action="store_true", help="run in the background and print the container ID")
    flag("-i", "--interactive", action="store_true", help="keep STDIN open and attach it")
    flag("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    flag("--rm", action="store_true", help="remove the container when it exits")
    flag("--name", help="assign a name to the container")
    flag("-p", "--publish", action="append", default=[], metavar="SPEC",
         help="publish a port: [ip:][hostPort:]containerPort[/proto]")
    flag("-P", "--publish-all", action="store_true", help="publish all exposed ports to random ports")
    flag("--expose", action="append", default=[], metavar="PORT", help="expose a port without publishing it")
    flag("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment variable")
    flag("--env-file", action="append", default=[], metavar="FILE", help="read environment variables from a file")
    flag("-w", "--workdir", help="working directory inside the container")
    flag("-u", "--user", help="user name or UID[:GID]")
    flag("--entrypoint", help="override the image's ENTRYPOINT")
    flag("--network", "--net", help="network: none, host, bridge or a network name")
    flag("-h", "--hostname", help="container host name")
    flag("-m", "--memory", type=_memory, default=0, help="memory limit (e.g. 64m, 1g)")
    flag("--cpus", type=_cpus, default=0, help="number of CPUs (e.g. 1.5)")
    flag("--pids-limit", type=int, default=0, help="maximum number of processes")
    flag("-l", "--label", action="append", default=[], metavar="K=V", help="set a label")
    flag("-v", "--volume", action="append", default=[], metavar="SPEC",
         help="bind mount or volume: host-path|name:container-path[:opts], or an anonymous /path")
    flag("--restart", default="no", help="restart policy: no, always, on-failure[:N], unless-stopped")
    flag("--privileged", action="store_true", help="give extended privileges to the container")
    flag("--read-only", action="store_true", help="mount the root filesystem read-only")
    flag("--cap-add", action="append", default=[], metavar="CAP", help="add a Linux capability")
    flag("--cap-drop", action="append", default=[], metavar="CAP", help="drop a Linux capability")
    flag("--add-host", action="append", default=[], metavar="HOST:IP", help="add a line to /etc/hosts")
    flag("--dns", action="append", default=[], metavar="IP", help="set a DNS server")
    flag("--shm-size", type=_memory, default=0, help="size of /dev/shm")
    flag("--stop-signal", help="signal that stops the container")
    flag("--stop-timeout", type=int, help="seconds to wait before killing the container on stop")
    flag("--init", action="store_true", default=None, help="run an init inside the container")
    flag("image", metavar="IMAGE", help="image to run")
    flag("command", nargs=argparse.REMAINDER, metavar="COMMAND", help="command and arguments")


def _volumes(specs: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """`-v` with a colon is a bind or named volume (Binds); a bare path is an anonymous volume."""
    binds = [spec for spec in specs if ":" in spec]
    anonymous: dict[str, dict[str, Any]] = {spec: {} for spec in specs if ":" not in spec}
    return binds, anonymous


def host_config(args: argparse.Namespace, bindings: dict[str, Any], binds: list[str],
                console: tuple[int, int]) -> dict[str, Any]:
    """The HostConfig part of the body; unset values are sent as docker sends them."""
    config: dict[str, Any] = {
        "Binds": binds or None,
        "NetworkMode": args.network or "default",
        "PortBindings": bindings,
        "RestartPolicy": parse_restart_policy(args.restart),
        "AutoRemove": args.rm,
        "ConsoleSize": list(console) if args.tty else [0, 0],
        "CapAdd": args.cap_add or None,
        "CapDrop": args.cap_drop or None,
        "Dns": args.dns,
        "ExtraHosts": args.add_host or None,
        "Privileged": args.privileged,
        "PublishAllPorts": args.publish_all,
        "ReadonlyRootfs": args.read_only,
        "ShmSize": args.shm_size,
        "Memory": args.memory,
        "NanoCpus": args.cpus,
        "PidsLimit": args.pids_limit,
    }
    if args.init is not None:
        config["Init"] = args.init
    return config


def create_body(args: argparse.Namespace, environ: Mapping[str, str],
                console: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """The create body for parsed `run` args.

    Raises:
        ValueError: a flag value is malformed (ports, env file, restart policy).
        OSError: an env file cannot be read.
    """
    if args.rm and args.restart not in ("no", ""):
        raise ValueError("conflicting options: cannot specify both --restart and --rm")
    attached = not args.detach
    ports = port_config(args.publish, args.expose)
    binds, anonymous = _volumes(args.volume)
    network = args.network or "default"
    body: dict[str, Any] = {
        "Hostname": args.hostname or "",
        "Domainname": "",
        "User": args.user or "",
        "AttachStdin": attached and args.interactive,
        "AttachStdout": attached,
        "AttachStderr": attached,
        "ExposedPorts": ports.exposed,
        "Tty": args.tty,
        "OpenStdin": args.interactive,
        "StdinOnce": attached and args.interactive,
        "Env": merge_env(args.env_file, args.env, environ) or None,
        "Cmd": args.command or None,
        "Image": args.image,
        "Volumes": anonymous,
        "WorkingDir": args.workdir or "",
        # `--entrypoint ""` resets the image's entrypoint: docker sends [""] for it.
        "Entrypoint": None if args.entrypoint is None else [args.entrypoint],
        "Labels": parse_labels(args.label),
        "HostConfig": host_config(args, ports.bindings, binds, console),
        "NetworkingConfig": {"EndpointsConfig": {network: {}}},
    }
    if args.stop_signal:
        body["StopSignal"] = args.stop_signal
    if args.stop_timeout is not None:
        body["StopTimeout"] = args.stop_timeout
    return body
