"""Registry storage, index, uploads and garbage collection (no server, no root)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.registry import RegistryConfig, RegistryError, collect_garbage, open_registry
from berth.registry._index import RegistryIndex
from berth.registry._service import Registry
from berth.registry._storage import FilesystemStorage
from berth.state import Database
from berth.types import Digest


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine_blobs(tmp_path: Path) -> Path:
    path = tmp_path / "blobs" / "sha256"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def reg(tmp_path: Path, engine_blobs: Path, clock: Clock) -> Iterator[Registry]:
    storage = FilesystemStorage(tmp_path / "registry", shared_dirs=(engine_blobs,), fsync=False)
    db = Database(tmp_path / "registry" / "registry.db")
    yield Registry(storage, RegistryIndex(db, clock=clock), clock=clock)
    db.close()


def upload(reg: Registry, repo: str, data: bytes) -> Digest:
    session = reg.start_upload(repo)
    session.ingest.write(data)
    return reg.finish_upload(session, Digest.of(data)).digest


def manifest_for(config: Digest, layers: list[Digest]) -> bytes:
    import json

    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": str(config), "size": 2},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": str(d), "size": 1}
                                  for d in layers]}).encode()


def test_blob_visible_only_after_verified_publish(reg: Registry) -> None:
    session = reg.start_upload("r")
    session.ingest.write(b"part")
    digest = Digest.of(b"partial")
    with pytest.raises(RegistryError):
        reg.blob("r", Digest.of(b"part"))
    with pytest.raises(RegistryError) as err:
        reg.finish_upload(session, digest)
    assert err.value.error.code == "DIGEST_INVALID"
    assert list(reg.storage.digests()) == [] and list(reg.storage.upload_dir.iterdir()) == []


def test_rollback_undoes_a_failed_chunk(reg: Registry) -> None:
    session = reg.start_upload("r")
    session.ingest.write(b"good ")
    mark = session.ingest.mark()
    session.ingest.write(b"garbage")
    session.ingest.rollback(mark)
    session.ingest.write(b"data")
    assert reg.finish_upload(session, Digest.of(b"good data")).size == 9


def test_publish_hardlinks_engine_content(reg: Registry, engine_blobs: Path) -> None:
    data = os.urandom(4096)
    digest = Digest.of(data)
    (engine_blobs / digest.hex).write_bytes(data)
    upload(reg, "r", data)
    assert reg.storage.path(digest).stat().st_ino == (engine_blobs / digest.hex).stat().st_ino
    assert list(reg.storage.upload_dir.iterdir()) == []


def test_adopt_is_false_without_engine_copy(reg: Registry) -> None:
    assert reg.storage.adopt(Digest.of(b"absent")) is False


def test_concurrent_uploads_of_the_same_blob(reg: Registry) -> None:
    data = os.urandom(1 << 20)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(5):
                upload(reg, "r", data)
        except BaseException as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    info = reg.blob("r", Digest.of(data))
    assert hashlib.sha256(info.path.read_bytes()).hexdigest() == Digest.of(data).hex
    assert list(reg.storage.upload_dir.iterdir()) == []


def test_uploads_expire(reg: Registry, clock: Clock) -> None:
    session = reg.start_upload("r")
    session.ingest.write(b"abandoned")
    clock.now += 10
    assert reg.uploads.expire(60) == []
    clock.now += 100
    assert reg.uploads.expire(60) == [session.id]
    assert list(reg.storage.upload_dir.iterdir()) == []
    with pytest.raises(RegistryError):
        reg.uploads.get("r", session.id)


def test_auto_create_off_requires_repository(tmp_path: Path) -> None:
    registry, db = open_registry(RegistryConfig(root=tmp_path / "reg", auto_create=False, fsync=False))
    try:
        with pytest.raises(RegistryError) as err:
            registry.start_upload("new/repo")
        assert err.value.error.code == "NAME_UNKNOWN"
        registry.index.create_repository("new/repo")
        registry.cancel_upload(registry.start_upload("new/repo"))
    finally:
        db.close()


def test_gc_keeps_referenced_and_recent_blobs(reg: Registry, clock: Clock) -> None:
    config, layer = upload(reg, "r", b"{}"), upload(reg, "r", b"layer")
    manifest = reg.put_manifest("r", "v1", manifest_for(config, [layer]), None).digest
    orphan = upload(reg, "r", b"pushed but never used")
    report = collect_garbage(reg.storage, reg.index, grace=3600, now=clock.now)
    assert report.blobs_removed == []  # the orphan is still within its grace period
    clock.now += 7200
    dry = collect_garbage(reg.storage, reg.index, grace=3600, now=clock.now, dry_run=True)
    assert dry.blobs_removed == [str(orphan)] and reg.storage.stat(orphan) is not None
    report = collect_garbage(reg.storage, reg.index, grace=3600, now=clock.now)
    assert report.blobs_removed == [str(orphan)] and report.bytes_freed == len(b"pushed but never used")
    assert reg.storage.stat(orphan) is None
    for digest in (config, layer, manifest):
        assert reg.storage.stat(digest) is not None


def test_gc_after_manifest_delete_and_untagged(reg: Registry, clock: Clock) -> None:
    config, layer = upload(reg, "r", b"{}"), upload(reg, "r", b"layer")
    digest = reg.put_manifest("r", "v1", manifest_for(config, [layer]), None).digest
    reg.index.delete_tag("r", "v1")
    clock.now += 7200
    kept = collect_garbage(reg.storage, reg.index, grace=3600, now=clock.now)
    assert kept.blobs_removed == []  # untagged manifests stay unless asked
    report = collect_garbage(reg.storage, reg.index, grace=3600, now=clock.now, delete_untagged=True)
    assert report.manifests_removed == [f"r@{digest}"]
    assert sorted(report.blobs_removed) == sorted(map(str, (config, layer, digest)))
    assert list(reg.storage.digests()) == []


def test_gc_removes_orphan_files(reg: Registry, clock: Clock) -> None:
    stray = reg.storage.path(Digest.of(b"stray"))
    stray.write_bytes(b"stray")
    os.utime(stray, (clock.now - 10_000, clock.now - 10_000))
    report = collect_garbage(reg.storage, reg.index, grace=3600, now=clock.now)
    assert report.blobs_removed == [str(Digest.of(b"stray"))] and not stray.exists()


def test_manifest_put_checks_references_in_repository(reg: Registry) -> None:
    config = upload(reg, "other", b"{}")
    with pytest.raises(RegistryError) as err:
        reg.put_manifest("r", "v1", manifest_for(config, []), None)
    assert err.value.error.code == "MANIFEST_BLOB_UNKNOWN"


def test_deleting_a_repository_dooms_an_upload_a_request_holds(reg: Registry) -> None:
    session = reg.start_upload("doomed")
    held = reg.uploads.claim("doomed", session.id)      # a PATCH is writing to it
    held.ingest.write(b"partial")
    reg.delete_repository("doomed")
    assert session.id in reg.uploads.active_ids()        # not pulled from under the request...
    with pytest.raises(RegistryError) as err:            # ...but it can no longer be finished
        reg.finish_upload(held, Digest.of(b"partial"))
    assert err.value.error.code == "BLOB_UPLOAD_UNKNOWN"
    assert session.id not in reg.uploads.active_ids()
    assert not reg.storage.path(Digest.of(b"partial")).exists()

    other = reg.start_upload("doomed2")
    reg.uploads.claim("doomed2", other.id)
    reg.delete_repository("doomed2")
    reg.uploads.release(other)                           # the request lets go: aborted then
    assert other.id not in reg.uploads.active_ids()
    assert not other.ingest.path.exists()  # type: ignore[attr-defined]


def test_ecr_layer_part_that_fails_to_write_can_be_retried(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    from berth.ecr.registry_adapter import RegistryImages

    images = RegistryImages(reg)
    images.ensure_repository("app")
    upload = images.start_layer_upload("app")
    images.upload_layer_part("app", upload, 0, b"first-")
    session = reg.uploads.get("app", upload)
    real = session.ingest.write_parts
    calls = {"n": 0}

    def flaky(parts: list[bytes]) -> None:
        calls["n"] += 1
        real(parts)                    # hashed and written...
        if calls["n"] == 1:
            raise OSError(28, "No space left on device")  # ...then the disk fills up

    monkeypatch.setattr(session.ingest, "write_parts", flaky)
    with pytest.raises(OSError):
        images.upload_layer_part("app", upload, 6, b"second")
    assert images.upload_layer_part("app", upload, 6, b"second") == 11   # the retry is accepted
    images.complete_layer_upload("app", upload, str(Digest.of(b"first-second")))
    assert images.layer_size("app", str(Digest.of(b"first-second"))) == 12
