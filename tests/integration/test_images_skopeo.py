"""Interop with a real image tool: skopeo reads our `save` output and writes archives we load."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.images import ImageStore
from berth.state import Database

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo"),
    pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="needs busybox-static"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    db = Database(tmp_path / "state.db")
    yield ImageStore(tmp_path / "root", db)
    db.close()


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", "--insecure-policy", *args], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def saved(store: ImageStore, tmp_path: Path, *names: str) -> Path:
    path = tmp_path / "saved.tar"
    with path.open("wb") as out:
        store.save(list(names), out)
    return path


def test_skopeo_reads_both_views_of_save(store: ImageStore, tmp_path: Path) -> None:
    image = store.bootstrap_busybox()
    path = saved(store, tmp_path, "busybox")
    docker_view = json.loads(skopeo("inspect", f"docker-archive:{path}"))
    assert docker_view["Layers"] == list(image.layers)
    assert docker_view["Env"] == image.config["config"]["Env"]
    oci_view = json.loads(skopeo("inspect", f"oci-archive:{path}"))
    assert oci_view["Layers"] == list(image.layers)
    config = json.loads(skopeo("inspect", "--config", "--raw", f"docker-archive:{path}"))
    assert config["rootfs"]["diff_ids"] == list(image.layers)


def test_load_skopeo_written_archives(store: ImageStore, tmp_path: Path) -> None:
    image = store.bootstrap_busybox()
    path = saved(store, tmp_path, "busybox")
    oci = tmp_path / "oci.tar"
    skopeo("copy", "--dest-compress", f"docker-archive:{path}", f"oci-archive:{oci}:example.com/bb:gz")
    docker = tmp_path / "docker.tar"
    skopeo("copy", f"docker-archive:{path}", f"docker-archive:{docker}:bb:copied")

    other = ImageStore(tmp_path / "other", Database(tmp_path / "other.db"))
    with oci.open("rb") as src:
        assert other.load(src) == ["Loaded image: example.com/bb:gz"]
    with docker.open("rb") as src:
        assert other.load(src) == ["Loaded image: bb:copied"]
    # skopeo re-serialises the config (so the IDs may differ); the layers are the same
    assert other.resolve("example.com/bb:gz").layers == image.layers == other.resolve("bb:copied").layers
    assert (other.layer_dirs(other.resolve("bb:copied"))[0] / "bin/busybox").is_file()
