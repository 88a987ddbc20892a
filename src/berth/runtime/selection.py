"""Choose crun or runc, and the explicit host fix that lets crun run (host-notes §3).

crun 1.8 refuses to run on a hybrid cgroup host whose cgroup2 mount still owns a controller
("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"); on these hosts
that controller is hugetlb. runc works as is, at about 3x crun's cost.

Policy for runtime="auto": crun when /sys/fs/cgroup/unified/cgroup.controllers is empty or
absent. When it lists a controller, crun with "Fix B" (cgroup_fix="mask": every crun call runs
in a private mount namespace with that file masked, see cgroupfix.py) if the mask works here,
else runc. cgroup_fix="none" disables Fix B (then auto picks runc on such hosts). The reason is
returned as text so the daemon logs what it applies and why.

`prepare_host_for_crun()` applies "Fix A" (mount hugetlb as a cgroup v1 hierarchy, which
empties the cgroup2 controller list until reboot); `undo_prepare_host()` reverts it. Neither
is ever called automatically: they change the host for every process on it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from berth.errors import InvalidArgument, Unavailable

UNIFIED_CONTROLLERS = Path("/sys/fs/cgroup/unified/cgroup.controllers")
HUGETLB_V1 = Path("/sys/fs/cgroup/hugetlb")


CGROUP_FIXES = ("auto", "mask", "none")


@dataclass(frozen=True)
class RuntimeChoice:
    name: str  # "crun" | "runc"
    path: str  # absolute path of the binary
    reason: str
    cgroup_fix: str = "none"  # "mask": run crun through the Fix B wrapper (cgroupfix.py)


def read_unified_controllers(path: Path = UNIFIED_CONTROLLERS) -> str | None:
    """The cgroup2 controller list of a hybrid host; None when there is no such file."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def select_runtime(
    requested: str,
    *,
    unified_controllers: str | None,
    which: Callable[[str], str | None] = shutil.which,
    cgroup_fix: str = "auto",
    mask_works: Callable[[], bool] = lambda: False,
) -> RuntimeChoice:
    """Pure policy: map "auto" | "crun" | "runc" (+ cgroup_fix "auto" | "mask" | "none") to a
    binary, whether crun needs the mask, and a human-readable reason.

    `mask_works` probes Fix B; it is only called when crun would otherwise be refused.
    """
    if requested not in ("auto", "crun", "runc"):
        raise InvalidArgument(f"unknown OCI runtime {requested!r} (want auto, crun or runc)")
    if cgroup_fix not in CGROUP_FIXES:
        raise InvalidArgument(f"unknown crun cgroup fix {cgroup_fix!r} (want auto, mask or none)")
    if requested == "runc":
        return _explicit("runc", which)
    crun = which("crun")
    if requested == "crun":
        if crun is None:
            raise Unavailable("OCI runtime crun is not installed")
        if not unified_controllers or cgroup_fix == "none":
            return RuntimeChoice("crun", crun, "using crun: chosen explicitly")
        if not mask_works():
            raise Unavailable(
                f"crun cannot run here: {UNIFIED_CONTROLLERS} lists '{unified_controllers}' and "
                f"it cannot be masked in a private mount namespace (use --runtime runc)"
            )
        return _masked(crun, unified_controllers, "chosen explicitly")
    if not unified_controllers:
        if crun is not None:
            state = "absent" if unified_controllers is None else "empty"
            return RuntimeChoice("crun", crun, f"using crun: {UNIFIED_CONTROLLERS} is {state}")
        return _runc_or_fail(which, "using runc: crun is not installed")
    if crun is not None and cgroup_fix != "none" and mask_works():
        return _masked(crun, unified_controllers, "auto")
    why = (
        "the mask fix is disabled (--crun-cgroup-fix none)" if cgroup_fix == "none"
        else "crun is not installed" if crun is None
        else "masking it in a private mount namespace failed"
    )  # fmt: skip
    return _runc_or_fail(
        which,
        f"using runc: crun cannot run on this hybrid cgroup host as is because "
        f"{UNIFIED_CONTROLLERS} lists '{unified_controllers}', and {why} "
        f"(prepare_host_for_crun() would enable crun)",
        f"runc is not installed and crun cannot run here: cgroup2 still owns controllers "
        f"({unified_controllers}); apply prepare_host_for_crun()",
    )


def _masked(crun: str, controllers: str, how: str) -> RuntimeChoice:
    return RuntimeChoice(
        "crun", crun,
        f"using crun ({how}) with the cgroup mask fix: {UNIFIED_CONTROLLERS} lists "
        f"'{controllers}', which crun refuses on a hybrid cgroup host, so every crun call runs in "
        f"a private mount namespace where /dev/null hides that file (host-notes §3 Fix B; "
        f"--crun-cgroup-fix none disables it)",
        cgroup_fix="mask",
    )  # fmt: skip


def _runc_or_fail(
    which: Callable[[str], str | None], reason: str, missing: str = "neither crun nor runc is installed"
) -> RuntimeChoice:
    runc = which("runc")
    if runc is None:
        raise Unavailable(missing)
    return RuntimeChoice("runc", runc, reason)


def _explicit(name: str, which: Callable[[str], str | None]) -> RuntimeChoice:
    path = which(name)
    if path is None:
        raise Unavailable(f"OCI runtime {name} is not installed")
    return RuntimeChoice(name, path, f"using {name}: chosen explicitly")


def prepare_host_for_crun() -> bool:
    """Fix A: mount hugetlb as a cgroup v1 hierarchy so cgroup2 owns no controller.

    Idempotent; returns True when the host was changed. Lasts until reboot or
    undo_prepare_host(). Needs root.
    """
    if not read_unified_controllers():
        return False
    HUGETLB_V1.mkdir(exist_ok=True)
    _run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", str(HUGETLB_V1)])
    if read_unified_controllers():
        raise Unavailable(f"hugetlb is mounted at {HUGETLB_V1} but cgroup2 still owns controllers")
    return True


def undo_prepare_host(settle: float = 1.5, timeout: float = 10.0) -> bool:
    """Revert Fix A: give hugetlb back to cgroup2. Returns True when the host was changed.

    Child cgroups must be gone first. Removed children die asynchronously and keep the
    hierarchy alive, so hugetlb reappears in cgroup2 only some seconds after the unmount
    (host-notes §3); we wait for it, and mount + unmount once more if it does not come back.
    """
    if not os.path.ismount(HUGETLB_V1):
        return False
    if _remove_child_cgroups(HUGETLB_V1):
        time.sleep(settle)
    _run(["umount", str(HUGETLB_V1)])
    if not _wait_for_unified_controllers(timeout / 2):
        _run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", str(HUGETLB_V1)])
        _run(["umount", str(HUGETLB_V1)])
        if not _wait_for_unified_controllers(timeout / 2):
            raise Unavailable("hugetlb did not return to cgroup2 after unmounting it")
    with contextlib.suppress(OSError):
        HUGETLB_V1.rmdir()
    return True


def _wait_for_unified_controllers(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not read_unified_controllers():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # a rare admin step; the kernel needs seconds here
    return True


def _remove_child_cgroups(root: Path) -> int:
    removed = 0
    for dirpath, dirnames, _ in os.walk(root, topdown=False):
        for name in dirnames:
            try:
                os.rmdir(os.path.join(dirpath, name))
            except OSError as err:
                raise Unavailable(f"cannot remove cgroup {dirpath}/{name}: {err}") from err
            removed += 1
    return removed


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise Unavailable(f"{' '.join(argv)}: {result.stderr.strip()}")
