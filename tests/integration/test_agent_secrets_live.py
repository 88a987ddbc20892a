"""A secret environment through the agent's EngineAdapter on berth's real engine: the value
reaches the container's process (the bundle on the run root) and no file under --root; the
record and inspect keep the placeholder; a restart reads it again from the run root, a run root
that lost it (a reboot) fails the start clearly, and removal deletes it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
import subprocess
import time

import pytest

from berth.agent._engine import ContainerSpec, HealthProbe
from berth.agent.engine_adapter import EngineAdapter
from berth.api.docker import container_json
from berth.daemon.main import Daemon
from berth.errors import Unavailable
from tests.helpers import BerthDaemon
from tests.integration.test_agent_engine_adapter_live import host, pytestmark, run_engine  # noqa: F401

VALUE = "s3cr3t-Live-77aQ"
PLACEHOLDER = "<secret from arn:aws:ssm:us-east-1:123456789012:parameter/live>"
# a health check that passes only when its exec sees the value (compared by digest: the check's
# command is recorded under --root)
HEALTH = HealthProbe(("CMD-SHELL", 'test "$(printf %s "$DB_PASS" | md5sum | cut -c1-32)" = '
                      + hashlib.md5(VALUE.encode()).hexdigest()), interval=0.2, timeout=5, retries=3)


def _process_env(d: BerthDaemon, container_id: str) -> list[str]:
    config = json.loads((d.run_root / "runtime" / container_id / "config.json").read_text())
    return list(config["process"]["env"])


def _grep_root(d: BerthDaemon) -> str:
    found = subprocess.run(["grep", "-rl", "--binary-files=text", "-F", VALUE, str(d.root)],
                           capture_output=True, text=True, timeout=300)
    return found.stdout + found.stderr if found.returncode != 1 else ""


def test_secret_env_lives_on_the_run_root_only(host: BerthDaemon) -> None:  # noqa: F811 - the fixture
    async def scenario(adapter: EngineAdapter, daemon: Daemon) -> None:
        await asyncio.to_thread(daemon.image_store.bootstrap_busybox, "busybox:latest")
        cid = await adapter.create(ContainerSpec(
            name="secretive", image="busybox", command=("sleep", "3600"), stop_timeout=1, health=HEALTH,
            env=(f"DB_PASS={PLACEHOLDER}", "PLAIN=1"), secret_env={"DB_PASS": VALUE}))
        secret_file = host.run_root / "secrets" / f"{cid}.json"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        await adapter.start(cid)
        assert f"DB_PASS={VALUE}" in _process_env(host, cid) and "PLAIN=1" in _process_env(host, cid)
        doc = container_json.inspect(daemon.containers.inspect(cid))  # what `docker inspect` shows
        assert f"DB_PASS={PLACEHOLDER}" in doc["Config"]["Env"]
        assert VALUE not in json.dumps(doc)
        deadline = time.monotonic() + 60
        while (status := adapter.inspect(cid)) is not None and status.health != "healthy":
            assert status.health != "unhealthy", "the health check's exec did not see the secret value"
            assert time.monotonic() < deadline, f"health stays {status.health}"
            await asyncio.sleep(0.1)
        assert _grep_root(host) == ""

        # stopped and started again: read back from the run root
        await adapter.stop(cid, 1)
        await adapter.start(cid)
        assert f"DB_PASS={VALUE}" in _process_env(host, cid)

        # the run root lost it (a reboot): the start fails, saying why, and runs nothing
        await adapter.stop(cid, 1)
        secret_file.unlink()
        with pytest.raises(Unavailable, match=r"needs its secret environment \(DB_PASS\)"):
            await adapter.start(cid)
        state = daemon.containers.inspect(cid).container.state
        assert state.running is False and "secret environment" in state.error

        await adapter.remove(cid)
        other = await adapter.create(ContainerSpec(name="again", image="busybox", command=("true",),
                                                   env=(f"DB_PASS={PLACEHOLDER}",), secret_env={"DB_PASS": VALUE}))
        await adapter.remove(other)
        assert list((host.run_root / "secrets").iterdir()) == []
        assert _grep_root(host) == ""
    run_engine(host, scenario)
