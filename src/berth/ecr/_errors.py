"""ECR's error shapes as berth error kinds: each carries the wire code (`aws_code`) the AWS layer sends."""

from __future__ import annotations

from berth.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound


class RepositoryNotFound(NotFound):
    aws_code = "RepositoryNotFoundException"


class RepositoryAlreadyExists(AlreadyExists):
    aws_code = "RepositoryAlreadyExistsException"


class RepositoryNotEmpty(Conflict):
    aws_code = "RepositoryNotEmptyException"


class ImageNotFound(NotFound):
    aws_code = "ImageNotFoundException"


class ImageAlreadyExists(AlreadyExists):
    aws_code = "ImageAlreadyExistsException"


class ImageTagAlreadyExists(Conflict):
    aws_code = "ImageTagAlreadyExistsException"


class LifecyclePolicyNotFound(NotFound):
    aws_code = "LifecyclePolicyNotFoundException"


class LifecyclePolicyPreviewNotFound(NotFound):
    aws_code = "LifecyclePolicyPreviewNotFoundException"


class RepositoryPolicyNotFound(NotFound):
    aws_code = "RepositoryPolicyNotFoundException"


class InvalidParameter(InvalidArgument):
    aws_code = "InvalidParameterException"


class InvalidTagParameter(InvalidArgument):
    aws_code = "InvalidTagParameterException"


class InvalidLayer(InvalidArgument):
    aws_code = "InvalidParameterException"


class LayersNotFound(InvalidLayer):
    aws_code = "LayersNotFoundException"


class LayerDigestMismatch(InvalidArgument):
    aws_code = "InvalidLayerException"


class InvalidLayerPart(InvalidArgument):
    """Carries where the upload stands: `last_valid_byte` is the last byte it holds (None before
    the first part), which ECR reports as `lastValidByteReceived`."""

    aws_code = "InvalidLayerPartException"

    def __init__(self, message: str, *, upload_id: str = "", last_valid_byte: int | None = None) -> None:
        super().__init__(message)
        self.upload_id = upload_id
        self.last_valid_byte = last_valid_byte


class UploadNotFound(NotFound):
    aws_code = "UploadNotFoundException"


class LayerAlreadyExists(AlreadyExists):
    aws_code = "LayerAlreadyExistsException"


class EmptyUpload(InvalidArgument):
    aws_code = "EmptyUploadException"


class RegistryPolicyNotFound(NotFound):
    aws_code = "RegistryPolicyNotFoundException"


class ScanNotFound(NotFound):
    aws_code = "ScanNotFoundException"


class ScanLimitExceeded(FailedPrecondition):
    aws_code = "LimitExceededException"


class ImageDigestDoesNotMatch(InvalidArgument):
    aws_code = "ImageDigestDoesNotMatchException"


class ValidationFailed(InvalidArgument):
    """A request member outside the model's constraints (enum, pattern, length), worded as AWS's
    request validation words it: "1 validation error detected: Value 'x' at 'a.b' failed to ..."."""

    aws_code = "ValidationException"

    def __init__(self, value: object, path: str, constraint: str) -> None:
        super().__init__(f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
                         f"constraint: {constraint}")


class AccessDenied(FailedPrecondition):
    aws_code = "AccessDeniedException"
