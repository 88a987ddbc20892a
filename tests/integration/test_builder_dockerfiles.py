"""Table-driven Dockerfile compatibility suite: real builds (runtime, overlay, CNI) in a temp root.

Each case builds a Dockerfile and checks the resulting image config and file system (read
through the image's layer snapshots), or the exact error. RUN steps use `--network none`
unless the case says otherwise, to keep the suite fast.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import secrets
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from berth.builder import Builder, BuildOptions, DockerfileError, StepFailed
from berth.builder.trees import MergedView, resolve
from berth.errors import BerthError
from berth.images import ImageStore
from berth.network import BridgeConfig, NetworkManager
from berth.runtime import Runtime
from berth.state import Database
from tests.helpers import conmons_under, kill_conmons_under, mounts_under, unmount_under

pytestmark = pytest.mark.root


@dataclass
class Env:
    base: Path
    store: ImageStore
    builder: Builder
    busybox: str

    def build(self, text: str, files: dict[str, Any] | None = None, **opts: Any) -> tuple[str, list[dict]]:
        messages: list[dict] = []

        async def emit(message: dict) -> None:
            messages.append(message)

        opts.setdefault("network_mode", "none")
        context = self.base / f"ctx-{secrets.token_hex(4)}.tar"
        context.write_bytes(context_tar({opts.get("dockerfile", "Dockerfile"): text, **(files or {})}))
        if opts.get("dockerfile") == "Nope":
            context.write_bytes(context_tar({"Dockerfile": text}))
        image_id = asyncio.run(self.builder.build(BuildOptions(**opts), context, emit))
        return image_id, messages

    def view(self, image_id: str) -> MergedView:
        return MergedView(self.store.layer_dirs(self.store.resolve(image_id)))

    def read(self, image_id: str, path: str) -> str | None:
        return self.view(image_id).read_text(path)


def context_tar(files: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if isinstance(data, tuple):  # ("symlink", target)
                info.type, info.linkname = tarfile.SYMTYPE, data[1]
                tar.addfile(info)
                continue
            raw = data.encode() if isinstance(data, str) else data
            info.size, info.mode = len(raw), 0o644
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def tar_gz(files: dict[str, str]) -> bytes:
    return gzip.compress(context_tar(files))


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    base = Path(tempfile.mkdtemp(prefix="berth-build-it-"))
    bridge = "bb" + secrets.token_hex(3)
    subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}.0/24"
    net = NetworkManager(state_dir=base / "root" / "network", run_dir=base / "run" / "netns",
                         bridge=BridgeConfig(network_name=bridge, bridge=bridge, subnet=subnet,
                                             gateway=subnet.rsplit(".", 1)[0] + ".1"))
    db = Database(base / "state.db")
    store = ImageStore(base / "root", db)
    try:
        busybox = store.bootstrap_busybox().id
        builder = Builder(images=store, db=db, runtime=Runtime(run_dir=base / "run" / "runtime"), network=net,
                          work_root=base / "root" / "tmp" / "builds")
        yield Env(base, store, builder, busybox)
        asyncio.run(builder.close())
        assert not list((base / "root" / "tmp" / "builds").iterdir()), "build dirs left behind"
        assert conmons_under(base) == [], "build containers left behind"
        assert mounts_under(base) == [], "mounts left behind"
    finally:
        kill_conmons_under(base)
        net.destroy()
        unmount_under(base)
        db.close()
        shutil.rmtree(base, ignore_errors=True)


Check = Callable[[Env, str], None]


@dataclass
class Case:
    id: str
    dockerfile: str
    files: dict[str, Any] = field(default_factory=dict)
    opts: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)     # expected subset of config["config"]
    fs: dict[str, str | None] = field(default_factory=dict)  # path -> content; None: absent
    error: str = ""                                          # expected error text (substring)
    code: int | None = None                                  # expected StepFailed exit code
    check: Check | None = None


def mode_of(path: str) -> Check:
    def check(env: Env, image_id: str) -> None:
        view = env.view(image_id)
        entry = view.entry(resolve(view, path))
        assert entry is not None
        assert (entry.uid, entry.gid, stat.S_IMODE(entry.mode)) == (65534, 65534, 0o600)
    return check


def history_rows(n_new: int) -> Check:
    def check(env: Env, image_id: str) -> None:
        image, base = env.store.resolve(image_id), env.store.resolve(env.busybox)
        assert len(image.config["history"]) == len(base.config["history"]) + n_new
        assert sum(1 for h in image.config["history"] if not h.get("empty_layer")) == len(image.layers)
    return check


def layers(n: int) -> Check:
    def check(env: Env, image_id: str) -> None:
        assert len(env.store.resolve(image_id).layers) == n
    return check


def no_env(name: str) -> Check:
    def check(env: Env, image_id: str) -> None:
        assert not any(e.startswith(name + "=") for e in env.store.resolve(image_id).config["config"]["Env"])
    return check


TGZ = tar_gz({"pkg/bin/tool": "#!/bin/sh\n", "pkg/README": "readme"})
B = "FROM busybox\n"

CASES = [
    Case("from-only", B, config={"Cmd": ["sh"]}, check=layers(1)),
    Case("env", B + 'ENV A=1 B="two words"\n', config={"Env": [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1", "B=two words"]}),
    Case("env-legacy-form", B + "ENV GREETING hello big world\n", check=lambda e, i: None,
         config={"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                         "GREETING=hello big world"]}),
    Case("env-expands-earlier-env", B + "ENV A=1\nENV B=${A}2 C=${NOPE:-dflt} D=${A:+set}\nRUN echo $B$C$D > /o\n",
         fs={"/o": "12dfltset\n"}),
    Case("env-same-line-sees-old-value", B + "ENV A=1 B=$A\n", check=no_env("X"),
         config={"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1", "B="]}),
    Case("label", B + 'LABEL a=b "c d"=e\n', config={"Labels": {"a": "b", "c d": "e"}}),
    Case("label-from-arg", B + "ARG V=3\nLABEL version=$V\n", config={"Labels": {"version": "3"}}),
    Case("label-option", B, opts={"labels": {"team": "cats"}}, config={"Labels": {"team": "cats"}}),
    Case("expose", B + "EXPOSE 80 53/udp 8000-8001\n",
         config={"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}}),
    Case("cmd-exec-form", B + 'CMD ["httpd", "-f"]\n', config={"Cmd": ["httpd", "-f"]}),
    Case("cmd-shell-form", B + "CMD echo $HOME\n", config={"Cmd": ["/bin/sh", "-c", "echo $HOME"]}),
    Case("entrypoint-resets-inherited-cmd", B + 'ENTRYPOINT ["/bin/echo"]\n',
         config={"Entrypoint": ["/bin/echo"], "Cmd": None}),
    Case("entrypoint-keeps-own-cmd", B + 'CMD ["x"]\nENTRYPOINT ["echo"]\n', config={"Entrypoint": ["echo"], "Cmd": ["x"]}),
    Case("user-affects-run", B + "USER nobody\nRUN id -u > /tmp/uid\n", config={"User": "nobody"},
         fs={"/tmp/uid": "65534\n"}),
    Case("workdir-created", B + "WORKDIR /app/sub\nRUN pwd > here\n", config={"WorkingDir": "/app/sub"},
         fs={"/app/sub/here": "/app/sub\n"}),
    Case("workdir-relative", B + "WORKDIR /a\nWORKDIR b/../c\n", config={"WorkingDir": "/a/c"}),
    Case("workdir-existing-adds-no-layer", B + "WORKDIR /tmp\n", check=layers(1)),
    Case("workdir-from-env", B + "ENV D=/data\nWORKDIR $D/x\n", config={"WorkingDir": "/data/x"}),
    Case("volume", B + 'VOLUME ["/data"]\nVOLUME /logs /cache\n',
         config={"Volumes": {"/data": {}, "/logs": {}, "/cache": {}}}),
    Case("stopsignal", B + "STOPSIGNAL SIGQUIT\n", config={"StopSignal": "SIGQUIT"}),
    Case("shell", B + 'SHELL ["/bin/sh", "-ec"]\nRUN echo $0 > /o\n', config={"Shell": ["/bin/sh", "-ec"]},
         fs={"/o": "/bin/sh\n"}),
    Case("healthcheck", B + "HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost\n",
         config={"Healthcheck": {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5_000_000_000, "Retries": 2}}),
    Case("healthcheck-none", B + "HEALTHCHECK NONE\n", config={"Healthcheck": {"Test": ["NONE"]}}),
    Case("onbuild-recorded", B + "ONBUILD RUN touch /triggered\n", config={"OnBuild": ["RUN touch /triggered"]}),
    Case("arg-default", B + "ARG V=def\nRUN echo $V > /v\n", fs={"/v": "def\n"}, check=no_env("V")),
    Case("arg-build-arg-wins", B + "ARG V=def\nRUN echo $V > /v\n", opts={"build_args": {"V": "over"}},
         fs={"/v": "over\n"}),
    Case("arg-env-wins", B + "ARG V=a\nENV V=b\nRUN echo $V > /v\n", fs={"/v": "b\n"}),
    Case("arg-before-from", "ARG BASE=busybox\nFROM $BASE\nRUN echo \"[$BASE]\" > /v\n", fs={"/v": "[]\n"}),
    Case("arg-redeclared-after-from", "ARG V=meta\nFROM busybox\nARG V\nRUN echo $V > /v\n", fs={"/v": "meta\n"}),
    Case("arg-default-expansion", B + "ARG A\nARG B=${A:-fallback}\nLABEL b=$B\n", config={"Labels": {"b": "fallback"}}),
    Case("copy-file", B + "COPY a.txt /opt/a.txt\n", files={"a.txt": "A"}, fs={"/opt/a.txt": "A"}, check=layers(2)),
    Case("copy-dir-contents", B + "COPY dir /dst/\n", files={"dir/x": "X", "dir/sub/y": "Y"},
         fs={"/dst/x": "X", "/dst/sub/y": "Y", "/dst/dir/x": None}),
    Case("copy-relative-to-workdir", B + "WORKDIR /app\nCOPY a.txt .\n", files={"a.txt": "A"}, fs={"/app/a.txt": "A"}),
    Case("copy-chown-chmod", B + "COPY --chown=nobody:nobody --chmod=600 a.txt /a\n", files={"a.txt": "A"},
         check=mode_of("/a")),
    Case("copy-glob", B + "COPY *.txt /t/\n", files={"a.txt": "A", "b.txt": "B", "c.md": "C"},
         fs={"/t/a.txt": "A", "/t/b.txt": "B", "/t/c.md": None}),
    Case("copy-symlink-kept", B + "COPY d /d\n", files={"d/f": "F", "d/l": ("symlink", "f")}, fs={"/d/l": "F"}),
    Case("copy-through-symlinked-dir", B + "COPY a.txt /bin/\n", files={"a.txt": "A"}, fs={"/bin/a.txt": "A"}),
    # The client filters the context; dockerd only drops .dockerignore and the Dockerfile when listed.
    Case("dockerignore-left-to-the-client", B + "COPY . /ctx\n",
         files={".dockerignore": "*.md\nDocker*\n", "drop.md": "D", "x": "X"},
         fs={"/ctx/drop.md": "D", "/ctx/x": "X", "/ctx/Dockerfile": None, "/ctx/.dockerignore": "*.md\nDocker*\n"}),
    Case("add-extracts-tar", B + "ADD pkg.tar.gz /opt/\n", files={"pkg.tar.gz": TGZ},
         fs={"/opt/pkg/README": "readme", "/opt/pkg.tar.gz": None}),
    Case("add-plain-file", B + "ADD a.txt /x\n", files={"a.txt": "A"}, fs={"/x": "A"}),
    Case("copy-heredoc", B + "COPY <<EOF /greeting\nhi $NAME\nEOF\n", fs={"/greeting": "hi \n"}),
    Case("run-heredoc-script", B + "RUN <<EOF\necho one > /h\necho two >> /h\nEOF\n", fs={"/h": "one\ntwo\n"}),
    Case("run-heredoc-stdin", B + "RUN cat <<EOF > /h\nhome=$HOME\nEOF\n", fs={"/h": "home=/root\n"}),
    Case("run-exec-form", B + 'RUN ["/bin/sh", "-c", "echo x > /e"]\n', fs={"/e": "x\n"}),
    Case("run-deletes-file", B + "RUN rm /etc/group\n", fs={"/etc/group": None, "/etc/passwd":
                                                          "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"}),
    Case("run-no-change-adds-no-layer", B + "RUN true\n", check=layers(1)),
    Case("run-output-streamed", B + "RUN echo visible-output\n"),
    Case("multistage-copy-from", "FROM busybox AS build\nRUN echo built > /out\nFROM busybox\nCOPY --from=build /out /res\n",
         fs={"/res": "built\n", "/out": None}),
    Case("multistage-copy-from-index", "FROM busybox\nRUN echo zero > /z\nFROM scratch\nCOPY --from=0 /z /z\n",
         fs={"/z": "zero\n", "/bin/sh": None}, check=layers(1)),
    Case("multistage-copy-from-arg", "ARG SRC=one\nFROM busybox AS one\nRUN echo 1 > /o\nFROM busybox\nARG SRC\n"
         "COPY --from=$SRC /o /o\n", fs={"/o": "1\n"}),
    Case("multistage-from-stage", "FROM busybox AS base\nENV X=1\nFROM base\nRUN echo $X > /x\n", fs={"/x": "1\n"}),
    Case("target-stops-early", "FROM busybox AS first\nRUN echo 1 > /f\nFROM first\nRUN echo 2 > /s\n",
         opts={"target": "first"}, fs={"/f": "1\n", "/s": None}),
    Case("scratch", "FROM scratch\nCOPY a.txt /a.txt\n", files={"a.txt": "A"}, fs={"/a.txt": "A"}, check=layers(1),
         config={"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}),
    Case("escape-directive", "# escape=`\nFROM busybox\nRUN echo a `\n  b > /o\n", fs={"/o": "a b\n"}),
    Case("line-continuation-and-comments", B + "RUN echo a \\\n# not part of it\n  && echo b > /o\n", fs={"/o": "b\n"}),
    Case("history-one-row-per-step", B + "ENV A=1\nCOPY a /a\nRUN true\nCMD x\n", files={"a": "a"}, check=history_rows(4)),
    Case("maintainer", B + "MAINTAINER Jane Doe\n", check=lambda e, i: None),
    # failures
    Case("run-fails-with-exit-code", B + "RUN exit 3\n", error="The command '/bin/sh -c exit 3' returned a non-zero code: 3",
         code=3),
    Case("unknown-instruction", B + "FOO bar\n", error="Dockerfile:2: unknown instruction: FOO"),
    Case("syntax-error-line-number", B + "ENV A=1\n\nCOPY onlyone\n", error="Dockerfile:4: COPY requires at least two arguments"),
    Case("copy-outside-context", B + "COPY ../secret /x\n", error="Dockerfile:2: forbidden path outside the build context: ../secret ()"),
    Case("copy-missing-source", B + "COPY nope /x\n", error="Dockerfile:2: COPY failed: file not found in build context"),
    Case("missing-base-image", "FROM nosuchimage:1\n", error="Dockerfile:1: No such image: nosuchimage:1"),
    Case("bad-variable", B + 'ENV A="${B:?must be set}"\n', error="Dockerfile:2: B: must be set"),
    Case("no-such-target", B, opts={"target": "x"}, error="failed to reach build target x"),
    Case("missing-dockerfile", B, opts={"dockerfile": "Nope"}, error="Cannot locate specified Dockerfile: Nope"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_dockerfile(env: Env, case: Case) -> None:
    if case.error:
        with pytest.raises(BerthError) as err:
            env.build(case.dockerfile, case.files, **case.opts)
        assert case.error in str(err.value)
        if case.code is not None:
            assert isinstance(err.value, StepFailed) and err.value.code == case.code
        else:
            assert isinstance(err.value, (DockerfileError, BerthError))
        return
    image_id, messages = env.build(case.dockerfile, case.files, **case.opts)
    config = env.store.resolve(image_id).config["config"]
    for key, value in case.config.items():
        assert config.get(key) == value, key
    for path, content in case.fs.items():
        assert env.read(image_id, path) == content, path
    if case.check is not None:
        case.check(env, image_id)
    if case.id == "run-output-streamed":
        assert {"stream": "visible-output\n"} in messages
    if case.id == "maintainer":
        assert env.store.resolve(image_id).config["author"] == "Jane Doe"


def test_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


def test_onbuild_triggers_run_in_the_child(env: Env) -> None:
    parent, _ = env.build(B + "ONBUILD RUN touch /triggered\n", tags=("onbuild-parent",))
    child, messages = env.build("FROM onbuild-parent\nCMD x\n")
    assert env.read(child, "/triggered") == ""
    assert env.store.resolve(child).config["config"].get("OnBuild") is None
    assert {"stream": "# Executing 1 build trigger\n"} in messages


def test_bridge_and_host_networks(env: Env) -> None:
    image_id, _ = env.build(B + "RUN ip -o -4 addr show > /bridge\n", network_mode="bridge", no_cache=True)
    assert "eth0" in (env.read(image_id, "/bridge") or "")
    image_id, _ = env.build(B + "RUN --network=none ip -o link > /none\n", network_mode="bridge", no_cache=True)
    assert "eth0" not in (env.read(image_id, "/none") or "")


def test_tags_and_quiet_stream(env: Env) -> None:
    image_id, messages = env.build(B + "CMD q\n", tags=("quiet:1", "quiet:2"), quiet=True)
    assert messages == [{"aux": {"ID": image_id}}, {"stream": image_id + "\n"}]
    assert set(env.store.resolve(image_id).repo_tags) == {"quiet:1", "quiet:2"}


def test_unused_build_args_warn(env: Env) -> None:
    _, messages = env.build(B + "CMD w\n", build_args={"UNUSED": "1"})
    assert {"stream": "[Warning] One or more build-args [UNUSED] were not consumed\n"} in messages


# -- cache ---------------------------------------------------------------------------------------

CACHE_DOCKERFILE = B + "ARG V=1\nCOPY a /a\nRUN echo $V > /v\nCOPY b /b\nRUN cat /a /b > /ab\nCMD done\n"


def steps(messages: list[dict]) -> list[tuple[str, bool]]:
    """(step text, used cache) for each `Step N/M` in the stream."""
    out: list[tuple[str, bool]] = []
    for m in messages:
        text = m.get("stream", "")
        if text.startswith("Step "):
            out.append((text.split(" : ", 1)[1].strip(), False))
        elif text == " ---> Using cache\n":
            out[-1] = (out[-1][0], True)
    return out


def ran_containers(messages: list[dict]) -> int:
    return sum(1 for m in messages if m.get("stream", "").startswith(" ---> Running in "))


def test_unchanged_rebuild_reuses_every_step_and_creates_nothing(env: Env) -> None:
    files = {"a": "A", "b": "B"}
    first, _ = env.build(CACHE_DOCKERFILE, files, tags=("cache-test",))
    images_before = {i.id for i in env.store.list()}
    blobs_before = set((env.base / "root" / "blobs" / "sha256").iterdir())
    second, messages = env.build(CACHE_DOCKERFILE, files, tags=("cache-test",))
    assert second == first
    assert [used for _, used in steps(messages)] == [False] + [True] * 6  # FROM is never "cached"
    assert ran_containers(messages) == 0
    assert {i.id for i in env.store.list()} == images_before
    assert set((env.base / "root" / "blobs" / "sha256").iterdir()) == blobs_before


def test_changed_copy_source_rebuilds_from_that_step(env: Env) -> None:
    env.build(CACHE_DOCKERFILE, {"a": "A", "b": "B"})
    image_id, messages = env.build(CACHE_DOCKERFILE, {"a": "A", "b": "B2"})
    assert [used for _, used in steps(messages)] == [False, True, True, True, False, False, False]
    assert env.read(image_id, "/ab") == "AB2"


def test_changed_build_arg_invalidates_the_steps_after_it(env: Env) -> None:
    env.build(CACHE_DOCKERFILE, {"a": "A", "b": "B"})
    image_id, messages = env.build(CACHE_DOCKERFILE, {"a": "A", "b": "B"}, build_args={"V": "2"})
    # ARG itself and everything in its scope after it: keyed on the build args in scope
    assert [used for _, used in steps(messages)] == [False, False, False, False, False, False, False]
    assert env.read(image_id, "/v") == "2\n"
    image_id, messages = env.build(CACHE_DOCKERFILE, {"a": "A", "b": "B"}, build_args={"V": "2"})
    assert all(used for _, used in steps(messages)[1:])


def test_build_arg_out_of_scope_keeps_the_cache(env: Env) -> None:
    dockerfile = B + "RUN echo before > /b\nARG LATE\nRUN echo $LATE > /l\n"
    env.build(dockerfile)
    _, messages = env.build(dockerfile, build_args={"LATE": "x"})
    assert [used for _, used in steps(messages)] == [False, True, False, False]


def test_no_cache_rebuilds_everything(env: Env) -> None:
    env.build(CACHE_DOCKERFILE, {"a": "A", "b": "B"})
    _, messages = env.build(CACHE_DOCKERFILE, {"a": "A", "b": "B"}, no_cache=True)
    assert not any(used for _, used in steps(messages))
    assert ran_containers(messages) == 2


def test_cache_from_limits_the_cache_to_those_images(env: Env) -> None:
    dockerfile = B + "RUN echo cf > /cf\n"
    built, _ = env.build(dockerfile, tags=("cf-source",))
    _, messages = env.build(dockerfile, cache_from=("busybox",))
    assert not any(used for _, used in steps(messages))
    again, messages = env.build(dockerfile, cache_from=("cf-source",))
    assert all(used for _, used in steps(messages)[1:]) and again == built


def test_deleted_cached_image_is_rebuilt(env: Env) -> None:
    dockerfile = B + "RUN echo gone > /g\n"
    first, _ = env.build(dockerfile)
    env.store.delete(first, force=True, prune=False, users=lambda i: [])
    second, messages = env.build(dockerfile)
    assert second != first and ran_containers(messages) == 1


# -- bad input -----------------------------------------------------------------------------------


def test_context_with_traversal_entries_writes_nothing_outside(env: Env) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\nCOPY . /\n"), ("../../escaped", b"x"),
                           ("/abs-escaped", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context = env.base / "evil.tar"
    context.write_bytes(buf.getvalue())
    before = set(env.base.rglob("*escaped*"))

    async def emit(message: dict) -> None:
        pass

    with pytest.raises(BerthError, match="points outside the context"):
        asyncio.run(env.builder.build(BuildOptions(), context, emit))
    assert set(env.base.rglob("*escaped*")) == before == set()
    assert not Path("/abs-escaped").exists()
    assert not list((env.base / "root" / "tmp" / "builds").iterdir())


def test_ten_megabyte_dockerfile_is_rejected(env: Env) -> None:
    huge = "FROM busybox\n" + ("# " + "x" * 98 + "\n") * (10 * 1024 * 1024 // 100)
    with pytest.raises(DockerfileError, match="Dockerfile too large"):
        env.build(huge)


def test_failed_build_leaves_no_container_mount_or_temp_dir(env: Env) -> None:
    with pytest.raises(StepFailed):
        env.build(B + "RUN echo partial > /p && exit 7\n")
    assert conmons_under(env.base) == []
    assert [m for m in mounts_under(env.base) if "/builds/" in m] == []
    assert not list((env.base / "root" / "tmp" / "builds").iterdir())
