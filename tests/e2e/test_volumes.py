"""Volumes and mounts through the docker CLI: named, anonymous, bind (ro/rw), tmpfs, volumes-from."""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path

import pytest

from tests.helpers import BerthDaemon, api

pytestmark = pytest.mark.root


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_named_volume_outlives_its_container(daemon: BerthDaemon) -> None:
    vol = _name("data")
    try:
        daemon.docker("run", "--name", "writer-" + vol, "-v", f"{vol}:/data", "busybox",
                      "sh", "-c", "echo persisted > /data/f", check=True)
        daemon.docker("rm", "-v", "writer-" + vol, check=True)  # -v spares named volumes
        out = daemon.docker("run", "--rm", "-v", f"{vol}:/data", "busybox", "cat", "/data/f", check=True)
        assert out.stdout == "persisted\n"
        info = json.loads(daemon.docker("volume", "inspect", vol, check=True).stdout)[0]
        assert info["Name"] == vol and info["Driver"] == "local" and info["Mountpoint"].endswith(f"/{vol}/_data")
        assert Path(info["Mountpoint"], "f").read_text() == "persisted\n"
    finally:
        daemon.docker("volume", "rm", vol)
    assert daemon.docker("volume", "inspect", vol).returncode == 1


def test_read_only_bind_mount_refuses_writes(daemon: BerthDaemon) -> None:
    with tempfile.TemporaryDirectory() as host_dir:
        Path(host_dir, "in.txt").write_text("from-host\n")
        ro = daemon.docker("run", "--rm", "-v", f"{host_dir}:/h:ro", "busybox",
                           "sh", "-c", "cat /h/in.txt && touch /h/x")
        assert ro.returncode == 1 and ro.stdout == "from-host\n"
        assert "Read-only file system" in ro.stderr
        assert not Path(host_dir, "x").exists()
        assert daemon.docker("run", "--rm", "--mount", f"type=bind,src={host_dir},dst=/h,readonly",
                             "busybox", "touch", "/h/y").returncode == 1
        rw = daemon.docker("run", "--rm", "-v", f"{host_dir}:/h", "busybox", "sh", "-c", "echo hi > /h/out.txt")
        assert rw.returncode == 0, rw.stderr
        assert Path(host_dir, "out.txt").read_text() == "hi\n"


def test_volume_in_use_cannot_be_removed(daemon: BerthDaemon) -> None:
    vol, ctr = _name("busy"), _name("holder")
    cid = daemon.docker("create", "--name", ctr, "-v", f"{vol}:/data", "busybox", "true", check=True).stdout.strip()
    try:
        result = daemon.docker("volume", "rm", vol)
        assert result.returncode == 1
        assert f"remove {vol}: volume is in use - [{cid}]" in result.stderr
        status, body = api(daemon.sock, "DELETE", f"/v1.50/volumes/{vol}")
        assert status == 409
        inspect = json.loads(daemon.docker("inspect", ctr, check=True).stdout)[0]
        assert inspect["Mounts"] == [{"Type": "volume", "Name": vol, "Source": inspect["Mounts"][0]["Source"],
                                      "Destination": "/data", "Driver": "local", "Mode": "z", "RW": True,
                                      "Propagation": ""}]
    finally:
        daemon.docker("rm", "-f", ctr)
        daemon.docker("volume", "rm", vol)
    status, body = api(daemon.sock, "GET", f"/v1.50/volumes/{vol}")
    assert status == 404 and body == {"message": f"get {vol}: no such volume"}


def test_anonymous_volume_removed_with_rm_v(daemon: BerthDaemon) -> None:
    ctr = _name("anon")
    daemon.docker("run", "--name", ctr, "-v", "/scratch", "busybox", "sh", "-c", "echo x > /scratch/f", check=True)
    mounts = json.loads(daemon.docker("inspect", ctr, check=True).stdout)[0]["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Destination"] == "/scratch"
    anon = mounts[0]["Name"]
    assert len(anon) == 64
    assert daemon.docker("volume", "inspect", anon).returncode == 0
    daemon.docker("rm", "-v", ctr, check=True)
    assert daemon.docker("volume", "inspect", anon).returncode == 1


def test_tmpfs_and_volumes_from(daemon: BerthDaemon) -> None:
    out = daemon.docker("run", "--rm", "--tmpfs", "/run/t:size=1m", "busybox", "sh", "-c",
                        "grep ' /run/t ' /proc/mounts", check=True).stdout
    assert "tmpfs" in out and "size=1024k" in out
    vol, src = _name("shared"), _name("src")
    daemon.docker("create", "--name", src, "-v", f"{vol}:/shared", "busybox", "true", check=True)
    try:
        daemon.docker("run", "--rm", "--volumes-from", src, "busybox", "sh", "-c", "echo v > /shared/f", check=True)
        ro = daemon.docker("run", "--rm", "--volumes-from", f"{src}:ro", "busybox", "sh", "-c",
                           "cat /shared/f && touch /shared/g")
        assert ro.stdout == "v\n" and ro.returncode == 1
    finally:
        daemon.docker("rm", "-f", src)
        daemon.docker("volume", "rm", vol)


def test_volume_api_verbs(daemon: BerthDaemon) -> None:
    vol = _name("api")
    created = daemon.docker("volume", "create", "--label", "team=a", vol, check=True).stdout.strip()
    assert created == vol
    assert daemon.docker("volume", "create", vol).returncode == 0  # idempotent, like Docker
    listed = daemon.docker("volume", "ls", "-q", "--filter", "label=team=a", check=True).stdout.split()
    assert listed == [vol]
    bad = daemon.docker("volume", "create", "bad/name")
    assert bad.returncode == 1 and "includes invalid characters" in bad.stderr
    anon = daemon.docker("volume", "create", check=True).stdout.strip()
    daemon.docker("volume", "rm", anon, check=True)
    pruned = daemon.docker("volume", "prune", "-a", "-f", "--filter", "label=team=a", check=True).stdout
    assert vol in pruned
    assert daemon.docker("volume", "inspect", vol).returncode == 1
