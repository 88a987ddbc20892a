"""docker cp through a container's volumes and bind mounts (running or not), and commit's pause."""

from __future__ import annotations

import io
import json
import secrets
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BerthDaemon, api

pytestmark = pytest.mark.root


@pytest.fixture
def vol(daemon: BerthDaemon) -> Iterator[str]:
    name = f"cpv-{secrets.token_hex(3)}"
    daemon.docker("volume", "create", name, check=True)
    yield name
    daemon.docker("volume", "rm", "-f", name)


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _events(daemon: BerthDaemon, container: str, since: str) -> list[str]:
    return daemon.docker("events", "--since", since, "--until", str(time.time() + 0.5),
                         "--filter", f"container={container}", "--format", "{{.Action}}").stdout.split()


def test_cp_reaches_volumes_and_binds_of_an_exited_container(daemon: BerthDaemon, vol: str, tmp_path: Path) -> None:
    bind = tmp_path / "bind"
    bind.mkdir()
    ctr = _name("cpx")
    daemon.docker("run", "--name", ctr, "-v", f"{vol}:/data", "-v", f"{bind}:/srv/bind", "busybox", "sh", "-c",
                  "echo vol > /data/f; echo bind > /srv/bind/g", check=True)
    try:
        daemon.docker("cp", f"{ctr}:/data/f", str(tmp_path / "f"), check=True)
        assert (tmp_path / "f").read_text() == "vol\n"
        daemon.docker("cp", f"{ctr}:/srv/bind/g", str(tmp_path / "g"), check=True)
        assert (tmp_path / "g").read_text() == "bind\n"
        # into both: the files land in the volume and in the host directory, not the rootfs
        (tmp_path / "in.txt").write_text("copied-in\n")
        daemon.docker("cp", str(tmp_path / "in.txt"), f"{ctr}:/data/", check=True)
        daemon.docker("cp", str(tmp_path / "in.txt"), f"{ctr}:/srv/bind/", check=True)
        assert (bind / "in.txt").read_text() == "copied-in\n"
        out = daemon.docker("run", "--rm", "-v", f"{vol}:/v", "busybox", "cat", "/v/in.txt", check=True).stdout
        assert out == "copied-in\n"
        # a directory copy walks the mounts under it
        daemon.docker("cp", f"{ctr}:/srv", str(tmp_path / "srv"), check=True)
        assert sorted(p.name for p in (tmp_path / "srv" / "bind").iterdir()) == ["g", "in.txt"]
        assert daemon.docker("diff", ctr, check=True).stdout.count("in.txt") == 0
    finally:
        daemon.docker("rm", "-f", ctr)


def test_cp_into_a_created_container_and_the_tmpfs_rule(daemon: BerthDaemon, vol: str, tmp_path: Path) -> None:
    ctr = _name("cpc")
    daemon.docker("create", "--name", ctr, "-v", f"{vol}:/fresh", "--tmpfs", "/scratch", "busybox",
                  "sh", "-c", "cat /fresh/seed; echo t > /scratch/t", check=True)
    try:
        (tmp_path / "seed").write_text("seeded\n")
        daemon.docker("cp", str(tmp_path / "seed"), f"{ctr}:/fresh/", check=True)  # never started yet
        assert "seeded" in daemon.docker("container", "cp", f"{ctr}:/fresh/seed", "-", check=True).stdout
        assert daemon.docker("start", "-a", ctr, check=True).stdout == "seeded\n"
        # tmpfs is not part of cp's view (Docker: the rootfs directory beneath it)
        gone = daemon.docker("cp", f"{ctr}:/scratch/t", str(tmp_path / "t"))
        assert gone.returncode == 1 and "Could not find the file /scratch/t" in gone.stderr
        daemon.docker("cp", str(tmp_path / "seed"), f"{ctr}:/scratch/", check=True)
        daemon.docker("cp", f"{ctr}:/scratch/seed", str(tmp_path / "back"), check=True)
        assert (tmp_path / "back").read_text() == "seeded\n"
    finally:
        daemon.docker("rm", "-f", ctr)


@pytest.mark.parametrize("running", [False, True], ids=["exited", "running"])
def test_read_only_mounts_refuse_cp_into_them(daemon: BerthDaemon, vol: str, tmp_path: Path, running: bool) -> None:
    bind = tmp_path / "robind"
    bind.mkdir()
    ctr = _name("cpro")
    args = ["-v", f"{vol}:/ro:ro", "-v", f"{bind}:/robind:ro", "-v", f"{tmp_path}:/rw", "busybox"]
    if running:
        daemon.docker("run", "-d", "--name", ctr, *args, "sleep", "600", check=True)
    else:
        daemon.docker("create", "--name", ctr, *args, "true", check=True)
    try:
        (tmp_path / "x.txt").write_text("x\n")
        for dest in ("/ro/", "/robind/", "/rw/robind/"):
            result = daemon.docker("cp", str(tmp_path / "x.txt"), f"{ctr}:{dest}")
            # /rw/robind is the same host directory reached through a writable mount
            if dest == "/rw/robind/":
                assert result.returncode == 0, result.stderr
                continue
            assert result.returncode == 1 and "mounted volume is marked read-only" in result.stderr, result.stderr
        assert [p.name for p in bind.iterdir()] == ["x.txt"]
        ls = daemon.docker("run", "--rm", "-v", f"{vol}:/v", "busybox", "ls", "/v", check=True).stdout
        assert ls == ""
        # reading is fine
        daemon.docker("cp", f"{ctr}:/robind/x.txt", str(tmp_path / "read-back"), check=True)
        if running:  # a running container's view is the same one
            assert json.loads(daemon.docker("inspect", ctr, check=True).stdout)[0]["State"]["Running"]
    finally:
        daemon.docker("rm", "-f", ctr)


def test_symlinks_in_a_volume_never_escape(daemon: BerthDaemon, vol: str, tmp_path: Path) -> None:
    ctr = _name("cpesc")
    marker = f"berth-escape-{secrets.token_hex(4)}"
    daemon.docker("run", "--name", ctr, "-v", f"{vol}:/data", "busybox", "sh", "-c",
                  "ln -s /../../../../../etc /data/abs; ln -s ../../../../../../../tmp /data/rel", check=True)
    try:
        (tmp_path / marker).write_text("payload\n")
        for link in ("abs", "rel"):
            daemon.docker("cp", str(tmp_path / marker), f"{ctr}:/data/{link}/", check=True)
        # nothing on the host: the links resolved in the container, to its /etc and /tmp
        assert not Path("/etc", marker).exists() and not Path("/tmp", marker).exists()
        for where in ("/etc", "/tmp"):
            got = daemon.docker("cp", f"{ctr}:{where}/{marker}", str(tmp_path / f"got{where.replace('/', '-')}"))
            assert got.returncode == 0, got.stderr
        # reading through them reads the container's files: its /etc/hostname is its id
        cid = daemon.docker("inspect", "-f", "{{.Id}}", ctr, check=True).stdout.strip()
        daemon.docker("cp", f"{ctr}:/data/abs/hostname", str(tmp_path / "hostname"), check=True)
        assert (tmp_path / "hostname").read_text().strip() == cid[:12]
        # the links themselves are archived as links (the CLI refuses to unpack these ones)
        status, body = api(daemon.sock, "GET", f"/v1.50/containers/{ctr}/archive?path=/data/abs")
        assert status == 200
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            (member,) = tar.getmembers()
            assert member.issym() and member.linkname == "/../../../../../etc"
    finally:
        daemon.docker("rm", "-f", ctr)


def test_commit_pauses_a_running_container(daemon: BerthDaemon) -> None:
    ctr = _name("cmtp")
    tags: list[str] = []
    daemon.docker("run", "-d", "--name", ctr, "busybox", "sh", "-c", "echo x > /made; exec sleep 600", check=True)
    try:
        since = str(time.time())
        tags.append(f"cmtp-{secrets.token_hex(3)}:a")
        daemon.docker("commit", ctr, tags[-1], check=True)
        assert _events(daemon, ctr, since) == ["pause", "commit", "unpause"]
        state = json.loads(daemon.docker("inspect", ctr, check=True).stdout)[0]["State"]
        assert state["Running"] and not state["Paused"]
        assert daemon.docker("exec", ctr, "cat", "/made", check=True).stdout == "x\n"

        since = str(time.time())
        tags.append(f"cmtp-{secrets.token_hex(3)}:b")
        daemon.docker("commit", "--pause=false", ctr, tags[-1], check=True)
        assert _events(daemon, ctr, since) == ["commit"]

        daemon.docker("pause", ctr, check=True)  # one already paused stays paused
        since = str(time.time())
        tags.append(f"cmtp-{secrets.token_hex(3)}:c")
        daemon.docker("commit", ctr, tags[-1], check=True)
        assert _events(daemon, ctr, since) == ["commit"]
        assert json.loads(daemon.docker("inspect", ctr, check=True).stdout)[0]["State"]["Paused"] is True
        daemon.docker("unpause", ctr, check=True)

        # a commit failing after the pause (an unknown --change instruction) unpauses too
        since = str(time.time())
        bad = daemon.docker("commit", "-c", "BOGUS x", ctr)
        assert bad.returncode != 0
        assert _events(daemon, ctr, since) == ["pause", "unpause"]
        assert json.loads(daemon.docker("inspect", ctr, check=True).stdout)[0]["State"]["Paused"] is False
        out = daemon.docker("run", "--rm", tags[0], "cat", "/made", check=True).stdout
        assert out == "x\n"
    finally:
        daemon.docker("rm", "-f", ctr)
        for tag in tags:
            daemon.docker("rmi", "-f", tag)


@pytest.mark.parametrize("running", [False, True])
def test_export_is_the_root_filesystem_without_volumes(daemon: BerthDaemon, vol: str, running: bool) -> None:
    """`docker export`: the container's files (its changes included), entries named relative to
    /, its volumes' contents left out (moby exports the container's base filesystem)."""
    import subprocess

    from tests.helpers import DOCKER

    ctr = _name("export")
    script = "echo hi > /made; echo v > /vol/inside" + ("; exec sleep 300" if running else "")
    daemon.docker("run", "-d" if running else "-i", "--name", ctr, "-v", f"{vol}:/vol", "busybox", "sh", "-c", script,
                  check=True)
    try:
        for _ in range(50):
            if daemon.docker("exec", ctr, "cat", "/made").stdout if running else True:
                break
            time.sleep(0.1)
        since = str(time.time() - 1)
        out = subprocess.run([DOCKER, "export", ctr], env=daemon.env, capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
            names = set(tar.getnames())
            assert tar.extractfile("made").read() == b"hi\n"  # type: ignore[union-attr]
        assert {"bin/busybox", "etc", "vol"} <= names
        assert "vol/inside" not in names and not any(n.startswith(("/", "./")) for n in names)
        assert "export" in _events(daemon, ctr, since)
    finally:
        daemon.docker("rm", "-f", ctr)
    assert daemon.docker("export", "no-such-container").returncode != 0
