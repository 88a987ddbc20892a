"""How verb modules declare their subcommands, so `berth X` and `berth image X` share one definition."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from berth.cli.client import Handler, client_command


@dataclass(frozen=True)
class Verb:
    """One subcommand: its name, one-line help, flag declarations and the handler it runs."""

    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Handler
    aliases: tuple[str, ...] = ()
    # False for verbs that own `-h` as a flag (run: --hostname); they add --help themselves.
    add_help: bool = True
    description: str = field(default="")


def register(subparsers: Any, verb: Verb, name: str | None = None) -> argparse.ArgumentParser:
    """Add `verb` to an argparse subparsers action (under `name` if given)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name or verb.name,
        aliases=list(verb.aliases),
        help=verb.summary,
        description=verb.description or verb.summary,
        add_help=verb.add_help,
    )
    verb.add_arguments(parser)
    parser.set_defaults(func=client_command(verb.handler))
    return parser
