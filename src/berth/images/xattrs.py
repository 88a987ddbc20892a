"""Extended attributes in layer tars: which travel, how they are read, how PAX records hold them.

A layer carries a file's xattrs as PAX records `SCHILY.xattr.<name>=<raw bytes>`, the form
Docker, containerd and GNU/star tar use. Values are binary (security.capability is a struct),
so they travel as `str` decoded with surrogateescape: tarfile then writes the exact bytes
(flagging the header `hdrcharset=BINARY` when they are not UTF-8) and reads them back the same way.

overlayfs keeps its own bookkeeping in `trusted.overlay.*` (and `user.overlay.*` when mounted
with `userxattr`): opaque dirs, redirects, metacopy, origins. Those never enter or leave a layer
as xattrs: opaque dirs travel as `.wh..wh..opq` entries instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["OPAQUE_XATTR", "PAX_PREFIX", "carried", "carried_from_pax", "from_pax", "overlay_private",
           "read_xattrs", "to_pax"]

PAX_PREFIX = "SCHILY.xattr."
OPAQUE_XATTR = "trusted.overlay.opaque"
_OVERLAY_PREFIXES = ("trusted.overlay.", "user.overlay.")
# A host SELinux label says nothing about the image (Docker and containerd do not carry it).
_HOST_ONLY = ("security.selinux",)


def overlay_private(name: str) -> bool:
    """Whether `name` is overlayfs's own bookkeeping rather than the file's."""
    return name.startswith(_OVERLAY_PREFIXES)


def carried(name: str) -> bool:
    """Whether a layer written from the host records the xattr `name`."""
    return not overlay_private(name) and name not in _HOST_ONLY


def read_xattrs(path: Path | str) -> dict[str, bytes]:
    """The carried xattrs of `path` itself (a symlink is not followed), sorted by name.

    An attribute that cannot be listed or read (no permission, unsupported filesystem, removed
    meanwhile) is left out rather than failing the layer.
    """
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    found: dict[str, bytes] = {}
    for name in sorted(names):
        if not carried(name):
            continue
        try:
            found[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return found


def to_pax(xattrs: Mapping[str, bytes]) -> dict[str, str]:
    """PAX records for `xattrs`, in the order given."""
    return {PAX_PREFIX + name: value.decode("utf-8", "surrogateescape") for name, value in xattrs.items()}


def from_pax(pax_headers: Mapping[str, str]) -> Iterator[tuple[str, bytes]]:
    """(name, raw value) of every xattr record in a member's PAX headers."""
    for key, value in pax_headers.items():
        if key.startswith(PAX_PREFIX) and len(key) > len(PAX_PREFIX):
            yield key[len(PAX_PREFIX):], value.encode("utf-8", "surrogateescape")


def carried_from_pax(pax_headers: Mapping[str, str]) -> tuple[tuple[str, bytes], ...]:
    """The carried xattrs of a tar member (e.g. one of the build context), sorted by name."""
    return tuple(sorted((name, raw) for name, raw in from_pax(pax_headers) if carried(name)))
