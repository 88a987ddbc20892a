"""Registry auth: htpasswd users, the Docker token flow, and per-repository pull/push scopes.

Flow (what docker, skopeo and oras do):

    GET /v2/...                     → 401  WWW-Authenticate: Bearer realm="http://H/token",
                                           service="berth-registry",scope="repository:bob/cats:pull,push"
    GET /token?service=..&scope=..  (Basic user:password, or anonymous)
                                    → 200  {"token": "<signed>", "expires_in": 300, ...}
    GET /v2/...  Authorization: Bearer <signed>   → served if the token grants the scope

Tokens are compact JWTs signed with HMAC-SHA256 under a key kept in the registry root, so they
survive a daemon restart and stay short-lived (`ttl`). Basic credentials are also accepted
directly on /v2/ requests. Policy: an authenticated user may pull, push and delete everywhere;
anonymous clients may pull when `anonymous_pull` is set and push only when `anonymous_push` is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SERVICE = "berth-registry"
ALL_ACTIONS = ("pull", "push", "delete")


@dataclass(frozen=True)
class Access:
    """One scope: `repository:<name>:<actions>` or `registry:catalog:*`."""

    type: str
    name: str
    actions: tuple[str, ...]

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(text: str) -> Access | None:
    """`repository:bob/cats:pull,push` → Access; None when malformed (ignored, as distribution does).

    The name may contain a port-less registry host with ':' in rare cases, so split from both ends.
    """
    kind, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    return Access(kind, name, tuple(a for a in actions.split(",") if a))


class Authenticator(Protocol):
    """Checks a username/password pair (htpasswd users, or ECR-style issued passwords)."""

    def authenticate(self, username: str, password: str) -> bool: ...


class Htpasswd:
    """Users from an Apache htpasswd file with bcrypt hashes (`htpasswd -B`); reloaded when changed.

    bcrypt is deliberately slow (~0.1 s per check), and clients send Basic credentials on many
    requests, so successful checks are cached by a SHA-256 of the pair until the file changes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, bytes] = {}
        self._mtime: float | None = None
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()

    def _load(self) -> None:
        mtime = self.path.stat().st_mtime
        if mtime == self._mtime:
            return
        users = {}
        for line in self.path.read_text().splitlines():
            user, sep, hashed = line.strip().partition(":")
            if sep and user and not user.startswith("#"):
                users[user] = hashed.encode()
        self._users, self._mtime, self._ok = users, mtime, set()

    def authenticate(self, username: str, password: str) -> bool:
        import bcrypt

        key = hashlib.sha256(f"{username}\0{password}".encode()).digest()
        with self._lock:
            self._load()
            hashed = self._users.get(username)
            if key in self._ok:
                return True
        if hashed is None or not hashed.startswith((b"$2a$", b"$2b$", b"$2y$")):
            return False
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False
        if ok:
            with self._lock:
                self._ok.add(key)
        return ok


def hash_password(password: str, rounds: int = 10) -> str:
    """A bcrypt hash for an htpasswd line (tests and tooling)."""
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Claims:
    subject: str
    access: tuple[Access, ...]
    expires: float


class TokenSigner:
    """HS256 JWTs: `issue` for the token endpoint, `verify` on every request."""

    def __init__(self, key: bytes, *, ttl: float = 300, issuer: str = SERVICE,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.ttl = ttl
        self.issuer = issuer
        self._clock = clock

    @classmethod
    def from_file(cls, path: Path, **kwargs: Any) -> TokenSigner:
        """Load the key, creating a random one (mode 0600) on first use."""
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            key = secrets.token_bytes(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
        return cls(key, **kwargs)

    def _sign(self, data: bytes) -> str:
        return _b64(hmac.new(self._key, data, hashlib.sha256).digest())

    def issue(self, subject: str, access: Sequence[Access]) -> tuple[str, float]:
        now = self._clock()
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {"iss": self.issuer, "sub": subject, "aud": SERVICE, "iat": int(now), "nbf": int(now) - 1,
                  "exp": int(now + self.ttl), "jti": secrets.token_hex(8), "access": [a.to_json() for a in access]}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{payload}.{self._sign(f'{header}.{payload}'.encode())}", now

    def verify(self, token: str) -> Claims | None:
        try:
            header, payload, signature = token.split(".")
            if not hmac.compare_digest(signature, self._sign(f"{header}.{payload}".encode())):
                return None
            claims = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return None
        if claims.get("exp", 0) < self._clock():
            return None
        access = tuple(Access(a["type"], a["name"], tuple(a["actions"])) for a in claims.get("access", []))
        return Claims(claims.get("sub", ""), access, claims["exp"])


@dataclass(frozen=True)
class Policy:
    anonymous_pull: bool = True
    anonymous_push: bool = False

    def allowed(self, user: str | None, want: Access) -> tuple[str, ...]:
        """The subset of `want.actions` that `user` (None = anonymous) may perform."""
        if want.type == "registry" and want.name == "catalog":
            ok = user is not None or self.anonymous_pull
            return tuple(a for a in want.actions if a == "*") if ok else ()
        if want.type != "repository":
            return ()
        if user is not None:
            granted: Iterable[str] = ALL_ACTIONS
        else:
            granted = [a for a, on in (("pull", self.anonymous_pull), ("push", self.anonymous_push)) if on]
        granted = set(granted)
        if "*" in want.actions and granted >= set(ALL_ACTIONS):
            return want.actions
        return tuple(a for a in want.actions if a in granted)


class Unauthorized(Exception):  # noqa: N818 - control flow for the HTTP layer, not a berth error
    """The request lacks the access it needs; carries what the challenge should say."""

    def __init__(self, need: Access | None, error: str | None = None) -> None:
        super().__init__(error or "authentication required")
        self.need = need
        self.error = error


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class RegistryAuth:
    """Decides every request: `check` for /v2/ calls, `token` for the token endpoint."""

    def __init__(self, signer: TokenSigner, policy: Policy, authenticators: Sequence[Authenticator] = ()) -> None:
        self.signer = signer
        self.policy = policy
        self.authenticators = list(authenticators)

    def is_slow(self, authorization: str | None) -> bool:
        """True when checking this header may run bcrypt (so callers move it off the event loop)."""
        return basic_credentials(authorization) is not None

    def login(self, username: str, password: str) -> bool:
        return any(a.authenticate(username, password) for a in self.authenticators)

    def check(self, authorization: str | None, need: Access | None) -> str | None:
        """Return the caller (None for anonymous) or raise Unauthorized.

        `need` None is the `/v2/` ping: any valid credentials, or none at all only when the
        policy needs none (clients learn the token realm from the 401 it otherwise gets).
        """
        if authorization and authorization[:7].lower() == "bearer ":
            claims = self.signer.verify(authorization[7:].strip())
            if claims is None:
                raise Unauthorized(need, "invalid_token")
            if need is None or _covers(claims.access, need):
                return claims.subject or None
            raise Unauthorized(need, "insufficient_scope")
        creds = basic_credentials(authorization)
        if creds is not None:
            if not self.login(*creds):
                raise Unauthorized(need, "invalid_credentials")
            user: str | None = creds[0]
        elif need is not None and set(self.policy.allowed(None, need)) >= set(need.actions):
            return None
        else:
            raise Unauthorized(need)
        if need is not None and set(self.policy.allowed(user, need)) < set(need.actions):
            raise Unauthorized(need, "insufficient_scope")
        return user

    def may(self, authorization: str | None, need: Access) -> bool:
        """Whether the caller's identity allows `need`, whatever scopes its token was issued for.

        Used for the source of a cross-repository mount, which clients do not always put in the
        token request.
        """
        user: str | None = None
        if authorization and authorization[:7].lower() == "bearer ":
            claims = self.signer.verify(authorization[7:].strip())
            if claims is None:
                return False
            user = claims.subject or None
        elif (creds := basic_credentials(authorization)) is not None:
            if not self.login(*creds):
                return False
            user = creds[0]
        return set(self.policy.allowed(user, need)) >= set(need.actions)

    def token(self, authorization: str | None, scopes: Iterable[str]) -> dict[str, Any]:
        """The token endpoint's answer; raises Unauthorized for bad credentials."""
        creds = basic_credentials(authorization)
        user = None
        if creds is not None:
            if not self.login(*creds):
                raise Unauthorized(None, "invalid_credentials")
            user = creds[0]
        return self.grant(user, scopes)

    def grant(self, user: str | None, scopes: Iterable[str]) -> dict[str, Any]:
        access = []
        for scope in scopes:
            for text in scope.split(" "):
                want = parse_scope(text)
                if want is not None:
                    access.append(Access(want.type, want.name, self.policy.allowed(user, want)))
        token, issued = self.signer.issue(user or "", access)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued))
        return {"token": token, "access_token": token, "expires_in": int(self.signer.ttl), "issued_at": stamp}


def _covers(granted: Sequence[Access], need: Access) -> bool:
    for access in granted:
        if access.type == need.type and access.name == need.name:
            if "*" in access.actions or set(access.actions) >= set(need.actions):
                return True
    return False


def challenge(realm: str, unauthorized: Unauthorized) -> str:
    parts = [f'realm="{realm}"', f'service="{SERVICE}"']
    if unauthorized.need is not None:
        parts.append(f'scope="{unauthorized.need.scope()}"')
    if unauthorized.error in ("insufficient_scope", "invalid_token"):
        parts.append(f'error="{unauthorized.error}"')
    return "Bearer " + ",".join(parts)
