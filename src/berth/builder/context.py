"""The build context as it arrives: maybe compressed, maybe unterminated (pure file handling).

The docker CLI sends a tar, or gzip with `--compress`; a tar on stdin may be bzip2 or xz.
With `-f` outside the context the CLI's tar has no end-of-archive blocks and an unpadded last
member, so the data is padded to a 512-byte boundary and 1024 zero bytes are appended
(docker-engine-api.md §3.3).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import zlib
from pathlib import Path
from typing import BinaryIO

from berth.errors import InvalidArgument

_BLOCK = 512
_CHUNK = 1 << 20
_MAGIC = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}


def prepare_context(raw: Path, dest: Path) -> Path:
    """Write the uncompressed, properly terminated context tar to `dest` and return it."""
    with raw.open("rb") as f:
        head = f.read(6)
    opener = next((o for m, o in _MAGIC.items() if head.startswith(m)), None)
    if opener is None:
        if raw != dest:
            shutil.move(raw, dest)
    else:
        try:
            with opener(raw, "rb") as src, dest.open("wb") as out:  # type: ignore[operator]
                _copy(src, out)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as err:
            if isinstance(err, OSError) and err.errno is not None:
                raise
            raise InvalidArgument(f"failed to decompress the build context: {err}") from err
        raw.unlink(missing_ok=True)
    _terminate(dest)
    return dest


def _copy(src: BinaryIO, out: BinaryIO) -> None:
    while chunk := src.read(_CHUNK):
        out.write(chunk)


def _terminate(path: Path) -> None:
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\0" * ((-size) % _BLOCK) + b"\0" * (2 * _BLOCK))
