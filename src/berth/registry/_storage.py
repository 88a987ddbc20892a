"""Blob storage: the seam between the registry and the bytes on disk.

Layout of the filesystem driver (all under one registry root, on the engine's filesystem):

    <root>/registry/
    ├── blobs/sha256/<hex>     committed blobs; a file here always hashes to its name
    ├── uploads/<uuid>         bytes of one upload session, never visible as a blob
    ├── registry.db            metadata (see _index.py)
    └── token.key              HMAC key for bearer tokens

Ingest lifecycle (one per upload session):

    ingest = storage.begin(id)         # empty file in uploads/
    ingest.write(data) ...             # appends and hashes; mark()/rollback() undo a failed chunk
    digest = ingest.finish()           # flush + fsync; the digest of everything written
    storage.publish(ingest)            # atomic rename into blobs/ (or hardlink of shared content)
    storage.abort(ingest)              # any time before publish: the bytes disappear

A blob therefore becomes visible only after its bytes are on disk and its digest checked by the
caller; a crash at any point leaves at most a file in uploads/, removed by expiry or at start-up.

Sharing with the engine: `shared_dirs` are directories of verified `<hex>` files (the engine's
`<root>/blobs/sha256`). When one of them holds the digest being published, publish hardlinks that
file instead of keeping a second copy; `adopt()` does the same for a digest nobody uploaded.
Hardlinks are safe because neither side ever writes a committed blob in place.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from berth.types import Digest

_IOV_BATCH = 512  # below IOV_MAX (1024 on Linux)


@dataclass(frozen=True)
class Checkpoint:
    """Where an ingest stood before a chunk, so a failed chunk can be undone."""

    size: int
    hasher: Any


class Ingest(Protocol):
    id: str
    size: int

    def write(self, data: bytes) -> None: ...
    def write_parts(self, parts: list[bytes]) -> None: ...
    def reserve(self, length: int) -> None: ...
    def mark(self) -> Checkpoint: ...
    def rollback(self, checkpoint: Checkpoint) -> None: ...
    def finish(self) -> Digest: ...


class BlobStorage(Protocol):
    """Content-addressed blobs plus the ingests that create them (lifecycle in the module doc)."""

    def stat(self, digest: Digest) -> int | None: ...
    def path(self, digest: Digest) -> Path: ...
    def open(self, digest: Digest) -> BinaryIO: ...
    def begin(self, ingest_id: str) -> Ingest: ...
    def publish(self, ingest: Ingest) -> Digest: ...
    def abort(self, ingest: Ingest) -> None: ...
    def adopt(self, digest: Digest) -> bool: ...
    def delete(self, digest: Digest) -> None: ...
    def digests(self) -> Iterator[Digest]: ...
    def stale_ingests(self, older_than: float) -> list[str]: ...
    def remove_ingest(self, ingest_id: str) -> None: ...


_WRITEBACK_STEP = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range out now (sync_file_range, non-blocking), so the
    fdatasync at the end of a large upload has little left to wait for."""
    _libc.sync_file_range(fd, ctypes.c_longlong(offset), ctypes.c_longlong(length), _SYNC_FILE_RANGE_WRITE)


class FileIngest:
    """An upload's bytes in `uploads/<id>`, hashed as they are written."""

    def __init__(self, path: Path, *, fsync: bool) -> None:
        self.id = path.name
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._hasher = hashlib.sha256()
        self._fsync = fsync
        self.size = 0
        self._flushed = 0   # bytes whose writeback has been started (the final fdatasync waits less)
        self.digest: Digest | None = None

    def write(self, data: bytes) -> None:
        self.write_parts([data])

    def write_parts(self, parts: list[bytes]) -> None:
        """Append buffers in order with one writev (no joining copy).

        hashlib and writev release the GIL on large buffers, so this runs well in a thread.
        """
        total = 0
        for part in parts:
            self._hasher.update(part)
            total += len(part)
        for start in range(0, len(parts), _IOV_BATCH):
            batch = parts[start:start + _IOV_BATCH]
            written = os.writev(self._fd, batch)
            if written < sum(map(len, batch)):  # short write (rare): finish the tail the plain way
                tail = memoryview(b"".join(batch))[written:]
                while tail:
                    tail = tail[os.write(self._fd, tail):]
        self.size += total
        if self._fsync and self.size - self._flushed >= _WRITEBACK_STEP:
            _start_writeback(self._fd, self._flushed, self.size - self._flushed)
            self._flushed = self.size

    def reserve(self, length: int) -> None:
        """Preallocate `length` more bytes: fewer block allocations while a big body streams in.

        posix_fallocate also extends the file; `finish` and `rollback` truncate to what was written.
        """
        if length > 0:
            try:
                os.posix_fallocate(self._fd, self.size, length)
            except OSError:
                pass  # not supported here; plain appends work too

    def mark(self) -> Checkpoint:
        return Checkpoint(self.size, self._hasher.copy())

    def rollback(self, checkpoint: Checkpoint) -> None:
        os.ftruncate(self._fd, checkpoint.size)
        os.lseek(self._fd, checkpoint.size, os.SEEK_SET)
        self._hasher = checkpoint.hasher
        self.size = checkpoint.size
        self._flushed = min(self._flushed, self.size)

    def finish(self) -> Digest:
        if self.digest is None:
            os.ftruncate(self._fd, self.size)  # drop any preallocated tail that was never written
            if self._fsync:
                os.fdatasync(self._fd)
            os.close(self._fd)
            self.digest = Digest("sha256:" + self._hasher.hexdigest())
        return self.digest

    def close(self) -> None:
        if self.digest is None:
            os.close(self._fd)
            self.digest = Digest("sha256:" + self._hasher.hexdigest())


class FilesystemStorage:
    """BlobStorage on a local directory; see the module docstring for the layout."""

    def __init__(self, root: Path, *, shared_dirs: Sequence[Path] = (), fsync: bool = True) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.upload_dir = root / "uploads"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self._shared = tuple(shared_dirs)
        self._fsync = fsync

    def path(self, digest: Digest) -> Path:
        return self.blob_dir / digest.hex

    def stat(self, digest: Digest) -> int | None:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, digest: Digest) -> BinaryIO:
        return self.path(digest).open("rb")

    def begin(self, ingest_id: str) -> FileIngest:
        return FileIngest(self.upload_dir / ingest_id, fsync=self._fsync)

    def publish(self, ingest: Ingest) -> Digest:
        """Make a finished ingest visible under its digest (idempotent for identical content)."""
        assert isinstance(ingest, FileIngest)
        digest = ingest.finish()
        if not self.adopt(digest):
            os.rename(ingest.path, self.path(digest))  # atomic; replacing identical bytes is harmless
            self._sync_dir()
        ingest.path.unlink(missing_ok=True)
        return digest

    def abort(self, ingest: Ingest) -> None:
        assert isinstance(ingest, FileIngest)
        ingest.close()
        ingest.path.unlink(missing_ok=True)

    def adopt(self, digest: Digest) -> bool:
        """Hardlink `digest` from a shared directory; False when none has it on this filesystem."""
        for directory in self._shared:
            source = directory / digest.hex
            if not source.is_file():
                continue
            staging = self.upload_dir / f"adopt-{digest.hex}-{os.getpid()}-{time.monotonic_ns()}"
            try:
                os.link(source, staging)
            except OSError:
                continue  # another filesystem (EXDEV) or gone meanwhile: fall back to our copy
            os.rename(staging, self.path(digest))
            # rename() is a no-op when both names are links to one inode; drop the staging name then.
            staging.unlink(missing_ok=True)
            self._sync_dir()
            return True
        return False

    def delete(self, digest: Digest) -> None:
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> Iterator[Digest]:
        for entry in os.scandir(self.blob_dir):
            if len(entry.name) == 64:
                yield Digest("sha256:" + entry.name)

    def mtime(self, digest: Digest) -> float:
        return self.path(digest).stat().st_mtime

    def stale_ingests(self, older_than: float) -> list[str]:
        stale = []
        for entry in os.scandir(self.upload_dir):
            try:
                if entry.stat().st_mtime < older_than:
                    stale.append(entry.name)
            except FileNotFoundError:
                continue
        return stale

    def remove_ingest(self, ingest_id: str) -> None:
        (self.upload_dir / ingest_id).unlink(missing_ok=True)

    def _sync_dir(self) -> None:
        """Deliberately no directory fsync per blob.

        The bytes are fdatasync'ed before the rename, so a name that survives a crash always
        names complete content; a rename lost in a crash only loses a blob whose index row (SQLite
        WAL, synchronous=NORMAL) is no more durable than it, and the blob check then says unknown.
        A directory fsync per blob would cost a disk flush on every small layer.
        """
