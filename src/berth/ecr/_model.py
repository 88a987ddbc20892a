"""ECR records: repositories (berth's metadata) and the images the registry holds for them."""

from __future__ import annotations

from dataclasses import dataclass, field

MUTABILITY = ("MUTABLE", "IMMUTABLE", "MUTABLE_WITH_EXCLUSION", "IMMUTABLE_WITH_EXCLUSION")


@dataclass(frozen=True)
class Repository:
    name: str
    registry_id: str              # the account id
    region: str
    created_at: float             # epoch seconds
    mutability: str = "MUTABLE"
    mutability_exclusions: tuple[dict[str, str], ...] = ()
    scan_on_push: bool = False
    encryption: dict[str, str] = field(default_factory=lambda: {"encryptionType": "AES256"})
    tags: dict[str, str] = field(default_factory=dict)
    lifecycle_policy: str | None = None
    repository_policy: str | None = None
    lifecycle_evaluated_at: float | None = None   # when berth last ran the lifecycle policy
    scans: dict[str, "ImageScan"] = field(default_factory=dict)  # image digest -> its last scan

    @property
    def arn(self) -> str:
        return f"arn:aws:ecr:{self.region}:{self.registry_id}:repository/{self.name}"

    def immutable_tag(self, tag: str) -> bool:
        """Whether pushing `tag` again must fail (IMMUTABLE, minus/plus wildcard exclusions)."""
        import fnmatch

        excluded = any(fnmatch.fnmatchcase(tag, f.get("filter", "")) for f in self.mutability_exclusions
                       if f.get("filterType", "WILDCARD") == "WILDCARD")
        if self.mutability == "IMMUTABLE":
            return True
        if self.mutability == "IMMUTABLE_WITH_EXCLUSION":
            return not excluded
        if self.mutability == "MUTABLE_WITH_EXCLUSION":
            return excluded
        return False


@dataclass(frozen=True)
class StoredImage:
    """One manifest in a repository, as the registry holds it."""

    digest: str
    media_type: str
    artifact_media_type: str      # the config's media type
    size: int                     # sum of the layer (and config) blob sizes, as ECR reports
    pushed_at: float
    tags: tuple[str, ...]
    manifest_size: int = 0


@dataclass(frozen=True)
class ImageScan:
    """The outcome of StartImageScan on one image. berth has no vulnerability database, so every
    scan it records has failed, and says why; it never claims an image has no findings."""

    digest: str
    status: str                   # FAILED (the only outcome berth can honestly report)
    description: str
    completed_at: float
