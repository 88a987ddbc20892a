"""Image references, normalised the way Docker does (`busybox` -> `docker.io/library/busybox:latest`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from berth.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class Reference:
    """A parsed image reference. `tag` is None only when a digest pins the image."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """Full repository name, e.g. `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """The name as Docker shows it: `busybox`, `bob/cats`, `127.0.0.1:5000/bob/cats`."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix("library/")
        return self.repository

    def familiar(self) -> str:
        """`busybox:latest`-style string, as printed by `docker images`/`rmi`."""
        if self.digest:
            return f"{self.familiar_repository}@{self.digest}"
        return f"{self.familiar_repository}:{self.tag}"

    def __str__(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return DEFAULT_DOMAIN, name


def parse_reference(text: str, default_tag: str = "latest") -> Reference:
    """Parse `[domain/]path[:tag][@digest]`; raises InvalidArgument with Docker's wording."""
    if not text or text != text.strip():
        raise InvalidArgument(f"invalid reference format: {text!r}")
    name, _, digest = text.partition("@")
    tag: str | None = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    if digest and not _DIGEST_RE.match(digest):
        raise InvalidArgument("invalid reference format")
    if tag is not None and not _TAG_RE.match(tag):
        raise InvalidArgument("invalid reference format")
    domain, path = _split_domain(name)
    if not _DOMAIN_RE.match(domain):  # `../x` would otherwise name a registry called ".."
        raise InvalidArgument("invalid reference format")
    if any(c.isupper() for c in path):
        raise InvalidArgument(f"invalid reference format: repository name ({path}) must be lowercase")
    if not _PATH_RE.match(path):
        raise InvalidArgument("invalid reference format")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    if tag is None and not digest:
        tag = default_tag
    return Reference(domain=domain, path=path, tag=tag, digest=digest or None)
