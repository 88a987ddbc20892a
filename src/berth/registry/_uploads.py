"""Upload sessions: the registry's in-progress blob uploads, kept in memory.

A session is `<repo, uuid, ingest>`; its bytes live in the storage's uploads/ area and never
count as a blob. Sessions do not survive a daemon restart: the start-up sweep removes every
leftover ingest, and `expire()` drops sessions idle for longer than the expiry.

Only one request works on a session at a time (`busy`): a second concurrent PATCH to the same
session is refused rather than interleaving bytes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from berth.registry._errors import BLOB_UPLOAD_UNKNOWN, RANGE_INVALID, RegistryError
from berth.registry._storage import BlobStorage, Ingest


@dataclass
class UploadSession:
    id: str
    repo: str
    ingest: Ingest
    touched: float
    busy: bool = False
    done: bool = False
    doomed: bool = False  # its repository was deleted while a request held it: abort on release
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def offset(self) -> int:
        return self.ingest.size

    def range_header(self) -> str:
        """`0-<last byte>` as the spec wants (`0-0` for an empty session, as distribution sends)."""
        return f"0-{max(self.offset - 1, 0)}"


class UploadSessions:
    def __init__(self, storage: BlobStorage, clock: Callable[[], float] = time.time) -> None:
        self._storage = storage
        self._clock = clock
        self._sessions: dict[str, UploadSession] = {}
        self._lock = threading.Lock()

    def open(self, repo: str) -> UploadSession:
        session_id = str(uuid.uuid4())
        session = UploadSession(session_id, repo, self._storage.begin(session_id), self._clock())
        with self._lock:
            self._sessions[session_id] = session
        return session

    def get(self, repo: str, session_id: str) -> UploadSession:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None or session.repo != repo or session.done:
            raise RegistryError(BLOB_UPLOAD_UNKNOWN, {"session": session_id})
        return session

    def claim(self, repo: str, session_id: str) -> UploadSession:
        """Get a session for one request's exclusive use; `release` it afterwards."""
        session = self.get(repo, session_id)
        with session.lock:
            if session.done:  # expired or finished between `get` and here
                raise RegistryError(BLOB_UPLOAD_UNKNOWN, {"session": session_id})
            if session.busy:
                raise RegistryError(RANGE_INVALID, {"session": session_id},
                                    "another request is writing to this upload")
            session.busy = True
        return session

    def release(self, session: UploadSession) -> None:
        session.touched = self._clock()
        with session.lock:
            session.busy = False
            doomed = session.doomed and not session.done
        if doomed:
            self.close(session, abort=True)

    def close(self, session: UploadSession, *, abort: bool) -> None:
        """Forget a session; with `abort` its bytes are deleted too."""
        session.done = True
        with self._lock:
            self._sessions.pop(session.id, None)
        if abort:
            self._storage.abort(session.ingest)

    def expire(self, max_idle: float) -> list[str]:
        """Abort sessions idle for longer than `max_idle` seconds; returns their ids."""
        cutoff = self._clock() - max_idle
        return self._abort_idle(lambda s: s.touched < cutoff)

    def abort_repository(self, repo: str) -> list[str]:
        """Abort the sessions of a repository being deleted; one a request holds is marked doomed:
        it cannot be finished and is aborted when the request lets go of it."""
        with self._lock:
            held = [s for s in self._sessions.values() if s.repo == repo]
        for session in held:
            with session.lock:
                session.doomed = True
        return self._abort_idle(lambda s: s.repo == repo)

    def _abort_idle(self, select: Callable[[UploadSession], bool]) -> list[str]:
        with self._lock:
            candidates = [s for s in self._sessions.values() if not s.busy and select(s)]
        stale = []
        for session in candidates:
            with session.lock:  # a request may have claimed it since: then it is not idle
                if session.busy or session.done:
                    continue
                session.busy = session.done = True
            stale.append(session)
            self.close(session, abort=True)
        return [s.id for s in stale]

    def active_ids(self) -> set[str]:
        with self._lock:
            return set(self._sessions)

    def abort_all(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            self.close(session, abort=True)
