"""Resolve a docker `--user` value against the container's /etc/passwd and /etc/group.

Follows runc's libcontainer/user.GetExecUser, which is what Docker users see:
`name`, `uid`, `uid:gid`, `name:group`, `uid:group`, `name:gid`. A numeric uid that is not in
passwd is accepted (gid 0, home "/"); an unknown name is an error with Docker's wording.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from berth.errors import InvalidArgument


@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


@dataclass(frozen=True)
class _PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class _GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def parse_passwd(text: str) -> list[_PasswdEntry]:
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 6 or line.startswith("#"):
            continue
        try:
            entries.append(_PasswdEntry(fields[0], int(fields[2]), int(fields[3]), fields[5]))
        except ValueError:
            continue
    return entries


def parse_group(text: str) -> list[_GroupEntry]:
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 4 or line.startswith("#"):
            continue
        try:
            members = tuple(m for m in fields[3].split(",") if m)
            entries.append(_GroupEntry(fields[0], int(fields[2]), members))
        except ValueError:
            continue
    return entries


def resolve_user(user: str, passwd: str | None, group: str | None) -> ExecUser:
    """Resolve `user` given the contents of passwd/group (None when the file is missing)."""
    user_part, _, group_part = user.partition(":")
    pw = _find_user(user_part or "0", parse_passwd(passwd or ""))
    groups = parse_group(group or "")
    if group_part:
        return ExecUser(pw.uid, _find_group(group_part, groups), (), pw.home)
    # Supplementary groups come only from a matched passwd name (as in runc).
    supplementary = tuple(g.gid for g in groups if pw.name and pw.name in g.members)
    return ExecUser(pw.uid, pw.gid, supplementary, pw.home)


def additional_groups(wanted: tuple[str, ...] | list[str], group: str | None) -> tuple[int, ...]:
    """HostConfig.GroupAdd as gids, each once: a name or gid found in `group` (the rootfs'
    /etc/group), else a number taken as is (runc's GetAdditionalGroups).

    Raises:
        InvalidArgument: an unknown group name, or a gid out of range (runc's wording).
    """
    entries = parse_group(group or "")
    gids: dict[int, None] = {}
    for item in wanted:
        match = next((e for e in entries if (e.name == item or str(e.gid) == item) and e.gid not in gids), None)
        if match is not None:
            gids[match.gid] = None
            continue
        if not item.lstrip("-").isdigit():
            raise InvalidArgument(f"Unable to find group {item}: no matching entries in group file")
        gid = int(item)
        if not 0 <= gid <= 2**31 - 1:
            raise InvalidArgument("user: UIDs and GIDs must be in range [0, 2147483647]")
        gids[gid] = None
    return tuple(gids)


def with_group_add(user: ExecUser, wanted: tuple[str, ...], rootfs: Path) -> ExecUser:
    """`user` with the --group-add groups after its own supplementary ones."""
    extra = additional_groups(wanted, read_rootfs_file(rootfs, "etc/group"))
    merged = tuple(dict.fromkeys((*user.additional_gids, *extra)))
    return ExecUser(user.uid, user.gid, merged, user.home)


def _find_user(user: str, entries: list[_PasswdEntry]) -> _PasswdEntry:
    if user.isdigit():
        uid = int(user)
        match = next((e for e in entries if e.uid == uid), None)
        return match or _PasswdEntry("", uid, 0, "/")
    match = next((e for e in entries if e.name == user), None)
    if match is None:
        raise InvalidArgument(f"unable to find user {user}: no matching entries in passwd file")
    return match


def _find_group(group: str, entries: list[_GroupEntry]) -> int:
    if group.isdigit():
        return int(group)
    match = next((e for e in entries if e.name == group), None)
    if match is None:
        raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")
    return match.gid


def read_rootfs_file(rootfs: Path, relpath: str) -> str | None:
    """Read a file inside `rootfs` without following symlinks out of it; None if absent."""
    root = os.path.realpath(rootfs)
    target = os.path.realpath(os.path.join(root, relpath.lstrip("/")))
    if target != root and not target.startswith(root + os.sep):
        return None
    try:
        with open(target, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def resolve_user_in_rootfs(user: str, rootfs: Path) -> ExecUser:
    passwd = read_rootfs_file(rootfs, "etc/passwd")
    group = read_rootfs_file(rootfs, "etc/group")
    return resolve_user(user, passwd, group)
