"""Extended attributes (file capabilities) survive `docker commit` and RUN layers of `docker build`.

busybox has no setcap/setfattr, so the test sets the attributes from the host side, on the
container's overlay upper dir (GraphDriver.Data.UpperDir), while the container is stopped.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root

# cap_setuid + cap_net_raw, effective (v2 vfs_cap_data; the bytes are not valid UTF-8).
CAPS = struct.pack("<IIIII", 0x02000001, (1 << 13) | (1 << 7), 0, 0, 0)


def _inspect(daemon: BerthDaemon, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(daemon.docker("inspect", *args, check=True).stdout)[0]


def _top_layer_members(daemon: BerthDaemon, image: str, tmp_path: Path) -> dict[str, tarfile.TarInfo]:
    """The members of the image's topmost layer, read from `docker save`."""
    archive = tmp_path / f"{secrets.token_hex(3)}.tar"
    daemon.docker("save", "-o", str(archive), image, check=True, timeout=120)
    with tarfile.open(archive) as saved:
        manifest = json.load(saved.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = saved.extractfile(manifest[0]["Layers"][-1])
        assert layer is not None
        with tarfile.open(fileobj=layer, mode="r:*") as tar:
            return {m.name: m for m in tar.getmembers()}


def _xattr(info: tarfile.TarInfo, name: str) -> bytes | None:
    value = info.pax_headers.get("SCHILY.xattr." + name)
    return None if value is None else value.encode("utf-8", "surrogateescape")


@pytest.fixture
def capped(daemon: BerthDaemon) -> Iterator[str]:
    """A committed image whose /ping carries file capabilities and a user xattr."""
    name, tag = f"caps-{secrets.token_hex(3)}", f"capped-{secrets.token_hex(3)}:v1"
    daemon.docker("run", "--name", name, "busybox", "sh", "-c", "cp /bin/busybox /ping && chmod 755 /ping",
                  check=True)
    try:
        upper = Path(_inspect(daemon, name)["GraphDriver"]["Data"]["UpperDir"])
        os.setxattr(upper / "ping", "security.capability", CAPS)
        os.setxattr(upper / "ping", "user.origin", b"test")
        daemon.docker("commit", name, tag, check=True)
        yield tag
    finally:
        daemon.docker("rm", "-f", name)
        daemon.docker("rmi", "-f", tag)


def test_commit_keeps_file_capabilities(daemon: BerthDaemon, capped: str, tmp_path: Path) -> None:
    layer = _top_layer_members(daemon, capped, tmp_path)
    assert _xattr(layer["ping"], "security.capability") == CAPS
    assert _xattr(layer["ping"], "user.origin") == b"test"

    ctr = f"capuser-{secrets.token_hex(3)}"
    daemon.docker("run", "-d", "--name", ctr, capped, "sleep", "600", check=True)
    try:
        pid = _inspect(daemon, ctr)["State"]["Pid"]
        path = f"/proc/{pid}/root/ping"
        assert os.getxattr(path, "security.capability") == CAPS
        assert os.getxattr(path, "user.origin") == b"test"
    finally:
        daemon.docker("rm", "-f", ctr)


def test_run_layer_keeps_copied_up_capabilities(daemon: BerthDaemon, capped: str, tmp_path: Path) -> None:
    # `touch` copies /ping up into the RUN step's upper dir; overlayfs copies its xattrs along.
    tag = f"capbuild-{secrets.token_hex(3)}"
    daemon.docker("build", "-t", tag, "-", input=f"FROM {capped}\nRUN touch /ping /plain\n".encode(),
                  check=True, timeout=120)
    try:
        layer = _top_layer_members(daemon, tag, tmp_path)
        assert _xattr(layer["ping"], "security.capability") == CAPS
        assert _xattr(layer["plain"], "security.capability") is None
    finally:
        daemon.docker("rmi", "-f", tag)


def test_copy_from_the_context_keeps_file_capabilities(daemon: BerthDaemon, tmp_path: Path) -> None:
    # The docker CLI puts security.capability into the context tar (moby's archive does).
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "ping").write_bytes(b"#!/bin/sh\n")
    os.setxattr(ctx / "ping", "security.capability", CAPS)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY ping /bin/ping\n")
    tag = f"capcopy-{secrets.token_hex(3)}"
    daemon.docker("build", "-t", tag, str(ctx), check=True, timeout=120)
    try:
        layer = _top_layer_members(daemon, tag, tmp_path)
        assert _xattr(layer["bin/ping"], "security.capability") == CAPS
    finally:
        daemon.docker("rmi", "-f", tag)


def test_cp_out_carries_the_file_capability_and_no_host_names(daemon: BerthDaemon, capped: str) -> None:
    """moby's cp tarballer: security.capability travels (other xattrs do not), no owner names."""
    import io
    import subprocess

    from tests.helpers import DOCKER

    ctr = f"capcp-{secrets.token_hex(3)}"
    daemon.docker("create", "--name", ctr, capped, "true", check=True)
    try:
        out = subprocess.run([DOCKER, "cp", f"{ctr}:/ping", "-"], env=daemon.env, capture_output=True,
                             timeout=60, check=True)
        with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
            [member] = tar.getmembers()
        assert member.name == "ping" and member.isreg()
        assert _xattr(member, "security.capability") == CAPS
        assert _xattr(member, "user.origin") is None
        assert member.uname == member.gname == ""
    finally:
        daemon.docker("rm", "-f", ctr)
