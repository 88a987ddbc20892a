"""The `local` driver's mount options (`docker volume create -o type=.. -o device=.. -o o=..`),
parsed and checked; pure, no I/O.

moby's local driver hands `type`, `device` and `o` to mount(2) when the first container using the
volume starts. berth takes the safe, common subset and refuses the rest (nfs and cifs would dial
other hosts, block-device types would mount arbitrary disks):

    type=tmpfs device=<any name> [o=size=10m,uid=1000,gid=1000,mode=0770,nr_inodes=..,<flags>]
    type=none  device=/abs/dir    o=bind|rbind[,ro,nosuid,nodev,noexec,noatime,nodiratime]

`parse_driver_options` returns None for a plain volume (no options), a `LocalMount` otherwise.
Error wording follows moby where moby has one (`invalid option`, `missing required option`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from berth.errors import InvalidArgument

# mount(2) flags (linux/mount.h)
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

# flag word -> (flag, set it?); a later word wins over an earlier one (`ro,rw` is rw)
_FLAGS: dict[str, tuple[int, bool]] = {
    "ro": (MS_RDONLY, True), "rw": (MS_RDONLY, False),
    "nosuid": (MS_NOSUID, True), "suid": (MS_NOSUID, False),
    "nodev": (MS_NODEV, True), "dev": (MS_NODEV, False),
    "noexec": (MS_NOEXEC, True), "exec": (MS_NOEXEC, False),
    "noatime": (MS_NOATIME, True), "atime": (MS_NOATIME, False),
    "nodiratime": (MS_NODIRATIME, True), "diratime": (MS_NODIRATIME, False),
    "relatime": (MS_RELATIME, True), "norelatime": (MS_RELATIME, False),
    "strictatime": (MS_STRICTATIME, True), "nostrictatime": (MS_STRICTATIME, False),
    "sync": (MS_SYNCHRONOUS, True), "async": (MS_SYNCHRONOUS, False),
    "dirsync": (MS_DIRSYNC, True),
}
# A bind may only add restrictions: the mount keeps the source's own nosuid/nodev/... (see
# _localmount), so words that would lift one are not offered.
_BIND_FLAGS = frozenset({"ro", "rw", "nosuid", "nodev", "noexec", "noatime", "nodiratime"})

_CONTAINER_WORDS = ((MS_RDONLY, "ro"), (MS_NOSUID, "nosuid"), (MS_NODEV, "nodev"), (MS_NOEXEC, "noexec"))

_SIZE_RE = re.compile(r"^[0-9]+[kKmMgGtTpPeE]?$")
# moby's units.RAMInBytes, which reads the `size` (quota) option
_QUOTA_RE = re.compile(r"^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$", re.ASCII)
_TMPFS_DATA = {
    "size": (re.compile(r"^([0-9]+[kKmMgGtTpPeE]?|[0-9]{1,3}%)$"),
             "a number of bytes with an optional k, m, g suffix, or a percentage of RAM"),
    "nr_blocks": (_SIZE_RE, "a number with an optional k, m, g suffix"),
    "nr_inodes": (_SIZE_RE, "a number with an optional k, m, g suffix"),
    "mode": (re.compile(r"^[0-7]{1,4}$"), "octal permission bits, at most 07777"),
    "uid": (re.compile(r"^[0-9]{1,10}$"), "a numeric user id"),
    "gid": (re.compile(r"^[0-9]{1,10}$"), "a numeric group id"),
}
_VALID_OPTS = ("type", "device", "o", "size")
_MANDATORY = (("type", "device"), ("device", "type"), ("o", "device"), ("o", "type"))
# A volume's own bookkeeping key, accepted and ignored (it was the only option berth took before).
_IGNORED = frozenset({"com.docker.volume.anonymous"})
_MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to the kernel


@dataclass(frozen=True)
class LocalMount:
    """What to mount on a volume's _data directory while containers use it."""

    fstype: str          # "tmpfs", or "none" for a bind
    device: str          # tmpfs: the source name /proc/mounts shows; bind: the host directory
    flags: int = 0       # MS_RDONLY, MS_NOSUID, ... (never MS_BIND/MS_REC: see `bind`, `recursive`)
    data: str = ""       # tmpfs data: "size=10m,uid=1000,mode=0770"
    recursive: bool = False  # rbind: submounts of the device come along
    # bind: the device's real path recorded at create (berth.volumes._store); every mount walks
    # that path without following symlinks (_localmount.open_bind_device)
    source: str = ""

    @property
    def bind(self) -> bool:
        return self.fstype == "none"

    def container_options(self) -> tuple[str, ...]:
        """The restrictions a container's bind of _data must repeat: the OCI runtime may
        remount that bind (crun does) and would drop flags it was not given."""
        return tuple(word for flag, word in _CONTAINER_WORDS if self.flags & flag)


def parse_driver_options(options: Mapping[str, str]) -> LocalMount | None:
    """The mount a volume created with `options` needs, or None for a plain directory volume.

    Raises:
        InvalidArgument: an unknown option, a missing companion option, a refused type, or an
            `o` entry the type does not take (moby's words where it has them).
    """
    opts = {k: v for k, v in options.items() if k not in _IGNORED}
    for key in sorted(opts):
        if key not in _VALID_OPTS:
            raise InvalidArgument(f'invalid option: "{key}"')
        if not isinstance(opts[key], str) or "\0" in opts[key]:
            raise InvalidArgument(f'invalid option: "{key}": the value must be text without NUL bytes')
    if "size" in opts:
        _check_quota(opts.pop("size"))  # only size=0 gets past: it asks for nothing
    for key, needed in _MANDATORY:
        if key in opts and needed not in opts:
            raise InvalidArgument(f'missing required option: "{needed}"')
    if not opts:
        return None
    fstype, device, words = opts["type"], opts["device"], _split(opts.get("o", ""))
    if not device:
        raise InvalidArgument('missing required option: "device"')
    if fstype == "tmpfs":
        return _tmpfs(device, words)
    if fstype == "none":
        return _bind(device, words)
    raise InvalidArgument(
        f'volume type "{fstype}" is not supported by the local driver here: it mounts only tmpfs '
        "(type=tmpfs) and bind volumes (type=none, o=bind); network and device filesystems are refused")


def _check_quota(value: str) -> None:
    # moby takes `size` (an XFS project quota) only where the backing filesystem has quotas;
    # a zero size asks for no quota and is accepted, as there.
    match = _QUOTA_RE.match(value)
    try:
        number = float(match.group(1)) if match else None
    except ValueError:  # "1.2.3" passes the pattern, not Go's ParseFloat
        number = None
    if number is None:
        raise InvalidArgument(f"invalid size: '{value}'")
    if number > 0:
        raise InvalidArgument("quota size requested but no quota support")


def _split(text: str) -> list[str]:
    return [w for w in text.split(",") if w]


def _tmpfs(device: str, words: list[str]) -> LocalMount:
    flags, data = 0, []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq and word in _FLAGS:
            flags = _apply_flag(flags, word)
            continue
        if not eq or key not in _TMPFS_DATA:
            raise InvalidArgument(f'invalid tmpfs option "{word}" in o (takes size, mode, uid, gid, '
                                  "nr_inodes, nr_blocks and mount flags such as ro, noexec)")
        pattern, meaning = _TMPFS_DATA[key]
        if not pattern.match(value) or (key in ("uid", "gid") and int(value) > _MAX_ID):
            raise InvalidArgument(f'invalid tmpfs {key} "{value}": expected {meaning}')
        data.append(word)
    return LocalMount("tmpfs", device, flags=flags, data=",".join(data))


def _bind(device: str, words: list[str]) -> LocalMount:
    if not device.startswith("/"):
        raise InvalidArgument(f'invalid bind device "{device}": it must be an absolute path')
    flags, kinds = 0, set()
    for word in words:
        if word in ("bind", "rbind"):
            kinds.add(word)
        elif word in _BIND_FLAGS:
            flags = _apply_flag(flags, word)
        else:
            raise InvalidArgument(f'invalid bind option "{word}" in o (takes bind or rbind, and ro, '
                                  "nosuid, nodev, noexec, noatime, nodiratime)")
    if not kinds:
        raise InvalidArgument('type "none" needs o=bind or o=rbind (a bind volume of a host directory)')
    return LocalMount("none", device, flags=flags, recursive="rbind" in kinds)


def _apply_flag(flags: int, word: str) -> int:
    flag, on = _FLAGS[word]
    return flags | flag if on else flags & ~flag
