"""Per-container attachment records on disk, so DEL works after a daemon restart.

    <state_dir>/attachments/<container id>.json
        {"mode", "name", "netns", "ports": [...], "conflist": {...}, "result": {...} | null,
         "cni_id"}

The record keeps the exact network list the ADD used (DEL must see the same configuration even
if the daemon's settings changed since) and the final ADD result (DEL's prevResult). `result` is
null while an ADD is in flight: a crash then still leaves enough to DEL. Writes are atomic.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from berth.network._types import PortMapping


@dataclass(frozen=True)
class Record:
    mode: str
    name: str = ""
    netns: str | None = None
    ports: tuple[PortMapping, ...] = ()
    conflist: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    cni_id: str = ""  # CNI_CONTAINERID of the ADD (a claimed spare's id); "" in older records
    rules: str = "plugins"  # who wrote the iptables rules: "plugins" (CNI) | "batch" (_iptrules.py)


class RecordStore:
    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def save(self, container_id: str, record: Record, *, durable: bool = True) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        data = json.dumps(asdict(record), separators=(",", ":")).encode()
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".tmp-")
        try:
            os.write(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path(container_id))

    def load(self, container_id: str) -> Record | None:
        try:
            raw = json.loads(self._path(container_id).read_bytes())
        except FileNotFoundError:
            return None
        raw["ports"] = tuple(PortMapping(**p) for p in raw.get("ports", ()))
        known = {f.name for f in fields(Record)}
        return Record(**{k: v for k, v in raw.items() if k in known})

    def rename(self, old_id: str, new_id: str) -> None:
        """Hand a record over to another id atomically (claiming a spare)."""
        os.replace(self._path(old_id), self._path(new_id))

    def delete(self, container_id: str) -> None:
        try:
            self._path(container_id).unlink()
        except FileNotFoundError:
            pass

    def ids(self) -> list[str]:
        try:
            return sorted(p.stem for p in self._dir.glob("*.json"))
        except FileNotFoundError:
            return []

    def _path(self, container_id: str) -> Path:
        return self._dir / f"{container_id}.json"
