"""Registry passwords issued by GetAuthorizationToken: `AWS:<password>`, valid for 12 hours.

The password is `<base64url(json{exp, acct})>.<base64url(hmac-sha256)>`: no ':' (the AWS CLI
splits the decoded token on ':' into exactly two parts), checkable without state, and signed
with a key kept under the daemon root so tokens survive a restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

USERNAME = "AWS"
TTL = 12 * 3600.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class EcrTokens:
    """Issues and checks ECR registry passwords; `authenticate` fits the registry's Authenticator."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time, ttl: float = TTL) -> None:
        self._key = key
        self._clock = clock
        self.ttl = ttl

    @classmethod
    def from_file(cls, path: Path, **kwargs: object) -> "EcrTokens":
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        return cls(path.read_bytes(), **kwargs)  # type: ignore[arg-type]

    def issue(self, account: str) -> tuple[str, float]:
        """A password and its expiry (epoch seconds)."""
        expires = self._clock() + self.ttl
        payload = _b64(json.dumps({"exp": int(expires), "acct": account}).encode())
        return f"{payload}.{self._sign(payload)}", float(int(expires))

    def authorization_token(self, account: str) -> tuple[str, float]:
        """`base64("AWS:" + password)` as GetAuthorizationToken returns it, and its expiry."""
        password, expires = self.issue(account)
        return base64.b64encode(f"{USERNAME}:{password}".encode()).decode(), expires

    def authenticate(self, username: str, password: str) -> bool:
        if username != USERNAME:
            return False
        payload, _, signature = password.partition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return False
        try:
            claims = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return False
        return isinstance(claims, dict) and float(claims.get("exp", 0)) > self._clock()

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
