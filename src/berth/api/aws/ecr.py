"""ECR operations on the JSON 1.1 endpoint: parse → EcrService → AWS output shapes (aws-apis.md §4)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, TypeVar

from berth.api.aws._errors import AwsError
from berth.api.aws._paging import page, with_token
from berth.api.aws._server import AwsContext, JsonService, Operation
from berth.api.shapes import BOOL, INT, STRING, ListOf, Shape, Struct
from berth.ecr import (
    LAYER_MEDIA_TYPE, PART_SIZE, EcrService, Expiry, Failure, ImageId, ManifestImage, Repository, StoredImage,
)

TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921"

Params = dict[str, Any]
T = TypeVar("T")

_IMAGE_ID = Struct("ImageIdentifier", {"imageDigest": STRING, "imageTag": STRING})
_TAG = Struct("Tag", {"Key": STRING, "Value": STRING})
# Every input member the handlers read, with ECR's type for it (aws-apis.md §4).
PARAMS: dict[str, Shape] = {
    "repositoryName": STRING, "registryId": STRING, "imageTagMutability": STRING,
    "imageTagMutabilityExclusionFilters": ListOf(Struct("ImageTagMutabilityExclusionFilter", {
        "filterType": STRING, "filter": STRING})),
    "imageScanningConfiguration": Struct("ImageScanningConfiguration", {"scanOnPush": BOOL}),
    "encryptionConfiguration": Struct("EncryptionConfiguration", {"encryptionType": STRING, "kmsKey": STRING}),
    "tags": ListOf(_TAG), "repositoryNames": ListOf(STRING), "force": BOOL, "resourceArn": STRING,
    "tagKeys": ListOf(STRING), "imageIds": ListOf(_IMAGE_ID),
    "filter": Struct("DescribeImagesFilter", {"tagStatus": STRING}), "maxResults": INT, "nextToken": STRING,
    "acceptedMediaTypes": ListOf(STRING), "imageManifest": STRING, "imageTag": STRING, "imageDigest": STRING,
    "imageManifestMediaType": STRING, "lifecyclePolicyText": STRING, "policyText": STRING,
    "layerDigests": ListOf(STRING), "layerDigest": STRING, "uploadId": STRING, "partFirstByte": INT,
    "partLastByte": INT, "layerPartBlob": STRING,
}


def _name(params: Params) -> str:
    name = params.get("repositoryName")
    if not isinstance(name, str) or not name:
        raise AwsError("InvalidParameterException", "repositoryName is required")
    return name


def _ids(params: Params) -> list[ImageId]:
    ids = params.get("imageIds")
    if not isinstance(ids, list):
        raise AwsError("InvalidParameterException", "imageIds is required")
    return [ImageId(i.get("imageDigest"), i.get("imageTag")) for i in ids if isinstance(i, dict)]


def _required(params: Params, key: str, kind: type[T]) -> T:
    value = params.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise AwsError("InvalidParameterException", f"{key} is required")
    return value


def _tags_in(params: Params) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in params.get("tags") or [] if "Key" in t}


class EcrHandlers:
    """One method per operation; each is thin: parse, call the service, shape the output."""

    def __init__(self, ecr: EcrService) -> None:
        self.ecr = ecr

    # shapes

    def repository(self, r: Repository) -> dict[str, Any]:
        return {
            "repositoryArn": r.arn, "registryId": r.registry_id, "repositoryName": r.name,
            "repositoryUri": self.ecr.uri(r), "createdAt": r.created_at, "imageTagMutability": r.mutability,
            **({"imageTagMutabilityExclusionFilters": list(r.mutability_exclusions)}
               if r.mutability_exclusions else {}),
            "imageScanningConfiguration": {"scanOnPush": r.scan_on_push},
            "encryptionConfiguration": r.encryption,
        }

    def image_detail(self, repo: Repository, i: StoredImage) -> dict[str, Any]:
        detail = {"registryId": repo.registry_id, "repositoryName": repo.name, "imageDigest": i.digest,
                  "imageSizeInBytes": i.size, "imagePushedAt": i.pushed_at,
                  "imageManifestMediaType": i.media_type}
        if i.tags:
            detail["imageTags"] = list(i.tags)
        if i.artifact_media_type:
            detail["artifactMediaType"] = i.artifact_media_type
        return detail

    @staticmethod
    def failure(f: Failure) -> dict[str, Any]:
        return {"imageId": f.image_id.json(), "failureCode": f.code, "failureReason": f.reason}

    @staticmethod
    def image(repo: Repository, m: ManifestImage) -> dict[str, Any]:
        return {"registryId": repo.registry_id, "repositoryName": repo.name, "imageId": m.image_id.json(),
                "imageManifest": m.manifest.decode(), "imageManifestMediaType": m.media_type}

    # repositories

    def CreateRepository(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo = self.ecr.create_repository(
            _name(p), account=p.get("registryId") or ctx.account, region=ctx.region,
            mutability=p.get("imageTagMutability", "MUTABLE"),
            exclusions=p.get("imageTagMutabilityExclusionFilters") or (),
            scan_on_push=bool((p.get("imageScanningConfiguration") or {}).get("scanOnPush", False)),
            encryption=p.get("encryptionConfiguration"), tags=_tags_in(p))
        return {"repository": self.repository(repo)}

    def DescribeRepositories(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repos = self.ecr.repositories(p.get("repositoryNames"), ctx.account)
        chunk, token = page(repos, p)
        return with_token({"repositories": [self.repository(r) for r in chunk]}, token)

    def DeleteRepository(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo = self.ecr.delete_repository(_name(p), force=bool(p.get("force")), account=ctx.account)
        return {"repository": self.repository(repo)}

    def PutImageTagMutability(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo = self.ecr.set_mutability(_name(p), str(p.get("imageTagMutability", "")),
                                       p.get("imageTagMutabilityExclusionFilters") or (), ctx.account)
        out = {"registryId": repo.registry_id, "repositoryName": repo.name, "imageTagMutability": repo.mutability}
        if repo.mutability_exclusions:
            out["imageTagMutabilityExclusionFilters"] = list(repo.mutability_exclusions)
        return out

    def PutImageScanningConfiguration(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        scan = bool((p.get("imageScanningConfiguration") or {}).get("scanOnPush", False))
        repo = self.ecr.set_scanning(_name(p), scan, ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": repo.name,
                "imageScanningConfiguration": {"scanOnPush": repo.scan_on_push}}

    def DescribeRegistry(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"registryId": ctx.account, "replicationConfiguration": {"rules": []}}

    # tags

    def TagResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.ecr.tag_resource(str(p.get("resourceArn", "")), _tags_in(p))
        return {}

    def UntagResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.ecr.untag_resource(str(p.get("resourceArn", "")), list(p.get("tagKeys") or []))
        return {}

    def ListTagsForResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo = self.ecr.by_arn(str(p.get("resourceArn", "")))
        return {"tags": [{"Key": k, "Value": v} for k, v in sorted(repo.tags.items())]}

    # auth

    def GetAuthorizationToken(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        token, expires, endpoint = self.ecr.authorization_token(ctx.account)
        return {"authorizationData": [{"authorizationToken": token, "expiresAt": expires,
                                       "proxyEndpoint": endpoint}]}

    # images

    def DescribeImages(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        name = _name(p)
        repo = self.ecr.repository(name, ctx.account)
        if p.get("imageIds"):
            images, failures = self.ecr.find_images(name, _ids(p), ctx.account)
            if failures:
                f = failures[0]
                raise AwsError("ImageNotFoundException",
                               f"The image with imageId {json.dumps(f.image_id.json())} does not exist within the "
                               f"repository with name '{name}' in the registry with id '{repo.registry_id}'")
        else:
            status = str((p.get("filter") or {}).get("tagStatus", "ANY"))
            images = self.ecr.images(name, tag_status=status, account=ctx.account)
        chunk, token = page(images, p)
        return with_token({"imageDetails": [self.image_detail(repo, i) for i in chunk]}, token)

    def ListImages(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        status = str((p.get("filter") or {}).get("tagStatus", "ANY"))
        images = self.ecr.images(_name(p), tag_status=status, account=ctx.account)
        ids = [{"imageDigest": i.digest, "imageTag": t} for i in images for t in i.tags]
        if status != "TAGGED":
            ids += [{"imageDigest": i.digest} for i in images if not i.tags]
        chunk, token = page(ids, p)
        return with_token({"imageIds": chunk}, token)

    def BatchGetImage(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        name = _name(p)
        repo = self.ecr.repository(name, ctx.account)
        images, failures = self.ecr.batch_get(name, _ids(p), p.get("acceptedMediaTypes") or (), ctx.account)
        return {"images": [self.image(repo, m) for m in images], "failures": [self.failure(f) for f in failures]}

    def BatchDeleteImage(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        deleted, failures = self.ecr.batch_delete(_name(p), _ids(p), ctx.account)
        return {"imageIds": [i.json() for i in deleted], "failures": [self.failure(f) for f in failures]}

    def PutImage(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        name = _name(p)
        repo = self.ecr.repository(name, ctx.account)
        manifest = p.get("imageManifest")
        if not isinstance(manifest, str):
            raise AwsError("InvalidParameterException", "imageManifest is required")
        image = self.ecr.put_image(name, manifest.encode(), tag=p.get("imageTag"), digest=p.get("imageDigest"),
                                   media_type=p.get("imageManifestMediaType"), account=ctx.account)
        return {"image": self.image(repo, image)}

    # layers

    def BatchCheckLayerAvailability(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        layers, failures = self.ecr.layers.check(_name(p), list(p.get("layerDigests") or []), ctx.account)
        return {"layers": [{"layerDigest": layer.digest, "layerAvailability": "AVAILABLE", "layerSize": layer.size,
                            "mediaType": LAYER_MEDIA_TYPE} for layer in layers],
                "failures": [{"layerDigest": f.digest, "failureCode": f.code, "failureReason": f.reason}
                             for f in failures]}

    def InitiateLayerUpload(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"uploadId": self.ecr.layers.initiate(_name(p), ctx.account), "partSize": PART_SIZE}

    def UploadLayerPart(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        name = _name(p)
        repo = self.ecr.repository(name, ctx.account)
        upload_id = _required(p, "uploadId", str)
        first, last = _required(p, "partFirstByte", int), _required(p, "partLastByte", int)
        try:
            data = base64.b64decode(_required(p, "layerPartBlob", str), validate=True)
        except binascii.Error as err:
            raise AwsError("InvalidParameterException", "layerPartBlob is not valid base64") from err
        received = self.ecr.layers.upload_part(name, upload_id, first, last, data, ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": name, "uploadId": upload_id,
                "lastByteReceived": received}

    def CompleteLayerUpload(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        name = _name(p)
        repo = self.ecr.repository(name, ctx.account)
        upload_id = _required(p, "uploadId", str)
        digest = self.ecr.layers.complete(name, upload_id, list(p.get("layerDigests") or []), ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": name, "uploadId": upload_id,
                "layerDigest": digest}

    def GetDownloadUrlForLayer(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        digest = _required(p, "layerDigest", str)
        return {"downloadUrl": self.ecr.layers.download_url(_name(p), digest, ctx.account), "layerDigest": digest}

    # lifecycle and repository policies

    def PutLifecyclePolicy(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        name = _name(p)
        text = str(p.get("lifecyclePolicyText", ""))
        self.ecr.put_lifecycle_policy(name, text, ctx.account)
        repo = self.ecr.repository(name, ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": name, "lifecyclePolicyText": text}

    def GetLifecyclePolicy(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo = self.ecr.lifecycle_policy(_name(p), ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": repo.name,
                "lifecyclePolicyText": repo.lifecycle_policy, "lastEvaluatedAt": repo.created_at}

    def DeleteLifecyclePolicy(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo = self.ecr.delete_lifecycle_policy(_name(p), ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": repo.name,
                "lifecyclePolicyText": repo.lifecycle_policy}

    def StartLifecyclePolicyPreview(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        name = _name(p)
        repo = self.ecr.repository(name, ctx.account)
        preview = self.ecr.start_preview(name, p.get("lifecyclePolicyText"), ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": name, "lifecyclePolicyText": preview.policy,
                "status": "IN_PROGRESS"}

    def GetLifecyclePolicyPreview(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        name = _name(p)
        repo = self.ecr.repository(name, ctx.account)
        preview = self.ecr.preview(name, ctx.account)
        results = [_preview_result(e) for e in preview.expiring]
        chunk, token = page(results, p)
        return with_token({"registryId": repo.registry_id, "repositoryName": name,
                           "lifecyclePolicyText": preview.policy, "status": "COMPLETE", "previewResults": chunk,
                           "summary": {"expiringImageTotalCount": len(results)}}, token)

    def SetRepositoryPolicy(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo = self.ecr.set_repository_policy(_name(p), str(p.get("policyText", "")), ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": repo.name, "policyText": repo.repository_policy}

    def GetRepositoryPolicy(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo = self.ecr.repository_policy(_name(p), ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": repo.name, "policyText": repo.repository_policy}

    def DeleteRepositoryPolicy(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo = self.ecr.delete_repository_policy(_name(p), ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": repo.name, "policyText": repo.repository_policy}


def _preview_result(e: Expiry) -> dict[str, Any]:
    result = {"imageDigest": e.image.digest, "imagePushedAt": e.image.pushed_at, "action": {"type": "EXPIRE"},
              "appliedRulePriority": e.rule_priority}
    if e.image.tags:
        result["imageTags"] = list(e.image.tags)
    return result


def ecr_service(ecr: EcrService) -> JsonService:
    """The ECR JsonService: every public CamelCase method of EcrHandlers is an operation."""
    handlers = EcrHandlers(ecr)
    operations: dict[str, Operation] = {}
    for name in dir(handlers):
        if name[:1].isupper():
            method: Callable[[Params, AwsContext], dict[str, Any]] = getattr(handlers, name)
            operations[name] = method
    return JsonService(TARGET_PREFIX, "ecr", operations, PARAMS)
