"""The container record, its lifecycle states, and its SQLite persistence.

States (Docker's `State.Status`):

    created ──start──► running ──exit──► exited ──start──► running …
       │                  │                 │
       └──────rm──────────┴─────rm -f───────┴──► (removed: row deleted)

`removing` marks a container whose removal is under way, so a concurrent start fails cleanly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime, timezone
from typing import Any

from berth.engine.containers._stored import (
    config_from_record, endpoints_from_record, host_config_from_record, host_config_to_record,
)
from berth.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from berth.state import Database
from berth.types.container import ContainerConfig, EndpointSettings
from berth.types.host_config import HostConfig

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def rfc3339_at(seconds: float) -> str:
    """A time in seconds since the epoch, written as Docker writes its times."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class ContainerState:
    status: str = "created"      # created | running | paused | restarting | removing | exited | dead
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")


@dataclass
class Container:
    id: str
    name: str                       # without the leading slash
    created: str
    image: str                      # as the user typed it
    image_id: str
    config: ContainerConfig          # merged with the image's (inspect's Config)
    host_config: HostConfig          # normalised at create (inspect's HostConfig)
    # the endpoints asked for, by network name (NetworkingConfig.EndpointsConfig, network connect)
    endpoints: dict[str, EndpointSettings] = field(default_factory=dict)
    state: ContainerState = field(default_factory=ContainerState)
    network: dict[str, Any] = field(default_factory=dict)   # last Attachment as a dict
    restart_count: int = 0
    runtime: str = ""
    manually_stopped: bool = False   # docker stop/kill: suspends always/unless-stopped restarts
    mounts: list[dict[str, Any]] = field(default_factory=list)   # berth.volumes.MountPoint records
    # names of the Env variables whose values are secrets, kept on the run root only (secret_env.py)
    secret_env: list[str] = field(default_factory=list)
    # State.Health as last recorded (None: no probe ever ran). It is stored in a row of its own,
    # written only by the health monitor, so saving the record never turns it back.
    health: dict[str, Any] | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "health":
                continue  # a row of its own
            if f.name == "host_config":
                data[f.name] = host_config_to_record(value)  # sparse: the fields a create set
            elif f.name == "endpoints":
                data[f.name] = {name: asdict(e) for name, e in value.items()}
            else:
                data[f.name] = asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str, health: str | None = None) -> "Container":
        data = json.loads(text)
        data.pop("health", None)
        data["state"] = ContainerState(**data["state"])
        data["config"] = config_from_record(data["config"])  # either format (_stored.py)
        data["host_config"] = host_config_from_record(data["host_config"])
        data["endpoints"] = endpoints_from_record(data)
        data.pop("networking_config", None)
        return cls(**data, health=json.loads(health) if health else None)


def event_attributes(c: Container, **extra: str) -> dict[str, str]:
    """A container event's Actor.Attributes as dockerd sets them: name, image, the labels."""
    return {"name": c.name, "image": c.image, **c.config.labels, **extra}


# --- guards (moby's wording) ------------------------------------------------------------------

def check_can_remove(c: Container, force: bool) -> None:
    if c.state.status == "removing":
        raise Conflict(f"removal of container {c.id[:12]} is already in progress")
    if force:
        return
    if c.state.status == "paused":
        raise Conflict(f"cannot remove container \"/{c.name}\": container is paused and must be unpaused first")
    if c.state.running or c.state.status == "restarting":  # moby counts a restarting one as running
        state = "restarting" if c.state.status == "restarting" else "running"
        raise Conflict(f"cannot remove container \"/{c.name}\": container is {state}: "
                       "stop the container before removing or force remove")


def check_can_exec(c: Container) -> None:
    if c.state.status == "paused":
        raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
    if not c.state.running:
        raise Conflict(f"container {c.id} is not running")


class ContainerRepository:
    """Persists container records; names are unique (the DB enforces it)."""

    _DDL = """
    CREATE TABLE IF NOT EXISTS containers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        data TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS container_health (
        id TEXT PRIMARY KEY,
        data TEXT NOT NULL
    );
    """
    _SELECT = "SELECT c.data, h.data AS health FROM containers c LEFT JOIN container_health h ON h.id = c.id"

    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema(self._DDL)

    def check_name_free(self, name: str) -> None:
        """AlreadyExists (409, moby's wording) when a container already has `name`."""
        rows = self._db.query("SELECT id FROM containers WHERE name = ?", (name,))
        if rows:
            raise AlreadyExists(f'Conflict. The container name "/{name}" is already in use by container '
                                f'"{rows[0]["id"]}". You have to remove (or rename) that container to be '
                                "able to reuse that name.")

    def add(self, c: Container) -> None:
        self.check_name_free(c.name)
        self._db.execute("INSERT INTO containers (id, name, data) VALUES (?, ?, ?)",
                         (c.id, c.name, c.to_json()))

    def save(self, c: Container) -> None:
        self._db.execute("UPDATE containers SET name = ?, data = ? WHERE id = ?", (c.name, c.to_json(), c.id))

    def rename(self, c: Container, new_name: str) -> None:
        """Atomic rename; AlreadyExists (409) with moby's wording when the name is taken."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT id FROM containers WHERE name = ?", (new_name,)).fetchone()
            if row is not None:
                raise AlreadyExists(f'Conflict. The container name "/{new_name}" is already in use by '
                                    f'container "{row["id"]}". You have to remove (or rename) that '
                                    "container to be able to reuse that name.")
            c.name = new_name
            conn.execute("UPDATE containers SET name = ?, data = ? WHERE id = ?", (new_name, c.to_json(), c.id))

    def save_health(self, container_id: str, health: dict[str, Any]) -> None:
        """Record State.Health; nothing when the container is gone (a late probe result)."""
        self._db.execute("INSERT OR REPLACE INTO container_health (id, data) SELECT ?, ? "
                         "WHERE EXISTS (SELECT 1 FROM containers WHERE id = ?)",
                         (container_id, json.dumps(health), container_id))

    def delete(self, container_id: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM container_health WHERE id = ?", (container_id,))
            conn.execute("DELETE FROM containers WHERE id = ?", (container_id,))

    def all(self) -> list[Container]:
        return [Container.from_json(r["data"], r["health"]) for r in self._db.query(self._SELECT)]

    def names(self) -> set[str]:
        return {r["name"] for r in self._db.query("SELECT name FROM containers")}

    def get(self, ref: str) -> Container:
        """By full id, name (with or without '/'), or unique id prefix; NotFound in Docker's wording."""
        key = ref.lstrip("/")
        rows = self._db.query(f"{self._SELECT} WHERE c.id = ? OR c.name = ?", (key, key))
        if not rows and key and all(ch in "0123456789abcdef" for ch in key):
            rows = self._db.query(f"{self._SELECT} WHERE c.id LIKE ?", (key + "%",))
            if len(rows) > 1:
                raise InvalidPrefix(f"multiple IDs found with provided prefix: {key}")
        if not rows:
            raise NotFound(f"No such container: {ref}")
        return Container.from_json(rows[0]["data"], rows[0]["health"])


class InvalidPrefix(InvalidArgument):
    """An id prefix matching several containers (moby answers 400 with this wording)."""
