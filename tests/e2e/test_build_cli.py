"""`docker build` (legacy builder, POST /build) with the real docker CLI against a berth daemon."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import BERTH, DOCKER, REPO, BerthDaemon

pytestmark = pytest.mark.root

CATS = REPO / "examples" / "container-of-cats"
CATS_PORT = 18081  # test_docker_cli.py serves on 18080


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, resp.read()
        except Exception as err:  # noqa: BLE001 - httpd may still be starting
            last = err
            time.sleep(0.05)
    raise AssertionError(f"GET {url} failed: {last}")


def build_stdin(daemon: BerthDaemon, dockerfile: str, *args: str) -> subprocess.CompletedProcess[str]:
    return daemon.docker("build", *args, "-", input=dockerfile.encode())


def test_container_of_cats(daemon: BerthDaemon) -> None:
    result = daemon.docker("build", "-t", "containerofcats", str(CATS), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Step 1/8 : FROM busybox" in result.stdout
    assert "Successfully tagged containerofcats:latest" in result.stdout
    assert "containerofcats" in daemon.docker("images", check=True).stdout

    rows = daemon.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", "containerofcats",
                         check=True).stdout.splitlines()
    base_rows = daemon.docker("history", "-q", "busybox", check=True).stdout.splitlines()
    assert len(rows) == 7 + len(base_rows)  # one row per step after FROM
    assert rows[0].endswith('CMD ["httpd" "-f" "-v" "-p" "80" "-h" "/var/www"]')
    assert "COPY dir:" in rows[3] and "chmod -R a+rX" in rows[2]

    run = daemon.docker("run", "-d", "-p", f"{CATS_PORT}:80", "containerofcats", check=True)
    container = run.stdout.strip()
    try:
        status, body = http_get(f"http://127.0.0.1:{CATS_PORT}/")
        assert status == 200 and b"Container of Cats" in body
        status, svg = http_get(f"http://127.0.0.1:{CATS_PORT}/cats/ginger.svg")
        assert status == 200 and svg.startswith(b"<svg")
    finally:
        daemon.docker("rm", "-f", container)


def test_rebuild_is_fully_cached(daemon: BerthDaemon) -> None:
    daemon.docker("build", "-t", "containerofcats", str(CATS), check=True, timeout=120)
    again = daemon.docker("build", "-t", "containerofcats", str(CATS), check=True)
    assert again.stdout.count(" ---> Using cache") == 7
    assert "Running in" not in again.stdout


def test_failing_run_sets_the_exit_status(daemon: BerthDaemon) -> None:
    result = build_stdin(daemon, "FROM busybox\nRUN echo about to fail && exit 3\n")
    assert result.returncode == 3
    assert "about to fail" in result.stdout
    assert "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3" in result.stderr
    assert daemon.docker("ps", "-aq", check=True).stdout.strip() == ""  # build containers never linger


def test_parse_error_names_the_line(daemon: BerthDaemon) -> None:
    result = build_stdin(daemon, "FROM busybox\nFOO bar\n")
    assert result.returncode == 1
    assert "Error response from daemon: Dockerfile:2: unknown instruction: FOO" in result.stderr


def test_build_flags(daemon: BerthDaemon, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello\n")
    dockerfile = tmp_path / "elsewhere.Dockerfile"  # -f outside the context
    dockerfile.write_text("FROM busybox AS first\nARG WHO=nobody\nCOPY hello.txt /\n"
                          "RUN echo $WHO >> /hello.txt\nFROM first AS second\nRUN false\n")
    iidfile = tmp_path / "iid"
    result = daemon.docker("build", "-q", "-f", str(dockerfile), "--target", "first", "--build-arg", "WHO=cats",
                           "--label", "team=cats", "-t", "flags:1", "-t", "flags:2", "--iidfile", str(iidfile),
                           str(ctx))
    assert result.returncode == 0, result.stderr
    image_id = result.stdout.strip()
    assert image_id.startswith("sha256:") and iidfile.read_text().strip() == image_id
    inspect = json.loads(daemon.docker("image", "inspect", "flags:2", check=True).stdout)[0]
    assert inspect["Id"] == image_id and inspect["Config"]["Labels"] == {"team": "cats"}
    out = daemon.docker("run", "--rm", "flags:1", "cat", "/hello.txt", check=True).stdout
    assert out == "hello\ncats\n"


def test_gzip_context_on_stdin(daemon: BerthDaemon) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\nCOPY x /x\nCMD [\"cat\", \"/x\"]\n"), ("x", b"zipped\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = subprocess.run([DOCKER, "build", "-t", "gz", "-"], input=gzip.compress(buf.getvalue()),
                            env=daemon.env, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert daemon.docker("run", "--rm", "gz", check=True).stdout == "zipped\n"


def test_image_prune_removes_dangling_build_leftovers(daemon: BerthDaemon) -> None:
    # Labelled, so the prune touches only this test's images in the shared daemon.
    for cmd in ("one", "two"):
        daemon.docker("build", "-t", "prune-me", "-", check=True,
                      input=f'FROM busybox\nLABEL prune-test=1\nCMD ["{cmd}"]\n'.encode())
    dangling = daemon.docker("images", "-q", "--filter", "dangling=true", "--filter", "label=prune-test",
                             check=True).stdout.split()
    assert dangling
    result = daemon.docker("image", "prune", "-f", "--filter", "label=prune-test", check=True)
    assert "Total reclaimed space" in result.stdout and "deleted: sha256:" in result.stdout.lower()
    assert daemon.docker("images", "-q", "--filter", "dangling=true", "--filter", "label=prune-test",
                         check=True).stdout.split() == []
    assert daemon.docker("run", "--rm", "prune-me", "echo", "still here", check=True).stdout == "still here\n"


def berth(daemon: BerthDaemon, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([BERTH, *args], env=daemon.env, input=input, capture_output=True, timeout=120)


def test_berth_build_verb(daemon: BerthDaemon, tmp_path: Path) -> None:
    iid = tmp_path / "iid"
    result = berth(daemon, "build", "-t", "berth-cats", "-t", "berth-cats:2", "--iidfile", str(iid), str(CATS))
    assert result.returncode == 0, result.stderr
    assert b"Successfully tagged berth-cats:latest" in result.stdout
    inspect = json.loads(daemon.docker("image", "inspect", "berth-cats:2", check=True).stdout)[0]
    assert inspect["Id"] == iid.read_text()
    failed = berth(daemon, "build", "-", input=b"FROM busybox\nRUN exit 4\n")
    assert failed.returncode == 4
    assert b"returned a non-zero code: 4" in failed.stderr
    bad = berth(daemon, "build", "-", input=b"FROM busybox\nNOPE\n")
    assert bad.returncode == 1 and b"Dockerfile:2: unknown instruction: NOPE" in bad.stderr


def test_builder_prune_forgets_the_cache(private: BerthDaemon) -> None:
    """`docker builder prune` (POST /build/prune, also part of `docker system prune`) empties the
    build cache: the next build runs its steps again."""
    dockerfile = "FROM busybox\nRUN echo pruned > /p\n"
    assert build_stdin(private, dockerfile, "-t", "prune-me").returncode == 0
    assert " ---> Using cache" in build_stdin(private, dockerfile, "-t", "prune-me").stdout
    pruned = private.docker("builder", "prune", "-f")
    assert pruned.returncode == 0, pruned.stderr
    assert "Total" in pruned.stdout
    assert " ---> Using cache" not in build_stdin(private, dockerfile, "-t", "prune-me").stdout
    refused = private.docker("builder", "prune", "-f", "--filter", "bogus=1")
    assert refused.returncode != 0 and "invalid filter 'bogus'" in refused.stderr
    system = private.docker("system", "prune", "-f")
    assert system.returncode == 0, system.stderr


def _tar_bytes(members: list[tarfile.TarInfo], data: bytes = b"inside\n") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info in members:
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def test_add_refuses_an_archive_member_leaving_the_destination(daemon: BerthDaemon, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    good = tarfile.TarInfo("pkg/README")
    evil = tarfile.TarInfo("../../evil-from-add")
    (ctx / "good.tar").write_bytes(_tar_bytes([good]))
    (ctx / "evil.tar").write_bytes(_tar_bytes([good, evil]))
    (ctx / "Dockerfile").write_text("FROM busybox\nADD good.tar /opt/\nADD evil.tar /opt/\n")
    result = daemon.docker("build", "-t", "add-escape:1", str(ctx), timeout=120)
    assert result.returncode != 0
    assert 'failed to extract evil.tar: "../../evil-from-add" is outside of "/opt"' in result.stderr
    assert "add-escape" not in daemon.docker("images", check=True).stdout  # no image half made
    for where in (daemon.root, daemon.run_root, tmp_path.parent):
        found = subprocess.run(["find", str(where), "-name", "evil-from-add"], capture_output=True, text=True)
        assert found.stdout == ""
