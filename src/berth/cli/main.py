"""`berth`: the daemon and a docker-like client over the Docker Engine API.

Dispatch only: verb modules declare their subcommands (verbs.Verb); this module assembles the
parser, finds the handler and turns failures into docker's messages and exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import requests
from docker.errors import APIError, DockerException

from berth.cli import containers, images, run, system
from berth.cli import build
from berth.cli.client import DEFAULT_HOST, resolve_host
from berth.cli.failures import CliError, cannot_connect, daemon_message
from berth.cli.parser import Parser
from berth.cli.verbs import Verb, register

DESCRIPTION = f"""\
Run containers on this host through the berth daemon, with docker's verbs and flags.

The daemon is found as docker finds its own: -H/--host, then DOCKER_HOST, then
{DEFAULT_HOST}. Run 'berth COMMAND --help' for a command's flags.
"""

# Order shown in `berth --help`.
TOP_LEVEL: tuple[Verb, ...] = (
    run.VERBS[0], run.VERBS[1], *containers.VERBS, *images.VERBS, *build.VERBS, *system.VERBS,
)


def _add_daemon(subparsers: Any) -> None:
    """The lead's `daemon` subcommand, when its module exists yet."""
    try:
        from berth.cli.daemon_cmd import add_daemon_parser
    except ModuleNotFoundError as err:
        if err.name != "berth.cli.daemon_cmd":
            raise
        return
    add_daemon_parser(subparsers)


def _add_image_group(subparsers: Any) -> None:
    group = subparsers.add_parser("image", help="Manage images (ls, rm, tag, inspect, load, save, import, bootstrap)",
                                  description="Manage images.")
    sub = group.add_subparsers(title="Commands", metavar="COMMAND")
    for name, verb in images.IMAGE_GROUP:
        register(sub, verb, name)
    inspect = register(sub, system.VERBS[0], "inspect")
    inspect.set_defaults(type="image")
    group.set_defaults(func=lambda args: group.print_help() or 0)


def _add_container_group(subparsers: Any) -> None:
    group = subparsers.add_parser("container", help="Manage containers (ls, run, exec, logs, stop, rm, ...)",
                                  description="Manage containers.")
    sub = group.add_subparsers(title="Commands", metavar="COMMAND")
    register(sub, containers.VERBS[0], "ls")
    for verb in (*run.VERBS, *containers.VERBS[1:]):
        register(sub, verb)
    inspect = register(sub, system.VERBS[0], "inspect")
    inspect.set_defaults(type="container")
    group.set_defaults(func=lambda args: group.print_help() or 0)


def build_parser() -> Parser:
    parser = Parser(prog="berth", description=DESCRIPTION)
    parser.add_argument("-H", "--host", help=f"daemon socket to connect to (default: $DOCKER_HOST or {DEFAULT_HOST})")
    parser.add_argument("-D", "--debug", action="store_true", help="show tracebacks for unexpected errors")
    parser.add_argument("-v", "--version", action="store_true", help="print the client version and exit")
    subparsers = parser.add_subparsers(title="Commands", metavar="COMMAND")
    for verb in TOP_LEVEL:
        register(subparsers, verb)
    _add_image_group(subparsers)
    _add_container_group(subparsers)
    _add_daemon(subparsers)
    from berth.cli.registry import add_registry_parser

    add_registry_parser(subparsers)
    from berth.cli.aws_credentials import add_aws_credentials_parser

    add_aws_credentials_parser(subparsers)
    from berth.cli.ecs import add_ecs_parser

    add_ecs_parser(subparsers)
    from berth.cli.elb import add_elb_parser

    add_elb_parser(subparsers)
    return parser


def dispatch(args: argparse.Namespace) -> int:
    """Run the chosen handler; map every expected failure to a message and docker's exit code."""
    host = resolve_host(getattr(args, "host", None), os.environ)
    try:
        return int(args.func(args) or 0)
    except CliError as err:
        sys.stderr.write(err.message + "\n")
        return err.code
    except APIError as err:
        sys.stderr.write(daemon_message(err) + "\n")
        return 1
    except requests.exceptions.ConnectionError:
        sys.stderr.write(cannot_connect(host) + "\n")
        return 1
    except DockerException as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    except BrokenPipeError:
        # Our reader went away (`berth logs x | head`); nothing left to tell anyone.
        return 0
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(f"berth version {system.client_version()}")
        sys.exit(0)
    if not hasattr(args, "func"):
        parser.print_help()
        sys.exit(0)
    try:
        code = dispatch(args)
    except Exception:  # noqa: BLE001 - last resort: never greet a user with a traceback
        if args.debug:
            traceback.print_exc()
        else:
            sys.stderr.write(f"berth: unexpected error: {sys.exc_info()[1]!r} (run with -D for details)\n")
        code = 1
    _quiet_flush()
    sys.exit(code)


def _quiet_flush() -> None:
    """Flush stdout now so a closed pipe at exit does not print a traceback from the interpreter."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    main()
