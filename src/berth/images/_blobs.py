"""Content-addressed blob storage: `blobs/sha256/<hex>`, written atomically and digest-verified.

    <root>/blobs/
    ├── sha256/<hex>     committed blobs; a file here always hashes to its name
    └── tmp/<random>     ingests in progress (safe to delete when no writer is running)

Lifecycle of a write: `writer()` opens a temp file in `tmp/`; `write()` hashes as it goes;
`commit(expected)` fsyncs, checks the digest and renames into place (or discards the temp file when
the blob exists already); leaving the `with` block without a commit deletes the temp file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from berth.errors import InvalidArgument, NotFound
from berth.types import Digest

_CHUNK = 1 << 20


class BlobWriter:
    """One ingest into `blobs/tmp`; see the module docstring for the lifecycle."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="ingest-")
        self._file = os.fdopen(fd, "wb")
        self.path = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0
        self.committed: Digest | None = None

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    def copy_from(self, stream: BinaryIO) -> None:
        while chunk := stream.read(_CHUNK):
            self.write(chunk)

    @property
    def digest(self) -> Digest:
        return Digest("sha256:" + self._hash.hexdigest())

    def close_file(self) -> None:
        """Flush and fsync without committing, so the staged bytes can be re-read."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def commit(self, expected: Digest | None = None) -> Digest:
        """Make the blob visible under its digest; raises InvalidArgument on a mismatch."""
        self.close_file()
        digest = self.digest
        if expected is not None and expected != digest:
            raise InvalidArgument(f"digest mismatch: expected {expected}, got {digest}")
        final = self._store.path(digest)
        if final.exists():
            self.path.unlink(missing_ok=True)
        else:
            os.rename(self.path, final)
            _fsync_dir(final.parent)
        self.committed = digest
        return digest

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self.committed is None:
            self.path.unlink(missing_ok=True)


class BlobStore:
    """Blobs by digest under `<root>/blobs`."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"
        self.tmp_dir = root / "blobs" / "tmp"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: Digest) -> Path:
        return self.dir / digest.hex

    def has(self, digest: Digest) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: Digest) -> int:
        return self.path(digest).stat().st_size

    def read(self, digest: Digest) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError as err:
            raise NotFound(f"blob {digest} not found") from err

    def open(self, digest: Digest) -> BinaryIO:
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError as err:
            raise NotFound(f"blob {digest} not found") from err

    @contextmanager
    def writer(self) -> Iterator[BlobWriter]:
        w = BlobWriter(self)
        try:
            yield w
        finally:
            w.discard()

    def put(self, data: bytes, expected: Digest | None = None) -> Digest:
        with self.writer() as w:
            w.write(data)
            return w.commit(expected)

    def delete(self, digest: Digest) -> None:
        self.path(digest).unlink(missing_ok=True)

    def clear_tmp(self) -> None:
        """Remove abandoned ingests (call only when no writer runs, i.e. at start-up)."""
        for entry in self.tmp_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
