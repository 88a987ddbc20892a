"""A busybox base image built from the host's static busybox (Debian's busybox-static).

No registry is reachable, so this is how a fresh host gets its first image. Everything is fixed
(mtimes, owners, entry order, config bytes), so the same busybox binary always gives the same
image ID.
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path

from berth.errors import Unavailable

BUSYBOX = Path("/bin/busybox")
CREATED = "2024-01-01T00:00:00Z"
_MTIME = 1704067200  # CREATED as unix seconds
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_DIRS = {  # path -> mode
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755, "root": 0o700,
    "sbin": 0o755, "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755,
    "usr/sbin": 0o755, "var": 0o755, "var/www": 0o755,
}
_FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    "etc/group": b"root:x:0:\nnobody:x:65534:\n",
}


def host_architecture() -> str:
    """The OCI architecture name of this host (amd64, arm64, ...)."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def read_busybox(binary: Path = BUSYBOX) -> tuple[bytes, list[str]]:
    """The busybox binary and its applet paths (`busybox --list-full`)."""
    if not binary.is_file():
        raise Unavailable(f"{binary} not found: install the busybox-static package")
    listed = subprocess.run([str(binary), "--list-full"], capture_output=True, check=True, text=True)
    return binary.read_bytes(), [line.strip() for line in listed.stdout.splitlines() if line.strip()]


def rootfs_tar(busybox: bytes, applets: Iterable[str]) -> bytes:
    """The deterministic rootfs layer: dirs, bin/busybox, one relative symlink per applet, etc/."""
    buf = io.BytesIO()
    links = {a: _relative_target(a) for a in applets if a != "bin/busybox" and "/" in a}
    dirs = dict(_DIRS)
    for applet in links:
        dirs.setdefault(os.path.dirname(applet), 0o755)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(dirs):
            tar.addfile(_info(path, tarfile.DIRTYPE, dirs[path]))
        tar.addfile(_info("bin/busybox", tarfile.REGTYPE, 0o755, size=len(busybox)), io.BytesIO(busybox))
        for path in sorted(_FILES):
            data = _FILES[path]
            tar.addfile(_info(path, tarfile.REGTYPE, 0o644, size=len(data)), io.BytesIO(data))
        for path in sorted(links):
            tar.addfile(_info(path, tarfile.SYMTYPE, 0o777, linkname=links[path]))
    return buf.getvalue()


def image_config(diff_id: str, architecture: str) -> bytes:
    """The image config JSON bytes (key order fixed, so the image ID is stable)."""
    config = {
        "architecture": architecture,
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "created": CREATED,
        "history": [
            {"created": CREATED, "created_by": "/bin/sh -c #(nop) ADD busybox-static rootfs in / "},
            {"created": CREATED, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    return json.dumps(config, separators=(",", ":")).encode()


def _relative_target(applet: str) -> str:
    """`usr/bin/awk` -> `../../bin/busybox`; `bin/sh` -> `busybox`."""
    return os.path.relpath("bin/busybox", os.path.dirname(applet))


def _info(path: str, kind: bytes, mode: int, *, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = linkname
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info
