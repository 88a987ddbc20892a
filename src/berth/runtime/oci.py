"""Build the OCI runtime spec (config.json) for a container, the way Docker would.

Pure apart from reading the rootfs' /etc/passwd and /etc/group for the user, and (only when
the caller does not pass them) the daemon's own rlimits and capability bounding set.
Host facts that shape it (host-notes §4, §5): rlimits above the daemon's hard limits fail
(no CAP_SYS_RESOURCE), capabilities outside the daemon's bounding set fail, and cgroupsPath
must be explicit (cgroupfs manager only).
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

from berth.errors import InvalidArgument
from berth.runtime import seccomp
from berth.runtime.devices import DeviceNode, device_nodes, host_devices
from berth.runtime.spec import ContainerSpec, ExecSpec, Mount, Resources
from berth.runtime.users import ExecUser, resolve_user_in_rootfs, with_group_add

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip

# Linux capabilities by number (bit position in /proc/<pid>/status CapBnd).
ALL_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON",
    "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)  # fmt: skip
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# Linux rlimit numbers (Python's resource module lacks some, e.g. RLIMIT_LOCKS).
RLIMITS = {
    "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7,
    "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13,
    "rtprio": 14, "rttime": 15,
}

SHM_SIZE = 64 * 1024 * 1024
CFS_PERIOD = 100_000  # µs, Docker's period when only NanoCpus is given


def build_oci_spec(
    spec: ContainerSpec,
    rootfs: Path,
    *,
    hard_limits: dict[str, int] | None = None,
    available_caps: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Return the config.json dict for `spec` with root.path = `rootfs` (absolute).

    hard_limits: rlimit name -> the daemon's hard limit (default: read with getrlimit).
    available_caps: capabilities the daemon may grant (default: its own bounding set).
    Raises InvalidArgument for an unknown user/group or capability.
    """
    user = resolve_user_in_rootfs(spec.user, rootfs)
    if spec.group_add:  # --group-add: names from the image's /etc/group, or gids
        user = with_group_add(user, spec.group_add, rootfs)
    caps = container_caps(spec, available_caps if available_caps is not None else daemon_caps())
    limits = hard_limits if hard_limits is not None else daemon_hard_limits()
    return {
        "ociVersion": "1.0.2",
        "root": {"path": str(rootfs), "readonly": spec.readonly_rootfs},
        "hostname": spec.hostname or spec.id[:12],
        "process": _process(spec, user, caps, limits),
        "mounts": _mounts(spec),
        "annotations": dict(spec.annotations),
        "linux": _linux(spec, caps),
    }


def build_exec_process(
    container_process: dict[str, Any], exec_spec: ExecSpec, rootfs: Path
) -> dict[str, Any]:
    """The OCI `process` object for an exec, derived from the container's own process."""
    process = dict(container_process)
    process["args"] = list(exec_spec.args)
    process["terminal"] = exec_spec.tty
    process["cwd"] = exec_spec.cwd or container_process.get("cwd", "/")
    env = _merge_env(container_process.get("env", []), exec_spec.env)
    if exec_spec.user:
        user = resolve_user_in_rootfs(exec_spec.user, rootfs)
        process["user"] = _oci_user(user)
        env = _with_default(env, "HOME", user.home)
    if exec_spec.tty:
        env = _with_default(env, "TERM", "xterm")
    process["env"] = env
    if exec_spec.privileged:
        caps = sorted(daemon_caps())
        process["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    process.pop("consoleSize", None)
    if exec_spec.tty and exec_spec.height > 0 and exec_spec.width > 0:
        # The runtime sizes the pty when it makes it: a resize sent through conmon's ctl FIFO
        # can arrive after a fast process has already asked for its size.
        process["consoleSize"] = {"height": exec_spec.height, "width": exec_spec.width}
    return process


# -- process ---------------------------------------------------------------------------------


def _process(
    spec: ContainerSpec, user: ExecUser, caps: list[str], limits: dict[str, int]
) -> dict[str, Any]:
    process: dict[str, Any] = {
        "terminal": spec.tty,
        "user": _oci_user(user),
        "args": list(spec.args),
        "env": _container_env(spec, user),
        "cwd": spec.cwd or "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": spec.no_new_privileges,  # Docker's default: False
        "oomScoreAdj": 0,  # conmon runs at -1000; the container must not inherit that
    }
    rlimits = clamp_rlimits(spec.ulimits, limits)
    if rlimits:
        process["rlimits"] = rlimits
    height, width = spec.console_size
    if spec.tty and height > 0 and width > 0:
        process["consoleSize"] = {"height": height, "width": width}
    return process


def _oci_user(user: ExecUser) -> dict[str, Any]:
    out: dict[str, Any] = {"uid": user.uid, "gid": user.gid}
    if user.additional_gids:
        out["additionalGids"] = list(user.additional_gids)
    return out


def _container_env(spec: ContainerSpec, user: ExecUser) -> list[str]:
    # A bare `NAME` (kept as given in Config.Env) means "unset": not passed, and no default for
    # it (moby's ReplaceOrAppendEnvValues over PATH/HOSTNAME/TERM).
    unset = {e for e in spec.env if "=" not in e}
    env = [e for e in spec.env if "=" in e]
    for key, value in (("PATH", DEFAULT_PATH), ("HOSTNAME", spec.hostname or spec.id[:12]),
                       *((("TERM", "xterm"),) if spec.tty else ())):
        if key not in unset:
            env = _with_default(env, key, value)
    return _with_default(env, "HOME", user.home or "/")


def _with_default(env: list[str], key: str, value: str) -> list[str]:
    if any(e.partition("=")[0] == key for e in env):
        return env
    return [*env, f"{key}={value}"]


def _merge_env(base: list[str], overrides: tuple[str, ...]) -> list[str]:
    merged = {e.partition("=")[0]: e for e in base}
    merged.update({e.partition("=")[0]: e for e in overrides})
    return list(merged.values())


def normalize_cap(name: str) -> str:
    upper = name.strip().upper()
    return upper if upper.startswith("CAP_") else f"CAP_{upper}"


def container_caps(spec: ContainerSpec, available: frozenset[str]) -> list[str]:
    """Docker's capability arithmetic: default set, + cap_add, - cap_drop ("ALL" allowed)."""
    if spec.privileged:
        return sorted(available)
    adds = _checked_caps("CapAdd", spec.cap_add)
    drops = _checked_caps("CapDrop", spec.cap_drop)
    # Same precedence as moby's caps.TweakCapabilities.
    if "CAP_ALL" in adds:
        caps = set(ALL_CAPS) - drops
    elif "CAP_ALL" in drops:
        caps = adds
    else:
        caps = (set(DEFAULT_CAPS) - drops) | adds
    return sorted(caps & available)


def _checked_caps(kind: str, names: tuple[str, ...]) -> set[str]:
    caps = {normalize_cap(n) for n in names}
    for cap in sorted(caps):
        if cap != "CAP_ALL" and cap not in ALL_CAPS:
            raise InvalidArgument(f'invalid {kind}: unknown capability: "{cap}"')
    return caps


def daemon_caps() -> frozenset[str]:
    """The capabilities in this process's bounding set (the host lacks CAP_SYS_RESOURCE)."""
    try:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith("CapBnd:"))
    except (OSError, StopIteration):
        return frozenset(ALL_CAPS)
    mask = int(line.split()[1], 16)
    return frozenset(cap for bit, cap in enumerate(ALL_CAPS) if mask & (1 << bit))


def daemon_hard_limits() -> dict[str, int]:
    limits = {}
    for name, which in RLIMITS.items():
        hard = resource.getrlimit(which)[1]
        if hard != resource.RLIM_INFINITY:
            limits[name] = hard
    return limits


def clamp_rlimits(
    ulimits: tuple[tuple[str, int, int], ...], hard_limits: dict[str, int]
) -> list[dict[str, Any]]:
    """OCI rlimits for `ulimits`, each clamped to the daemon's hard limit (host-notes §5.5)."""
    out = []
    for name, soft, hard in ulimits:
        key = name.lower().removeprefix("rlimit_")
        if key not in RLIMITS:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        cap = hard_limits.get(key)
        if cap is not None:
            soft, hard = min(soft, cap), min(hard, cap)
        out.append({"type": f"RLIMIT_{key.upper()}", "soft": min(soft, hard), "hard": hard})
    return out


# -- mounts ----------------------------------------------------------------------------------


def default_mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    sys_opts = ["nosuid", "noexec", "nodev", "rw" if spec.privileged else "ro"]
    cgroup_opts = ["nosuid", "noexec", "nodev", "relatime", "rw" if spec.privileged else "ro"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": cgroup_opts},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={SHM_SIZE}"]},
    ]  # fmt: skip


def _mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    # A user mount on a default destination replaces the default (as in Docker).
    user_dests = {m.destination.rstrip("/") or "/" for m in spec.mounts}
    mounts = [m for m in default_mounts(spec) if m["destination"] not in user_dests]
    return mounts + [_oci_mount(m) for m in spec.mounts]


def _oci_mount(mount: Mount) -> dict[str, Any]:
    return {
        "destination": mount.destination,
        "type": mount.type,
        "source": mount.source,
        "options": list(mount.options),
    }


# -- linux -----------------------------------------------------------------------------------


def _linux(spec: ContainerSpec, caps: list[str]) -> dict[str, Any]:
    devices = container_devices(spec)
    linux: dict[str, Any] = {
        "namespaces": _namespaces(spec),
        "resources": resources(spec.resources, privileged=spec.privileged, devices=devices),
        "cgroupsPath": cgroups_path(spec.cgroup_parent, spec.id),
    }
    if devices:
        linux["devices"] = [d.oci_device() for d in devices]
    if not spec.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS if spec.masked_paths is None else spec.masked_paths)
        linux["readonlyPaths"] = list(READONLY_PATHS if spec.readonly_paths is None else spec.readonly_paths)
    profile = seccomp_profile(spec)
    if profile is not None:
        linux["seccomp"] = seccomp.resolve(profile, caps=caps)
    return linux


def seccomp_profile(spec: ContainerSpec) -> seccomp.Profile | None:
    """Docker's rules: privileged or `seccomp=unconfined` run without a filter."""
    if spec.privileged or spec.seccomp_profile == "unconfined":
        return None
    if spec.seccomp_profile in ("", "default", "builtin"):
        return seccomp.default_profile()
    return seccomp.parse_profile(spec.seccomp_profile)


def container_devices(spec: ContainerSpec) -> list[DeviceNode]:
    """Host devices for `--privileged`, then each `--device` (a later node wins its path)."""
    nodes = host_devices() if spec.privileged else []
    for d in spec.devices:
        nodes += device_nodes(d.on_host, d.in_container or d.on_host, d.permissions or "rwm")
    by_path = {n.path: n for n in nodes}
    return list(by_path.values())


def cgroups_path(parent: str, container_id: str) -> str:
    parent = parent.strip("/") or "berth"
    return f"/{parent}/{container_id}"


def _namespaces(spec: ContainerSpec) -> list[dict[str, str]]:
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if spec.netns_path is not None:
        namespaces.append({"type": "network", "path": spec.netns_path})
    return namespaces


def _device(allow: bool, kind: str | None, major: int | None, minor: int | None,
            access: str = "rwm") -> dict[str, Any]:  # fmt: skip
    rule: dict[str, Any] = {"allow": allow, "access": access}
    if kind is not None:
        rule["type"] = kind
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


def device_rules(privileged: bool) -> list[dict[str, Any]]:
    """Docker's default device cgroup rules (deny all, then the usual character devices)."""
    if privileged:
        return [_device(True, None, None, None)]
    return [
        _device(False, None, None, None),
        # Right after deny-all, as in moby: cgroup v1 cannot punch a hole into "c *:* m".
        _device(False, "c", 10, 229),  # /dev/fuse
        _device(True, "c", None, None, "m"),
        _device(True, "b", None, None, "m"),
        _device(True, "c", 1, 3),  # /dev/null
        _device(True, "c", 1, 5),  # /dev/zero
        _device(True, "c", 1, 7),  # /dev/full
        _device(True, "c", 1, 8),  # /dev/random
        _device(True, "c", 1, 9),  # /dev/urandom
        _device(True, "c", 5, 0),  # /dev/tty
        _device(True, "c", 5, 1),  # /dev/console
        _device(True, "c", 5, 2),  # /dev/ptmx
        _device(True, "c", 136, None),  # /dev/pts/*
        _device(True, "c", 10, 200),  # /dev/net/tun
    ]


def resources(res: Resources, *, privileged: bool = False,
              devices: list[DeviceNode] | None = None) -> dict[str, Any]:
    rules = device_rules(privileged)
    if not privileged:
        rules += [d.cgroup_rule() for d in devices or ()]
    out: dict[str, Any] = {"devices": rules}
    if res.memory > 0:
        # Docker: MemorySwap 0 means "twice the memory"; -1 means unlimited swap.
        swap = res.memory_swap if res.memory_swap != 0 else 2 * res.memory
        out["memory"] = {"limit": res.memory, **({"swap": swap} if swap > 0 else {})}
    cpu = _cpu(res)
    if cpu:
        out["cpu"] = cpu
    if res.pids_limit > 0:
        out["pids"] = {"limit": res.pids_limit}
    return out


# The largest pids.max the kernel takes (PID_MAX_LIMIT): how an update lifts a pids limit. crun
# writes a -1 limit to a cgroup v1 pids.max as "-1", which the kernel refuses (EINVAL).
PIDS_UNLIMITED = 4 * 1024 * 1024


def update_resources(res: Resources, *, lift_pids: bool = False) -> dict[str, Any]:
    """The document for `<runtime> update --resources -`: every limit `res` sets (no devices);
    with `lift_pids`, a pids limit the update removed is lifted."""
    out = resources(res)
    del out["devices"]
    if res.pids_limit <= 0 and lift_pids:
        out["pids"] = {"limit": PIDS_UNLIMITED}
    return out


def _cpu(res: Resources) -> dict[str, Any]:
    cpu: dict[str, Any] = {}
    if res.cpu_shares > 0:
        cpu["shares"] = res.cpu_shares
    if res.nano_cpus > 0:
        cpu["period"] = CFS_PERIOD
        cpu["quota"] = res.nano_cpus * CFS_PERIOD // 1_000_000_000
    else:
        if res.cpu_period > 0:
            cpu["period"] = res.cpu_period
        if res.cpu_quota > 0:
            cpu["quota"] = res.cpu_quota
    if res.cpuset_cpus:
        cpu["cpus"] = res.cpuset_cpus
    return cpu
