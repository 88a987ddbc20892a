"""System verbs: version, info, inspect."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import docker
import requests
from docker.errors import APIError

from berth.cli.client import API_VERSION, get_json
from berth.cli.failures import CliError, cannot_connect, status_code
from berth.cli.humanize import bytes_size
from berth.cli.template import TemplateError, render
from berth.cli.verbs import Verb

# `inspect` without --type probes in docker's order; a 404 means "not this kind".
INSPECT_PATHS = {
    "container": "/containers/{0}/json",
    "image": "/images/{0}/json",
    "network": "/networks/{0}",
    "volume": "/volumes/{0}",
}


def client_version() -> str:
    try:
        return metadata.version("berth")
    except metadata.PackageNotFoundError:
        return "unknown"


def client_section() -> str:
    return (
        "Client:\n"
        f" Version:           {client_version()}\n"
        f" API version:       {API_VERSION}\n"
        f" Python version:    {platform.python_version()}\n"
        f" OS/Arch:           {sys.platform}/{_arch(platform.machine())}\n"
    )


def _arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def server_section(version: Mapping[str, Any]) -> str:
    """docker version's Server block from a `GET /version` answer; missing fields print blank."""
    platform_name = (version.get("Platform") or {}).get("Name", "")
    min_api = version.get("MinAPIVersion")
    api = f"{version.get('ApiVersion', '')}" + (f" (minimum version {min_api})" if min_api else "")
    return (
        f"\nServer: {platform_name}\n"
        " Engine:\n"
        f"  Version:          {version.get('Version', '')}\n"
        f"  API version:      {api}\n"
        f"  Git commit:       {version.get('GitCommit', '')}\n"
        f"  Built:            {version.get('BuildTime', '')}\n"
        f"  OS/Arch:          {version.get('Os', '')}/{version.get('Arch', '')}\n"
        f"  Kernel Version:   {version.get('KernelVersion', '')}\n"
        f"  Experimental:     {str(bool(version.get('Experimental'))).lower()}\n"
    )


def cmd_version(api: docker.APIClient, args: argparse.Namespace) -> int:
    # Like docker, the client half prints even when the daemon cannot be reached.
    sys.stdout.write(client_section())
    sys.stdout.flush()
    try:
        version = get_json(api, "/version")
    except requests.exceptions.ConnectionError:
        raise CliError(cannot_connect(args.resolved_host)) from None
    sys.stdout.write(server_section(version))
    return 0


def _line(label: str, value: Any, indent: int = 1) -> str:
    return f"{' ' * indent}{label}: {'' if value is None else value}\n"


def info_text(info: Mapping[str, Any]) -> str:
    """docker info's Server block, for the fields berth reports."""
    parts = [
        "Server:\n",
        _line("Containers", info.get("Containers", 0)),
        _line("Running", info.get("ContainersRunning", 0), 2),
        _line("Paused", info.get("ContainersPaused", 0), 2),
        _line("Stopped", info.get("ContainersStopped", 0), 2),
        _line("Images", info.get("Images", 0)),
        _line("Server Version", info.get("ServerVersion")),
        _line("Storage Driver", info.get("Driver")),
    ]
    for name, value in info.get("DriverStatus") or []:
        parts.append(_line(name, value, 2))
    parts += [
        _line("Logging Driver", info.get("LoggingDriver")),
        _line("Cgroup Driver", info.get("CgroupDriver")),
        _line("Cgroup Version", info.get("CgroupVersion")),
        _line("Runtimes", " ".join(sorted(info.get("Runtimes") or {}))),
        _line("Default Runtime", info.get("DefaultRuntime")),
        _line("Kernel Version", info.get("KernelVersion")),
        _line("Operating System", info.get("OperatingSystem")),
        _line("OSType", info.get("OSType")),
        _line("Architecture", info.get("Architecture")),
        _line("CPUs", info.get("NCPU", 0)),
        _line("Total Memory", bytes_size(float(info.get("MemTotal") or 0))),
        _line("Name", info.get("Name")),
        _line("ID", info.get("ID")),
        _line("Docker Root Dir", info.get("DockerRootDir")),
        _line("Experimental", str(bool(info.get("ExperimentalBuild"))).lower()),
    ]
    cidrs = (info.get("RegistryConfig") or {}).get("InsecureRegistryCIDRs") or []
    if cidrs:
        parts.append(" Insecure Registries:\n")
        parts += [f"  {cidr}\n" for cidr in cidrs]
    parts.append(_line("Live Restore Enabled", str(bool(info.get("LiveRestoreEnabled"))).lower()))
    return "".join(parts)


def cmd_info(api: docker.APIClient, args: argparse.Namespace) -> int:
    info = get_json(api, "/info")
    sys.stdout.write(info_text(info))
    for warning in info.get("Warnings") or []:
        sys.stderr.write(f"{warning}\n")
    return 0


def add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", choices=sorted(INSPECT_PATHS), help="only look for this kind of object")
    parser.add_argument("-f", "--format", help="format the output with a Go-style template (subset)")
    parser.add_argument("objects", nargs="+", metavar="NAME|ID")


def inspect_one(api: docker.APIClient, name: str, kinds: list[str]) -> Any | None:
    """The first kind that knows `name`, or None; errors other than 404 propagate."""
    for kind in kinds:
        try:
            return get_json(api, INSPECT_PATHS[kind], name)
        except APIError as err:
            if status_code(err) != 404:
                raise
    return None


def cmd_inspect(api: docker.APIClient, args: argparse.Namespace) -> int:
    kinds = [args.type] if args.type else list(INSPECT_PATHS)
    found, missing = [], []
    for name in args.objects:
        result = inspect_one(api, name, kinds)
        if result is None:
            missing.append(name)
        else:
            found.append(result)
    if args.format:
        try:
            for item in found:
                print(render(args.format, item))
        except TemplateError as err:
            raise CliError(f"template parsing error: {err}") from None
    else:
        print(json.dumps(found, indent=4, ensure_ascii=False))
    for name in missing:
        what = f"{args.type}" if args.type else "object"
        sys.stderr.write(f"Error: No such {what}: {name}\n")
    return 1 if missing else 0


VERBS = (
    Verb("inspect", "Return low-level information on containers, images, networks or volumes",
         add_inspect_arguments, cmd_inspect),
    Verb("version", "Show the berth client and daemon version information", lambda parser: None, cmd_version),
    Verb("info", "Display system-wide information", lambda parser: None, cmd_info),
)
