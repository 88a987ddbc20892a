"""Values at rest: AES-256-GCM under one key berth keeps under its root.

Layout::

    <root>/secrets/            0700
    └── master.key             0600, 32 random bytes, made atomically on first use

A sealed value is ``"v1:" + base64(nonce[12] + ciphertext + tag[16])``. The associated data
binds it to where it belongs (``ssm|<account>|<region>|<name>|<version>``, a secret's ARN and
version id), so a ciphertext copied into another record does not open there.

Only sealed values reach the control-plane store; the key never leaves its file, and nothing
here logs a value.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets as _random
import threading
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from berth.secrets._errors import DecryptionFailure

KEY_BYTES = 32
_NONCE_BYTES = 12
_PREFIX = "v1:"


class KeySource(Protocol):
    """Where the data key comes from: `FileKey` in the daemon, `testing.StaticKey` in tests."""

    def key(self) -> bytes:
        """The 32-byte key (created on first use where the source can)."""
        ...


class FileKey:
    """The key in `<dir>/master.key`, created on first use with O_EXCL + link so that two
    creators racing end up with the same key (the loser reads the winner's file)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "master.key"
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def key(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = self._load() or self._create()
            return self._key

    def _load(self) -> bytes | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if len(data) != KEY_BYTES:
            raise DecryptionFailure(f"the secrets key {self.path} is damaged ({len(data)} bytes, want {KEY_BYTES})")
        return data

    def _create(self) -> bytes:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        key = _random.token_bytes(KEY_BYTES)
        tmp = self.directory / f".master.key.{os.getpid()}.{_random.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.path)  # atomic, and fails when another creator won
        except FileExistsError:
            existing = self._load()
            assert existing is not None
            key = existing
        finally:
            tmp.unlink()
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return key


class Sealer:
    """Seals and opens values with the key from a `KeySource`."""

    def __init__(self, keys: KeySource) -> None:
        self._keys = keys

    def seal(self, plaintext: bytes, context: str) -> str:
        nonce = _random.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(self._keys.key()).encrypt(nonce, plaintext, context.encode())
        return _PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, token: str, context: str) -> bytes:
        """Raises: DecryptionFailure when the token is damaged or was sealed elsewhere."""
        if not token.startswith(_PREFIX):
            raise DecryptionFailure("a stored value is not in a format berth seals")
        try:
            raw = base64.b64decode(token[len(_PREFIX):], validate=True)
            return AESGCM(self._keys.key()).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (binascii.Error, ValueError, InvalidTag) as err:
            raise DecryptionFailure("Secrets Manager can't decrypt the protected secret text using the provided "
                                    "KMS key." if context.startswith("secretsmanager|")
                                    else "The stored value cannot be decrypted with berth's key.") from err
