"""docker cp and commit against a running container that swaps a directory for a symlink to a
host path in a loop (the CVE-2018-15664 pattern): the daemon never reads or writes the host."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root

# /a is the real directory most of the time and, briefly, a symlink to the host directory.
SWAPPER = ("mkdir -p /a; echo container > /a/secret; "
           "while :; do mv /a /a.real; ln -s {host} /a; rm /a; mv /a.real /a; usleep 2000; done")


def test_cp_and_commit_never_follow_a_symlink_swapped_in(daemon: BerthDaemon, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret").write_text("HOST SECRET\n")
    (tmp_path / "planted").write_text("planted\n")
    ctr = f"cprace-{secrets.token_hex(3)}"
    image = f"cprace-img-{secrets.token_hex(3)}"
    daemon.docker("run", "-d", "--name", ctr, "busybox", "sh", "-c", SWAPPER.format(host=host), check=True)
    try:
        # Reads alone first: they leave the container as it is, so /a keeps being its directory
        # most of the time, and some copies must work. (Once writes race the swapper, a write
        # landing while /a is missing makes /a anew, as dockerd's extraction also would, and the
        # swapper then nests /a.real inside it: /a/secret may be gone for good after that.)
        copied = 0
        for _ in range(25):
            out = daemon.docker("cp", f"{ctr}:/a/secret", "-")
            assert "HOST SECRET" not in out.stdout
            copied += "container" in out.stdout
        assert copied > 0  # the copies do work while /a is the container's directory
        for _ in range(25):
            assert "HOST SECRET" not in daemon.docker("cp", f"{ctr}:/a/secret", "-").stdout
            daemon.docker("cp", str(tmp_path / "planted"), f"{ctr}:/a/")
            assert "HOST SECRET" not in daemon.docker("cp", f"{ctr}:/a", "-").stdout
        assert sorted(p.name for p in host.iterdir()) == ["secret"]
        daemon.docker("commit", "--pause=false", ctr, image, check=True)
        saved = daemon.docker("run", "--rm", image, "sh", "-c", "cat /a/secret /a.real/secret 2>/dev/null").stdout
        assert "HOST SECRET" not in saved
    finally:
        daemon.docker("rm", "-f", ctr)
        daemon.docker("rmi", "-f", image)
