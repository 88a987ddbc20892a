"""inspect and `docker ps` JSON rendered at the API edge from the engine's snapshots: five
representative containers compared byte for byte with the golden file written by the engine's
renderer before the JSON moved here, and the Mounts items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import container_samples as samples
from berth.api.docker import container_json as cj
from berth.engine.archive._changes import _COMMIT_KEYS as COMMIT_KEYS
from berth.engine.archive._changes import image_config_of
from berth.engine.containers import snapshot_of
from berth.volumes import MountPoint, parse_bind

GOLDEN = Path(__file__).parent / "golden" / "container_json.json"


def _golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_inspect_and_ps_item_match_the_golden_json(name: str) -> None:
    c = samples.SAMPLES[name]()
    root = f"/var/lib/berth/containers/{c.id}"
    snapshot = snapshot_of(c, dir=root, log_path=f"{root}/ctr.log", default_runtime=samples.RUNTIME)
    expected = _golden()[name]
    assert json.dumps(cj.inspect(snapshot)) == json.dumps(expected["inspect"])
    assert json.dumps(cj.list_item(snapshot, samples.NOW)) == json.dumps(expected["list_item"])


def test_mount_items() -> None:
    point = parse_bind("v1:/d:ro")  # (was test_volumes_mounts' inspect shape of MountPoint.inspect_json)
    assert cj.mount_json(point) == {"Type": "volume", "Name": "v1", "Source": "", "Destination": "/d",
                                    "Driver": "local", "Mode": "ro", "RW": False, "Propagation": ""}
    bind = MountPoint(type="bind", destination="/w", source="/srv", rw=False, mode="ro", propagation="rprivate")
    assert cj.mount_json(bind) == {"Type": "bind", "Source": "/srv", "Destination": "/w", "Mode": "ro",
                                   "RW": False, "Propagation": "rprivate"}


def test_a_commit_starts_from_the_inspect_configs_commit_fields() -> None:
    """engine/archive's image_config_of writes the image store's form of Config: the same fields
    and values inspect shows (it was inspect's own renderer before the JSON moved here)."""
    for make in samples.SAMPLES.values():
        config = make().config
        shown = cj.config_json(config)
        assert image_config_of(config) == {key: shown[key] for key in COMMIT_KEYS}
