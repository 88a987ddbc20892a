"""Security defaults through the docker CLI: capabilities, seccomp, masked/read-only paths,
--privileged, --cap-add/--cap-drop, --read-only, --user, --security-opt, --device, socket mode."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root


def sh(daemon: BerthDaemon, script: str, *flags: str) -> tuple[int, str]:
    """Run `script` in a fresh busybox container; (exit code, stdout + stderr)."""
    result = daemon.docker("run", "--rm", *flags, "busybox", "sh", "-c", script)
    return result.returncode, result.stdout + result.stderr


MOUNT = "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m"


def test_default_container_cannot_mount_load_modules_or_sysrq(daemon: BerthDaemon) -> None:
    assert sh(daemon, MOUNT)[0] != 0
    code, out = sh(daemon, "insmod /bin/busybox")  # init_module: no CAP_SYS_MODULE, not in seccomp
    assert code != 0 and "Operation not permitted" in out
    assert sh(daemon, "echo h > /proc/sysrq-trigger")[0] != 0
    code, out = sh(daemon, "grep -E '^(Seccomp|NoNewPrivs|CapBnd):' /proc/self/status")
    fields = dict(line.split(":\t") for line in out.strip().splitlines())
    assert fields["Seccomp"] == "2"  # filter mode: Docker's default profile is loaded
    assert fields["NoNewPrivs"] == "0"
    assert int(fields["CapBnd"], 16) == 0xA80425FB  # Docker's 14 default capabilities


def test_masked_paths(daemon: BerthDaemon) -> None:
    # /proc/timer_list and /sys/firmware exist on the host; in the container they are empty
    assert Path("/proc/timer_list").exists() and any(Path("/sys/firmware").iterdir())
    code, out = sh(daemon, "wc -c < /proc/timer_list; ls /sys/firmware | wc -l")
    assert code == 0 and out.split() == ["0", "0"]
    assert sh(daemon, "echo 1 > /proc/sys/kernel/panic")[0] != 0


def test_privileged(daemon: BerthDaemon) -> None:
    code, out = sh(daemon, f"{MOUNT} && echo mounted && grep '^Seccomp:' /proc/self/status && "
                           "ls /dev/fuse && touch /sys/.probe 2>&1; true", "--privileged")
    assert code == 0, out
    assert "mounted" in out and "Seccomp:\t0" in out and "/dev/fuse" in out
    assert "Read-only file system" not in out  # /sys is read-write


def test_cap_add_sys_admin_allows_mount_through_seccomp(daemon: BerthDaemon) -> None:
    assert sh(daemon, MOUNT, "--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined")[0] == 0


def test_cap_drop_all_and_cap_add(daemon: BerthDaemon) -> None:
    code, out = sh(daemon, "chown 1:1 /tmp", "--cap-drop", "ALL")
    assert code != 0 and "Operation not permitted" in out
    assert sh(daemon, "chown 1:1 /tmp")[0] == 0
    assert sh(daemon, "ip link set lo mtu 1400")[0] != 0
    code, out = sh(daemon, "ip link set lo mtu 1400 && cat /sys/class/net/lo/mtu", "--cap-add", "CAP_NET_ADMIN")
    assert code == 0 and out.strip() == "1400"


def test_unknown_capability_is_refused(daemon: BerthDaemon) -> None:
    before = daemon.docker("ps", "-aq").stdout
    result = daemon.docker("run", "--rm", "--cap-add", "FOO", "busybox", "true")
    assert result.returncode == 125
    assert 'invalid CapAdd: unknown capability: "CAP_FOO"' in result.stderr
    assert daemon.docker("ps", "-aq").stdout == before


def test_read_only_rootfs(daemon: BerthDaemon) -> None:
    code, out = sh(daemon, "touch /x", "--read-only")
    assert code != 0 and "Read-only file system" in out
    assert sh(daemon, "touch /dev/shm/x && echo ok", "--read-only") == (0, "ok\n")


def test_user(daemon: BerthDaemon) -> None:
    assert sh(daemon, "id", "--user", "1000:1000") == (0, "uid=1000 gid=1000\n")
    assert sh(daemon, "id -un", "--user", "nobody") == (0, "nobody\n")
    code, out = sh(daemon, "touch /root/x", "--user", "1000")
    assert code != 0


def test_no_new_privileges(daemon: BerthDaemon) -> None:
    for opt in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
        assert sh(daemon, "grep NoNewPrivs /proc/self/status", "--security-opt", opt) == (0, "NoNewPrivs:\t1\n")
    result = daemon.docker("run", "--rm", "--security-opt", "no-new-privileges=maybe", "busybox", "true")
    assert result.returncode == 125 and "invalid --security-opt 2" in result.stderr


def test_seccomp_unconfined_and_custom_profile(daemon: BerthDaemon, tmp_path: Path) -> None:
    assert sh(daemon, "grep '^Seccomp:' /proc/self/status", "--security-opt", "seccomp=unconfined") == (
        0, "Seccomp:\t0\n")
    profile = tmp_path / "deny-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}))
    code, out = sh(daemon, "mkdir /tmp/d", "--security-opt", f"seccomp={profile}")
    assert code != 0 and "Operation not permitted" in out
    assert sh(daemon, "mkdir /tmp/d && echo ok") == (0, "ok\n")


def test_device(daemon: BerthDaemon) -> None:
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse on this host")
    assert sh(daemon, "test -e /dev/fuse")[0] != 0
    code, out = sh(daemon, "exec 3<>/dev/fuse && echo opened", "--device", "/dev/fuse")
    assert (code, out) == (0, "opened\n")
    # read-only cgroup permission: the node exists, opening it read-write is refused
    code, out = sh(daemon, "test -c /dev/f2 && exec 3<>/dev/f2", "--device", "/dev/fuse:/dev/f2:r")
    assert code != 0 and "Operation not permitted" in out


def test_missing_device_is_refused_at_create(daemon: BerthDaemon) -> None:
    before = daemon.docker("ps", "-aq").stdout
    result = daemon.docker("run", "--rm", "--device", "/dev/berth-nonexistent", "busybox", "true")
    assert result.returncode != 0
    assert 'adding custom device "/dev/berth-nonexistent": no such file or directory' in result.stderr
    assert daemon.docker("ps", "-aq").stdout == before


def test_api_socket_is_root_only(daemon: BerthDaemon) -> None:
    st = os.stat(daemon.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660 and (st.st_uid, st.st_gid) == (0, 0)
