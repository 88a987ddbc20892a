"""Pure checks and conversions for the container verbs (moby's wording in every error)."""

from __future__ import annotations

import signal as signals

from berth.errors import InvalidArgument

WAIT_CONDITIONS = ("", "not-running", "next-exit", "removed")

# Signals that leave the process running: `docker kill -s` with one of them is no manual stop.
NON_FATAL_SIGNALS = {signals.SIGWINCH, signals.SIGCONT, signals.SIGCHLD, signals.SIGURG}


def parse_signal(value: str | int | None, default: int = signals.SIGKILL) -> int:
    """`KILL`, `SIGKILL`, `9` → 9; InvalidArgument with moby's wording otherwise."""
    if value in (None, ""):
        return default
    text = str(value).upper()
    if text.isdigit():
        if not 0 < int(text) <= 64:  # SIGRTMAX: a larger number is no signal (and overflows kill(2))
            raise InvalidArgument(f"Invalid signal: {value}")
        return int(text)
    name = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(signals.Signals[name])
    except KeyError as err:
        raise InvalidArgument(f"Invalid signal: {value}") from err


def check_wait_condition(condition: str) -> None:
    """`POST /containers/{id}/wait?condition=`: moby's three conditions (empty means not-running)."""
    if condition not in WAIT_CONDITIONS:
        raise InvalidArgument(f'invalid condition: "{condition}"')


def check_tty_size(height: int, width: int) -> None:
    """A terminal size fits the kernel's winsize (two unsigned shorts)."""
    if not (0 <= height <= 0xFFFF and 0 <= width <= 0xFFFF):
        raise InvalidArgument(f"invalid terminal size {height}x{width}")


def start_error_code(message: str) -> int:
    """The exit code moby records when start fails (the CLI uses the message text)."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered:
        return 126
    return 128
