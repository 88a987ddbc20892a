"""Choosing one image from an index by platform, the way dockerd's default matcher does."""

from __future__ import annotations

import platform as _host

from berth.errors import InvalidArgument, NotFound
from berth.images.distribution._manifest import Descriptor, Index, Platform

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386",
         "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
# Variants a platform implies when a descriptor leaves them out (containerd's normalisation).
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


def host_platform() -> Platform:
    machine = _host.machine()
    arch = _ARCH.get(machine, machine)
    variant = "v6" if machine == "armv6l" else ""
    return Platform("linux", arch, variant)


def parse_platform(text: str) -> Platform:
    """`linux/arm64/v8`, `linux/amd64`, or `arm64` (os defaults to linux).

    Raises:
        InvalidArgument: more than three parts, or empty parts.
    """
    parts = text.strip().lower().split("/")
    if len(parts) == 1:
        parts = ["linux", *parts]
    if len(parts) > 3 or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: use os/arch[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def _matches(candidate: Platform, wanted: Platform) -> bool:
    if candidate.os != wanted.os or candidate.architecture != wanted.architecture:
        return False
    if not wanted.variant:
        return True
    default = _DEFAULT_VARIANT.get(wanted.architecture, "")
    return (candidate.variant or default) == wanted.variant


def select_manifest(index: Index, wanted: Platform) -> Descriptor:
    """The first manifest in `index` for `wanted` (attestations and unknown platforms skipped).

    Raises:
        NotFound: Docker's "no matching manifest for linux/amd64 in the manifest list entries".
    """
    for desc in index.manifests:
        if desc.platform is not None and _matches(desc.platform, wanted):
            return desc
    raise NotFound(f"no matching manifest for {wanted} in the manifest list entries")
