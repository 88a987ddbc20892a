"""The engine's secret environment (berth.engine.secret_env): the run-root file, the merge into
the bundle's process env, and the agent's adapter handing values beside the create body."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.containers._stored import config_from_legacy as typed_config
from berth.agent._engine import ContainerSpec
from berth.agent.engine_adapter import EngineAdapter, engine_spec
from berth.engine import secret_env
from berth.engine.containers._model import Container
from berth.errors import InvalidArgument, Unavailable

CID = "a" * 64


def test_the_store_writes_0600_files_in_a_0700_dir(tmp_path: Path) -> None:
    store = secret_env.SecretEnvStore(tmp_path / "secrets")
    store.put(CID, {"DB_PASS": "s3cret\nwith newline", "B": ""})
    path = tmp_path / "secrets" / f"{CID}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    assert store.get(CID) == {"DB_PASS": "s3cret\nwith newline", "B": ""}
    assert [p.name for p in (tmp_path / "secrets").iterdir()] == [f"{CID}.json"]   # no temp file left
    store.remove(CID)
    assert store.get(CID) is None
    store.remove(CID)  # absent is fine


def test_sweep_keeps_only_known_containers(tmp_path: Path) -> None:
    store = secret_env.SecretEnvStore(tmp_path / "secrets")
    other = "b" * 64
    store.put(CID, {"A": "1"})
    store.put(other, {"A": "2"})
    (tmp_path / "secrets" / f".{other}.json.tmp").write_text("{}")
    store.sweep({CID})
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == [f"{CID}.json"]
    secret_env.SecretEnvStore(tmp_path / "none").sweep(set())   # no dir yet: nothing to do


def test_merge_replaces_placeholders_in_place_and_appends_the_rest() -> None:
    env = ["PATH=/bin", "DB_PASS=<secret from p>", "X=1", "DB_PASS=<again>"]
    assert secret_env.merge(env, {"DB_PASS": "v", "NEW": "n"}) == ("PATH=/bin", "DB_PASS=v", "X=1", "NEW=n")
    assert secret_env.merge(env, {}) == tuple(env)


def test_without_drops_the_secret_variables_for_execs() -> None:
    env = ["PATH=/bin", "DB_PASS=<secret from p>", "DB_PASSWORD=kept"]
    assert secret_env.without(env, ["DB_PASS"]) == ("PATH=/bin", "DB_PASSWORD=kept")
    assert secret_env.without(env, []) == tuple(env)


@pytest.mark.parametrize("values", [{"": "x"}, {"A=B": "x"}, {"A\0": "x"}, {"A": "x\0y"}])
def test_bad_names_and_values_are_refused(values: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        secret_env.check_names(values)


def test_the_missing_error_names_the_variables_not_values() -> None:
    err = secret_env.missing(CID, ["B", "A"])
    assert isinstance(err, Unavailable)
    assert "(A, B)" in str(err) and CID[:12] in str(err)


def test_the_record_keeps_names_only_and_old_records_load() -> None:
    c = Container(id=CID, name="n", created="t", image="busybox", image_id="sha256:x",
                  config=typed_config({"Env": ["A=<secret from p>"]}), host_config=typed_hc({}), secret_env=["A"])
    again = Container.from_json(c.to_json())
    assert again.secret_env == ["A"]
    legacy = c.to_json().replace(', "secret_env": ["A"]', "")
    assert '"secret_env"' not in legacy
    assert Container.from_json(legacy).secret_env == []


class RecordingContainers:
    def __init__(self) -> None:
        self.calls: list[tuple[str | None, Any, dict[str, Any]]] = []

    async def create(self, name: str | None, body: Any, **kw: Any) -> Any:
        self.calls.append((name, body, kw))

        class Made:
            id = "c" * 64
        return Made()


def test_the_adapter_hands_secret_values_beside_the_body() -> None:
    containers = RecordingContainers()
    adapter = EngineAdapter(containers, None, None, None, None, None, "10.0.0.1", "10.0.0.0/24")
    spec = ContainerSpec(name="ecs-x", image="busybox", env=("DB_PASS=<secret from arn:p>",),
                         secret_env={"DB_PASS": "v4lue"})
    asyncio.run(adapter.create(spec))
    asyncio.run(adapter.create(ContainerSpec(name="plain", image="busybox")))
    (_, body, kw), (_, _, plain_kw) = containers.calls
    assert kw == {"secret_env": {"DB_PASS": "v4lue"}}
    assert plain_kw == {}   # an engine without the argument still takes specs without secrets
    assert body.config.env == ("DB_PASS=<secret from arn:p>",)
    assert "v4lue" not in repr(engine_spec(spec))
