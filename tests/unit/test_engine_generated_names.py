"""A generated container name that a concurrent create took meanwhile is drawn again (moby);
a name the user gave stays a conflict."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.containers import _config as cfg
from berth.engine.containers._model import Container, ContainerRepository
from berth.engine.containers._service import ContainerService
from berth.errors import AlreadyExists
from berth.state import Database
from berth.types.container import ContainerConfig


def _container(cid: str, name: str) -> Container:
    return Container(id=cid * 64, name=name, created="2026-01-01T00:00:00Z", image="busybox",
                     image_id="sha256:x", config=ContainerConfig(), host_config=typed_hc({}))


@pytest.fixture
def service(tmp_path: Path) -> SimpleNamespace:
    repo = ContainerRepository(Database(tmp_path / "state.db"))
    repo.add(_container("a", "brave_curie"))  # the other create won the race for this name
    return SimpleNamespace(_repo=repo)


def test_a_generated_name_taken_meanwhile_is_drawn_again(service: SimpleNamespace,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    draws: list[set[str]] = []

    def draw(taken: set[str]) -> str:
        draws.append(set(taken))
        return "calm_darwin"
    monkeypatch.setattr(cfg, "generate_name", draw)
    mine = _container("b", "brave_curie")
    ContainerService._add_record(service, mine, name_generated=True)  # type: ignore[arg-type]
    assert mine.name == "calm_darwin" and draws == [{"brave_curie"}]
    assert {c.name for c in service._repo.all()} == {"brave_curie", "calm_darwin"}


def test_a_name_the_user_gave_stays_a_conflict(service: SimpleNamespace) -> None:
    with pytest.raises(AlreadyExists, match='container name "/brave_curie" is already in use'):
        ContainerService._add_record(service, _container("b", "brave_curie"), name_generated=False)  # type: ignore[arg-type]
    assert [c.name for c in service._repo.all()] == ["brave_curie"]
