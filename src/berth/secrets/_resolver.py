"""ECS `secrets[].valueFrom` → the current value (what the agent injects at task start).

Forms (aws-apis.md, "secrets"):

    /app/db-pass | db-pass | db-pass:3 | db-pass:prod             SSM parameter in the task's region
    arn:aws:ssm:<region>:<account>:parameter/app/db-pass[:sel]     SSM parameter anywhere
    arn:aws:secretsmanager:<region>:<account>:secret:<name>[-XXXXXX][:<json-key>:<version-stage>:<version-id>]

SecureString parameters are decrypted; a json-key picks one top-level key of a JSON
SecretString (a string as is, anything else as JSON text). Errors are berth's NotFound /
InvalidArgument, their message led by the AWS error code, so ECS can quote it in a stoppedReason.
Never logs a value.
"""

from __future__ import annotations

import json

from berth.errors import BerthError, InvalidArgument, NotFound
from berth.secrets._secretsmanager import SecretsManager
from berth.secrets._ssm import ParameterStore


class SecretResolver:
    """Implements the agent's `SecretSource` Protocol (berth.agent._secrets) over both services."""

    def __init__(self, ssm: ParameterStore, secretsmanager: SecretsManager) -> None:
        self._ssm = ssm
        self._sm = secretsmanager

    def resolve(self, value_from: str, *, account: str, region: str) -> str:
        """Raises: NotFound / InvalidArgument (see the module docstring)."""
        if not value_from:
            raise InvalidArgument("valueFrom is empty")
        try:
            if value_from.startswith("arn:"):
                service = value_from.split(":")[2] if value_from.count(":") >= 2 else ""
                if service == "secretsmanager":
                    return self._secret(value_from, account=account, region=region)
                if service != "ssm":
                    raise InvalidArgument(f"unsupported valueFrom {value_from!r}: want an SSM parameter or a "
                                          "Secrets Manager secret")
            return self._parameter(value_from, account=account, region=region)
        except BerthError as err:
            code = getattr(err, "aws_code", None)
            if code is None:
                raise
            kind = NotFound if isinstance(err, NotFound) else InvalidArgument
            raise kind(f"{code}: {err}") from err

    def _parameter(self, value_from: str, *, account: str, region: str) -> str:
        picked = self._ssm.get(value_from, account=account, region=region)
        return self._ssm.reveal(picked.parameter, picked.version)

    def _secret(self, value_from: str, *, account: str, region: str) -> str:
        parts = value_from.split(":")
        if len(parts) < 7 or parts[5] != "secret" or not parts[6] or len(parts) > 10:
            raise InvalidArgument(f"invalid Secrets Manager valueFrom {value_from!r}: want arn:aws:secretsmanager:"
                                  "<region>:<account>:secret:<name>[:<json-key>:<version-stage>:<version-id>]")
        arn = ":".join(parts[:7])
        json_key, stage, version_id = (parts[7:] + ["", "", ""])[:3]
        got = self._sm.get_value(arn, account=account, region=region, version_id=version_id or None,
                                 stage=stage or None)
        text = got.value.string
        if text is None:
            try:
                text = (got.value.binary or b"").decode()
            except UnicodeDecodeError as err:
                raise InvalidArgument(f"secret {got.secret.arn} holds binary data that is not UTF-8 text") from err
        return _json_key(text, json_key, got.secret.arn) if json_key else text


def _json_key(text: str, json_key: str, arn: str) -> str:
    try:
        document = json.loads(text)
    except ValueError as err:
        raise InvalidArgument(f"secret {arn} is not a JSON object, so json key '{json_key}' cannot be "
                              "selected") from err
    if not isinstance(document, dict):
        raise InvalidArgument(f"secret {arn} is not a JSON object, so json key '{json_key}' cannot be selected")
    if json_key not in document:
        raise NotFound(f"json key '{json_key}' not found in secret {arn}")
    chosen = document[json_key]
    return chosen if isinstance(chosen, str) else json.dumps(chosen)
