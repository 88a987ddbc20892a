"""SSM's and Secrets Manager's error shapes as berth error kinds; each carries its wire code
(`aws_code`), which the AWS layer sends as `__type`.

Messages never quote a parameter or secret value.
"""

from __future__ import annotations

from berth.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, Unavailable

# --- SSM Parameter Store ---------------------------------------------------------------------


class ParameterNotFound(NotFound):
    aws_code = "ParameterNotFound"


class ParameterVersionNotFound(NotFound):
    aws_code = "ParameterVersionNotFound"


class ParameterAlreadyExists(AlreadyExists):
    aws_code = "ParameterAlreadyExists"


class SsmValidation(InvalidArgument):
    aws_code = "ValidationException"


class ParameterLimitExceeded(Conflict):
    aws_code = "ParameterLimitExceeded"


class ParameterMaxVersionLimitExceeded(Conflict):
    aws_code = "ParameterMaxVersionLimitExceeded"


class ParameterVersionLabelLimitExceeded(InvalidArgument):
    aws_code = "ParameterVersionLabelLimitExceeded"


class ParameterPatternMismatch(InvalidArgument):
    aws_code = "ParameterPatternMismatchException"


class InvalidAllowedPattern(InvalidArgument):
    aws_code = "InvalidAllowedPatternException"


class HierarchyLevelLimitExceeded(InvalidArgument):
    aws_code = "HierarchyLevelLimitExceededException"


class HierarchyTypeMismatch(InvalidArgument):
    aws_code = "HierarchyTypeMismatchException"


class UnsupportedParameterType(InvalidArgument):
    aws_code = "UnsupportedParameterType"


class InvalidKeyId(InvalidArgument):
    aws_code = "InvalidKeyId"


class InvalidFilterKey(InvalidArgument):
    aws_code = "InvalidFilterKey"


class InvalidFilterOption(InvalidArgument):
    aws_code = "InvalidFilterOption"


class InvalidFilterValue(InvalidArgument):
    aws_code = "InvalidFilterValue"


class InvalidNextToken(InvalidArgument):
    aws_code = "InvalidNextToken"


class InvalidResourceType(InvalidArgument):
    aws_code = "InvalidResourceType"


class InvalidResourceId(NotFound):
    aws_code = "InvalidResourceId"


class TooManyTagsError(InvalidArgument):
    aws_code = "TooManyTagsError"


class AccessDenied(InvalidArgument):
    aws_code = "AccessDeniedException"


class TooManyUpdates(Conflict):
    aws_code = "TooManyUpdates"


# --- Secrets Manager -------------------------------------------------------------------------

SECRET_NOT_FOUND = "Secrets Manager can't find the specified secret."
MARKED_FOR_DELETION = "You can't perform this operation on the secret because it was marked for deletion."


class ResourceNotFound(NotFound):
    aws_code = "ResourceNotFoundException"


class ResourceExists(AlreadyExists):
    aws_code = "ResourceExistsException"


class InvalidRequest(Conflict):
    aws_code = "InvalidRequestException"


class InvalidParameter(InvalidArgument):
    aws_code = "InvalidParameterException"


class SecretsValidation(InvalidArgument):
    aws_code = "ValidationException"


class InvalidNextTokenException(InvalidArgument):
    aws_code = "InvalidNextTokenException"


class LimitExceeded(Conflict):
    aws_code = "LimitExceededException"


# --- both ------------------------------------------------------------------------------------


class DecryptionFailure(Unavailable):
    """A stored value does not open under berth's key (the key file was replaced or lost).

    An Unavailable kind with a 4xx code: the request is well-formed, but retrying will not help.
    """

    aws_code = "DecryptionFailure"
