"""ImageService: Docker JSON shapes and `docker images` filters."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.engine.images import ImageService, normalise_filters
from berth.errors import InvalidArgument, NotFound
from berth.images import ImageStore
from berth.state import Database


def rootfs(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[ImageService]:
    db = Database(tmp_path / "state.db")
    yield ImageService(ImageStore(tmp_path / "root", db))
    db.close()


def make(svc: ImageService, name: str | None, content: bytes, changes: list[str] = ()) -> str:  # type: ignore[assignment]
    repo, _, tag = (name or "").partition(":")
    return svc.import_(rootfs({"f": content}), repo or None, tag or None, list(changes), "")


@pytest.fixture
def images(svc: ImageService) -> dict[str, str]:
    return {
        "busybox": make(svc, "busybox:latest", b"1", ["LABEL tier=base"]),
        "bob": make(svc, "bob/cats:1", b"2", ["LABEL tier=app team=bob"]),
        "local": make(svc, "127.0.0.1:5000/bob/cats:latest", b"3"),
        "dangling": make(svc, None, b"4"),
    }


def ids(items: list[dict[str, object]]) -> set[str]:
    return {str(i["Id"]) for i in items}


def test_list_shape(svc: ImageService, images: dict[str, str]) -> None:
    items = svc.list_json(all=False, filters={})
    assert ids(items) == set(images.values())
    bb = next(i for i in items if i["Id"] == images["busybox"])
    assert bb["RepoTags"] == ["busybox:latest"] and bb["RepoDigests"] == []
    assert isinstance(bb["Created"], int) and bb["Created"] > 1_600_000_000
    assert bb["Size"] == 1 and bb["Labels"] == {"tier": "base"}
    assert (bb["Containers"], bb["SharedSize"], bb["ParentId"]) == (-1, -1, "")
    assert next(i for i in items if i["Id"] == images["dangling"])["RepoTags"] == []


@pytest.mark.parametrize("pattern, expected", [
    ("busybox", {"busybox"}),
    ("busybox:*", {"busybox"}),
    ("busy*", {"busybox"}),
    ("bob/*", {"bob"}),
    ("bob/cats:1", {"bob"}),
    ("*", {"busybox"}),  # `*` never crosses a `/`
    ("127.0.0.1:5000/bob/cats", {"local"}),
    ("*/*/*", {"local"}),
    ("nothing", set()),
])
def test_reference_filter(svc: ImageService, images: dict[str, str], pattern: str, expected: set[str]) -> None:
    items = svc.list_json(all=False, filters={"reference": {pattern: True}})
    assert ids(items) == {images[k] for k in expected}


def test_reference_filter_trims_repo_tags(svc: ImageService, images: dict[str, str]) -> None:
    svc.tag("busybox", "mirror/busybox", "v1")
    items = svc.list_json(all=False, filters={"reference": ["busybox"]})
    assert [i["RepoTags"] for i in items] == [["busybox:latest"]]


def test_dangling_and_label_filters(svc: ImageService, images: dict[str, str]) -> None:
    assert ids(svc.list_json(all=False, filters={"dangling": {"true": True}})) == {images["dangling"]}
    assert images["dangling"] not in ids(svc.list_json(all=False, filters={"dangling": ["false"]}))
    assert ids(svc.list_json(all=False, filters={"label": ["tier"]})) == {images["busybox"], images["bob"]}
    assert ids(svc.list_json(all=False, filters={"label": ["tier=app"]})) == {images["bob"]}
    assert ids(svc.list_json(all=False, filters={"label": ["tier=app", "team=alice"]})) == set()


def test_before_since_filters(svc: ImageService, images: dict[str, str]) -> None:
    # imports within the same second share a Created; compare by the strict rules only
    since = svc.list_json(all=False, filters={"since": [images["busybox"]]})
    before = svc.list_json(all=False, filters={"before": [images["dangling"]]})
    assert images["busybox"] not in ids(since)
    assert images["dangling"] not in ids(before)
    with pytest.raises(NotFound):
        svc.list_json(all=False, filters={"before": ["ghost"]})


def test_bad_filters() -> None:
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        normalise_filters({"colour": ["red"]})
    with pytest.raises(InvalidArgument, match="Invalid filter 'dangling=maybe'"):
        normalise_filters({"dangling": {"maybe": True}})
    assert normalise_filters({"reference": {"a": True, "b": False}}) == {"reference": ["a"]}


def test_inspect_shape(svc: ImageService, images: dict[str, str]) -> None:
    doc = svc.inspect_json("bob/cats:1")
    assert doc["Id"] == images["bob"]
    assert doc["RepoTags"] == ["bob/cats:1"] and doc["RepoDigests"] == []
    assert doc["Config"]["Labels"] == {"tier": "app", "team": "bob"}
    assert doc["Config"]["Cmd"] is None and doc["Config"]["WorkingDir"] == ""
    assert doc["RootFS"]["Type"] == "layers" and len(doc["RootFS"]["Layers"]) == 1
    assert doc["Os"] == "linux" and doc["Architecture"]
    assert doc["Comment"] == "Imported from -"
    assert doc["Metadata"]["LastTagTime"].endswith("Z")
    assert doc["GraphDriver"]["Name"] == "overlay2"
    json.dumps(doc)
    with pytest.raises(NotFound, match="No such image: ghost:latest"):
        svc.inspect_json("ghost")


def test_history_shape(svc: ImageService, images: dict[str, str]) -> None:
    rows = svc.history_json("busybox")
    assert len(rows) == 1
    assert rows[0]["Id"] == images["busybox"] and rows[0]["Tags"] == ["busybox:latest"]
    assert rows[0]["Comment"] == "Imported from -" and rows[0]["Size"] == 1


def test_history_missing_rows(svc: ImageService) -> None:
    store = svc.store
    layer = store.root.parent / "l.tar"
    layer.write_bytes(rootfs({"x": b"abc"}).getvalue())
    config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z", "config": {},
              "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ADD x /"},
                          {"created": "2024-01-02T00:00:00Z", "created_by": "CMD [\"sh\"]", "empty_layer": True}]}
    image = store.add_image(config, [layer], "hist:1")
    rows = svc.history_json("hist:1")
    assert [(r["Id"], r["CreatedBy"], r["Size"], r["Tags"]) for r in rows] == [
        (image.id, 'CMD ["sh"]', 0, ["hist:1"]),
        ("<missing>", "ADD x /", 3, None),
    ]
    assert rows[0]["Created"] == 1704153600


def test_tag_and_remove(svc: ImageService, images: dict[str, str]) -> None:
    svc.tag(images["busybox"][7:19], "127.0.0.1:5000/bob/bb", "v2")
    assert svc.inspect_json("127.0.0.1:5000/bob/bb:v2")["Id"] == images["busybox"]
    svc.tag("busybox", "plain", None)
    assert svc.inspect_json("plain:latest")["Id"] == images["busybox"]
    assert svc.remove("plain", force=False, noprune=False, users=lambda _: []) == [{"Untagged": "plain:latest"}]
    with pytest.raises(InvalidArgument):
        svc.tag("busybox", "", "x")


def test_import_returns_id_and_tags(svc: ImageService) -> None:
    image_id = svc.import_(rootfs({"a": b"1"}), "imp", "7", ["CMD [\"/a\"]"], "msg")
    doc = svc.inspect_json("imp:7")
    assert doc["Id"] == image_id and doc["Config"]["Cmd"] == ["/a"] and doc["Comment"] == "msg"
    # the docker CLI sends repo="name:tag" with an empty tag
    assert svc.import_(rootfs({"a": b"1"}), "imp2:3", "", [], "") and svc.inspect_json("imp2:3")


def test_load_and_save_through_service(svc: ImageService, images: dict[str, str], tmp_path: Path) -> None:
    out = io.BytesIO()
    svc.save(["busybox", "bob/cats:1"], out)
    other = ImageService(ImageStore(tmp_path / "other", Database(tmp_path / "other.db")))
    assert other.load(io.BytesIO(out.getvalue()), quiet=True) == [
        "Loaded image: busybox:latest", "Loaded image: bob/cats:1"]
