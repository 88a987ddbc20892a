"""The argparse class every berth parser uses: docker's exit status for usage errors."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

USAGE_ERROR = 125  # docker exits 125 for flag and argument errors


class Parser(argparse.ArgumentParser):
    """ArgumentParser that exits 125 on a usage error and points at `--help`, as docker does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {message}\nSee '{self.prog} --help'.\n")
        sys.exit(USAGE_ERROR)


def add_help_flag(parser: argparse.ArgumentParser) -> None:
    """`--help` alone, for verbs whose `-h` means something else (run/create: `--hostname`)."""
    parser.add_argument("--help", action="help", help="show this help message and exit")
