"""ELBv2's error shapes as berth error kinds. Each carries the wire code (`aws_code`) the Query
layer sends: the model's `error.code` (aws-apis.md §1.3), not the shape name."""

from __future__ import annotations

from berth.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, Unsupported


class ValidationError(InvalidArgument):
    """A request member is missing, malformed or out of range (AWS's generic Query code)."""

    aws_code = "ValidationError"


class InvalidConfigurationRequest(InvalidArgument):
    aws_code = "InvalidConfigurationRequest"


class UnsupportedProtocol(Unsupported):
    aws_code = "UnsupportedProtocol"


class IncompatibleProtocols(InvalidArgument):
    aws_code = "IncompatibleProtocols"


class InvalidLoadBalancerAction(InvalidArgument):
    aws_code = "InvalidLoadBalancerAction"


class InvalidScheme(InvalidArgument):
    aws_code = "InvalidScheme"


class InvalidTarget(InvalidArgument):
    aws_code = "InvalidTarget"


class LoadBalancerNotFound(NotFound):
    aws_code = "LoadBalancerNotFound"

    def __init__(self, message: str = "One or more load balancers not found") -> None:
        super().__init__(message)


class TargetGroupNotFound(NotFound):
    aws_code = "TargetGroupNotFound"

    def __init__(self, message: str = "One or more target groups not found") -> None:
        super().__init__(message)


class ListenerNotFound(NotFound):
    aws_code = "ListenerNotFound"

    def __init__(self, message: str = "One or more listeners not found") -> None:
        super().__init__(message)


class RuleNotFound(NotFound):
    aws_code = "RuleNotFound"

    def __init__(self, message: str = "One or more rules not found") -> None:
        super().__init__(message)


class CertificateNotFound(NotFound):
    aws_code = "CertificateNotFound"


class SSLPolicyNotFound(NotFound):
    aws_code = "SSLPolicyNotFound"


class ResourceNotFound(NotFound):
    aws_code = "ResourceNotFound"


class DuplicateLoadBalancerName(AlreadyExists):
    aws_code = "DuplicateLoadBalancerName"


class DuplicateTargetGroupName(AlreadyExists):
    aws_code = "DuplicateTargetGroupName"


class DuplicateListener(AlreadyExists):
    aws_code = "DuplicateListener"


class DuplicateTagKeys(InvalidArgument):
    aws_code = "DuplicateTagKeys"


class PriorityInUse(Conflict):
    aws_code = "PriorityInUse"


class ResourceInUse(Conflict):
    aws_code = "ResourceInUse"


class OperationNotPermitted(InvalidArgument):
    aws_code = "OperationNotPermitted"


class TargetGroupAssociationLimit(InvalidArgument):
    aws_code = "TargetGroupAssociationLimit"


class TooManyTargets(InvalidArgument):
    aws_code = "TooManyTargets"


class TooManyTags(InvalidArgument):
    aws_code = "TooManyTags"


class TooManyLoadBalancers(InvalidArgument):
    aws_code = "TooManyLoadBalancers"


class TooManyTargetGroups(InvalidArgument):
    aws_code = "TooManyTargetGroups"


class TooManyListeners(InvalidArgument):
    aws_code = "TooManyListeners"


class TooManyRules(InvalidArgument):
    aws_code = "TooManyRules"


class TooManyActions(InvalidArgument):
    aws_code = "TooManyActions"
