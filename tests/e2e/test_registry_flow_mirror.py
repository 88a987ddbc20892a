"""`--registry-mirror`: Docker Hub pulls go to the mirror first (Debian's docker-registry here)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import BerthDaemon
from tests.peer_registry import PeerRegistry

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def mirrored() -> Iterator[tuple[BerthDaemon, PeerRegistry]]:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    mirror = PeerRegistry().start()
    engine = BerthDaemon(extra_args=("--registry-mirror", f"http://{mirror.address}"))
    try:
        engine.start()
        engine.bootstrap_busybox()
        yield engine, mirror
    finally:
        engine.destroy()
        mirror.destroy()


def test_hub_pull_is_served_by_the_mirror(mirrored: tuple[BerthDaemon, PeerRegistry]) -> None:
    engine, mirror = mirrored
    # Seed the mirror as a pull-through cache would hold Docker Hub's library/mirrored.
    engine.docker("tag", "busybox", f"{mirror.address}/library/mirrored:latest", check=True)
    assert engine.docker("push", f"{mirror.address}/library/mirrored:latest", timeout=120).returncode == 0
    engine.docker("rmi", f"{mirror.address}/library/mirrored:latest", check=True)

    pull = engine.docker("pull", "mirrored", timeout=120)
    assert pull.returncode == 0, pull.stderr
    assert "latest: Pulling from library/mirrored" in pull.stdout
    assert pull.stdout.strip().endswith("docker.io/library/mirrored:latest")
    info = engine.docker("info", "--format", "{{json .RegistryConfig.Mirrors}}", check=True).stdout
    assert mirror.address in info
    run = engine.docker("run", "--rm", "mirrored", "echo", "via mirror")
    assert run.stdout == "via mirror\n", run.stderr
