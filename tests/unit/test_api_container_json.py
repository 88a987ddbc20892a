"""inspect and `docker ps` JSON of representative containers, compared byte for byte with the
golden file written by the engine's renderer before the JSON moved to the API edge."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import container_samples as samples
from berth.engine.containers import _render as cj

GOLDEN = Path(__file__).parent / "golden" / "container_json.json"


def _golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


class _Fixed(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # noqa: ARG003 - datetime.now's signature
        return samples.NOW


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_inspect_and_ps_item_match_the_golden_json(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cj, "datetime", _Fixed)
    c = samples.SAMPLES[name]()
    root = f"/var/lib/berth/containers/{c.id}"
    expected = _golden()[name]
    inspect = cj.inspect(c, root=root, log_path=f"{root}/ctr.log", runtime=samples.RUNTIME)
    assert json.dumps(inspect) == json.dumps(expected["inspect"])
    assert json.dumps(cj.list_item(c)) == json.dumps(expected["list_item"])
