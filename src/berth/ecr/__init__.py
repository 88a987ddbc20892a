"""ECR: repositories, images, tag immutability, lifecycle policies and registry logins, over
berth's OCI registry.

Public surface: `EcrService` (the operations, over an `ObjectStore`: repositories are `ecr.repository`
records), `import_legacy_repositories` (moves the previous version's `ecr_repositories` table into
the store, once), `EcrTokens` (GetAuthorizationToken passwords; also
the registry's extra Authenticator for user `AWS`), `ImageRegistry` (what ECR needs from a
registry; `registry_adapter.RegistryImages` implements it over `berth.registry.Registry`,
`testing.MemoryImages` in memory), the records `Repository`, `StoredImage`, `ImageId`, `Failure`,
`ManifestImage`, the layer API (`EcrLayers`, `service.layers`), and the error kinds (each with its AWS `aws_code`).
"""

from berth.ecr._errors import (
    ImageAlreadyExists, ImageNotFound, ImageTagAlreadyExists, InvalidParameter, LifecyclePolicyNotFound,
    LifecyclePolicyPreviewNotFound, RepositoryAlreadyExists, RepositoryNotEmpty, RepositoryNotFound,
    RepositoryPolicyNotFound,
)
from berth.ecr._layers import LAYER_MEDIA_TYPE, PART_SIZE, EcrLayers, Layer, LayerFailure
from berth.ecr._lifecycle import Expiry, Rule, evaluate, parse_policy
from berth.ecr._model import Repository, StoredImage
from berth.ecr._registry import ImageRegistry, TagGuard
from berth.ecr._service import EcrService, Failure, ImageId, ManifestImage, Preview
from berth.ecr._store import import_legacy_repositories
from berth.ecr._tokens import EcrTokens

__all__ = [
    "LAYER_MEDIA_TYPE", "PART_SIZE", "EcrLayers", "Layer", "LayerFailure", "EcrService", "EcrTokens", "Expiry", "Failure", "ImageAlreadyExists", "ImageId", "ImageNotFound",
    "ImageRegistry", "ImageTagAlreadyExists", "InvalidParameter", "LifecyclePolicyNotFound",
    "LifecyclePolicyPreviewNotFound", "ManifestImage", "Preview", "Repository", "RepositoryAlreadyExists",
    "RepositoryNotEmpty", "RepositoryNotFound", "RepositoryPolicyNotFound", "Rule", "StoredImage", "TagGuard",
    "evaluate", "import_legacy_repositories", "parse_policy",
]
