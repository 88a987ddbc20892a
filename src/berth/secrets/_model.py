"""Records of both services. Values are only ever held sealed (`_crypto.Sealer`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.secrets._names import parameter_arn

PARAMETER_TYPES = ("String", "StringList", "SecureString")
TIERS = ("Standard", "Advanced", "Intelligent-Tiering")
DEFAULT_SSM_KEY = "alias/aws/ssm"
CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
PENDING = "AWSPENDING"


@dataclass(frozen=True)
class ParameterVersion:
    version: int
    type: str
    sealed: str                   # the value, sealed; never the value itself
    modified_at: float
    modified_user: str = ""
    description: str = ""
    allowed_pattern: str = ""
    key_id: str = ""              # SecureString: the KMS key named (recorded, berth seals with its own)
    labels: tuple[str, ...] = ()
    tier: str = "Standard"
    data_type: str = "text"


@dataclass(frozen=True)
class Parameter:
    name: str
    account: str
    region: str
    versions: tuple[ParameterVersion, ...]   # oldest first; at most 100
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def latest(self) -> ParameterVersion:
        return self.versions[-1]

    @property
    def arn(self) -> str:
        return parameter_arn(self.name, account=self.account, region=self.region)

    def version(self, number: int) -> ParameterVersion | None:
        return next((v for v in self.versions if v.version == number), None)

    def labelled(self, label: str) -> ParameterVersion | None:
        return next((v for v in self.versions if label in v.labels), None)


@dataclass(frozen=True)
class SecretVersion:
    version_id: str
    created_at: float
    stages: tuple[str, ...] = ()
    sealed_string: str | None = None   # SecretString, sealed
    sealed_binary: str | None = None   # SecretBinary (raw bytes), sealed


@dataclass(frozen=True)
class Secret:
    name: str
    account: str
    region: str
    arn: str                            # ends with "-" + 6 random characters, as AWS's do
    created_at: float
    last_changed_at: float
    description: str = ""
    kms_key_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    versions: tuple[SecretVersion, ...] = ()   # oldest first
    last_accessed_at: float | None = None      # a day, as AWS rounds it
    deleted_at: float | None = None
    deletion_date: float | None = None         # when a scheduled deletion takes effect

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def by_id(self, version_id: str) -> SecretVersion | None:
        return next((v for v in self.versions if v.version_id == version_id), None)

    def by_stage(self, stage: str) -> SecretVersion | None:
        return next((v for v in self.versions if stage in v.stages), None)
