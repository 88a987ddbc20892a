"""Refuse layer entries that would land outside the layer root (pure: tar headers in, verdict out).

A layer tar is checked entry by entry, in tar order, before anything from it is committed or
unpacked. An entry is refused when:

    "../../etc/x"          its name climbs above the root (after `.`/`..` are resolved lexically)
    "/etc/x"               its name is absolute
    "link/x"               a parent on its path is a symlink this layer created (the write would
                           go wherever the link points), or a file (not a directory)
    hardlink -> "../x"     a hard link's target climbs out, goes through a symlink, is a directory,
                           or is not an earlier entry of this layer

Symlinks themselves may point anywhere: they are resolved inside the container, never while
unpacking. Only this layer's own entries matter: each layer unpacks into its own empty directory
(as overlay2 does), so a lower layer's symlink is never on the path of an upper layer's entry.

The refusal is a `LayerBreakout`, an InvalidArgument whose message names the entry and the layer:

    failed to register layer sha256:1f2e..: "../../evil" is outside of the layer root
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field

from berth.errors import InvalidArgument

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

Key = tuple[str, ...]


class LayerBreakout(InvalidArgument):
    """A layer entry that would land outside the root; `entry` is the tar member name."""

    def __init__(self, entry: str, detail: str, layer: str = "") -> None:
        self.entry = entry
        self.detail = detail
        self.layer = layer
        where = f"failed to register layer {layer}" if layer else "failed to register layer"
        super().__init__(f"{where}: {detail}")

    def in_layer(self, layer: str) -> LayerBreakout:
        """The same refusal, naming the layer (its diff_id) once that is known."""
        return LayerBreakout(self.entry, self.detail, layer)


def entry_parts(name: str) -> list[str]:
    """The path components of a member name inside the layer root, `..` resolved lexically.

    Raises:
        LayerBreakout: the name is absolute or climbs above the root.
    """
    if name.startswith("/"):
        raise LayerBreakout(name, f"{_q(name)} is outside of the layer root (absolute path)")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise LayerBreakout(name, f"{_q(name)} is outside of the layer root")
            parts.pop()
        else:
            parts.append(part)
    return parts


def whiteout_target(name: str, parts: list[str]) -> list[str] | None:
    """For `dir/.wh.x` the path it hides (`dir/x`); None for other entries and the opaque marker.

    Raises:
        LayerBreakout: the hidden name is empty, `.` or `..`.
    """
    if not parts or not parts[-1].startswith(WHITEOUT_PREFIX) or parts[-1] == OPAQUE_MARKER:
        return None
    hidden = parts[-1][len(WHITEOUT_PREFIX):]
    if hidden.startswith(WHITEOUT_PREFIX):
        return None  # other AUFS metadata (.wh..wh.plnk ...): not a path, skipped on unpack
    if hidden in ("", ".", ".."):
        raise LayerBreakout(name, f"{_q(name)} is outside of the layer root (malformed whiteout)")
    return [*parts[:-1], hidden]


@dataclass
class LayerGuard:
    """Follows one layer's entries in tar order; `check` refuses the first that leaves the root.

    Example:
        guard = LayerGuard()
        for member in tar:
            guard.check(member)        # raises LayerBreakout
    """

    _dirs: set[Key] = field(default_factory=set)
    _files: set[Key] = field(default_factory=set)      # non-directories: hard-link targets
    _symlinks: set[Key] = field(default_factory=set)
    # what is known below each directory, so replacing one forgets its subtree without a scan
    _children: dict[Key, set[Key]] = field(default_factory=dict)

    def check(self, member: tarfile.TarInfo) -> list[str]:
        """Check one member and record what it creates; returns its components.

        Raises:
            LayerBreakout: see the module docstring.
        """
        parts = entry_parts(member.name)
        if not parts:
            return parts  # the root itself
        self._check_parents(member.name, parts)
        hidden = whiteout_target(member.name, parts)
        if hidden is not None:
            self._replace(tuple(hidden))
            self._add(self._files, tuple(hidden))  # unpacked as a 0:0 character device
            return parts
        if member.islnk():
            self._check_hardlink(member)
        key = tuple(parts)
        if member.isdir():
            if key not in self._dirs:
                self._replace(key)
                self._add(self._dirs, key)
        elif parts[-1] != OPAQUE_MARKER:
            self._replace(key)
            self._add(self._symlinks if member.issym() else self._files, key)
        return parts

    def _check_parents(self, name: str, parts: list[str]) -> None:
        for depth in range(1, len(parts)):
            prefix = tuple(parts[:depth])
            if prefix in self._symlinks:
                raise LayerBreakout(name, f"{_q(name)} would be written through the symlink {_q('/'.join(prefix))}")
            if prefix in self._files:
                raise LayerBreakout(name, f"{_q(name)}: parent {_q('/'.join(prefix))} is not a directory")
            if prefix not in self._dirs:
                self._add(self._dirs, prefix)  # created on unpack when missing

    def _check_hardlink(self, member: tarfile.TarInfo) -> None:
        link = f"invalid hardlink {_q(member.name)} -> {_q(member.linkname)}"
        try:
            target = entry_parts(member.linkname)
        except LayerBreakout:
            raise LayerBreakout(member.name, link) from None
        key = tuple(target)
        if any(key[:depth] in self._symlinks for depth in range(1, len(key))):
            raise LayerBreakout(member.name, f"{link}: the target is reached through a symlink")
        if not key or key in self._dirs:
            raise LayerBreakout(member.name, f"{link}: the target is a directory")
        if key not in self._files and key not in self._symlinks:
            raise LayerBreakout(member.name, f"{link}: the target is not in this layer")

    def _add(self, kind: set[Key], key: Key) -> None:
        kind.add(key)
        self._children.setdefault(key[:-1], set()).add(key)

    def _replace(self, key: Key) -> None:
        """A later entry replaces an earlier one of the same name, and a directory its contents."""
        self._files.discard(key)
        self._symlinks.discard(key)
        if key not in self._dirs:
            return
        doomed = [key]
        while doomed:  # the directory and everything known below it
            gone = doomed.pop()
            self._dirs.discard(gone)
            self._files.discard(gone)
            self._symlinks.discard(gone)
            doomed.extend(self._children.pop(gone, ()))


def _q(text: str) -> str:
    """Go's %q for the names we print (quotes and backslashes escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
