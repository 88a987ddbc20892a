"""ECR's error shapes as berth error kinds: each carries the wire code (`aws_code`) the AWS layer sends."""

from __future__ import annotations

from berth.errors import AlreadyExists, Conflict, InvalidArgument, NotFound


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
    aws_code = "InvalidLayerPartException"


class UploadNotFound(NotFound):
    aws_code = "UploadNotFoundException"


class LayerAlreadyExists(AlreadyExists):
    aws_code = "LayerAlreadyExistsException"


class EmptyUpload(InvalidArgument):
    aws_code = "EmptyUploadException"
