"""`docker build` edges through the docker CLI and docker-py (issue 11 §1, Build).

--target, a Dockerfile inside the context at a sub path and one outside it (sent as an extra
`.dockerfile.<random>` member), RUN stderr in the build stream, .dockerignore exceptions below
ignored directories, --add-host (extrahosts) and --network (networkmode) on build.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.helpers import DOCKER, BerthDaemon

pytestmark = pytest.mark.root

MULTI = ("FROM busybox AS first\nRUN echo one > /one\n"
         "FROM first AS second\nRUN echo two > /two\n"
         "FROM second AS third\nRUN echo three > /three\n")


@pytest.fixture()
def client(daemon: BerthDaemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=daemon.host, version="1.50", timeout=120)
    yield c
    c.close()


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def cli_build(daemon: BerthDaemon, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, "build", *args], env=daemon.env, cwd=cwd, capture_output=True, text=True,
                          timeout=180)


def run_out(daemon: BerthDaemon, image: str, *cmd: str) -> str:
    return daemon.docker("run", "--rm", image, *cmd, check=True).stdout


def files_in(daemon: BerthDaemon, image: str, root: str = "/ctx") -> set[str]:
    out = run_out(daemon, image, "find", root, "-mindepth", "1")
    return {line.removeprefix(root + "/") for line in out.split()}


def py_stream(client: docker.DockerClient, **kwargs: object) -> tuple[str, str]:
    """Build with docker-py's low-level API; (all stream text, image id)."""
    text, image_id = [], ""
    for chunk in client.api.build(decode=True, **kwargs):
        if "error" in chunk:
            raise AssertionError(chunk["error"])
        text.append(chunk.get("stream", ""))
        image_id = (chunk.get("aux") or {}).get("ID", image_id)
    return "".join(text), image_id


# -- target ----------------------------------------------------------------------------------------


def test_target_stops_at_the_named_stage_cli(daemon: BerthDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": MULTI})
    result = cli_build(daemon, "--target", "SECOND", "-t", "edge-target:cli", str(ctx))
    assert result.returncode == 0, result.stderr
    assert "echo three" not in result.stdout and "echo two" in result.stdout
    assert run_out(daemon, "edge-target:cli", "cat", "/one", "/two") == "one\ntwo\n"
    assert daemon.docker("run", "--rm", "edge-target:cli", "test", "-e", "/three").returncode == 1


def test_unknown_target_is_dockerds_error(daemon: BerthDaemon, tmp_path: Path, client: docker.DockerClient) -> None:
    ctx = write(tmp_path, {"Dockerfile": MULTI})
    result = cli_build(daemon, "--target", "nope", str(ctx))
    assert result.returncode == 1
    assert "Error response from daemon: failed to reach build target nope in Dockerfile" in result.stderr
    with pytest.raises(docker.errors.APIError) as err:
        client.images.build(path=str(ctx), target="nope")
    assert err.value.status_code == 400
    assert err.value.explanation == "failed to reach build target nope in Dockerfile"


def test_target_through_docker_py(client: docker.DockerClient, daemon: BerthDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": MULTI})
    image, logs = client.images.build(path=str(ctx), target="first", tag="edge-target:py")
    text = "".join(chunk.get("stream", "") for chunk in logs)
    assert "echo one" in text and "echo two" not in text
    assert image.id == client.images.get("edge-target:py").id
    assert run_out(daemon, "edge-target:py", "ls", "/one") == "/one\n"
    assert daemon.docker("run", "--rm", "edge-target:py", "test", "-e", "/two").returncode == 1


# -- where the Dockerfile is -------------------------------------------------------------------------


SUB = "FROM busybox\nCOPY . /ctx\nRUN echo built-from-sub\n"


def test_dockerfile_at_a_sub_path_cli(daemon: BerthDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"sub/Dockerfile.dev": SUB, "Dockerfile": "FROM busybox\nRUN exit 9\n", "a.txt": "a"})
    result = cli_build(daemon, "-f", "sub/Dockerfile.dev", "-t", "edge-sub:cli", ".", cwd=ctx)
    assert result.returncode == 0, result.stderr
    assert "built-from-sub" in result.stdout
    assert files_in(daemon, "edge-sub:cli") == {"Dockerfile", "a.txt", "sub", "sub/Dockerfile.dev"}


def test_dockerfile_at_a_sub_path_docker_py(client: docker.DockerClient, daemon: BerthDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"sub/Dockerfile.dev": SUB, "a.txt": "a", ".dockerignore": "sub\n"})
    text, image_id = py_stream(client, path=str(ctx), dockerfile="sub/Dockerfile.dev", tag="edge-sub:py")
    assert "built-from-sub" in text and image_id.startswith("sha256:")
    # dockerd drops the Dockerfile and .dockerignore from the context only when .dockerignore matches them
    # (the emptied `sub` directory stays, as in dockerd's extracted context)
    assert files_in(daemon, "edge-sub:py") == {"a.txt", ".dockerignore", "sub"}


OUTSIDE = "FROM busybox\nCOPY . /ctx\nRUN echo from-outside\n"


@pytest.mark.parametrize("ignore", [None, "secret\n"])
def test_dockerfile_outside_the_context_cli(daemon: BerthDaemon, tmp_path: Path, ignore: str | None) -> None:
    ctx = write(tmp_path / "ctx", {"a.txt": "a", "secret": "s", **({".dockerignore": ignore} if ignore else {})})
    dockerfile = write(tmp_path, {"elsewhere/Dockerfile": OUTSIDE}) / "elsewhere" / "Dockerfile"
    result = cli_build(daemon, "-f", str(dockerfile), "-t", "edge-out:cli", str(ctx))
    assert result.returncode == 0, result.stderr
    assert "from-outside" in result.stdout
    # The CLI's generated `.dockerfile.<random>` (listed in .dockerignore) never reaches COPY .;
    # a .dockerignore the CLI created lists itself, a user's one does not.
    expected = {"a.txt", "secret"} if ignore is None else {"a.txt", ".dockerignore"}
    assert files_in(daemon, "edge-out:cli") == expected


@pytest.mark.parametrize("ignore", [None, "secret\n"])
def test_dockerfile_outside_the_context_docker_py(client: docker.DockerClient, daemon: BerthDaemon, tmp_path: Path,
                                                  ignore: str | None) -> None:
    ctx = write(tmp_path / "ctx", {"a.txt": "a", "secret": "s", **({".dockerignore": ignore} if ignore else {})})
    dockerfile = write(tmp_path, {"elsewhere/Dockerfile": OUTSIDE}) / "elsewhere" / "Dockerfile"
    text, _ = py_stream(client, path=str(ctx), dockerfile=str(dockerfile), tag="edge-out:py")
    assert "from-outside" in text
    expected = {"a.txt", "secret"} if ignore is None else {"a.txt", ".dockerignore"}
    assert files_in(daemon, "edge-out:py") == expected


def test_dockerfile_from_stdin_with_a_context_dir(daemon: BerthDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"a.txt": "a"})
    result = subprocess.run([DOCKER, "build", "-f", "-", "-t", "edge-stdin", str(ctx)], input=OUTSIDE,
                            env=daemon.env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert files_in(daemon, "edge-stdin") == {"a.txt"}


def raw_tar(members: dict[str, bytes | str]) -> io.BytesIO:
    """A context tar; a str value is a symlink target."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_dockerfile_lookup_in_a_raw_context(client: docker.DockerClient) -> None:
    """No `dockerfile` parameter: `Dockerfile`, else `dockerfile` (dockerd's fallback); symlinks
    inside the context are followed; an empty file is dockerd's error."""
    text, image_id = py_stream(client, fileobj=raw_tar({"dockerfile": b"FROM busybox\nRUN echo lower\n"}),
                               custom_context=True)
    assert "lower" in text and image_id
    text, _ = py_stream(client, fileobj=raw_tar({"real/Df": b"FROM busybox\nRUN echo linked\n",
                                                 "Dockerfile": "real/Df"}), custom_context=True)
    assert "linked" in text
    for members, message in (({"Dockerfile": b""}, "the Dockerfile (Dockerfile) cannot be empty"),
                             ({"x": b""}, "Cannot locate specified Dockerfile: Dockerfile")):
        with pytest.raises(docker.errors.APIError) as err:
            py_stream(client, fileobj=raw_tar(members), custom_context=True)
        assert err.value.status_code == 400 and err.value.explanation == message


# -- RUN output --------------------------------------------------------------------------------------


def test_run_stderr_is_in_the_build_stream(daemon: BerthDaemon, client: docker.DockerClient, tmp_path: Path) -> None:
    dockerfile = "FROM busybox\nRUN echo to-stdout && echo to-stderr >&2 && echo more-stdout\n"
    ctx = write(tmp_path, {"Dockerfile": dockerfile})
    result = cli_build(daemon, "--no-cache", str(ctx))
    assert result.returncode == 0, result.stderr
    assert "to-stdout" in result.stdout and "to-stderr" in result.stdout and "more-stdout" in result.stdout
    chunks = [c.get("stream", "") for c in client.api.build(path=str(ctx), nocache=True, decode=True)]
    # dockerd's StderrFormatter: stderr text in red ("\033[91m" ... "\033[0m"), stdout plain
    assert any(c.startswith("\x1b[91m") and "to-stderr" in c and c.endswith("\x1b[0m") for c in chunks), chunks
    assert any("to-stdout" in c and "\x1b[91m" not in c for c in chunks)


# -- .dockerignore ------------------------------------------------------------------------------------


IGNORE = """# a comment
dir
!dir/keep.txt
**/*.log
!important.log
/rooted
docs/**/*.md
!docs/keep/**
tmp?
  spaced
"""
IGNORE_FILES = {
    "Dockerfile": "FROM busybox\nCOPY . /ctx\n", ".dockerignore": IGNORE,
    "dir/a.txt": "", "dir/keep.txt": "", "dir/sub/b.txt": "",
    "x.log": "", "deep/er/y.log": "", "important.log": "", "deep/important.log": "",
    "rooted": "", "sub/rooted": "",
    "docs/a.md": "", "docs/x/y/b.md": "", "docs/keep/c.md": "", "docs/readme.txt": "",
    "tmp1": "", "tmp12": "", "spaced": "", "plain.txt": "",
}
# What Docker's patternmatcher leaves in the context: `dir` is ignored but `dir/keep.txt` is
# re-included (sent without its ignored parent), `**/` matches zero or more directories,
# a leading `/` is dropped, `docs/**/*.md` ignores a.md at depth zero too.
IGNORE_KEPT = {
    ".dockerignore", "Dockerfile", "dir", "dir/keep.txt", "important.log", "deep", "deep/er", "sub",
    "sub/rooted", "docs", "docs/x", "docs/x/y", "docs/keep", "docs/keep/c.md", "docs/readme.txt",
    "tmp12", "plain.txt",
}


def test_dockerignore_exceptions_cli(daemon: BerthDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, IGNORE_FILES)
    result = cli_build(daemon, "-t", "edge-ignore:cli", str(ctx))
    assert result.returncode == 0, result.stderr
    assert files_in(daemon, "edge-ignore:cli") == IGNORE_KEPT


def test_dockerignore_exceptions_docker_py(client: docker.DockerClient, daemon: BerthDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, IGNORE_FILES)
    client.images.build(path=str(ctx), tag="edge-ignore:py")
    assert files_in(daemon, "edge-ignore:py") == IGNORE_KEPT


def test_a_raw_tar_context_is_not_filtered_by_the_daemon(daemon: BerthDaemon) -> None:
    """`docker build - < ctx.tar`: dockerd applies .dockerignore only to itself and the Dockerfile."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\nCOPY . /ctx\n"), (".dockerignore", b"*.md\nDockerfile\n"),
                           ("a.md", b"a"), ("b.txt", b"b")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = subprocess.run([DOCKER, "build", "-t", "edge-rawtar", "-"], input=buf.getvalue(), env=daemon.env,
                            capture_output=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert files_in(daemon, "edge-rawtar") == {".dockerignore", "a.md", "b.txt"}


# -- extrahosts and networkmode ------------------------------------------------------------------------


def test_add_host_and_network_modes_cli(daemon: BerthDaemon, tmp_path: Path) -> None:
    dockerfile = "FROM busybox\nRUN grep -E 'cats|dogs' /etc/hosts > /hosts && cat /proc/net/dev > /netdev\n"
    ctx = write(tmp_path, {"Dockerfile": dockerfile})
    for mode in ("default", "bridge", "none", "host"):
        tag = f"edge-net:{mode}"
        result = cli_build(daemon, "--no-cache", "--network", mode, "--add-host", "cats:10.1.2.3",
                           "--add-host", "dogs=10.1.2.4", "-t", tag, str(ctx))
        assert result.returncode == 0, (mode, result.stderr)
        assert run_out(daemon, tag, "cat", "/hosts") == "10.1.2.3\tcats\n10.1.2.4\tdogs\n"
        interfaces = {line.split(":")[0].strip() for line in run_out(daemon, tag, "cat", "/netdev").splitlines()[2:]}
        if mode == "none":
            assert interfaces == {"lo"}
        elif mode == "host":
            assert daemon.bridge in interfaces
        else:
            assert interfaces == {"lo", "eth0"}


def test_network_none_has_no_network_docker_py(client: docker.DockerClient, daemon: BerthDaemon,
                                               tmp_path: Path) -> None:
    gateway = daemon.subnet.rsplit(".", 1)[0] + ".1"
    dockerfile = (f"FROM busybox\nRUN (ping -c1 -W2 {gateway} >/dev/null 2>&1 && echo reached || echo unreachable) > /ping"
                  " && cat /etc/hosts > /hosts\n")
    ctx = write(tmp_path, {"Dockerfile": dockerfile})
    py_stream(client, path=str(ctx), network_mode="none", extra_hosts={"birds": "10.9.8.7"}, nocache=True,
              tag="edge-none:py")
    assert run_out(daemon, "edge-none:py", "cat", "/ping") == "unreachable\n"
    assert "10.9.8.7\tbirds" in run_out(daemon, "edge-none:py", "cat", "/hosts").splitlines()
    py_stream(client, path=str(ctx), network_mode="bridge", nocache=True, tag="edge-bridge:py")
    assert run_out(daemon, "edge-bridge:py", "cat", "/ping") == "reached\n"


def test_a_bad_extra_host_is_a_400(client: docker.DockerClient, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN true\n"})
    with pytest.raises(docker.errors.APIError) as err:
        client.images.build(path=str(ctx), extra_hosts=["nocolon"])
    assert err.value.status_code == 400
    assert err.value.explanation == 'bad format for add-host: "nocolon"'
