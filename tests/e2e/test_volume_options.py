"""`local` driver options through the docker CLI: tmpfs volumes and bind volumes (type=none,
o=bind), mounted while containers use them, unmounted after the last one stops."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root

TMPFS_OPTS = ("--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=10m,uid=1000,mode=0770")


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _mounted(path: str) -> bool:
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


def _wait_unmounted(path: str, timeout: float = 10) -> bool:
    """`--rm` clean-up runs after the removal is reported: give it a moment."""
    deadline = time.monotonic() + timeout
    while _mounted(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _mountpoint(d: BerthDaemon, vol: str) -> str:
    return json.loads(d.docker("volume", "inspect", vol, check=True).stdout)[0]["Mountpoint"]


@pytest.fixture
def names(daemon: BerthDaemon) -> Iterator[tuple[list[str], list[str]]]:
    """(containers, volumes) the test adds to; removed afterwards, containers first."""
    ctrs: list[str] = []
    vols: list[str] = []
    yield ctrs, vols
    if ctrs:
        daemon.docker("rm", "-f", *ctrs)
    for vol in vols:
        daemon.docker("volume", "rm", vol)


def test_tmpfs_volume_is_shared_while_used_and_empty_after(daemon: BerthDaemon, names: tuple[list[str], list[str]]) -> None:
    ctrs, vols = names
    vol, a, b = _name("tmpv"), _name("ta"), _name("tb")
    ctrs += [a, b]
    vols.append(vol)
    daemon.docker("volume", "create", *TMPFS_OPTS, vol, check=True)
    info = json.loads(daemon.docker("volume", "inspect", vol, check=True).stdout)[0]
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=10m,uid=1000,mode=0770"}
    mountpoint = info["Mountpoint"]
    assert not _mounted(mountpoint)  # options are stored; nothing is mounted before a user starts
    for ctr in (a, b):
        daemon.docker("run", "-d", "--name", ctr, "-v", f"{vol}:/data", "busybox", "sleep", "300", check=True)
    assert _mounted(mountpoint)
    daemon.docker("exec", a, "sh", "-c", "echo shared > /data/f", check=True)
    assert daemon.docker("exec", b, "cat", "/data/f", check=True).stdout == "shared\n"
    owner = daemon.docker("exec", b, "stat", "-c", "%u %a", "/data", check=True).stdout
    assert owner == "1000 770\n"
    df = daemon.docker("exec", b, "df", "-k", "/data", check=True).stdout.splitlines()[-1].split()
    assert df[1] == "10240"
    daemon.docker("stop", "-t", "0", a, check=True)
    assert _mounted(mountpoint)
    assert daemon.docker("exec", b, "cat", "/data/f", check=True).stdout == "shared\n"
    daemon.docker("stop", "-t", "0", b, check=True)
    assert not _mounted(mountpoint)
    assert list(Path(mountpoint).iterdir()) == []
    daemon.docker("start", a, check=True)
    assert daemon.docker("exec", a, "ls", "-A", "/data", check=True).stdout == ""


def test_bind_volume_shows_and_keeps_host_files(daemon: BerthDaemon, names: tuple[list[str], list[str]],
                                                tmp_path: Path) -> None:
    _, vols = names
    vol = _name("bindv")
    vols.append(vol)
    (tmp_path / "in.txt").write_text("from-host\n")
    daemon.docker("volume", "create", "--driver", "local", "--opt", "type=none", "--opt", "o=bind",
                  "--opt", f"device={tmp_path}", vol, check=True)
    out = daemon.docker("run", "--rm", "-v", f"{vol}:/h", "busybox", "sh", "-c",
                        "cat /h/in.txt && echo written > /h/out.txt", check=True)
    assert out.stdout == "from-host\n"
    assert (tmp_path / "out.txt").read_text() == "written\n"
    mountpoint = _mountpoint(daemon, vol)
    assert _wait_unmounted(mountpoint)
    daemon.docker("volume", "rm", vol, check=True)
    vols.remove(vol)
    # removing the volume removes berth's directory, never the host directory it bound
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.txt"]
    assert not Path(mountpoint).exists()


def test_read_only_bind_volume(daemon: BerthDaemon, names: tuple[list[str], list[str]], tmp_path: Path) -> None:
    _, vols = names
    vol = _name("robind")
    vols.append(vol)
    (tmp_path / "in.txt").write_text("ro\n")
    daemon.docker("volume", "create", "--opt", "type=none", "--opt", "o=rbind,ro",
                  "--opt", f"device={tmp_path}", vol, check=True)
    result = daemon.docker("run", "--rm", "-v", f"{vol}:/h", "busybox", "sh", "-c", "cat /h/in.txt && touch /h/x")
    assert result.returncode == 1 and result.stdout == "ro\n"
    assert "Read-only file system" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]
    assert _wait_unmounted(_mountpoint(daemon, vol))


def test_bind_device_gone_at_start_fails_the_start_cleanly(daemon: BerthDaemon, names: tuple[list[str], list[str]],
                                                          tmp_path: Path) -> None:
    ctrs, vols = names
    vol, ctr = _name("gonebind"), _name("nodev")
    ctrs.append(ctr)
    vols.append(vol)
    device = tmp_path / "dev"
    device.mkdir()
    daemon.docker("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={device}", vol,
                  check=True)
    device.rmdir()
    result = daemon.docker("run", "--name", ctr, "-v", f"{vol}:/h", "busybox", "true")
    assert result.returncode != 0 and "failed to mount local volume" in result.stderr, result.stderr
    assert not _mounted(_mountpoint(daemon, vol))
    device.mkdir()
    daemon.docker("start", ctr, check=True)  # the device is back: the next start mounts it (moby too)
    daemon.docker("wait", ctr, check=True)
    assert _wait_unmounted(_mountpoint(daemon, vol))


@pytest.mark.parametrize("opts, message", [
    (("type=nfs", "device=:/export", "o=addr=127.0.0.1"), 'volume type "nfs" is not supported'),
    (("type=ext4", "device=/dev/sda1"), 'volume type "ext4" is not supported'),
    (("foo=bar",), 'invalid option: "foo"'),
    (("type=tmpfs",), 'missing required option: "device"'),
    (("type=tmpfs", "device=tmpfs", "o=size=lots"), 'invalid tmpfs size "lots"'),
    (("type=tmpfs", "device=tmpfs", "o=mode=999"), 'invalid tmpfs mode "999"'),
    (("type=tmpfs", "device=tmpfs", "o=huge=always"), 'invalid tmpfs option "huge=always"'),
    (("type=none", "device=/nonexistent-berth-dir", "o=bind"), "does not exist"),
    (("type=none", "device=relative", "o=bind"), "must be an absolute path"),
    (("type=none", "device=/tmp"), "needs o=bind or o=rbind"),
])
def test_refused_options(daemon: BerthDaemon, opts: tuple[str, ...], message: str) -> None:
    vol = _name("refused")
    args = [a for opt in opts for a in ("--opt", opt)]
    result = daemon.docker("volume", "create", *args, vol)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert daemon.docker("volume", "inspect", vol).returncode == 1


def test_volume_in_use_is_kept_and_unmounted_after_removal(daemon: BerthDaemon,
                                                           names: tuple[list[str], list[str]]) -> None:
    ctrs, vols = names
    vol, ctr = _name("busytmp"), _name("holder")
    ctrs.append(ctr)
    vols.append(vol)
    daemon.docker("volume", "create", "--label", f"vo={vol}", *TMPFS_OPTS, vol, check=True)
    cid = daemon.docker("run", "-d", "--name", ctr, "-v", f"{vol}:/data", "busybox", "sleep", "300",
                        check=True).stdout.strip()
    mountpoint = _mountpoint(daemon, vol)
    assert _mounted(mountpoint)
    refused = daemon.docker("volume", "rm", "-f", vol)
    assert refused.returncode == 1 and f"remove {vol}: volume is in use - [{cid}]" in refused.stderr
    assert vol not in daemon.docker("volume", "prune", "-a", "-f", "--filter", f"label=vo={vol}", check=True).stdout
    assert _mounted(mountpoint)
    daemon.docker("rm", "-f", ctr, check=True)
    ctrs.remove(ctr)
    assert not _mounted(mountpoint)
    daemon.docker("volume", "rm", vol, check=True)
    vols.remove(vol)


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_daemon_restart_keeps_the_mount_until_the_last_stop(private: BerthDaemon, how: str) -> None:
    vol, a, b = _name("livetmp"), _name("la"), _name("lb")
    private.docker("volume", "create", *TMPFS_OPTS, vol, check=True)
    private.docker("run", "-d", "--name", a, "-v", f"{vol}:/data", "busybox", "sleep", "300", check=True)
    private.docker("exec", a, "sh", "-c", "echo kept > /data/f", check=True)
    mountpoint = _mountpoint(private, vol)
    private.stop() if how == "stop" else private.kill()
    assert _mounted(mountpoint)  # containers and their volumes outlive the daemon
    private.start()
    assert _mounted(mountpoint)
    assert private.docker("exec", a, "cat", "/data/f", check=True).stdout == "kept\n"
    # the restarted daemon counts `a` as a user: a second user shares the same tmpfs ...
    private.docker("run", "-d", "--name", b, "-v", f"{vol}:/data", "busybox", "sleep", "300", check=True)
    assert private.docker("exec", b, "cat", "/data/f", check=True).stdout == "kept\n"
    private.docker("stop", "-t", "0", a, check=True)
    assert _mounted(mountpoint)
    # ... and the last stop unmounts it
    private.docker("stop", "-t", "0", b, check=True)
    assert not _mounted(mountpoint)
    private.docker("rm", a, b, check=True)
    private.docker("volume", "rm", vol, check=True)


def test_daemon_restart_unmounts_a_volume_whose_user_exited_meanwhile(private: BerthDaemon) -> None:
    vol, ctr = _name("gonetmp"), _name("gone")
    private.docker("volume", "create", *TMPFS_OPTS, vol, check=True)
    private.docker("run", "-d", "--name", ctr, "-v", f"{vol}:/data", "busybox", "sleep", "300", check=True)
    pid = int(private.docker("inspect", "-f", "{{.State.Pid}}", ctr, check=True).stdout)
    mountpoint = _mountpoint(private, vol)
    private.kill()
    os.kill(pid, signal.SIGKILL)  # the container dies while no daemon runs
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _mounted(mountpoint)
    private.start()
    assert not _mounted(mountpoint)  # settled at start: no running container holds it
    state = json.loads(private.docker("inspect", ctr, check=True).stdout)[0]["State"]
    assert state["Status"] == "exited"
    private.docker("rm", ctr, check=True)
    private.docker("volume", "rm", vol, check=True)


COMPOSE_FILE = """\
version: "3.8"
services:
  app:
    image: busybox
    command: sh -c "cat /src/in.txt > /scratch/copy && cp /scratch/copy /src/seen.txt && exec sleep 3600"
    volumes:
      - scratch:/scratch
      - hostdir:/src
volumes:
  scratch:
    driver_opts: {type: tmpfs, device: tmpfs, o: "size=5m"}
  hostdir:
    driver: local
    driver_opts: {type: none, o: bind, device: "HOSTDIR"}
"""


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_compose_driver_opts(daemon: BerthDaemon, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "in.txt").write_text("through compose\n")
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE.replace("HOSTDIR", str(host)))

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker-compose", "-p", "bvo", *args], cwd=tmp_path, env=daemon.env,
                              capture_output=True, text=True, timeout=120)

    up = compose("up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        deadline = time.monotonic() + 10
        while not (host / "seen.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (host / "seen.txt").read_text() == "through compose\n"
        scratch = json.loads(daemon.docker("volume", "inspect", "bvo_scratch", check=True).stdout)[0]
        assert scratch["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=5m"}
        assert _mounted(scratch["Mountpoint"]) and _mounted(_mountpoint(daemon, "bvo_hostdir"))
    finally:
        down = compose("down", "-v")
    assert down.returncode == 0, down.stderr
    assert daemon.docker("volume", "inspect", "bvo_scratch").returncode == 1
    assert sorted(p.name for p in host.iterdir()) == ["in.txt", "seen.txt"]


def test_cp_of_a_stopped_container_reaches_its_bind_volume(daemon: BerthDaemon, names: tuple[list[str], list[str]],
                                                           tmp_path: Path) -> None:
    """moby mounts the volumes for a cp; berth reads a bind volume's device while it is unmounted."""
    import io
    import tarfile

    from tests.helpers import DOCKER

    ctrs, vols = names
    vol, ctr = _name("cpbind"), _name("cpbindc")
    vols.append(vol)
    ctrs.append(ctr)
    (tmp_path / "in.txt").write_text("from-host\n")
    daemon.docker("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={tmp_path}", vol,
                  check=True)
    daemon.docker("create", "--name", ctr, "-v", f"{vol}:/h", "busybox", "true", check=True)
    out = subprocess.run([DOCKER, "cp", f"{ctr}:/h/in.txt", "-"], env=daemon.env, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        assert tar.extractfile("in.txt").read() == b"from-host\n"  # type: ignore[union-attr]
    src = tmp_path.parent / f"{vol}-src.txt"
    src.write_text("copied-in\n")
    try:
        daemon.docker("cp", str(src), f"{ctr}:/h/new.txt", check=True)
    finally:
        src.unlink()
    assert (tmp_path / "new.txt").read_text() == "copied-in\n"
    assert not _mounted(_mountpoint(daemon, vol))


def test_mount_volume_opt_creates_the_volume_with_its_options(daemon: BerthDaemon,
                                                              names: tuple[list[str], list[str]]) -> None:
    _, vols = names
    vol = _name("mountopt")
    vols.append(vol)
    spec = f"type=volume,src={vol},dst=/scratch,volume-opt=type=tmpfs,volume-opt=device=tmpfs"
    result = daemon.docker("run", "--rm", "--mount", spec, "busybox", "grep", " /scratch ", "/proc/mounts", check=True)
    assert "tmpfs" in result.stdout, result.stdout
    info = json.loads(daemon.docker("volume", "inspect", vol, check=True).stdout)[0]
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs"}
    assert _wait_unmounted(info["Mountpoint"])
    # kept by `volume prune -a` (moby prunes no volume with driver options); `system df` does
    # not measure it
    daemon.docker("volume", "prune", "-a", "-f", "--filter", f"name={vol}", check=True)  # only ours
    daemon.docker("volume", "inspect", vol, check=True)
    df = json.loads(daemon.docker("system", "df", "-v", "--format", "{{json .Volumes}}", check=True).stdout)
    mine = [v for v in df if v["Name"] == vol]
    assert mine and mine[0]["Size"] in ("N/A", "-1B", "-1"), mine


def test_mount_volume_label_labels_the_volume_it_creates(daemon: BerthDaemon,
                                                         names: tuple[list[str], list[str]]) -> None:
    _, vols = names
    vol = _name("mountlabel")
    vols.append(vol)
    daemon.docker("run", "--rm", "--mount", f"type=volume,src={vol},dst=/d,volume-label=team=cats,volume-label=tier",
                  "busybox", "true", check=True)
    info = json.loads(daemon.docker("volume", "inspect", vol, check=True).stdout)[0]
    assert info["Labels"] == {"team": "cats", "tier": ""}
    listed = daemon.docker("volume", "ls", "-q", "--filter", "label=team=cats", check=True).stdout.split()
    assert vol in listed
