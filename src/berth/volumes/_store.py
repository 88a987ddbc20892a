"""Named volumes of the `local` driver: a directory per volume plus a metadata row.

Layout (Docker's):

    <root>/volumes/
        <name>/_data/        what containers see at the mount destination; for a volume with
                             driver options, the mount point of its tmpfs or bind while
                             containers use it (berth.volumes._mounter)
    state.db  table volumes(name, data)   driver, labels, options (as given), created

A volume is visible once its row exists; its directory is made first, so a crash between the
two leaves at most an orphan directory (`create` of the same name reuses it).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from berth.errors import BerthError, Conflict, InvalidArgument, NotFound
from berth.state import Database
from berth.volumes._localmount import check_device, is_mounted, mounted_under, unmount_volume
from berth.volumes._options import parse_driver_options

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


@dataclass(frozen=True)
class Volume:
    name: str
    mountpoint: str  # the _data directory
    created: str  # RFC3339
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    # a bind volume's device as checked at create: real path and [st_dev, st_ino] (not shown by
    # the API). Mounts walk the path without following symlinks (_localmount.open_bind_device);
    # the ids are a record only: a directory re-created at the path is bound, as moby does.
    bind_source: str = ""
    bind_id: list[int] = field(default_factory=list)

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels


def check_name(name: str) -> None:
    """Docker's wording for a name the local driver refuses (400)."""
    if not NAME_RE.match(name):
        raise InvalidArgument(
            f'"{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
            "use absolute path")
    if len(name) > 255:  # the volume's directory is named after it (NAME_MAX)
        raise InvalidArgument(f"volume name is too long ({len(name)} characters, at most 255)")


def no_such_volume(name: str) -> NotFound:
    return NotFound(f"get {name}: no such volume")


class VolumeStore:
    """Create, find, list and delete local volumes (blocking; thread-safe through the DB).

    Lifecycle: create(name) -> Volume (idempotent: an existing volume is returned as is);
    containers mount `volume.mountpoint`; delete(name) removes the row, then the directory.
    In-use checks are the engine's job (it knows the containers).
    """

    _DDL = """
    CREATE TABLE IF NOT EXISTS volumes (
        name TEXT PRIMARY KEY,
        data TEXT NOT NULL
    );
    """

    def __init__(self, root: Path, db: Database) -> None:
        self._dir = Path(root) / "volumes"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._db = db
        db.ensure_schema(self._DDL)

    def create(self, name: str, *, labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, driver: str = "local") -> tuple[Volume, bool]:
        """The volume `name`, created if needed; the flag says whether it was created now.

        Raises:
            InvalidArgument: bad name, unsupported driver options (berth.volumes._options) or
                a bind volume's device that is not a host directory.
            NotFound: a driver other than `local`.
        """
        check_name(name)
        if driver not in ("", "local"):
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        spec = parse_driver_options(options or {})
        device = check_device(spec) if spec is not None else None
        existing = self._load(name)
        if existing is not None:
            return existing, False
        data_dir = self._dir / name / "_data"
        data_dir.mkdir(parents=True, exist_ok=True)
        volume = Volume(name=name, mountpoint=str(data_dir), created=_now(),
                        labels=dict(labels or {}), options=dict(options or {}),
                        bind_source=device[0] if device else "", bind_id=list(device[1]) if device else [])
        self._db.execute("INSERT OR IGNORE INTO volumes (name, data) VALUES (?, ?)",
                         (name, json.dumps(asdict(volume))))
        stored = self._load(name)
        assert stored is not None
        return stored, stored == volume

    def get(self, name: str) -> Volume:
        volume = self._load(name)
        if volume is None:
            raise no_such_volume(name)
        return volume

    def list(self) -> list[Volume]:
        rows = self._db.query("SELECT data FROM volumes ORDER BY name")
        return [Volume(**json.loads(r["data"])) for r in rows]

    def delete(self, name: str) -> None:
        """Remove the volume and its data; NotFound when it does not exist.

        A mount left on _data (a volume with options whose last user's unmount failed, or a
        crash) is unmounted first: the tree removal must never reach into a bound host
        directory or a tmpfs someone still uses.

        Callers that may race container starts go through VolumeMounter.remove, which holds
        the mounter's lock around this. Whatever the caller, the tree is removed only when
        nothing is mounted in it right before the removal; otherwise the directory stays (an
        orphan, reused by a later create of the name) and a warning is logged.

        Raises:
            Conflict: _data is still mounted and cannot be unmounted (nothing removed).
        """
        data = self._dir / name / "_data"
        if self._load(name) is not None and is_mounted(data):
            try:
                unmount_volume(data)
            except BerthError as err:
                raise Conflict(f"remove {name}: volume is still mounted: {err}") from err
        if self._db.execute("DELETE FROM volumes WHERE name = ?", (name,)) == 0:
            raise no_such_volume(name)
        if mounted_under(self._dir / name):
            log.warning("volume %s removed but its directory is left: something is mounted in it", name)
            return
        shutil.rmtree(self._dir / name, ignore_errors=True)

    def _load(self, name: str) -> Volume | None:
        rows = self._db.query("SELECT data FROM volumes WHERE name = ?", (name,))
        return Volume(**json.loads(rows[0]["data"])) if rows else None


def disk_usage(path: str) -> int:
    """Bytes used by the files under `path` (for `system df`/`volume ls` usage data)."""
    total = 0
    try:
        device = os.lstat(path).st_dev
    except OSError:
        return 0
    for dirpath, dirs, files in os.walk(path):
        # never cross into another filesystem mounted below (a bind of a host tree)
        dirs[:] = [d for d in dirs if _same_device(os.path.join(dirpath, d), device)]
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def _same_device(path: str, device: int) -> bool:
    try:
        return os.lstat(path).st_dev == device
    except OSError:
        return False


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def to_json(volume: Volume) -> dict[str, Any]:
    """Docker's volume object (`GET /volumes/{name}`)."""
    return {
        "CreatedAt": volume.created, "Driver": volume.driver, "Labels": volume.labels or None,
        "Mountpoint": volume.mountpoint, "Name": volume.name, "Options": volume.options or None,
        "Scope": "local",
    }
