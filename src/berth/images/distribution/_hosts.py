"""Where a registry domain is reached: scheme, TLS verification, and mirrors (pure).

Docker's rules: registries on loopback (127.0.0.0/8, ::1, localhost) and those named by
`--insecure-registry` (host[:port] or a CIDR) are insecure; berth talks plain HTTP to loopback
ones first, and to other insecure ones tries HTTPS without verification before HTTP.

The default registry (references without a domain, `docker.io/...`) is reached only through
`--registry-mirror`s: berth never dials a public registry on its own, so on a host without a
mirror such pulls fail at once with a clear message instead of leaving the machine.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from berth.errors import InvalidArgument

DOCKER_HUB = "docker.io"


def is_default_registry_address(host: str) -> bool:
    """Whether a login/auth address the docker CLI sends names the default registry."""
    return host == DOCKER_HUB or host.endswith("." + DOCKER_HUB)


@dataclass(frozen=True)
class Endpoint:
    url: str            # "http://127.0.0.1:5000" (no trailing slash)
    verify_tls: bool = True
    mirror: bool = False


@dataclass(frozen=True)
class RegistryHosts:
    insecure: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for mirror in self.mirrors:
            validate_mirror(mirror)

    def endpoints(self, domain: str, *, pull: bool = True) -> list[Endpoint]:
        """Endpoints to try in order for `domain`; the default registry only via mirrors (pulls)."""
        if domain == DOCKER_HUB:
            return [Endpoint(m.rstrip("/"), mirror=True) for m in self.mirrors] if pull else []
        if is_loopback(domain):
            return [Endpoint(f"http://{domain}"), Endpoint(f"https://{domain}", verify_tls=False)]
        if self.is_insecure(domain):
            return [Endpoint(f"https://{domain}", verify_tls=False), Endpoint(f"http://{domain}")]
        return [Endpoint(f"https://{domain}")]

    def is_insecure(self, domain: str) -> bool:
        if is_loopback(domain) or domain in self.insecure:
            return True
        address = _ip(domain)
        for entry in self.insecure:
            if "/" in entry and address is not None:
                try:
                    if address in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
        return False

    def insecure_cidrs(self) -> list[str]:
        """For `docker info`'s RegistryConfig.InsecureRegistryCIDRs."""
        return ["127.0.0.0/8", "::1/128", *(e for e in self.insecure if "/" in e)]


def host_of(domain: str) -> str:
    """`127.0.0.1:5000` → `127.0.0.1`; `[::1]:5000` → `::1`."""
    if domain.startswith("["):
        return domain[1:].split("]", 1)[0]
    return domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain


def _ip(domain: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host_of(domain))
    except ValueError:
        return None


def is_loopback(domain: str) -> bool:
    host = host_of(domain)
    if host == "localhost":
        return True
    address = _ip(domain)
    return address is not None and address.is_loopback


def validate_mirror(url: str) -> str:
    """A mirror must be an http(s) URL without a path (dockerd's ValidateMirror).

    Raises:
        InvalidArgument: otherwise.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"invalid mirror: unsupported scheme or host in {url!r}")
    if "@" in parts.netloc:
        raise InvalidArgument(f"invalid mirror: username/password not allowed in URI {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidArgument(f"invalid mirror: path, query or fragment not allowed in {url!r}")
    return url.rstrip("/")


def validate_insecure(entry: str) -> str:
    """`host[:port]` or a CIDR, without a scheme (dockerd refuses `http://...`).

    Raises:
        InvalidArgument: a scheme is present or the entry is empty.
    """
    if not entry or "://" in entry:
        raise InvalidArgument(f"insecure registry {entry!r} should not contain '://'")
    return entry
