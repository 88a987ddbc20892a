"""ImageStore: load (docker-archive, OCI layout), save, import, tag/untag/delete, resolve."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.images import Image, ImageStore, ImageUser
from berth.images._busybox import host_architecture
from berth.state import Database

ARCH = host_architecture()


# archive builders


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(layers: list[bytes], **extra: object) -> bytes:
    config = {
        "architecture": ARCH, "os": "linux", "created": "2024-05-01T10:00:00.123456789Z",
        "config": {"Cmd": ["sh"], **extra},
        "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]},
        "history": [{"created": "2024-05-01T10:00:00Z", "created_by": f"layer {i}"} for i in range(len(layers))],
    }
    return json.dumps(config).encode()


def archive(files: dict[str, bytes], links: dict[str, str] | None = None) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    buf.seek(0)
    return buf


def docker_archive(layers: list[bytes], tags: list[str] | None, *, compress: bool = False,
                   config: bytes | None = None) -> io.BytesIO:
    """Classic `docker save` (pre-25) layout: <id>/layer.tar dirs and <hex>.json config."""
    config = config or config_for(layers)
    files: dict[str, bytes] = {}
    names = []
    for i, layer in enumerate(layers):
        name = f"{i:064x}/layer.tar"
        files[name] = gzip.compress(layer) if compress else layer
        names.append(name)
    files[sha(config)[7:] + ".json"] = config
    files["manifest.json"] = json.dumps([{"Config": sha(config)[7:] + ".json", "RepoTags": tags, "Layers": names}]).encode()
    files["repositories"] = b"{}"
    return archive(files)


def oci_archive(layers: list[bytes], annotations: dict[str, str], *, nested: bool = False) -> io.BytesIO:
    config = config_for(layers)
    blobs = {sha(config): config}
    layer_descs = []
    for layer in layers:
        gz = gzip.compress(layer)
        blobs[sha(gz)] = gz
        layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(gz), "size": len(gz)})
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": layer_descs,
    }).encode()
    blobs[sha(manifest)] = manifest
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest)}
    if nested:
        other = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(b"x"), "size": 1,
                 "platform": {"os": "linux", "architecture": "s390x"}}
        inner = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [other, {**top, "platform": {"os": "linux", "architecture": ARCH}}]}).encode()
        blobs[sha(inner)] = inner
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(inner), "size": len(inner)}
    index = {"schemaVersion": 2, "manifests": [{**top, "annotations": annotations}]}
    files = {f"blobs/sha256/{d[7:]}": data for d, data in blobs.items()}
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    files["index.json"] = json.dumps(index).encode()
    return archive(files)


# fixtures


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    db = Database(tmp_path / "state.db")
    yield ImageStore(tmp_path / "root", db)
    db.close()


def visible_state(store: ImageStore) -> tuple[list[str], list[str], list[Image]]:
    blobs = sorted(os.listdir(store.root / "blobs/sha256"))
    layers = sorted(p for p in os.listdir(store.root / "layers") if not p.startswith(".tmp-"))
    return blobs, layers, store.list()


L1 = layer_tar({"bin/hello": b"hello\n"})
L2 = layer_tar({"etc/motd": b"welcome\n", "etc/.wh.gone": b""})


# load


def test_load_docker_archive(store: ImageStore) -> None:
    messages = store.load(docker_archive([L1, L2], ["cats:1", "localhost:5000/bob/cats:latest"]))
    assert messages == ["Loaded image: cats:1", "Loaded image: localhost:5000/bob/cats:latest"]
    image = store.resolve("cats:1")
    assert image.id == sha(config_for([L1, L2]))
    assert image.layers == (sha(L1), sha(L2))
    assert image.repo_tags == ("cats:1", "localhost:5000/bob/cats:latest")
    assert image.size == len(b"hello\n") + len(b"welcome\n")
    assert image.created == "2024-05-01T10:00:00.123456789Z"
    assert store.resolve("localhost:5000/bob/cats").id == image.id


def test_load_gzip_layers_and_untagged(store: ImageStore) -> None:
    messages = store.load(docker_archive([L1], None, compress=True))
    image_id = sha(config_for([L1]))
    assert messages == [f"Loaded image ID: {image_id}"]
    assert store.resolve(image_id).layers == (sha(L1),)
    # layers are kept uncompressed: the blob digest is the diff_id
    assert (store.root / "blobs/sha256" / sha(L1)[7:]).read_bytes() == L1


def test_load_whole_archive_gzipped(store: ImageStore) -> None:
    raw = docker_archive([L1], ["gz:1"]).getvalue()
    assert store.load(io.BytesIO(gzip.compress(raw))) == ["Loaded image: gz:1"]


def test_load_archive_with_symlinked_layer(store: ImageStore) -> None:
    config = config_for([L1, L1])
    files = {"a/layer.tar": L1, "c.json": config,
             "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["dup:1"],
                                           "Layers": ["a/layer.tar", "b/layer.tar"]}]).encode()}
    assert store.load(archive(files, links={"b/layer.tar": "../a/layer.tar"})) == ["Loaded image: dup:1"]
    assert store.resolve("dup:1").layers == (sha(L1), sha(L1))


def test_load_moves_an_existing_tag(store: ImageStore) -> None:
    store.load(docker_archive([L1], ["app:1"]))
    old = store.resolve("app:1").id
    messages = store.load(docker_archive([L2], ["app:1"]))
    assert messages == [f"The image app:1 already exists, renaming the old one with ID {old} to empty string",
                        "Loaded image: app:1"]
    assert store.resolve(old).repo_tags == ()


def test_load_oci_layout_with_containerd_name(store: ImageStore) -> None:
    messages = store.load(oci_archive([L1, L2], {
        "io.containerd.image.name": "docker.io/library/alpine:3.19",
        "org.opencontainers.image.ref.name": "3.19"}))
    assert messages == ["Loaded image: alpine:3.19"]
    assert store.resolve("alpine:3.19").layers == (sha(L1), sha(L2))


def test_load_oci_layout_nested_index_and_ref_name(store: ImageStore) -> None:
    messages = store.load(oci_archive([L1], {"org.opencontainers.image.ref.name": "example.com/x/y:v2"}, nested=True))
    assert messages == ["Loaded image: example.com/x/y:v2"]


def test_load_oci_layout_bare_tag_annotation_is_untagged(store: ImageStore) -> None:
    messages = store.load(oci_archive([L1], {"org.opencontainers.image.ref.name": "latest"}))
    assert messages == [f"Loaded image ID: {sha(config_for([L1]))}"]


@pytest.mark.parametrize("bad", [
    b"",
    b"definitely not a tar" * 100,
])
def test_load_rejects_non_tar(store: ImageStore, bad: bytes) -> None:
    with pytest.raises(InvalidArgument):
        store.load(io.BytesIO(bad))
    assert visible_state(store) == ([], [], [])


def test_load_rejects_diff_id_mismatch_and_leaves_nothing(store: ImageStore) -> None:
    config = config_for([L1, L2])
    bad = docker_archive([L1, layer_tar({"other": b"x"})], ["bad:1"], config=config)
    with pytest.raises(InvalidArgument, match="invalid diffID for layer 1"):
        store.load(bad)
    assert visible_state(store) == ([], [], [])
    assert os.listdir(store.root / "blobs/tmp") == []


def test_load_rejects_missing_manifest(store: ImageStore) -> None:
    with pytest.raises(InvalidArgument, match="manifest.json"):
        store.load(archive({"hello.txt": b"hi"}))


def test_load_rejects_oci_blob_digest_mismatch(store: ImageStore) -> None:
    good = oci_archive([L1], {"io.containerd.image.name": "x:1"})
    with tarfile.open(fileobj=good) as src:
        files = {m.name: src.extractfile(m).read() for m in src if m.isreg()}  # type: ignore[union-attr]
    layer_name = next(n for n, d in files.items() if n.startswith("blobs/") and d[:2] == b"\x1f\x8b")
    files[layer_name] = gzip.compress(layer_tar({"evil": b"x"}))
    with pytest.raises(InvalidArgument, match="digest"):
        store.load(archive(files))
    assert visible_state(store) == ([], [], [])


def test_load_corrupt_gzip_layer(store: ImageStore) -> None:
    corrupt = gzip.compress(L1)[:-20] + b"\0" * 20
    files = {"l.tar": corrupt, "c.json": config_for([L1]),
             "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["c:1"], "Layers": ["l.tar"]}]).encode()}
    with pytest.raises(InvalidArgument):
        store.load(archive(files))
    assert visible_state(store) == ([], [], [])


# save


def test_save_then_load_round_trip(store: ImageStore, tmp_path: Path) -> None:
    store.load(docker_archive([L1, L2], ["cats:1", "cats:2", "dogs:1"]))
    out = io.BytesIO()
    store.save(["cats"], out)  # a bare repository saves all its tags
    out.seek(0)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= names
    assert manifest[0]["RepoTags"] == ["cats:1", "cats:2"]
    assert manifest[0]["Layers"] == [f"blobs/sha256/{sha(L1)[7:]}", f"blobs/sha256/{sha(L2)[7:]}"]
    assert [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]] == [
        "docker.io/library/cats:1", "docker.io/library/cats:2"]

    other = ImageStore(tmp_path / "other", Database(tmp_path / "other.db"))
    assert other.load(io.BytesIO(out.getvalue())) == ["Loaded image: cats:1", "Loaded image: cats:2"]
    assert other.resolve("cats:2").id == store.resolve("cats:2").id
    # the OCI view alone loads too
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isreg() and m.name != "manifest.json"}  # type: ignore[union-attr]
    third = ImageStore(tmp_path / "third", Database(tmp_path / "third.db"))
    assert third.load(archive(files)) == ["Loaded image: cats:1", "Loaded image: cats:2"]


def test_save_by_id_has_no_tags(store: ImageStore) -> None:
    store.load(docker_archive([L1], ["cats:1"]))
    out = io.BytesIO()
    store.save([store.resolve("cats:1").id[7:19]], out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] is None


def test_save_unknown_image(store: ImageStore) -> None:
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        store.save(["nope"], io.BytesIO())


# import


def test_import_with_changes(store: ImageStore) -> None:
    rootfs = gzip.compress(layer_tar({"bin/app": b"#!/bin/sh\n"}))
    image = store.import_tar(io.BytesIO(rootfs), "imported:v1", [
        'CMD ["/bin/app", "--serve"]', "ENTRYPOINT /bin/entry", "ENV A=1 B=two", "ENV C three words",
        "EXPOSE 80 53/udp", "WORKDIR /srv", "USER nobody", 'LABEL team=cats "note"="a b"',
    ], "my import")
    cfg = image.config["config"]
    assert cfg["Cmd"] == ["/bin/app", "--serve"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/entry"]
    assert cfg["Env"] == ["A=1", "B=two", "C=three words"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert (cfg["WorkingDir"], cfg["User"]) == ("/srv", "nobody")
    assert cfg["Labels"] == {"team": "cats", "note": "a b"}
    assert image.config["comment"] == "my import"
    assert image.config["architecture"] == ARCH and image.config["os"] == "linux"
    assert image.repo_tags == ("imported:v1",)
    assert store.layer_dirs(image)[0].joinpath("bin/app").read_bytes() == b"#!/bin/sh\n"


def test_import_bad_change_leaves_nothing(store: ImageStore) -> None:
    with pytest.raises(InvalidArgument, match="RUN is not a valid change command"):
        store.import_tar(io.BytesIO(L1), "x:1", ["RUN echo hi"])
    with pytest.raises(InvalidArgument):
        store.import_tar(io.BytesIO(b"garbage" * 200), "x:1")
    assert visible_state(store) == ([], [], [])


# resolve, tag, untag


def test_resolve_forms_and_errors(store: ImageStore) -> None:
    store.load(docker_archive([L1], ["cats:1"]))
    image = store.resolve("cats:1")
    hexid = image.id[7:]
    for name in (image.id, hexid, hexid[:12], "sha256:" + hexid[:5], hexid[:1], "docker.io/library/cats:1"):
        assert store.resolve(name).id == image.id
    with pytest.raises(NotFound, match=r"^No such image: cats:latest$"):
        store.resolve("cats")
    with pytest.raises(NotFound, match=r"^No such image: sha256:0{64}$"):
        store.resolve("0" * 64)
    with pytest.raises(InvalidArgument):
        store.resolve("UPPER/Case")


def test_tag_untag(store: ImageStore) -> None:
    store.load(docker_archive([L1], ["cats:1"]))
    image = store.resolve("cats:1")
    store.tag(image.id[7:19], "127.0.0.1:5000/bob/cats:latest")
    assert store.resolve("127.0.0.1:5000/bob/cats").repo_tags == ("127.0.0.1:5000/bob/cats:latest", "cats:1")
    assert store.resolve("cats:1").last_tag_time
    store.untag("127.0.0.1:5000/bob/cats")
    assert store.resolve(image.id).repo_tags == ("cats:1",)
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        store.tag("nope", "x:1")
    with pytest.raises(NotFound):
        store.untag("127.0.0.1:5000/bob/cats")
    with pytest.raises(InvalidArgument):
        store.tag("cats:1", "Bad Name")


# delete (docker rmi semantics)


def no_users(image_id: str) -> list[str]:
    return []


def test_delete_by_tag_then_last_tag_deletes_image(store: ImageStore) -> None:
    store.load(docker_archive([L1, L2], ["cats:1", "cats:2"]))
    image = store.resolve("cats:1")
    assert store.delete("cats:1", force=False, prune=True, users=no_users) == [{"Untagged": "cats:1"}]
    records = store.delete("cats:2", force=False, prune=True, users=no_users)
    assert records[:2] == [{"Untagged": "cats:2"}, {"Deleted": image.id}]
    assert len(records) == 4  # plus one Deleted per removed layer (chain id)
    assert visible_state(store) == ([], [], [])


def test_delete_shared_layers_survive(store: ImageStore) -> None:
    store.load(docker_archive([L1], ["base:1"]))
    store.load(docker_archive([L1, L2], ["app:1"]))
    store.delete("app:1", force=False, prune=True, users=no_users)
    base = store.resolve("base:1")
    assert store.layer_dirs(base)[0].joinpath("bin/hello").exists()


def test_delete_in_use_by_reference(store: ImageStore) -> None:
    store.load(docker_archive([L1], ["busybox:latest"]))
    image = store.resolve("busybox")
    cid = "ab" * 32
    with pytest.raises(Conflict) as err:
        store.delete("busybox", force=False, prune=True, users=lambda _: [cid])
    assert str(err.value) == (f'conflict: unable to remove repository reference "busybox" (must force) - '
                              f"container {cid[:12]} is using its referenced image {image.id[7:19]}")


def test_delete_by_id_with_several_repositories(store: ImageStore) -> None:
    store.load(docker_archive([L1], ["cats:1", "dogs:1"]))
    image = store.resolve("cats:1")
    with pytest.raises(Conflict) as err:
        store.delete(image.id[7:19], force=False, prune=True, users=no_users)
    assert str(err.value) == (f"conflict: unable to delete {image.id[7:19]} (must be forced) - "
                              "image is referenced in multiple repositories")
    records = store.delete(image.id[7:19], force=True, prune=True, users=no_users)
    assert records[:3] == [{"Untagged": "cats:1"}, {"Untagged": "dogs:1"}, {"Deleted": image.id}]


def test_delete_running_cannot_be_forced(store: ImageStore) -> None:
    store.load(docker_archive([L1], ["cats:1"]))
    image = store.resolve("cats:1")
    cid = "cd" * 32
    with pytest.raises(Conflict) as err:
        store.delete(image.id, force=True, prune=True, users=lambda _: [ImageUser(cid, running=True)])
    assert str(err.value) == (f"conflict: unable to delete {image.id[7:19]} (cannot be forced) - "
                              f"image is being used by running container {cid[:12]}")
    # by reference with force: untagged, image kept for the running container
    records = store.delete("cats:1", force=True, prune=True, users=lambda _: [ImageUser(cid, running=True)])
    assert records == [{"Untagged": "cats:1"}]
    assert store.resolve(image.id).repo_tags == ()


def test_delete_stopped_user_by_id(store: ImageStore) -> None:
    store.load(docker_archive([L1], ["cats:1"]))
    image = store.resolve("cats:1")
    cid = "ef" * 32
    with pytest.raises(Conflict, match=f"must be forced\\) - image is being used by stopped container {cid[:12]}"):
        store.delete(image.id, force=False, prune=True, users=lambda _: [cid])
    # forced: untagged, data kept while the container exists (berth keeps its lowerdirs)
    assert store.delete(image.id, force=True, prune=True, users=lambda _: [cid]) == [{"Untagged": "cats:1"}]
    assert store.resolve(image.id)


def test_delete_unknown(store: ImageStore) -> None:
    with pytest.raises(NotFound, match="No such image: ghost:latest"):
        store.delete("ghost", force=True, prune=True, users=no_users)


# snapshots and bootstrap


def test_layer_dirs_topmost_first_and_recreated(store: ImageStore) -> None:
    store.load(docker_archive([L1, L2], ["cats:1"]))
    image = store.resolve("cats:1")
    top, bottom = store.layer_dirs(image)
    assert (bottom / "bin/hello").exists() and (top / "etc/motd").exists()
    assert not (bottom / "etc").exists()
    import shutil
    shutil.rmtree(top)
    assert store.layer_dirs(image)[0] == top and (top / "etc/motd").exists()


@pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="needs busybox-static")
def test_bootstrap_busybox_is_deterministic(store: ImageStore, tmp_path: Path) -> None:
    image = store.bootstrap_busybox()
    other = ImageStore(tmp_path / "second", Database(tmp_path / "second.db")).bootstrap_busybox("bb:1")
    assert image.id == other.id
    assert image.repo_tags == ("busybox:latest",)
    assert image.config["config"] == {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]}
    assert image.config["architecture"] == ARCH and image.config["history"]
    rootfs = store.layer_dirs(image)[0]
    assert os.readlink(rootfs / "bin/sh") == "busybox"
    assert os.readlink(rootfs / "usr/bin/awk") == "../../bin/busybox"
    assert oct((rootfs / "tmp").stat().st_mode & 0o7777) == "0o1777"
    assert "nobody" in (rootfs / "etc/passwd").read_text()
    for d in ("var/www", "root", "home", "etc/group"):
        assert (rootfs / d).exists()
    assert store.bootstrap_busybox().id == image.id  # idempotent


def test_concurrent_unpack_of_one_layer(store: ImageStore) -> None:
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    store.load(docker_archive([L1, L2], ["cats:1"]))
    image = store.resolve("cats:1")
    for d in store.layer_dirs(image):
        shutil.rmtree(d)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.layer_dirs(image), range(16)))
    assert all(r == results[0] for r in results)
    assert (results[0][1] / "bin/hello").read_bytes() == b"hello\n"
    assert not [p for p in os.listdir(store.root / "layers") if p.startswith(".tmp-")]


def test_recover_drops_staging(store: ImageStore) -> None:
    (store.root / "blobs/tmp/ingest-stale").write_bytes(b"half")
    (store.root / "blobs/tmp/load-stale").mkdir()
    (store.root / "layers/.tmp-stale").mkdir()
    store.recover()
    assert os.listdir(store.root / "blobs/tmp") == []
    assert os.listdir(store.root / "layers") == []


def test_pull_commit_rechecks_layers_deleted_meanwhile(store: ImageStore) -> None:
    """A pull that found a layer stored, while `rmi` deletes it, must not commit an image
    whose layer is gone."""
    layer = layer_tar({"a.txt": b"shared"})
    store.load(docker_archive([layer], ["first:1"]))
    config = config_for([layer], marker="second")
    assert store.has_layer(sha(layer))
    store.delete("first:1", force=False, prune=True, users=lambda _id: [])  # the "concurrent" rmi
    with pytest.raises(Conflict, match="removed while"):
        store.add_pulled(config, [None], ["second:1"])
    with pytest.raises(NotFound):
        store.resolve("second:1")
