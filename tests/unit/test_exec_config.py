"""`docker exec` create: the body typed at the API edge (ExecConfig), the engine's checks keep
dockerd's wording."""

from __future__ import annotations

from typing import Any

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.api.docker import wire
from berth.api.docker.exec import exec_from_wire
from berth.api.shapes import check
from berth.engine.containers import Container, ContainerConfig, ContainerState
from berth.engine.execs import ExecConfig, ExecService
from berth.errors import Conflict, InvalidArgument


class _Containers:
    def __init__(self, container: Container) -> None:
        self.container = container

    def get(self, ref: str) -> Container:
        return self.container


def _service(status: str = "running", secret_env: list[str] | None = None) -> ExecService:
    container = Container(id="e" * 64, name="web", created="", image="busybox", image_id="sha256:x",
                          config=ContainerConfig(env=("PATH=/bin", "TOKEN=<secret>"), user="1000",
                                                 working_dir="/srv"),
                          host_config=typed_hc({}), state=ContainerState(status=status), secret_env=secret_env or [])
    return ExecService(containers=_Containers(container), runtime=None)  # type: ignore[arg-type]


def _create(body: dict[str, Any], **kw: Any) -> str:
    return _service(**kw).create("web", exec_from_wire(check(body, wire.EXEC_CREATE)))


def test_the_body_is_typed_at_the_edge() -> None:
    body = {"Cmd": "ls", "Env": ["A=1"], "User": "root", "WorkingDir": "/", "Tty": True, "Privileged": True,
            "AttachStdin": True, "AttachStdout": True, "AttachStderr": False, "DetachKeys": "ctrl-x",
            "ConsoleSize": [24, 80]}
    assert exec_from_wire(check(body, wire.EXEC_CREATE)) == ExecConfig(
        cmd=("ls",), env=("A=1",), user="root", working_dir="/", tty=True, privileged=True, attach_stdin=True,
        attach_stdout=True, detach_keys="ctrl-x", console_size=(24, 80))
    assert exec_from_wire({}) == ExecConfig()


def test_the_process_takes_the_containers_defaults_and_adds_the_exec_env() -> None:
    svc = _service(secret_env=["TOKEN"])
    exec_id = svc.create("web", ExecConfig(cmd=("id",), env=("A=1",), console_size=(10, 20), tty=True))
    spec = svc.get(exec_id).spec
    assert spec.args == ("id",) and spec.user == "1000" and spec.cwd == "/srv"
    assert spec.env == ("PATH=/bin", "A=1")  # the secret's placeholder is not passed over its value
    assert (spec.height, spec.width, spec.tty) == (10, 20, True)


@pytest.mark.parametrize("body", [{}, {"Cmd": []}, {"Cmd": None}])
def test_an_exec_without_a_command_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument, match="^No exec command specified$"):
        _create(body)


@pytest.mark.parametrize("console", [[1], [1, 2, 3], [70000, 1]])
def test_a_bad_console_size_keeps_dockerds_wording(console: list[int]) -> None:
    with pytest.raises(InvalidArgument) as err:
        _create({"Cmd": ["sh"], "ConsoleSize": console})
    assert str(err.value) == f"invalid ConsoleSize: {console!r} (want [height, width])"


def test_a_stopped_container_refuses_an_exec() -> None:
    with pytest.raises(Conflict, match="is not running"):
        _create({"Cmd": ["sh"]}, status="exited")
