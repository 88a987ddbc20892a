"""SSM Parameter Store and Secrets Manager, encrypted at rest; and the resolver ECS uses for
`secrets[].valueFrom`.

Public surface:

- `Secrets.open(store, root)` builds both services over the control-plane `ObjectStore`, sealing
  values under `<root>/secrets/master.key` (`FileKey`, made on first use); `ParameterStore` (SSM:
  `PutParameter` input, `Selected` versions, `StringFilter`/`parse_filters`), `SecretsManager`
  (`Value`, `Revealed`), the records (`Parameter`, `ParameterVersion`, `Secret`, `SecretVersion`).
- `SecretResolver(ssm, secretsmanager).resolve(value_from, account=, region=)`: the agent's
  `SecretSource`.
- `Sealer` / `KeySource` / `FileKey`: AES-256-GCM sealing (`_crypto.py`).
- Error kinds, each with its AWS `aws_code`, and the fixed messages `SECRET_NOT_FOUND`,
  `MARKED_FOR_DELETION`. `testing` holds `ManualClock`, `StaticKey` and `memory_kit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from berth.secrets._crypto import FileKey, KeySource, Sealer
from berth.secrets._errors import (
    MARKED_FOR_DELETION, SECRET_NOT_FOUND, DecryptionFailure, InvalidNextToken, InvalidNextTokenException,
    InvalidParameter, InvalidRequest, ParameterAlreadyExists, ParameterNotFound, ParameterVersionNotFound,
    ResourceExists, ResourceNotFound, SecretsValidation, SsmValidation,
)
from berth.secrets._filters import StringFilter, parse_filters
from berth.secrets._model import CURRENT, PENDING, PREVIOUS, Parameter, ParameterVersion, Secret, SecretVersion
from berth.secrets._resolver import SecretResolver
from berth.secrets._secretsmanager import Revealed, SecretsManager, Value
from berth.secrets._ssm import ParameterStore, PutParameter, Selected
from berth.state import ObjectStore


@dataclass(frozen=True)
class Secrets:
    """Both services and the resolver, sharing one sealer (what the daemon builds)."""

    ssm: ParameterStore
    secretsmanager: SecretsManager
    resolver: SecretResolver

    @classmethod
    def open(cls, store: ObjectStore, root: Path, *, clock: Callable[[], float] = time.time) -> Secrets:
        sealer = Sealer(FileKey(root / "secrets"))
        ssm = ParameterStore(store, sealer, clock=clock)
        sm = SecretsManager(store, sealer, clock=clock)
        return cls(ssm, sm, SecretResolver(ssm, sm))


__all__ = [
    "CURRENT", "DecryptionFailure", "FileKey", "InvalidNextToken", "InvalidNextTokenException", "InvalidParameter",
    "InvalidRequest", "KeySource", "MARKED_FOR_DELETION", "PENDING", "PREVIOUS", "Parameter",
    "ParameterAlreadyExists", "ParameterNotFound", "ParameterStore", "ParameterVersion", "ParameterVersionNotFound",
    "PutParameter", "ResourceExists", "ResourceNotFound", "Revealed", "SECRET_NOT_FOUND", "Sealer", "Secret",
    "SecretResolver", "SecretVersion", "Secrets", "SecretsManager", "SecretsValidation", "Selected", "SsmValidation",
    "StringFilter", "Value", "parse_filters",
]
