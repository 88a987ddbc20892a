"""Symlink resolution inside a scope (moby's FollowSymlinkInScope), over an in-memory link table."""

from __future__ import annotations

import pytest

from berth.errors import InvalidArgument
from berth.types.scopedpath import resolve_scoped

LINKS = {
    "abs": "/etc",            # absolute: restarts at the scope's root
    "rel": "../etc/passwd",   # relative: from the link's directory; `..` stops at the root
    "escape": "/../../../host",
    "loop": "loop",
    "etc/link": "sub/file",
    "chain": "abs",
}


def readlink(parts: list[str]) -> str | None:
    return LINKS.get("/".join(parts))


@pytest.mark.parametrize(("path", "expected"), [
    ("/abs/passwd", ["etc", "passwd"]),
    ("/rel", ["etc", "passwd"]),
    ("/escape/x", ["host", "x"]),            # never above the root
    ("/../../etc", ["etc"]),
    ("/etc/link", ["etc", "sub", "file"]),
    ("/chain/shadow", ["etc", "shadow"]),
    ("/missing/./x", ["missing", "x"]),      # missing components are kept
    ("", []),
])
def test_resolve(path: str, expected: list[str]) -> None:
    assert resolve_scoped(path, readlink) == expected


def test_last_component_not_followed_on_request() -> None:
    assert resolve_scoped("/abs", readlink, follow_last=False) == ["abs"]
    assert resolve_scoped("/abs/x", readlink, follow_last=False) == ["etc", "x"]


def test_a_loop_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="too many levels of symbolic links"):
        resolve_scoped("/loop/x", readlink)
    with pytest.raises(InvalidArgument):
        resolve_scoped("/chain", readlink, max_links=1)
