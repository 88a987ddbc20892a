"""Runtime selection, error wording, conmon argv and overlay options: the pure parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.errors import InvalidArgument, Unavailable
from berth.runtime import select_runtime
from berth.runtime.cgroupfix import wrapper_script
from berth.runtime.conmon import ConmonPaths, SyncReader, container_argv, exec_argv
from berth.runtime.errtext import create_error_text, exec_error_text, exec_failure_code
from berth.runtime.rootfs import overlay_options

BOTH = {"crun": "/usr/bin/crun", "runc": "/usr/sbin/runc"}.get


def test_auto_prefers_crun_when_cgroup2_owns_nothing() -> None:
    choice = select_runtime("auto", unified_controllers="", which=BOTH)
    assert (choice.name, choice.path) == ("crun", "/usr/bin/crun")
    assert "empty" in choice.reason
    assert "absent" in select_runtime("auto", unified_controllers=None, which=BOTH).reason


def test_auto_falls_back_to_runc_and_says_why() -> None:
    choice = select_runtime("auto", unified_controllers="hugetlb", which=BOTH)  # mask fails
    assert (choice.name, choice.cgroup_fix) == ("runc", "none")
    assert "hugetlb" in choice.reason and "prepare_host_for_crun" in choice.reason
    assert "masking it in a private mount namespace failed" in choice.reason
    off = select_runtime("auto", unified_controllers="hugetlb", which=BOTH, cgroup_fix="none",
                         mask_works=lambda: True)
    assert off.name == "runc" and "--crun-cgroup-fix none" in off.reason


def test_auto_picks_crun_with_the_mask_fix_when_it_works_and_says_so() -> None:
    choice = select_runtime("auto", unified_controllers="hugetlb", which=BOTH, mask_works=lambda: True)
    assert (choice.name, choice.path, choice.cgroup_fix) == ("crun", "/usr/bin/crun", "mask")
    assert "cgroup mask fix" in choice.reason and "hugetlb" in choice.reason
    assert "--crun-cgroup-fix none" in choice.reason  # how to turn it off


def test_mask_is_not_probed_when_crun_runs_as_is() -> None:
    def probe() -> bool:
        raise AssertionError("probed")

    for controllers in ("", None):
        choice = select_runtime("auto", unified_controllers=controllers, which=BOTH, mask_works=probe)
        assert (choice.name, choice.cgroup_fix) == ("crun", "none")
    assert select_runtime("runc", unified_controllers="hugetlb", which=BOTH, mask_works=probe).name == "runc"


def test_explicit_choice_and_errors() -> None:
    masked = select_runtime("crun", unified_controllers="hugetlb", which=BOTH, mask_works=lambda: True)
    assert (masked.name, masked.cgroup_fix) == ("crun", "mask")
    plain = select_runtime("crun", unified_controllers="hugetlb", which=BOTH, cgroup_fix="none")
    assert (plain.name, plain.cgroup_fix) == ("crun", "none")
    with pytest.raises(Unavailable, match="cannot be masked"):
        select_runtime("crun", unified_controllers="hugetlb", which=BOTH)
    with pytest.raises(InvalidArgument):
        select_runtime("kata", unified_controllers="", which=BOTH)
    with pytest.raises(InvalidArgument):
        select_runtime("auto", unified_controllers="", which=BOTH, cgroup_fix="hugetlb-v1")
    with pytest.raises(Unavailable):
        select_runtime("runc", unified_controllers="", which=lambda _: None)
    only_crun = {"crun": "/usr/bin/crun"}.get
    with pytest.raises(Unavailable, match="runc is not installed"):
        select_runtime("auto", unified_controllers="hugetlb", which=only_crun)


def test_mask_wrapper_script_execs_crun_with_the_controller_list_masked() -> None:
    tools = {"unshare": "/usr/bin/unshare", "mount": "/usr/bin/mount", "sh": "/bin/sh"}
    script = wrapper_script("/usr/bin/crun", tools, Path("/sys/fs/cgroup/unified/cgroup.controllers"))
    assert script.startswith("#!/bin/sh\n")
    last = script.splitlines()[-1]
    assert last.startswith("exec /usr/bin/unshare --mount --propagation private /bin/sh -c ")
    assert "/usr/bin/mount --bind /dev/null \"$0\" && exec /usr/bin/crun \"$@\"" in last
    assert last.endswith(' /sys/fs/cgroup/unified/cgroup.controllers "$@"')


RUNC_NOT_FOUND = (
    'time="2026-11-29T17:06:19Z" level=error msg="runc create failed: unable to start container '
    'process: exec: \\"nosuch\\": executable file not found in $PATH"\n'
)
CRUN_NOT_FOUND = "executable file `nosuch` not found in $PATH: No such file or directory\n"
DOCKER_NOT_FOUND = (
    "failed to create task for container: failed to create shim task: OCI runtime create "
    'failed: {rt} create failed: unable to start container process: exec: "nosuch": '
    "executable file not found in $PATH: unknown"
)


def test_create_error_wording_for_both_runtimes() -> None:
    assert create_error_text("runc", RUNC_NOT_FOUND, "nosuch") == DOCKER_NOT_FOUND.format(rt="runc")
    assert create_error_text("crun", CRUN_NOT_FOUND, "nosuch") == DOCKER_NOT_FOUND.format(rt="crun")


def test_crun_phrasing_is_made_docker_like() -> None:
    absolute = "executable file `/nosuch` not found in $PATH: No such file or directory"
    assert "stat /nosuch: no such file or directory" in exec_error_text(absolute, "/nosuch")
    denied = exec_error_text("open executable: Permission denied\n", "/etc/passwd")
    assert denied == (
        "OCI runtime exec failed: exec failed: unable to start container process: "
        'exec: "/etc/passwd": permission denied: unknown'
    )


def test_runc_exec_error_keeps_its_text_and_drops_conmon_noise() -> None:
    stderr = (
        "[conmon:d]: exec with attach is waiting for start message from parent\n"
        'time="x" level=error msg="exec failed: unable to start container process: exec: '
        '\\"nosuch\\": executable file not found in $PATH"\n'
    )
    assert exec_error_text(stderr, "nosuch") == (
        "OCI runtime exec failed: exec failed: unable to start container process: "
        'exec: "nosuch": executable file not found in $PATH: unknown'
    )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('exec: "x": executable file not found in $PATH', 127),
        ("stat /x: no such file or directory", 127),
        ('exec: "/etc": permission denied', 126),
        ("cgroup went away", None),
    ],
)
def test_exec_failure_codes(text: str, code: int | None) -> None:
    assert exec_failure_code(text) == code


def test_container_argv_flags() -> None:
    paths = ConmonPaths(Path("/r/c1"), Path("/r/c1/pidfile"), Path("/r/exits"), "k8s-file:/l")
    argv = container_argv("conmon", "/usr/bin/crun", Path("/r/crun"), "c1", paths,
                          tty=True, stdin=True, stdin_once=False)  # fmt: skip
    joined = " ".join(argv)
    assert "--api-version 1 --sync -c c1 -u c1" in joined
    assert "-r /usr/bin/crun --runtime-arg --root --runtime-arg /r/crun" in joined
    assert "--exit-dir /r/exits --full-attach -l k8s-file:/l" in joined
    assert argv[-3:] == ["-t", "-i", "--leave-stdin-open"]
    once = container_argv("conmon", "/x", Path("/r"), "c1", paths, tty=False, stdin=True,
                          stdin_once=True)  # fmt: skip
    assert "-i" in once and "--leave-stdin-open" not in once and "-t" not in once


def test_exec_argv_attaches_and_never_leaves_stdin_open() -> None:
    paths = ConmonPaths(Path("/r/c1/exec/e"), Path("/r/c1/exec/e/pid"), Path("/r/c1/exec/e"), "none")
    argv = exec_argv("conmon", "/x", Path("/r"), "c1", "e", paths, Path("/p.json"), tty=False, stdin=True)
    assert argv[-5:-1] == ["--exec", "--exec-process-spec", "/p.json", "--exec-attach"]
    assert argv[-1] == "-i" and "-u" in argv and argv[argv.index("-u") + 1] == "e"


def test_sync_reader_splits_messages(tmp_path: Path) -> None:
    import os

    r, w = os.pipe()
    os.write(w, b'{"data": 42}\n{"data": -1, "message": "boom"}\nnot json\n')
    os.close(w)
    reader = SyncReader(r)
    assert reader.read_blocking(1) == {"data": 42}
    assert reader.read_blocking(1) == {"data": -1, "message": "boom"}
    assert reader.read_blocking(1) == {"data": -1, "message": "not json"}
    assert reader.read_blocking(1) is None
    reader.close()


def test_overlay_options() -> None:
    opts = overlay_options([Path("/l/top"), Path("/l/base")], Path("/c/upper"), Path("/c/work"))
    assert opts == "lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work,redirect_dir=off,metacopy=off"
    assert overlay_options([Path("/l")], Path("/u"), Path("/w"), metacopy=True).endswith(
        ",redirect_dir=on,metacopy=on"
    )
    with pytest.raises(InvalidArgument):
        overlay_options([Path("/l:x")], Path("/u"), Path("/w"))
