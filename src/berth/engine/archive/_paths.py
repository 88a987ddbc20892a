"""Path requests of `docker cp`: split, stat (Docker's path-stat header) and Go file modes."""

from __future__ import annotations

import base64
import json
import posixpath
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from berth.engine.containers import Container
from berth.engine.archive._view import ContainerView, ViewFs
from berth.errors import InvalidArgument, NotFound

# Go's os.FileMode type bits (the CLI decodes the stat header with them).
_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE, _GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
_GO_SETUID, _GO_SETGID, _GO_CHARDEV, _GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20


def go_file_mode(mode: int) -> int:
    """A st_mode as Go's os.FileMode (what Docker puts in the path-stat header)."""
    out = mode & 0o777
    kind = stat.S_IFMT(mode)
    out |= {stat.S_IFDIR: _GO_DIR, stat.S_IFLNK: _GO_SYMLINK, stat.S_IFIFO: _GO_PIPE,
            stat.S_IFSOCK: _GO_SOCKET, stat.S_IFBLK: _GO_DEVICE,
            stat.S_IFCHR: _GO_DEVICE | _GO_CHARDEV}.get(kind, 0)
    if mode & stat.S_ISUID:
        out |= _GO_SETUID
    if mode & stat.S_ISGID:
        out |= _GO_SETGID
    if mode & stat.S_ISVTX:
        out |= _GO_STICKY
    return out


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def _not_found(path: str, container: Container) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {container.name}")


# --- stat / read / write (pure filesystem work on a root) -----------------------------------------

def split_request_path(path: str) -> tuple[str, str]:
    """moby's ResolvePath: (absolute path keeping a trailing "/." or "/", its last element)."""
    if not path:
        raise InvalidArgument("Path cannot be empty")
    absolute = posixpath.join("/", path)
    clean = posixpath.normpath(absolute)
    if path.endswith("/.") or path == ".":
        return clean.rstrip("/") + "/.", "."
    return clean, posixpath.basename(clean) or "/"


def _as_view(root: Path | ContainerView) -> ContainerView:
    return root if isinstance(root, ContainerView) else ContainerView(root)


def _lookup(fs: ViewFs, absolute: str) -> str:
    """The resolved container path of a request path: its directory part is followed, its last
    element is not (lstat), except `dir/.` which names the directory itself."""
    return fs.resolve(absolute, follow_last=absolute.endswith("/.") or absolute == "/")


def stat_path(root: Path | ContainerView, path: str, container: Container) -> dict[str, Any]:
    absolute, name = split_request_path(path)
    with _as_view(root).open() as fs:
        try:
            st = fs.lstat(_lookup(fs, absolute))
        except (FileNotFoundError, NotADirectoryError) as err:
            raise _not_found(path, container) from err
        link_target = fs.resolve(absolute) if stat.S_ISLNK(st.st_mode) else ""
    return {"name": name if name != "." else posixpath.basename(absolute[:-2]) or "/", "size": st.st_size,
            "mode": go_file_mode(st.st_mode), "mtime": _rfc3339(st.st_mtime), "linkTarget": link_target}


def stat_header(stat_json: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(stat_json).encode()).decode()
