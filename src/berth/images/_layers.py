"""Layer blobs in, unpacked snapshot directories out.

    <root>/layers/
    ├── <chainid hex>/     one layer's diff, unpacked, whiteouts in overlay form (a lowerdir)
    └── .tmp-<random>/     an unpack in progress; renamed into place only when complete

A layer blob is always stored uncompressed, so its digest is its diff_id. The snapshot of a layer
is keyed by chain id (the layer plus everything below it), the way Docker and containerd name them,
although its content is only that layer's own files.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import lzma
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from berth.errors import InvalidArgument
from berth.images._blobs import BlobStore, BlobWriter
from berth.images._compression import decompressed
from berth.images._extract import extract_layer
from berth.images._layer_check import LayerBreakout, LayerGuard
from berth.types import Digest

log = logging.getLogger(__name__)
# What a truncated or corrupt compressed stream raises (gzip.BadGzipFile is an OSError).
_DECODE_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """OCI chain ids: chain(L0) = diff(L0); chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        if out:
            diff_id = "sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest()
        out.append(diff_id)
    return out


@dataclass(frozen=True)
class StagedLayer:
    """An uncompressed layer written to blobs/tmp but not yet committed."""

    writer: BlobWriter
    diff_id: Digest
    size: int  # sum of the regular files' sizes, as Docker reports layer sizes


def stage_layer(blobs: BlobStore, stream: BinaryIO, writer: BlobWriter) -> StagedLayer:
    """Decompress `stream` into `writer`, check it is a tar that stays inside its root, and measure it.

    Raises:
        InvalidArgument: the data is not a (compressed) tar.
        LayerBreakout: an entry would land outside the layer root (the message names the entry
            and the layer's diff_id).
    """
    try:
        writer.copy_from(decompressed(stream))
    except _DECODE_ERRORS as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise  # a real I/O error on our side, not bad input
        raise InvalidArgument(f"invalid layer: {err}") from err
    writer.close_file()
    try:
        size = _checked_content_size(writer.path)
    except LayerBreakout as err:
        raise err.in_layer(str(writer.digest)) from None
    return StagedLayer(writer=writer, diff_id=writer.digest, size=size)


def _checked_content_size(path: Path) -> int:
    """Sum of the regular files' sizes, every entry checked by a LayerGuard on the way."""
    guard = LayerGuard()
    size = 0
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                guard.check(member)
                if member.isreg():
                    size += member.size
    except (tarfile.TarError, EOFError) as err:
        raise InvalidArgument(f"invalid tar header: {err}") from err
    return size


class SnapshotStore:
    """Unpacked layer directories under `<root>/layers`."""

    def __init__(self, root: Path, blobs: BlobStore) -> None:
        self.dir = root / "layers"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._blobs = blobs

    def path(self, chain_id: str) -> Path:
        return self.dir / Digest(chain_id).hex

    def ensure(self, chain_id: str, diff_id: str) -> Path:
        """Return the snapshot dir for `chain_id`, unpacking the layer blob first if needed."""
        final = self.path(chain_id)
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(dir=self.dir, prefix=".tmp-"))
        try:
            os.chmod(tmp, 0o755)
            with self._blobs.open(Digest(diff_id)) as blob:
                try:
                    report = extract_layer(blob, tmp)
                except LayerBreakout as err:  # a blob stored before layers were checked on entry
                    raise err.in_layer(diff_id) from None
            if report.skipped:
                log.warning("layer %s: %d entries skipped", diff_id, len(report.skipped))
            _rename_into_place(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def remove(self, chain_id: str) -> None:
        final = self.path(chain_id)
        if not final.exists():
            return
        # Rename first so a half-removed snapshot is never visible under its real name.
        doomed = Path(tempfile.mkdtemp(dir=self.dir, prefix=".tmp-"))
        os.rename(final, doomed / "x")
        shutil.rmtree(doomed, ignore_errors=True)

    def clear_tmp(self) -> None:
        for entry in self.dir.glob(".tmp-*"):
            shutil.rmtree(entry, ignore_errors=True)


def _rename_into_place(tmp: Path, final: Path) -> None:
    try:
        os.rename(tmp, final)
    except OSError as err:
        # Another thread unpacked the same layer first; theirs is as good as ours.
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
