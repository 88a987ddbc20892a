"""ECR operations on the JSON 1.1 endpoint: parse → EcrService → AWS output shapes (aws-apis.md §4)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from berth.api.aws._errors import AwsError
from berth.api.aws._paging import page, with_token
from berth.api.aws._server import AwsContext, JsonService, Operation
from berth.api.shapes import BOOL, INT, STRING, ListOf, Shape, Struct
from berth.ecr import (
    LAYER_MEDIA_TYPE, PART_SIZE, EcrService, Expiry, Failure, ImageId, ImageScan, InvalidLayerPart, ManifestImage,
    Repository, StoredImage, applied_filters_to_wire, image_id_text, policy_allows, replication_from_wire,
    replication_to_wire, scanning_from_wire, scanning_to_wire,
)

TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921"

Params = dict[str, Any]
T = TypeVar("T")

_IMAGE_ID = Struct("ImageIdentifier", {"imageDigest": STRING, "imageTag": STRING})
_TAG = Struct("Tag", {"Key": STRING, "Value": STRING})
_FILTER = Struct("Filter", {"filter": STRING, "filterType": STRING})
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
    "partLastByte": INT, "layerPartBlob": STRING, "imageId": _IMAGE_ID, "registryIds": ListOf(STRING),
    "replicationConfiguration": Struct("ReplicationConfiguration", {"rules": ListOf(Struct("ReplicationRule", {
        "destinations": ListOf(Struct("ReplicationDestination", {"region": STRING, "registryId": STRING})),
        "repositoryFilters": ListOf(_FILTER), "deleteReplication": Struct("DeleteReplication", {"enabled": BOOL})}))}),
    "scanType": STRING,
    "rules": ListOf(Struct("RegistryScanningRule", {"scanFrequency": STRING, "repositoryFilters": ListOf(_FILTER)})),
}
# Every operation with a `registryId` and a `repositoryName` goes through EcrService.access, except
# CreateRepository (the repository does not exist yet: EcrService.may_create_in checks the registry policy).
_CREATE = "CreateRepository"
_REGISTRY_ID = re.compile(r"[0-9]{12}")


@dataclass
class AwsErrorWithMembers(AwsError):
    """An error shape with members besides the message (InvalidLayerPartException's upload state)."""

    members: dict[str, Any] = field(default_factory=dict)


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
        scan = self.ecr.scan_of(repo, i)
        if scan is not None:
            detail["imageScanStatus"] = _scan_status(scan)
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
        registry = p.get("registryId") or ctx.account
        self.ecr.may_create_in(registry, ctx.account, _name(p), ctx.region)
        repo = self.ecr.create_repository(
            _name(p), account=registry, region=ctx.region,
            mutability=p.get("imageTagMutability", "MUTABLE"),
            exclusions=p.get("imageTagMutabilityExclusionFilters") or (),
            scan_on_push=bool((p.get("imageScanningConfiguration") or {}).get("scanOnPush", False)),
            encryption=p.get("encryptionConfiguration"), tags=_tags_in(p))
        return {"repository": self.repository(repo)}

    def DescribeRepositories(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        registry, names = p.get("registryId"), p.get("repositoryNames")
        if registry is None:
            repos = self.ecr.repositories(names, ctx.account)
        elif names:
            repos = [self.ecr.access(n, registry, ctx.account, "DescribeRepositories") for n in names]
        else:
            repos = [r for r in self.ecr.repositories() if r.registry_id == registry and (
                registry == ctx.account or policy_allows(r.repository_policy, ctx.account, "ecr:DescribeRepositories"))]
        chunk, token = page(repos, p)
        return with_token({"repositories": [self.repository(r) for r in chunk]}, token)

    def DeleteRepository(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo = self.ecr.delete_repository(_name(p), force=bool(p.get("force")), account=ctx.account)
        return {"repository": self.repository(repo)}

    def PutImageTagMutability(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo = self.ecr.set_mutability(_name(p), str(p.get("imageTagMutability", "")),
                                       p.get("imageTagMutabilityExclusionFilters") or (), ctx.account)
        out: dict[str, Any] = {"registryId": repo.registry_id, "repositoryName": repo.name,
                               "imageTagMutability": repo.mutability}
        if repo.mutability_exclusions:
            out["imageTagMutabilityExclusionFilters"] = list(repo.mutability_exclusions)
        return out

    def PutImageScanningConfiguration(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        scan = bool((p.get("imageScanningConfiguration") or {}).get("scanOnPush", False))
        repo = self.ecr.set_scanning(_name(p), scan, ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": repo.name,
                "imageScanningConfiguration": {"scanOnPush": repo.scan_on_push}}

    # registry-wide settings (recorded and returned; berth replicates nothing and has no scanner)

    def DescribeRegistry(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        settings = self.ecr.settings.get(ctx.account)
        return {"registryId": ctx.account, "replicationConfiguration": replication_to_wire(settings.replication)}

    def PutReplicationConfiguration(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        rules = replication_from_wire(p.get("replicationConfiguration"), ctx.region, ctx.account)
        settings = self.ecr.settings.put_replication(ctx.account, rules)
        return {"replicationConfiguration": replication_to_wire(settings.replication)}

    def PutRegistryPolicy(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        settings = self.ecr.settings.put_policy(ctx.account, _required(p, "policyText", str))
        return {"registryId": ctx.account, "policyText": settings.policy}

    def GetRegistryPolicy(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"registryId": ctx.account, "policyText": self.ecr.settings.policy(ctx.account)}

    def DeleteRegistryPolicy(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"registryId": ctx.account, "policyText": self.ecr.settings.delete_policy(ctx.account)}

    def PutRegistryScanningConfiguration(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        scan_type, rules = scanning_from_wire(p.get("scanType"), p.get("rules"))
        settings = self.ecr.settings.put_scanning(ctx.account, scan_type, rules)
        return {"registryScanningConfiguration": scanning_to_wire(settings)}

    def GetRegistryScanningConfiguration(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"registryId": ctx.account, "scanningConfiguration": scanning_to_wire(self.ecr.settings.get(ctx.account))}

    def BatchGetRepositoryScanningConfiguration(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        names = p.get("repositoryNames")
        if not isinstance(names, list) or not 1 <= len(names) <= 25:
            raise AwsError("InvalidParameterException", "Invalid parameter at 'repositoryNames' failed to satisfy "
                                                        "constraint: 'Member must have length between 1 and 25'")
        configs, failures = [], []
        for name in names:
            repo = self.ecr.find_repository(name)
            if repo is None:
                failures.append({"repositoryName": name, "failureCode": "REPOSITORY_NOT_FOUND",
                                 "failureReason": "REPOSITORY_NOT_FOUND"})
                continue
            frequency, applied = self.ecr.scanning(repo)
            configs.append({"repositoryArn": repo.arn, "repositoryName": repo.name, "scanOnPush": repo.scan_on_push,
                            "scanFrequency": frequency, "appliedScanFilters": applied_filters_to_wire(applied)})
        return {"scanningConfigurations": configs, "failures": failures}

    # image scans (berth has no vulnerability database: a scan ends FAILED, saying so)

    def StartImageScan(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo, image, scan = self.ecr.start_scan(_name(p), _image_id(p), ctx.account)
        return {"registryId": repo.registry_id, "repositoryName": repo.name,
                "imageId": _scanned_id(p, image), "imageScanStatus": _scan_status(scan)}

    def DescribeImageScanFindings(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        repo, image, scan = self.ecr.scan_findings(_name(p), _image_id(p), ctx.account)
        page([], p)  # maxResults / nextToken are checked as for any list; there are no findings to page
        return {"registryId": repo.registry_id, "repositoryName": repo.name, "imageId": _scanned_id(p, image),
                "imageScanStatus": _scan_status(scan)}

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
        """One token per requested registry (the deprecated `registryIds`); berth's registry serves them all."""
        data = []
        for registry in p.get("registryIds") or [ctx.account]:
            if not isinstance(registry, str) or not _REGISTRY_ID.fullmatch(registry):
                raise AwsError("InvalidParameterException", "Invalid parameter at 'registryIds' failed to satisfy "
                                                            "constraint: 'must satisfy regular expression '[0-9]{12}''")
            token, expires, endpoint = self.ecr.authorization_token(registry)
            data.append({"authorizationToken": token, "expiresAt": expires, "proxyEndpoint": endpoint})
        return {"authorizationData": data}

    # images

    def DescribeImages(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        name = _name(p)
        repo = self.ecr.repository(name, ctx.account)
        if p.get("imageIds"):
            images, failures = self.ecr.find_images(name, _ids(p), ctx.account)
            if failures:
                f = failures[0]
                raise AwsError("ImageNotFoundException",
                               f"The image with imageId {image_id_text(f.image_id.digest, f.image_id.tag)} does not "
                               f"exist within the repository with name '{name}' in the registry with id "
                               f"'{repo.registry_id}'")
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
        try:
            received = self.ecr.layers.upload_part(name, upload_id, first, last, data, ctx.account)
        except InvalidLayerPart as err:
            members: dict[str, Any] = {"registryId": repo.registry_id, "repositoryName": name, "uploadId": upload_id}
            if err.last_valid_byte is not None:
                members["lastValidByteReceived"] = err.last_valid_byte
            raise AwsErrorWithMembers(err.aws_code, str(err), members=members) from err
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
        out: dict[str, Any] = {"registryId": repo.registry_id, "repositoryName": repo.name,
                               "lifecyclePolicyText": repo.lifecycle_policy}
        if repo.lifecycle_evaluated_at is not None:
            out["lastEvaluatedAt"] = repo.lifecycle_evaluated_at
        return out

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


def _image_id(params: Params) -> ImageId:
    image_id = params.get("imageId")
    if not isinstance(image_id, dict):
        raise AwsError("InvalidParameterException", "imageId is required")
    return ImageId(image_id.get("imageDigest"), image_id.get("imageTag"))


def _scanned_id(params: Params, image: StoredImage) -> dict[str, str]:
    tag = (params.get("imageId") or {}).get("imageTag")
    return {"imageDigest": image.digest, **({"imageTag": tag} if tag else {})}


def _scan_status(scan: ImageScan) -> dict[str, str]:
    return {"status": scan.status, "description": scan.description}


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
            operations[name] = _in_registry(ecr, name, method)
    return JsonService(TARGET_PREFIX, "ecr", operations, PARAMS)


def _in_registry(ecr: EcrService, operation: str, method: Operation) -> Operation:
    """An explicit `registryId` with a `repositoryName` must name the repository's registry (else
    RepositoryNotFoundException for that registry); another account's repository is served where
    its repository policy allows the caller (EcrService.access)."""
    def call(p: Params, ctx: AwsContext) -> dict[str, Any]:
        registry, name = p.get("registryId"), p.get("repositoryName")
        if registry is not None and not _REGISTRY_ID.fullmatch(registry):
            raise AwsError("InvalidParameterException", "Invalid parameter at 'registryId' failed to satisfy "
                                                        "constraint: 'must satisfy regular expression '[0-9]{12}''")
        if registry is not None and isinstance(name, str) and name and operation != _CREATE:
            ecr.access(name, registry, ctx.account, operation)
        return method(p, ctx)

    return call
