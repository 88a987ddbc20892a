"""ECS's error shapes as berth error kinds: each carries the wire code (`aws_code`) the AWS layer
sends (aws-apis.md §1.3: the ECS wire code is the shape name). Messages are worded as ECS words
them and name the offending field."""

from __future__ import annotations

from berth.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound, Unsupported


class ClientError(InvalidArgument):
    """ECS's catch-all for a request it cannot act on (e.g. an invalid task definition)."""

    aws_code = "ClientException"


class InvalidParameter(InvalidArgument):
    aws_code = "InvalidParameterException"


class ClusterNotFound(NotFound):
    aws_code = "ClusterNotFoundException"

    def __init__(self, message: str = "Cluster not found.") -> None:
        super().__init__(message)


class ServiceNotFound(NotFound):
    aws_code = "ServiceNotFoundException"

    def __init__(self, message: str = "Service not found.") -> None:
        super().__init__(message)


class ServiceNotActive(FailedPrecondition):
    aws_code = "ServiceNotActiveException"

    def __init__(self, message: str = "Service was not ACTIVE.") -> None:
        super().__init__(message)


class TaskDefinitionNotFound(InvalidArgument):
    """ECS answers an unknown task definition with ClientException."""

    aws_code = "ClientException"

    def __init__(self, message: str = "Unable to describe task definition.") -> None:
        super().__init__(message)


class ResourceNotFound(NotFound):
    aws_code = "ResourceNotFoundException"


class ResourceInUse(Conflict):
    aws_code = "ResourceInUseException"


class ClusterContainsServices(Conflict):
    aws_code = "ClusterContainsServicesException"


class ClusterContainsTasks(Conflict):
    aws_code = "ClusterContainsTasksException"


class ClusterContainsContainerInstances(Conflict):
    aws_code = "ClusterContainsContainerInstancesException"


class AttributeLimitExceeded(InvalidArgument):
    aws_code = "AttributeLimitExceededException"


class TargetNotFound(NotFound):
    aws_code = "TargetNotFoundException"


class UnsupportedFeature(Unsupported):
    aws_code = "UnsupportedFeatureException"


class AccessDenied(InvalidArgument):
    aws_code = "AccessDeniedException"


class ServiceAlreadyExists(AlreadyExists):
    """CreateService of a name that is ACTIVE or DRAINING: ECS says InvalidParameterException."""

    aws_code = "InvalidParameterException"


class LimitExceeded(InvalidArgument):
    aws_code = "LimitExceededException"
