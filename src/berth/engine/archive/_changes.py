"""`docker diff` and `docker commit` over the overlay upper dir: changes, the layer tar, the
committed config."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from berth.images.upperdiff import walk_upper, write_layer

# Paths the engine itself creates in every container (Docker keeps them in its init layer);
# they never show up in diff or commit.
INIT_PATHS = ("/dev", "/proc", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
              "/.dockerenv", "/etc/mtab")
CHANGE_KINDS = {"C": 0, "A": 1, "D": 2}


def changes(upper: Path, lowers: list[Path], exclude: Iterable[str]) -> list[dict[str, Any]]:
    """`docker diff`: [{"Path", "Kind"}] with Kind 0 changed, 1 added, 2 deleted, sorted by path.

    A directory that was only copied up (it exists below and nothing under it changed) is not
    reported; that happens when the runtime creates a mount point inside it.
    """
    def below(rel: str) -> bool:
        return any(os.path.lexists(os.path.join(lower, rel.lstrip("/"))) for lower in lowers)

    found: dict[str, str] = {}
    copied_dirs: list[str] = []
    for entry in walk_upper(upper, exclude):
        rel = "/" + entry.rel
        if entry.is_whiteout:
            found[rel] = "D"
        elif not below(rel):
            found[rel] = "A"
        elif entry.is_dir and not entry.opaque:
            copied_dirs.append(rel)
        else:
            found[rel] = "C"
    for rel in copied_dirs:
        if any(p.startswith(rel + "/") for p in found):
            found[rel] = "C"
    return [{"Path": p, "Kind": CHANGE_KINDS[k]} for p, k in sorted(found.items())]


def layer_tar(upper: Path, exclude: Iterable[str], out_path: Path) -> None:
    """The upper dir, minus the container paths `exclude`, as an OCI layer tar (see upperdiff)."""
    write_layer(walk_upper(upper, exclude), out_path)


_COMMIT_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
                "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes",
                "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal")


def commit_config(container_config: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """moby's merge: fields set in the request's config win, the rest come from the container
    (its Config as inspect shows it). The result is an image config's `config`."""
    base = {k: container_config.get(k) for k in _COMMIT_KEYS}
    for key, value in (override or {}).items():
        if value not in (None, "", [], {}):
            base[key] = value
    return base
