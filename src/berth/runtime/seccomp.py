"""Docker-style seccomp profiles, resolved into the OCI `linux.seccomp` object of one container.

A profile (Docker's JSON format, also what `--security-opt seccomp=<file>` sends) is a default
action plus rules; a rule may carry `includes` / `excludes` filters on capabilities,
architectures and kernel version. Docker resolves them per container, against the container's
bounding capabilities and the host's architecture, and hands the runtime a plain OCI list:

    profile = default_profile()                  # or parse_profile(text_from_the_api)
    linux["seccomp"] = resolve(profile, caps=container_caps, arch="x86_64")

Rule semantics (the same as moby's, so user profiles written for Docker behave the same):
- `includes`: the rule applies only if ALL listed caps are held, the arch is listed, and the
  kernel is at least `minKernel`;
- `excludes`: the rule is dropped if ANY listed cap is held, the arch is listed, or the kernel is
  at least `minKernel`.

The default profile is an allowlist: everything not listed fails with EPERM. Syscalls that need
a capability (mount, init_module, ...) are listed only when the container holds that capability,
and `clone` without CAP_SYS_ADMIN may not create namespaces. Names unknown to the host's
libseccomp are skipped by crun and runc, so the list may name syscalls of newer kernels.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"
EPERM = 1
ENOSYS = 38

# Namespace flags of clone(2); a container without CAP_SYS_ADMIN may not set any of them.
_CLONE_NEWNS, _CLONE_NEWCGROUP, _CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
_CLONE_NEWIPC, _CLONE_NEWUSER, _CLONE_NEWPID, _CLONE_NEWNET = 0x08000000, 0x10000000, 0x20000000, 0x40000000
CLONE_NAMESPACE_FLAGS = (_CLONE_NEWNS | _CLONE_NEWCGROUP | _CLONE_NEWUTS | _CLONE_NEWIPC
                         | _CLONE_NEWUSER | _CLONE_NEWPID | _CLONE_NEWNET)
AF_VSOCK = 40

# uname -m -> (libseccomp arch, its compat sub-arches, the Go name Docker profiles use in "arches")
_ARCHES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "x86_64": ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32"), "amd64"),
    "aarch64": ("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",), "arm64"),
}


@dataclass(frozen=True)
class Filter:
    """Conditions of a rule's `includes` or `excludes`; empty fields do not constrain."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: str = ALLOW
    errno_ret: int | None = None
    args: tuple[dict[str, Any], ...] = ()
    includes: Filter = field(default_factory=Filter)
    excludes: Filter = field(default_factory=Filter)


@dataclass(frozen=True)
class Profile:
    default_action: str
    rules: tuple[Rule, ...]
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()  # explicit OCI list; used as is
    arch_map: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (native, sub-arches): pick the host's
    extra: tuple[tuple[str, Any], ...] = ()  # flags, listenerPath, listenerMetadata: passed through


# -- the default profile ------------------------------------------------------------------------

# Allowed for every container. Kept as whitespace-separated text: it is a long, sorted list.
_BASE_ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid
getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl
io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup
io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr
lstat lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat
mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl
msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
_newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr
rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid
waitpid write writev
"""

# Syscalls unlocked by holding one capability (Docker grants them with the capability).
_BY_CAPABILITY: tuple[tuple[str, str], ...] = (
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    ("CAP_SYS_ADMIN", "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie "
                      "mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd "
                      "setdomainname sethostname setns syslog umount umount2 unshare"),
    ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module init_module finit_module"),
    ("CAP_SYS_PACCT", "acct"),
    ("CAP_SYS_PTRACE", "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace"),
    ("CAP_SYS_RAWIO", "iopl ioperm"),
    ("CAP_SYS_TIME", "settimeofday stime clock_settime clock_settime64"),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    ("CAP_SYS_NICE", "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"),
    ("CAP_SYSLOG", "syslog"),
    ("CAP_BPF", "bpf"),
    ("CAP_PERFMON", "perf_event_open"),
)

# Architecture-specific syscalls, keyed by the Go arch names Docker profiles use.
_BY_ARCH: tuple[tuple[tuple[str, ...], str], ...] = (
    (("arm", "arm64"), "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls"),
    (("amd64", "x32"), "arch_prctl"),
    (("amd64", "x32", "x86"), "modify_ldt"),
)

# personality(2) values a container may set: Linux, UNAME26, PER_LINUX32, its UNAME26 form, query.
_PERSONALITIES = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)


def _arg(index: int, value: int, op: str, value_two: int = 0) -> dict[str, Any]:
    arg: dict[str, Any] = {"index": index, "value": value, "op": op}
    if value_two:
        arg["valueTwo"] = value_two
    return arg


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _default_rules() -> tuple[Rule, ...]:
    rules = [Rule(_names(_BASE_ALLOWED))]
    # ptrace and friends are safe without CAP_SYS_PTRACE from 4.8 on (seccomp bypass fixed).
    rules.append(Rule(("process_vm_readv", "process_vm_writev", "ptrace"), includes=Filter(min_kernel=(4, 8))))
    rules.append(Rule(("socket",), args=(_arg(0, AF_VSOCK, "SCMP_CMP_NE"),)))
    rules += [Rule(("personality",), args=(_arg(0, p, "SCMP_CMP_EQ"),)) for p in _PERSONALITIES]
    rules += [Rule(_names(names), includes=Filter(arches=arches)) for arches, names in _BY_ARCH]
    rules += [Rule(_names(names), includes=Filter(caps=(cap,))) for cap, names in _BY_CAPABILITY]
    no_namespaces = _arg(0, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ")
    rules.append(Rule(("clone",), args=(no_namespaces,), excludes=Filter(caps=("CAP_SYS_ADMIN",))))
    # clone3 passes its flags in a struct seccomp cannot inspect: ENOSYS makes libc fall back to clone.
    rules.append(Rule(("clone3",), action=ERRNO, errno_ret=ENOSYS, excludes=Filter(caps=("CAP_SYS_ADMIN",))))
    return tuple(rules)


def default_profile() -> Profile:
    """Docker's default profile: deny with EPERM unless allowed."""
    return Profile(default_action=ERRNO, default_errno_ret=EPERM, rules=_default_rules(),
                   arch_map=tuple((native, subs) for native, subs, _ in _ARCHES.values()))


# -- resolving a profile for one container ----------------------------------------------------------


def host_arch() -> str:
    return platform.machine()


def kernel_version(release: str | None = None) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release or platform.release())
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def resolve(profile: Profile, *, caps: Iterable[str], arch: str | None = None,
            kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """The OCI `linux.seccomp` object for a container with bounding capabilities `caps`."""
    arch = arch or host_arch()
    kernel = kernel or kernel_version()
    held = frozenset(caps)
    go_arch = _ARCHES.get(arch, ("", (), arch))[2]
    out: dict[str, Any] = {"defaultAction": profile.default_action}
    if profile.default_errno_ret is not None:
        out["defaultErrnoRet"] = profile.default_errno_ret
    architectures = _architectures(profile, arch)
    if architectures:
        out["architectures"] = architectures
    out.update(dict(profile.extra))
    out["syscalls"] = [_oci_rule(r) for r in profile.rules if _applies(r, held, go_arch, kernel)]
    return out


def _architectures(profile: Profile, arch: str) -> list[str]:
    found = list(profile.architectures)
    native = _ARCHES.get(arch, ("", (), ""))[0]
    for main, subs in profile.arch_map:
        if main == native:
            found += [main, *subs]
            break
    return found


def _applies(rule: Rule, held: frozenset[str], go_arch: str, kernel: tuple[int, int]) -> bool:
    inc, exc = rule.includes, rule.excludes
    if exc.arches and go_arch in exc.arches:
        return False
    if exc.caps and any(c in held for c in exc.caps):
        return False
    if exc.min_kernel is not None and kernel >= exc.min_kernel:
        return False
    if inc.arches and go_arch not in inc.arches:
        return False
    if inc.caps and not all(c in held for c in inc.caps):
        return False
    return inc.min_kernel is None or kernel >= inc.min_kernel


def _oci_rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
    if rule.errno_ret is not None:
        out["errnoRet"] = rule.errno_ret
    if rule.args:
        out["args"] = [dict(a) for a in rule.args]
    return out


# -- profiles from the API -------------------------------------------------------------------------


def parse_profile(text: str) -> Profile:
    """A Docker-format profile (`--security-opt seccomp=<json>`); InvalidArgument in moby's words."""
    try:
        raw = json.loads(text)
    except ValueError as err:
        raise InvalidArgument(f"Decoding seccomp profile failed: {err}") from err
    if not isinstance(raw, dict):
        raise InvalidArgument("Decoding seccomp profile failed: profile is not a JSON object")
    if raw.get("architectures") and raw.get("archMap"):
        raise InvalidArgument("'architectures' and 'archMap' were specified in the seccomp profile, "
                              "use either 'architectures' or 'archMap'")
    return Profile(
        default_action=str(raw.get("defaultAction") or ""),
        default_errno_ret=raw.get("defaultErrnoRet"),
        architectures=tuple(raw.get("architectures") or ()),
        arch_map=tuple((a.get("architecture", ""), tuple(a.get("subArchitectures") or ()))
                       for a in raw.get("archMap") or ()),
        rules=tuple(_parse_rule(r) for r in raw.get("syscalls") or ()),
        extra=tuple((k, raw[k]) for k in ("flags", "listenerPath", "listenerMetadata") if raw.get(k)),
    )


def _parse_rule(raw: dict[str, Any]) -> Rule:
    if raw.get("name") and raw.get("names"):
        raise InvalidArgument("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'")
    names = (raw["name"],) if raw.get("name") else tuple(raw.get("names") or ())
    return Rule(names=names, action=str(raw.get("action") or ""), errno_ret=raw.get("errnoRet"),
                args=tuple(raw.get("args") or ()), includes=_parse_filter(raw.get("includes")),
                excludes=_parse_filter(raw.get("excludes")))


def _parse_filter(raw: dict[str, Any] | None) -> Filter:
    if not raw:
        return Filter()
    min_kernel = None
    if raw.get("minKernel"):
        m = re.fullmatch(r"(\d+)\.(\d+)", str(raw["minKernel"]))
        if not m:
            raise InvalidArgument(f"Decoding seccomp profile failed: invalid kernel version: {raw['minKernel']}")
        min_kernel = (int(m.group(1)), int(m.group(2)))
    return Filter(caps=tuple(raw.get("caps") or ()), arches=tuple(raw.get("arches") or ()), min_kernel=min_kernel)
