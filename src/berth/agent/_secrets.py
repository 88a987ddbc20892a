"""ECS `secrets` and `repositoryCredentials`: what the agent needs to resolve them, and how it
words their failures (declared here, by the consumer).

`berth.secrets.SecretResolver` implements SecretSource over berth's SSM Parameter Store and
Secrets Manager; `berth.agent.testing.MemorySecrets` in memory.

At task start, as the ECS agent does, a container's `repositoryCredentials.credentialsParameter`
is resolved just before its image pull (the registry auth of that pull), and every container's
`secrets` after the pulls. Resolved values stay in the runner's memory and go to the engine as
the container's secret environment (kept on the run root only); the container's Env — what
its record, `docker inspect` and the daemon keep — carries a placeholder naming the source:

    DB_PASS=<secret from arn:aws:ssm:us-east-1:123456789012:parameter/db-pass>

A failure stops the task with ECS's own stoppedReason, e.g.

    ResourceInitializationError: unable to pull secrets or registry auth: execution resource
    retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1
    time(s): invalid ssm parameters: /db-pass
"""

from __future__ import annotations

import json
from typing import Protocol

from berth.agent._engine import RegistryAuth
from berth.ecs import ContainerDefinition
from berth.errors import BerthError, NotFound

PREFIX = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "
RETRIED = "service call has been retried 1 time(s): "   # berth does not retry: one call, as AWS counts it


class SecretSource(Protocol):
    def resolve(self, value_from: str, *, account: str, region: str) -> str:
        """The current value named by an ECS secret `valueFrom`:
        - an SSM parameter name ("/app/db-pass" or "db-pass") or ARN
          (arn:aws:ssm:<region>:<account>:parameter/<name without leading slash>), SecureString
          decrypted, optionally "name:<version>" / "name:<label>";
        - a Secrets Manager ARN arn:aws:secretsmanager:<region>:<account>:secret:<name>[-XXXXXX]
          optionally followed by :<json-key>:<version-stage>:<version-id> (each part may be
          empty), a json-key selecting one top-level key of a JSON SecretString.

        Raises berth.errors.NotFound / berth.errors.InvalidArgument whose message ECS can quote.
        Never logs the value."""


class SecretsUnavailable(Exception):
    """A secret or registry auth of the task cannot be resolved; the message is ECS's
    stoppedReason for it."""


def placeholder(value_from: str) -> str:
    """What the container's recorded Env shows instead of the value."""
    return f"<secret from {value_from}>"


def is_secrets_manager(value_from: str) -> bool:
    return value_from.startswith("arn:") and ":secretsmanager:" in value_from


def resolve_secrets(source: SecretSource, c: ContainerDefinition, *, account: str, region: str) -> dict[str, str]:
    """The container's `secrets` as variable name → value. Raises SecretsUnavailable."""
    values: dict[str, str] = {}
    for secret in c.secrets:
        try:
            values[secret.name] = source.resolve(secret.value_from, account=account, region=region)
        except BerthError as err:
            raise SecretsUnavailable(_secret_failure(secret.value_from, err)) from None
    return values


def _secret_failure(value_from: str, err: BerthError) -> str:
    if is_secrets_manager(value_from):
        return (f"{PREFIX}unable to retrieve secret from asm: {RETRIED}failed to fetch secret {value_from} "
                f"from secrets manager: {err}")
    if isinstance(err, NotFound):
        return f"{PREFIX}unable to retrieve secrets from ssm: {RETRIED}invalid ssm parameters: {value_from}"
    return f"{PREFIX}unable to retrieve secrets from ssm: {RETRIED}{err}"


def resolve_registry_auth(source: SecretSource, parameter: str, *, account: str, region: str) -> RegistryAuth:
    """repositoryCredentials.credentialsParameter: a Secrets Manager secret whose SecretString is
    JSON {"username": ..., "password": ...}. Raises SecretsUnavailable."""
    where = f"{PREFIX}unable to get registry auth from asm: {RETRIED}asm fetching secret from the service for {parameter}: "
    try:
        text = source.resolve(parameter, account=account, region=region)
    except BerthError as err:
        raise SecretsUnavailable(f"{where}{err}") from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("username"), str) \
            or not isinstance(data.get("password"), str):
        # never quote the secret itself: it may be the password
        raise SecretsUnavailable(f"{where}the secret is not JSON with a string username and password")
    return RegistryAuth(data["username"], data["password"])


def missing_execution_role(parameter: str) -> str:
    """repositoryCredentials without an execution role to fetch them with."""
    return (f"{PREFIX}unable to get registry auth from asm: the task has no executionRoleArn, which private "
            f"registry authentication ({parameter}) needs")
