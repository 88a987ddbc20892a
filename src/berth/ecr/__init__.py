"""ECR: repositories, images, tag immutability, lifecycle policies and registry logins, over
berth's OCI registry.

Public surface: `EcrService` (the operations, over an `ObjectStore`: repositories are `ecr.repository`
records), `import_legacy_repositories` (moves the previous version's `ecr_repositories` table into
the store, once), `EcrTokens` (GetAuthorizationToken passwords; also
the registry's extra Authenticator for user `AWS`), `ImageRegistry` (what ECR needs from a
registry; `registry_adapter.RegistryImages` implements it over `berth.registry.Registry`,
`testing.MemoryImages` in memory), the records `Repository`, `StoredImage`, `ImageId`, `Failure`,
`ManifestImage`, the layer API (`EcrLayers`, `service.layers`), registry-wide settings (`service.settings`:
registry policy, replication and scanning configuration, `RegistrySettings`), image scans (`ImageScan`: berth
has no vulnerability database, so a scan always ends FAILED and says so), `policy_allows` (cross-account
access by resource policy), and the error kinds (each with its AWS `aws_code`).
"""

from berth.ecr._errors import (
    AccessDenied, ImageAlreadyExists, ImageDigestDoesNotMatch, ImageNotFound, ImageTagAlreadyExists,
    InvalidLayerPart, InvalidParameter, LifecyclePolicyNotFound, LifecyclePolicyPreviewNotFound,
    RegistryPolicyNotFound, RepositoryAlreadyExists, RepositoryNotEmpty, RepositoryNotFound,
    RepositoryPolicyNotFound, ScanLimitExceeded, ScanNotFound, ValidationFailed,
)
from berth.ecr._layers import LAYER_MEDIA_TYPE, PART_SIZE, EcrLayers, Layer, LayerFailure
from berth.ecr._lifecycle import Expiry, Rule, evaluate, parse_policy
from berth.ecr._model import ImageScan, Repository, StoredImage
from berth.ecr._policy import policy_allows
from berth.ecr._registry import ImageRegistry, TagGuard
from berth.ecr._scans import image_id_text
from berth.ecr._service import EcrService, Failure, ImageId, ManifestImage, Preview
from berth.ecr._settings import (
    RegistrySettings, ReplicationRule, ScanningRule, applied_filters_to_wire, replication_from_wire,
    replication_to_wire, repository_scanning, scanning_from_wire, scanning_to_wire,
)
from berth.ecr._store import import_legacy_repositories
from berth.ecr._tokens import EcrTokens

__all__ = [
    "AccessDenied", "ImageDigestDoesNotMatch", "ImageScan", "InvalidLayerPart", "RegistryPolicyNotFound",
    "RegistrySettings", "ReplicationRule", "ScanLimitExceeded", "ScanNotFound", "ScanningRule", "ValidationFailed",
    "applied_filters_to_wire", "image_id_text", "policy_allows", "replication_from_wire", "replication_to_wire",
    "repository_scanning", "scanning_from_wire", "scanning_to_wire",
    "LAYER_MEDIA_TYPE", "PART_SIZE", "EcrLayers", "Layer", "LayerFailure", "EcrService", "EcrTokens", "Expiry", "Failure", "ImageAlreadyExists", "ImageId", "ImageNotFound",
    "ImageRegistry", "ImageTagAlreadyExists", "InvalidParameter", "LifecyclePolicyNotFound",
    "LifecyclePolicyPreviewNotFound", "ManifestImage", "Preview", "Repository", "RepositoryAlreadyExists",
    "RepositoryNotEmpty", "RepositoryNotFound", "RepositoryPolicyNotFound", "Rule", "StoredImage", "TagGuard",
    "evaluate", "import_legacy_repositories", "parse_policy",
]
