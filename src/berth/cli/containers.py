"""Container verbs other than run/exec: ps, logs, start, stop, restart, kill, rm."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import Any

import docker
from docker.errors import APIError

from berth.cli.client import delete, flags_param, get_json, iter_body, open_stream, post_json
from berth.cli.failures import CliError, daemon_message
from berth.cli.options import filters_param, parse_filters
from berth.cli.render import PS_HEADERS, container_row, short_id
from berth.cli.stream import copy_frames
from berth.cli.table import render_table
from berth.cli.units import timestamp_param, utc_now
from berth.cli.verbs import Verb


def for_each(names: Iterable[str], action: Callable[[str], object]) -> int:
    """Apply `action` to each name, printing the name on success and the error otherwise.

    Like docker, one failure does not stop the others; the exit status is 1 if any failed.
    """
    failed = False
    for name in names:
        try:
            action(name)
        except APIError as err:
            sys.stderr.write(daemon_message(err) + "\n")
            failed = True
            continue
        print(name)
    return 1 if failed else 0


def add_ps_arguments(parser: argparse.ArgumentParser) -> None:
    flag = parser.add_argument
    flag("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    flag("-q", "--quiet", action="store_true", help="only display container IDs")
    flag("--no-trunc", action="store_true", help="don't truncate output")
    flag("-f", "--filter", action="append", default=[], metavar="K=V", help="filter output (name=, status=, ...)")
    flag("-n", "--last", type=int, default=-1, help="show n last created containers (includes all states)")
    flag("-l", "--latest", action="store_true", help="show the latest created container (includes all states)")
    flag("-s", "--size", action="store_true", help="display total file sizes")


def ps_params(args: argparse.Namespace) -> dict[str, Any]:
    """Only non-default parameters, as docker-cli sends them."""
    try:
        params: dict[str, Any] = filters_param(parse_filters(args.filter))
    except ValueError as err:
        raise CliError(str(err)) from None
    if args.all:
        params["all"] = 1
    limit = 1 if args.latest else args.last
    if limit > 0:
        params["limit"] = limit
    if args.size:
        params["size"] = 1
    return params


def cmd_ps(api: docker.APIClient, args: argparse.Namespace) -> int:
    items = get_json(api, "/containers/json", params=ps_params(args)) or []
    if args.quiet:
        for item in items:
            print(item["Id"] if args.no_trunc else short_id(item["Id"]))
        return 0
    now = utc_now()
    rows = [container_row(item, now, trunc=not args.no_trunc) for item in items]
    sys.stdout.write(render_table(PS_HEADERS, rows))
    return 0


def add_logs_arguments(parser: argparse.ArgumentParser) -> None:
    flag = parser.add_argument
    flag("-f", "--follow", action="store_true", help="follow log output")
    flag("-n", "--tail", default="all", help="number of lines to show from the end of the logs")
    flag("--since", help="show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m)")
    flag("--until", help="show logs before a timestamp or relative time")
    flag("-t", "--timestamps", action="store_true", help="show timestamps")
    flag("--details", action="store_true", help="show extra details provided to logs")
    flag("container", metavar="CONTAINER")


def logs_params(args: argparse.Namespace, now: float) -> dict[str, Any]:
    params: dict[str, Any] = {"stdout": 1, "stderr": 1, "tail": args.tail}
    for name, flag in (("follow", args.follow), ("timestamps", args.timestamps), ("details", args.details)):
        if flag:
            params[name] = 1
    try:
        for name in ("since", "until"):
            value = getattr(args, name)
            if value:
                params[name] = timestamp_param(value, now)
    except ValueError as err:
        raise CliError(str(err)) from None
    return params


def cmd_logs(api: docker.APIClient, args: argparse.Namespace) -> int:
    info = get_json(api, "/containers/{0}/json", args.container)
    tty_mode = bool((info.get("Config") or {}).get("Tty"))
    container_id = str(info.get("Id") or args.container)
    response = open_stream(api, "GET", "/containers/{0}/logs", container_id, params=logs_params(args, utc_now()))
    copy_frames(iter_body(response), tty_mode, sys.stdout.buffer, sys.stderr.buffer)
    return 0


def add_names(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def add_stop_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--time", "--timeout", dest="time", type=int,
                        help="seconds to wait before killing the container")
    parser.add_argument("-s", "--signal", help="signal to send to the container")
    add_names(parser)


def stop_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.time is not None:
        params["t"] = args.time
    if getattr(args, "signal", None):
        params["signal"] = args.signal
    return params


def cmd_stop(api: docker.APIClient, args: argparse.Namespace) -> int:
    params = stop_params(args)
    return for_each(args.containers, lambda name: post_json(api, "/containers/{0}/stop", name, params=params))


def cmd_restart(api: docker.APIClient, args: argparse.Namespace) -> int:
    params = stop_params(args)
    return for_each(args.containers, lambda name: post_json(api, "/containers/{0}/restart", name, params=params))


def add_kill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--signal", help="signal to send (default KILL)")
    add_names(parser)


def cmd_kill(api: docker.APIClient, args: argparse.Namespace) -> int:
    params = {"signal": args.signal} if args.signal else None
    return for_each(args.containers, lambda name: post_json(api, "/containers/{0}/kill", name, params=params))


def cmd_start(api: docker.APIClient, args: argparse.Namespace) -> int:
    return for_each(args.containers, lambda name: post_json(api, "/containers/{0}/start", name))


def add_rm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="force the removal of a running container")
    parser.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes of the container")
    add_names(parser)


def cmd_rm(api: docker.APIClient, args: argparse.Namespace) -> int:
    params = flags_param(force=args.force, v=args.volumes)
    return for_each(args.containers, lambda name: delete(api, "/containers/{0}", name, params=params))


VERBS = (
    Verb("ps", "List containers", add_ps_arguments, cmd_ps),
    Verb("logs", "Fetch the logs of a container", add_logs_arguments, cmd_logs),
    Verb("start", "Start one or more stopped containers", add_names, cmd_start),
    Verb("stop", "Stop one or more running containers", add_stop_arguments, cmd_stop),
    Verb("restart", "Restart one or more containers", add_stop_arguments, cmd_restart),
    Verb("kill", "Kill one or more running containers", add_kill_arguments, cmd_kill),
    Verb("rm", "Remove one or more containers", add_rm_arguments, cmd_rm),
)
