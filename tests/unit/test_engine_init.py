"""`--init` (HostConfig.Init): the spec transformation, the binary lookup and its error."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.containers._stored import config_from_legacy as typed_config
from berth.engine.containers import _init as container_init
from berth.engine.containers._launch import Launcher
from berth.engine.containers._model import Container
from berth.errors import Unavailable
from berth.runtime import Mount
from berth.runtime.oci import build_oci_spec


def _which(found: dict[str, str]) -> Any:
    return lambda name: found.get(name)


def test_wanted_only_for_true() -> None:
    assert container_init.wanted(typed_hc({"Init": True}))
    assert not container_init.wanted(typed_hc({"Init": False}))
    assert not container_init.wanted(typed_hc({"Init": None}))
    assert not container_init.wanted(typed_hc({}))


def test_lookup_prefers_docker_init_then_tini_static() -> None:
    both = {"docker-init": "/usr/bin/docker-init", "tini-static": "/usr/bin/tini-static"}
    assert container_init.lookup(_which(both)) == "/usr/bin/docker-init"
    assert container_init.lookup(_which({"tini-static": "/opt/tini-static"})) == "/opt/tini-static"
    assert container_init.lookup(_which({"/usr/bin/tini-static": "/usr/bin/tini-static"})) == "/usr/bin/tini-static"


def test_lookup_without_a_binary_is_dockerds_error() -> None:
    with pytest.raises(Unavailable) as err:
        container_init.lookup(_which({}))
    assert str(err.value) == 'exec: "docker-init": executable file not found in $PATH'


def test_wrap_prepends_tini_and_mounts_it_read_only() -> None:
    etc = Mount(source="/c/hosts", destination="/etc/hosts")
    args, mounts = container_init.wrap(("sh", "-c", "echo $$"), (etc,), "/usr/bin/tini-static")
    assert args == ("/sbin/docker-init", "--", "sh", "-c", "echo $$")
    assert mounts == (etc, Mount(source="/usr/bin/tini-static", destination="/sbin/docker-init",
                                 type="bind", options=("bind", "ro")))


def test_wrap_replaces_a_user_mount_on_the_init_path() -> None:
    user = Mount(source="/tmp/x", destination="/sbin/docker-init")
    _, mounts = container_init.wrap(("true",), (user,), "/b/tini")
    assert [m.source for m in mounts] == ["/b/tini"]


def test_parse_version() -> None:
    assert container_init.parse_version("tini version 0.19.0 - git.de40ad0\n") == ("0.19.0", "de40ad0")
    assert container_init.parse_version("tini version 0.19.0\n") == ("0.19.0", "")
    assert container_init.parse_version("garbage") == ("", "")


def _container(host_config: dict[str, Any]) -> Container:
    return Container(id="c" * 64, name="c", created="", image="busybox", image_id="sha256:x",
                     config=typed_config({"Entrypoint": ["/entry"], "Cmd": ["sleep", "1000"]}),
                     host_config=typed_hc(host_config))


def _launcher(tmp_path: Path) -> Launcher:
    return Launcher(containers_dir=tmp_path, images=None, runtime=None, network=None,  # type: ignore[arg-type]
                    volumes=None)


def test_launcher_spec_with_and_without_init(tmp_path: Path) -> None:
    launcher = _launcher(tmp_path)
    plain = launcher._spec(_container({}), {"netns_path": None})
    assert plain.args == ("/entry", "sleep", "1000")
    assert all(m.destination != "/sbin/docker-init" for m in plain.mounts)

    spec = launcher._spec(_container({"Init": True}), {"netns_path": None}, "/usr/bin/tini-static")
    assert spec.args == ("/sbin/docker-init", "--", "/entry", "sleep", "1000")
    assert spec.mounts[:-1] == plain.mounts
    oci = build_oci_spec(spec, tmp_path, hard_limits={}, available_caps=frozenset())
    assert oci["process"]["args"] == ["/sbin/docker-init", "--", "/entry", "sleep", "1000"]
    assert oci["mounts"][-1] == {"destination": "/sbin/docker-init", "type": "bind",
                                 "source": "/usr/bin/tini-static", "options": ["bind", "ro"]}


def test_launcher_create_fails_before_preparing_when_init_is_missing(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = _launcher(tmp_path)
    monkeypatch.setattr(container_init.shutil, "which", lambda name: None)

    def prepare(container: Container) -> dict[str, Any]:
        raise AssertionError("nothing may be mounted or attached")

    monkeypatch.setattr(launcher, "_prepare", prepare)
    with pytest.raises(Unavailable, match='exec: "docker-init": executable file not found'):
        asyncio.run(launcher.create(_container({"Init": True})))


def test_info_and_version_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container_init, "cached_version", lambda: ("0.19.0", ""))
    assert container_init.info_fields() == {"InitBinary": "docker-init", "InitCommit": {"ID": "N/A"}}
    assert container_init.version_component() == {"Name": "docker-init", "Version": "0.19.0",
                                                  "Details": {"GitCommit": "N/A"}}
    monkeypatch.setattr(container_init, "cached_version", lambda: ("", ""))
    assert container_init.version_component() is None


def test_version_of_a_missing_binary_is_empty() -> None:
    assert container_init.version(_which({})) == ("", "")
