"""The AWS protocol layer: one endpoint (default 127.0.0.1:4566) for the JSON 1.1 services (ECR,
ECS) and, later, Query services (ELBv2).

Public surface:

- `AwsApi` (the service table; `add_json_service(JsonService(prefix, signing_name, operations))`),
  `AwsServer` (serves it), `AwsContext` (region/account/request id given to each operation).
- `AwsError(code, message, status)` and `to_aws_error` (the one mapper from berth error kinds:
  an `aws_code` attribute on a domain error wins, else the kind picks a generic code).
- `parse_scope` (SigV4 credential scope), `parse_listen_addr` (`HOST:PORT` or `off`).
- Authentication (`_auth.py`): `Authenticator(stores, clock, mode)` verifies SigV4 before any
  operation runs (`AwsApi(authenticator=...)`); `Credential`, the `CredentialStore` Protocol,
  `StaticKeys` (the generated `KeyFile` pair and `--aws-credentials` files), `TemporaryCredentials`
  (task-role keys with a session token and an expiry), `for_query_protocol` (ELBv2's codes).
  `AwsApi.add_query_service(..., render_error)` draws a Query service's own error shape.
- `ecr.ecr_service(EcrService)` builds the ECR JsonService.
"""

from berth.api.aws._auth import (
    ANONYMOUS, AUTH_MODES, Authenticator, AuthMode, Credential, CredentialStore, KeyFile, StaticKeys,
    TemporaryCredentials, for_query_protocol, parse_credentials,
)
from berth.api.aws._errors import AwsError, to_aws_error
from berth.api.aws._server import (
    AwsApi, AwsContext, AwsServer, ErrorRenderer, JsonService, Operation, query_error,
)
from berth.api.aws._sigv4 import DEFAULT_ACCOUNT, DEFAULT_REGION, Scope, parse_scope

__all__ = [
    "ANONYMOUS", "AUTH_MODES", "AuthMode", "Authenticator", "AwsApi", "AwsContext", "AwsError", "AwsServer",
    "Credential", "CredentialStore", "DEFAULT_ACCOUNT", "DEFAULT_REGION", "ErrorRenderer", "JsonService",
    "KeyFile", "Operation", "Scope", "StaticKeys", "TemporaryCredentials", "for_query_protocol",
    "parse_credentials", "parse_listen_addr", "parse_scope", "query_error", "to_aws_error",
]


def parse_listen_addr(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` → (host, port); `off` → None.

    Raises:
        berth.errors.InvalidArgument: anything else.
    """
    from berth.errors import InvalidArgument

    if text.strip().lower() in ("off", "none", "false", ""):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidArgument(f"invalid AWS API address {text!r}: use HOST:PORT or off")
    return host.strip("[]") or "127.0.0.1", int(port)
