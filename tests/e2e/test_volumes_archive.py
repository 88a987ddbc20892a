"""docker cp (both ways, symlink-safe), docker diff and docker commit through the CLI."""

from __future__ import annotations

import io
import json
import secrets
import tarfile
from pathlib import Path

import pytest

from tests.helpers import BerthDaemon, api

pytestmark = pytest.mark.root


@pytest.fixture
def box(daemon: BerthDaemon):  # type: ignore[no-untyped-def]
    name = f"box-{secrets.token_hex(3)}"
    script = "echo x > /newfile; rm /bin/ls; mkdir -p /etc/app; echo 1 > /etc/app/conf; " \
             "ln -s /../../../../etc /escape; exec sleep 600"
    daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c", script, check=True)
    for _ in range(50):
        if daemon.docker("exec", name, "test", "-L", "/escape").returncode == 0:
            break
    yield name
    daemon.docker("rm", "-f", name)


def test_diff_lists_changes(daemon: BerthDaemon, box: str) -> None:
    out = daemon.docker("diff", box, check=True).stdout.splitlines()
    assert out == ["C /bin", "D /bin/ls", "A /escape", "C /etc", "A /etc/app", "A /etc/app/conf", "A /newfile"]


def test_cp_both_ways(daemon: BerthDaemon, box: str, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("copied-in\n")
    daemon.docker("cp", str(tmp_path / "in.txt"), f"{box}:/etc/app/", check=True)
    assert daemon.docker("exec", box, "cat", "/etc/app/in.txt", check=True).stdout == "copied-in\n"
    daemon.docker("cp", f"{box}:/etc/app", str(tmp_path / "out"), check=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["conf", "in.txt"]
    missing = daemon.docker("cp", f"{box}:/nope", str(tmp_path / "x"))
    assert missing.returncode == 1 and "Could not find the file /nope" in missing.stderr
    daemon.docker("stop", "-t", "0", box, check=True)  # a stopped container works too
    daemon.docker("cp", f"{box}:/newfile", str(tmp_path / "newfile"), check=True)
    assert (tmp_path / "newfile").read_text() == "x\n"


def test_cp_never_follows_symlinks_out_of_the_container(daemon: BerthDaemon, box: str, tmp_path: Path) -> None:
    marker = f"berth-escape-{secrets.token_hex(4)}"
    (tmp_path / marker).write_text("payload\n")
    # /escape -> /../../../../etc must land in the container's /etc, not the host's
    daemon.docker("cp", str(tmp_path / marker), f"{box}:/escape/", check=True)
    assert not Path("/etc", marker).exists()
    assert daemon.docker("exec", box, "cat", f"/etc/{marker}", check=True).stdout == "payload\n"
    # an archive entry with .. is refused
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../../../../tmp/" + marker)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    status, body = api(daemon.sock, "PUT", f"/v1.50/containers/{box}/archive?path=/etc", raw=buf.getvalue(),
                       headers={"Content-Type": "application/x-tar"})
    assert status == 400 and "not allowed" in body["message"]
    assert not Path("/tmp", marker).exists()


def test_commit_makes_the_rw_layer_an_image(daemon: BerthDaemon, box: str) -> None:
    tag = f"committed-{secrets.token_hex(3)}:v1"
    image_id = daemon.docker("commit", "-c", "VOLUME /seed", "-m", "snap", box, tag, check=True).stdout.strip()
    try:
        assert image_id.startswith("sha256:")
        out = daemon.docker("run", "--rm", tag, "sh", "-c", "cat /newfile /etc/app/conf; ls /bin/ls", )
        assert out.stdout == "x\n1\n" and "No such file" in out.stderr
        config = json.loads(daemon.docker("image", "inspect", tag, check=True).stdout)[0]
        assert "/seed" in config["Config"]["Volumes"] and config["Comment"] == "snap"
    finally:
        daemon.docker("rmi", "-f", tag)


def test_image_volume_is_seeded_from_the_image(daemon: BerthDaemon) -> None:
    src = f"seed-{secrets.token_hex(3)}"
    tag = f"seeded-{secrets.token_hex(3)}:v1"
    daemon.docker("run", "--name", src, "busybox", "sh", "-c", "mkdir /seed && echo seeded > /seed/f", check=True)
    try:
        daemon.docker("commit", "-c", "VOLUME /seed", src, tag, check=True)
        ctr = f"user-{secrets.token_hex(3)}"
        out = daemon.docker("run", "--name", ctr, tag, "cat", "/seed/f", check=True).stdout
        assert out == "seeded\n"
        mounts = json.loads(daemon.docker("inspect", ctr, check=True).stdout)[0]["Mounts"]
        assert mounts[0]["Destination"] == "/seed" and mounts[0]["Type"] == "volume"
        daemon.docker("rm", "-v", ctr, check=True)
    finally:
        daemon.docker("rm", "-f", src)
        daemon.docker("rmi", "-f", tag)
