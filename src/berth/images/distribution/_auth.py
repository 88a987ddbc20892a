"""Registry credentials and auth challenges (the Docker token flow), as pure values.

Flow, as dockerd does it: `GET /v2/` without credentials; a 401 carries
`WWW-Authenticate: Basic realm=".."` (send the password on every request) or
`Bearer realm="..",service="..",scope=".."` (GET the realm with `service` and one `scope` per
repository action set, using Basic credentials when we have them, and send the returned token as
`Authorization: Bearer <token>`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

from berth.errors import InvalidArgument

_PARAM_RE = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Credentials:
    """What `docker login` stored and the CLI sends in X-Registry-Auth."""

    username: str = ""
    password: str = ""
    identity_token: str = ""   # an OAuth refresh token (given instead of a password)
    registry_token: str = ""   # a bearer token to send as is
    server_address: str = ""

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def decode_registry_auth(header: str) -> Credentials:
    """Decode X-Registry-Auth: base64url JSON, padded or not; an empty header means anonymous.

    Raises:
        InvalidArgument: the header is not base64 JSON.
    """
    header = header.strip()
    if not header:
        return Credentials()
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        doc = json.loads(raw or b"{}")
    except (binascii.Error, ValueError) as err:
        raise InvalidArgument("invalid X-Registry-Auth header: not base64 JSON") from err
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
    return credentials_from_json(doc)


def credentials_from_json(doc: dict[str, object]) -> Credentials:
    """Credentials from an auth-config object (`POST /auth` body, X-Registry-Auth); keys are
    case-insensitive as in Go's JSON decoding. An `auth` field (base64 user:password) counts too."""
    lower = {k.lower(): str(v) for k, v in doc.items() if v is not None}
    username, password = lower.get("username", ""), lower.get("password", "")
    if not username and lower.get("auth"):
        try:
            username, _, password = base64.b64decode(lower["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as err:
            raise InvalidArgument("invalid auth field: not base64 user:password") from err
    return Credentials(username=username, password=password,
                       identity_token=lower.get("identitytoken", ""),
                       registry_token=lower.get("registrytoken", ""),
                       server_address=lower.get("serveraddress", ""))


@dataclass(frozen=True)
class Challenge:
    scheme: str                                   # "basic" or "bearer" (lower case)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a WWW-Authenticate header, or None when there is none."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace('\\"', '"')
              for m in _PARAM_RE.finditer(rest)}
    return Challenge(scheme.lower(), params)


def repository_scope(repository: str, actions: tuple[str, ...]) -> str:
    """`repository:bob/cats:pull,push`."""
    return f"repository:{repository}:{','.join(actions)}"
