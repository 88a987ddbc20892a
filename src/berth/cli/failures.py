"""The CLI's own error and the wording of daemon and connection failures."""

from __future__ import annotations

from docker.errors import APIError


class CliError(Exception):
    """A failure to report as one line on stderr, exiting with `code` (Docker's exit codes)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def daemon_message(err: APIError) -> str:
    """`Error response from daemon: <message>`: the daemon's JSON `message` or its body text."""
    text = err.explanation or (err.response.reason if err.response is not None else "") or str(err)
    return f"Error response from daemon: {text}"


def status_code(err: APIError) -> int:
    """The HTTP status of a daemon error, 0 when there was no response."""
    return err.response.status_code if err.response is not None else 0


def cannot_connect(host: str) -> str:
    """The connection-refused message."""
    return f"Cannot connect to the berth daemon at {host}: is the daemon running?"
