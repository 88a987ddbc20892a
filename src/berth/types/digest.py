"""Content digests (`sha256:<64 hex>`)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from berth.errors import InvalidArgument

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True, order=True)
class Digest:
    """A validated sha256 digest; `str(d)` is the wire form."""

    value: str

    def __post_init__(self) -> None:
        if not _DIGEST_RE.match(self.value):
            raise InvalidArgument(f"invalid digest {self.value!r}")

    @classmethod
    def of(cls, data: bytes) -> "Digest":
        return cls("sha256:" + hashlib.sha256(data).hexdigest())

    @property
    def hex(self) -> str:
        return self.value.split(":", 1)[1]

    @property
    def short(self) -> str:
        """The 12-hex-digit form Docker prints."""
        return self.hex[:12]

    def __str__(self) -> str:
        return self.value
