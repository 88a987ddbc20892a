"""Errors that point at a place in the Dockerfile: `Dockerfile:3: unknown instruction: FOO`."""

from __future__ import annotations

from berth.errors import InvalidArgument


class DockerfileError(InvalidArgument):
    """A Dockerfile problem at `filename:line`; `code` becomes the CLI's exit status."""

    def __init__(self, filename: str, line: int, message: str, *, code: int = 1) -> None:
        prefix = f"{filename}:{line}: " if line else f"{filename}: "
        super().__init__(prefix + message)
        self.filename = filename
        self.line = line
        self.reason = message
        self.code = code


class StepFailed(InvalidArgument):
    """A RUN step exited non-zero; Docker's wording, with the exit code for errorDetail.code."""

    def __init__(self, command: str, code: int) -> None:
        super().__init__(f"The command '{command}' returned a non-zero code: {code}")
        self.code = code
