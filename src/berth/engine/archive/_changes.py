"""`docker diff` and `docker commit` over the overlay upper dir: changes, the layer tar, the
committed config."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from berth.images.upperdiff import walk_upper, write_layer
from berth.types.container import ContainerConfig

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


def image_config_of(config: ContainerConfig) -> dict[str, Any]:
    """The container's Config in the form an image config keeps it (the image store's JSON, whose
    `config` has Docker's field names): what a commit starts from. The fields a commit keeps only."""
    def keyed(keys: tuple[str, ...] | None) -> dict[str, Any] | None:  # Go's map[string]struct{}
        return None if keys is None else {key: {} for key in keys}

    def listed(values: tuple[str, ...] | None) -> list[str] | None:
        return None if values is None else list(values)

    return {
        "Hostname": config.hostname, "Domainname": config.domainname, "User": config.user,
        "AttachStdin": config.attach_stdin, "AttachStdout": config.attach_stdout,
        "AttachStderr": config.attach_stderr, "ExposedPorts": keyed(config.exposed_ports), "Tty": config.tty,
        "OpenStdin": config.open_stdin, "StdinOnce": config.stdin_once, "Env": list(config.env),
        "Cmd": listed(config.cmd), "Image": config.image, "Volumes": keyed(config.volumes),
        "WorkingDir": config.working_dir, "Entrypoint": listed(config.entrypoint),
        "OnBuild": listed(config.on_build), "Labels": dict(config.labels), "StopSignal": config.stop_signal,
    }


def commit_config(container_config: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """moby's merge: fields set in the request's config win, the rest come from the container
    (its Config as inspect shows it). The result is an image config's `config`."""
    base = {k: container_config.get(k) for k in _COMMIT_KEYS}
    for key, value in (override or {}).items():
        if value not in (None, "", [], {}):
            base[key] = value
    return base
