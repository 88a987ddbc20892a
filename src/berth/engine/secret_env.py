"""Secret environment variables: supplied at create, kept only under the run root.

A caller (the ECS agent) creates a container with `secret_env` beside the create body: variable
name → value. The record under --root keeps only the names (`Container.secret_env`); its
Config.Env carries whatever placeholder the caller chose (`DB_PASS=<secret from arn:…>`), which
is what `docker inspect` shows. The values live in one file per container on the run root
(tmpfs, as the OCI bundle's config.json that must hold them anyway):

    <run-root>/secrets/            0700
        <container-id>.json        0600, {"NAME": "value", ...}

At each launch (start, policy restart) the launcher overrides the named variables of Env with
the values, so only the bundle's process env has them (and `docker exec`, which inherits it).
The file goes with the container's removal; a run root wiped by a reboot loses it, and a start
then fails with a clear error rather than running with placeholders.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from berth.errors import InvalidArgument, Unavailable


class SecretEnvStore:
    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def put(self, container_id: str, values: Mapping[str, str]) -> None:
        """Write atomically, readable by the daemon's user only."""
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self._dir, 0o700)
        path = self._path(container_id)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(dict(values), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def get(self, container_id: str) -> dict[str, str] | None:
        """The values, or None when the run root no longer has them."""
        try:
            data = json.loads(self._path(container_id).read_text())
        except FileNotFoundError:
            return None
        return {str(k): str(v) for k, v in data.items()}

    def remove(self, container_id: str) -> None:
        self._path(container_id).unlink(missing_ok=True)

    def sweep(self, keep: Iterable[str]) -> None:
        """Remove the files of containers that have no record any more."""
        if not self._dir.is_dir():
            return
        known = set(keep)
        for entry in self._dir.iterdir():
            if entry.name.startswith(".") or entry.name.removesuffix(".json") not in known:
                entry.unlink(missing_ok=True)

    def _path(self, container_id: str) -> Path:
        return self._dir / f"{container_id}.json"


def check_names(values: Mapping[str, str]) -> None:
    """Names as Docker's Env takes them: non-empty, no '=' and no NUL."""
    for name, value in values.items():
        if not name or "=" in name or "\0" in name:
            raise InvalidArgument(f"invalid secret environment variable name {name!r}")
        if "\0" in value:
            raise InvalidArgument(f"secret environment variable {name} contains a NUL byte")


def merge(env: Iterable[str], values: Mapping[str, str]) -> tuple[str, ...]:
    """`env` (KEY=value entries) with the named variables set to the secret values: replaced in
    place where present (the placeholder), appended otherwise."""
    out: list[str] = []
    seen: set[str] = set()
    for entry in env:
        key = entry.partition("=")[0]
        if key in values:
            if key in seen:
                continue
            seen.add(key)
            out.append(f"{key}={values[key]}")
        else:
            out.append(entry)
    out.extend(f"{k}={v}" for k, v in values.items() if k not in seen)
    return tuple(out)


def without(env: Iterable[str], names: Iterable[str]) -> tuple[str, ...]:
    """`env` less the named (secret) variables: what an exec passes on top of the container's
    process env, which already has their values in place of the recorded placeholders."""
    hidden = set(names)
    return tuple(e for e in env if e.partition("=")[0] not in hidden)


def missing(container_id: str, names: Iterable[str]) -> Unavailable:
    """Unavailable (a 500 on the Docker API, as a failed start is there)."""
    return Unavailable(
        f"container {container_id[:12]} needs its secret environment ({', '.join(sorted(names))}), which "
        "the run root no longer holds (the host restarted?): recreate the container")
