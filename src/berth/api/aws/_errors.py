"""AWS error shapes for the JSON 1.1 protocol, and the one mapper from berth error kinds.

Domain errors may carry an `aws_code` (e.g. "RepositoryNotFoundException"); otherwise the kind
picks a generic code. Client errors are HTTP 400; only server faults are 500 (SDKs retry those).
"""

from __future__ import annotations

from dataclasses import dataclass

from berth.errors import (
    AlreadyExists, BerthError, Conflict, FailedPrecondition, InvalidArgument, NotFound, Unavailable,
)


@dataclass
class AwsError(Exception):
    """An error answered as `{"__type": code, "message": message}`."""

    code: str
    message: str
    status: int = 400

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


_KIND_CODES: list[tuple[type[BerthError], str, int]] = [
    (NotFound, "ResourceNotFoundException", 400),
    (AlreadyExists, "ResourceAlreadyExistsException", 400),
    (Conflict, "ConflictException", 400),
    (InvalidArgument, "InvalidParameterException", 400),
    (FailedPrecondition, "InvalidParameterException", 400),
    (Unavailable, "ServerException", 500),
]


def to_aws_error(err: Exception) -> AwsError:
    if isinstance(err, AwsError):
        return err
    code = getattr(err, "aws_code", None)
    if isinstance(err, BerthError) and isinstance(code, str):
        return AwsError(code, str(err), 400)
    for kind, generic, status in _KIND_CODES:
        if isinstance(err, kind):
            return AwsError(generic, str(err), status)
    return AwsError("ServerException", str(err) or type(err).__name__, 500)
