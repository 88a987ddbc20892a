"""Sniff and undo the compressions a layer or archive may carry (gzip, bzip2, xz)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from typing import BinaryIO

from berth.errors import InvalidArgument

_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"


def sniff(head: bytes) -> str:
    """Name the compression of a stream from its first bytes: gzip, bzip2, xz or none."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_BZIP2):
        return "bzip2"
    if head.startswith(_XZ):
        return "xz"
    if head.startswith(_ZSTD):
        return "zstd"
    return "none"


def decompressed(stream: BinaryIO) -> BinaryIO:
    """Wrap `stream` so reads return the uncompressed bytes, whatever the compression."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(_Raw(stream))
    kind = sniff(buffered.peek(8)[:8])
    if kind == "gzip":
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.BZ2File(buffered, mode="rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(buffered, mode="rb")  # type: ignore[return-value]
    if kind == "zstd":
        raise InvalidArgument("zstd-compressed layers are not supported")
    return buffered


class _Raw(io.RawIOBase):
    """Adapts any object with `read(n)` (HTTP bodies, pipes) to RawIOBase for buffering."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(b))
        n = len(data)
        b[:n] = data
        return n
