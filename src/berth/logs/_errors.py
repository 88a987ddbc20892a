"""CloudWatch Logs' error shapes as berth error kinds: each carries its wire code (`aws_code`)."""

from __future__ import annotations

from berth.errors import AlreadyExists, Conflict, InvalidArgument, NotFound

GROUP_NOT_FOUND = "The specified log group does not exist."
STREAM_NOT_FOUND = "The specified log stream does not exist."
GROUP_EXISTS = "The specified log group already exists"
STREAM_EXISTS = "The specified log stream already exists"
BAD_PATTERN = "Invalid filter pattern"


class ResourceNotFound(NotFound):
    aws_code = "ResourceNotFoundException"


class ResourceAlreadyExists(AlreadyExists):
    aws_code = "ResourceAlreadyExistsException"


class InvalidParameter(InvalidArgument):
    aws_code = "InvalidParameterException"


class InvalidFilterPattern(InvalidParameter):
    """A filter pattern that does not parse; the message is AWS's, the detail says where."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(BAD_PATTERN)
        self.detail = detail


class LimitExceeded(Conflict):
    aws_code = "LimitExceededException"


class TooManyTags(InvalidArgument):
    aws_code = "TooManyTagsException"
