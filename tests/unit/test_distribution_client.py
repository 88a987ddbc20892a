"""Registry client, push and pull against the in-memory FakeRegistry (no sockets, no root)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import requests

from berth.images import ImageStore
from berth.images.distribution import (
    BlobIndex, Credentials, Endpoint, Platform, Progress, Puller, PushImage, Pusher, RegistryClient, RegistryError,
    mediatypes as mt, resolve,
)
from berth.images.distribution._errors import Unreachable
from berth.images.distribution.testing import FakeRegistry
from berth.state import Database

REG = "fake.test"


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_store(root: Path) -> tuple[ImageStore, Database]:
    root.mkdir(parents=True, exist_ok=True)
    db = Database(root / "state.db")
    return ImageStore(root, db), db


@pytest.fixture
def local(tmp_path: Path):  # type: ignore[no-untyped-def]
    store, db = make_store(tmp_path / "a")
    tars = []
    for i, files in enumerate([{"a.txt": b"a" * 1000}, {"b.txt": b"b" * 2000}]):
        path = tmp_path / f"l{i}.tar"
        path.write_bytes(layer_tar(files))
        tars.append(path)
    image = store.add_image({"architecture": "amd64", "os": "linux", "config": {}}, tars, "app:latest")
    yield store, db, image
    db.close()


def client(registry: FakeRegistry, creds: Credentials | None = None) -> RegistryClient:
    c = RegistryClient([Endpoint(registry.base)], creds, session=registry.session())
    c.connect()
    return c


def push(store: ImageStore, db: Database, image, registry: FakeRegistry, repo: str) -> tuple[list[Progress], object]:  # type: ignore[no-untyped-def]
    events: list[Progress] = []
    r = client(registry, Credentials("bob", "pw")).repository(repo, ("pull", "push"), (f"repository:{'x'}:pull",))
    result = Pusher(store, BlobIndex(db), REG).push(r, PushImage(image.id, image.layers), "latest", events.append)
    return events, result


def statuses(events: list[Progress]) -> list[str]:
    return [e.status for e in events if e.current is None]


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_push_then_second_push_skips_everything(local, scheme: str) -> None:  # type: ignore[no-untyped-def]
    store, db, image = local
    registry = FakeRegistry(users={"bob": "pw"}, scheme=scheme)
    events, result = push(store, db, image, registry, "bob/cats")
    assert statuses(events).count("Pushed") == 2
    data, media_type = registry.manifests["bob/cats"]["latest"]
    assert media_type == mt.DOCKER_MANIFEST and str(result.digest).startswith("sha256:")  # type: ignore[attr-defined]
    manifest = json.loads(data)
    assert manifest["config"]["digest"] == image.id
    assert [l["mediaType"] for l in manifest["layers"]] == [mt.DOCKER_LAYER_GZIP] * 2

    registry.calls.clear()
    events, again = push(store, db, image, registry, "bob/cats")
    assert statuses(events).count("Layer already exists") == 2
    assert not any(method == "PATCH" for method, _ in registry.calls)
    assert again.digest == result.digest  # type: ignore[attr-defined]


def test_push_mounts_from_a_sibling_repository(local) -> None:  # type: ignore[no-untyped-def]
    store, db, image = local
    registry = FakeRegistry()
    push(store, db, image, registry, "bob/cats")
    registry.calls.clear()
    events, _ = push(store, db, image, registry, "bob/dogs")
    assert statuses(events).count("Mounted from bob/cats") == 2
    assert not any(method == "PATCH" for method, _ in registry.calls)


def test_compression_is_deterministic_across_registries(local) -> None:  # type: ignore[no-untyped-def]
    store, db, image = local
    one, two = FakeRegistry(), FakeRegistry()
    _, first = push(store, db, image, one, "x/y")
    other_db = Database(":memory:")
    events: list[Progress] = []
    repo = client(two).repository("x/y", ("pull", "push"))
    second = Pusher(store, BlobIndex(other_db), "other").push(repo, PushImage(image.id, image.layers), "latest",
                                                              events.append)
    assert second.digest == first.digest  # type: ignore[attr-defined]


def test_pull_into_an_empty_store_then_up_to_date(local, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, db, image = local
    registry = FakeRegistry()
    _, pushed = push(store, db, image, registry, "bob/cats")
    target, target_db = make_store(tmp_path / "b")
    repo = client(registry).repository("bob/cats")
    resolved = resolve(repo, "latest", Platform("linux", "amd64"))
    assert resolved.digest == pushed.digest  # type: ignore[attr-defined]
    refs = ["fake.test/bob/cats:latest", f"fake.test/bob/cats@{resolved.digest}"]
    puller = Puller(target, BlobIndex(target_db), tmp_path, REG)
    events: list[Progress] = []
    result = puller.fetch(repo, resolved, refs, refs[0], events.append)
    assert result.image_id == image.id and not result.up_to_date
    assert statuses(events).count("Pull complete") == 2 and "Download complete" in statuses(events)
    pulled = target.resolve("fake.test/bob/cats:latest")
    assert pulled.layers == image.layers
    assert pulled.repo_digests == (f"fake.test/bob/cats@{resolved.digest}",)

    events.clear()
    again = puller.fetch(repo, resolved, refs, refs[0], events.append)
    assert again.up_to_date and statuses(events) == ["Already exists", "Already exists"]
    target_db.close()


def test_pull_rejects_a_corrupt_blob(local, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, db, image = local
    registry = FakeRegistry()
    push(store, db, image, registry, "bob/cats")
    manifest = json.loads(registry.manifests["bob/cats"]["latest"][0])
    registry.blobs[manifest["layers"][0]["digest"]] = b"tampered"
    target, target_db = make_store(tmp_path / "b")
    repo = client(registry).repository("bob/cats")
    resolved = resolve(repo, "latest", Platform("linux", "amd64"))
    with pytest.raises(RegistryError, match="verification failed"):
        Puller(target, BlobIndex(target_db), tmp_path, REG).fetch(repo, resolved, [], None, lambda p: None)
    assert target.list() == []
    target_db.close()


def test_unknown_manifest_and_repository_errors() -> None:
    registry = FakeRegistry()
    registry.put_manifest("bob/cats", "v1", b"{}", mt.OCI_MANIFEST)
    repo = client(registry).repository("bob/cats")
    with pytest.raises(RegistryError) as err:
        repo.get_manifest("latest")
    assert err.value.not_found and str(err.value) == "manifest unknown: manifest unknown"
    with pytest.raises(RegistryError) as err:
        client(registry).repository("bob/none").get_manifest("latest")
    assert err.value.codes == ("NAME_UNKNOWN",)


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_login(scheme: str) -> None:
    registry = FakeRegistry(users={"bob": "pw"}, scheme=scheme)
    RegistryClient([Endpoint(registry.base)], Credentials("bob", "pw"), session=registry.session()).login()
    with pytest.raises(RegistryError) as err:
        RegistryClient([Endpoint(registry.base)], Credentials("bob", "no"), session=registry.session()).login()
    assert err.value.status == 401
    assert str(err.value) == "login attempt to http://fake.test/v2/ failed with status: 401 Unauthorized"


def test_anonymous_access_to_a_protected_registry_is_unauthorized() -> None:
    registry = FakeRegistry(users={"bob": "pw"})
    registry.put_manifest("bob/cats", "latest", b"{}", mt.OCI_MANIFEST)
    with pytest.raises(RegistryError) as err:
        client(registry).repository("bob/cats").get_manifest("latest")
    assert err.value.unauthorized


def test_layer_compression_is_multi_member_gzip_and_deterministic(tmp_path: Path) -> None:
    import gzip
    import os as _os

    from berth.images.distribution._progress import Meter
    from berth.images.distribution._push import _GzipStream

    data = layer_tar({"text.txt": b"hello " * 2_000_000, "random.bin": _os.urandom(3 << 20)})
    path = tmp_path / "layer.tar"
    path.write_bytes(data)
    outputs = []
    for _ in range(2):
        stream = _GzipStream(path, Meter(lambda p: None, "x", "Pushing", len(data)))
        outputs.append((b"".join(stream.chunks()), stream.digest))
    assert outputs[0] == outputs[1]
    assert gzip.decompress(outputs[0][0]) == data
    assert len(outputs[0][0]) < len(data)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    stream = _GzipStream(empty, Meter(lambda p: None, "x", "Pushing", 0))
    assert gzip.decompress(b"".join(stream.chunks())) == b""


# -- a registry on loopback may only lead to loopback ---------------------------------------------

class _Trap(requests.adapters.BaseAdapter):
    """Mounted for every other URL: fails the test if the client ever tries to go there."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def,override]
        self.sent.append(request.url)
        raise AssertionError(f"client dialled {request.url}")

    def close(self) -> None:
        pass


class _Misdirecting(FakeRegistry):
    """A loopback registry whose realm, upload Location or blob redirect names another host."""

    lure: str = ""

    def handle(self, req):  # type: ignore[no-untyped-def]
        path = (req.url or "").split("://", 1)[1].split("/", 1)[1]
        if self.lure == "realm" and path == "v2/" and "Authorization" not in req.headers:
            return 401, {"WWW-Authenticate": 'Bearer realm="http://10.20.30.40/token",service="x"'}, b""
        if self.lure == "upload" and req.method == "POST":
            return 202, {"Location": "http://203.0.113.9/upload/1"}, b""
        if self.lure == "redirect" and req.method == "GET" and "/blobs/" in path:
            return 307, {"Location": "http://cdn.example.invalid/blob"}, b""
        if self.lure == "local-redirect" and req.method == "GET" and "/blobs/sha256:" in path and "hop" not in path:
            return 307, {"Location": f"{self.base}/v2/app/blobs/{path.rsplit('/', 1)[1]}?hop=1"}, b""
        return super().handle(req)


def confined_client(lure: str) -> tuple[RegistryClient, _Trap, _Misdirecting]:
    registry = _Misdirecting(base="http://127.0.0.1:5999")
    registry.lure = lure
    session = registry.session()
    trap = _Trap()
    session.mount("http://", trap)
    session.mount("https://", trap)
    session.mount(registry.base, session.get_adapter(registry.base + "/"))  # longest prefix wins anyway
    return RegistryClient([Endpoint(registry.base)], session=session), trap, registry


@pytest.mark.parametrize("lure", ["realm", "upload", "redirect"])
def test_loopback_registry_cannot_send_the_client_elsewhere(lure: str) -> None:
    client, trap, registry = confined_client(lure)
    registry.put_blob("app", b"data")
    with pytest.raises(Unreachable) as err:
        client.connect()
        repo = client.repository("app", ("pull", "push"))
        if lure == "upload":
            repo.put_blob(b"more")
        else:
            b"".join(repo.iter_blob(next(iter(registry.blobs))))  # type: ignore[arg-type]
    assert "may only refer to loopback" in str(err.value)
    assert trap.sent == []


def test_loopback_registry_may_redirect_to_loopback() -> None:
    client, trap, registry = confined_client("local-redirect")
    digest = registry.put_blob("app", b"payload")
    client.connect()
    assert b"".join(client.repository("app").iter_blob(digest)) == b"payload"  # type: ignore[arg-type]
    assert trap.sent == []


def test_remote_registry_may_redirect_off_loopback_only() -> None:
    """Registries the user named elsewhere may send berth to other hosts (CDN blob downloads, as
    Docker allows), never to loopback (server-side request forgery against local services)."""
    registry = FakeRegistry()
    client = RegistryClient([Endpoint(registry.base)], session=registry.session())
    client.check_target("http://cdn.example.invalid/blob")  # no error
    for url in ("http://127.0.0.1:2375/containers/json", "http://[::1]/x", "http://LOCALHOST/x"):
        with pytest.raises(Unreachable, match="may only refer to hosts off loopback"):
            client.check_target(url)


@pytest.mark.parametrize("url", [
    "http://10.20.30.40\\@127.0.0.1:5999/token",   # urllib3 dials 10.20.30.40, urlsplit says 127.0.0.1
    "http://user:pw@127.0.0.1:5999/token",          # userinfo: never legitimate from a registry
    "http://[::1/x",                                 # malformed
    "http:///nohost",
])
def test_ambiguous_or_malformed_targets_are_refused(url: str) -> None:
    client, trap, _ = confined_client("")
    with pytest.raises(Unreachable):
        client.check_target(url)
    assert trap.sent == []


def test_backslash_realm_is_not_dialled() -> None:
    class Realm(_Misdirecting):
        def handle(self, req):  # type: ignore[no-untyped-def]
            if req.url.endswith("/v2/") and "Authorization" not in req.headers:
                return 401, {"WWW-Authenticate": 'Bearer realm="http://10.20.30.40\\@127.0.0.1:5999/token"'}, b""
            return super().handle(req)

    registry = Realm(base="http://127.0.0.1:5999", users={"bob": "pw"}, scheme="bearer")
    session = registry.session()
    trap = _Trap()
    session.mount("http://", trap)
    session.mount(registry.base, session.get_adapter(registry.base + "/"))
    client = RegistryClient([Endpoint(registry.base)], Credentials(username="bob", password="pw"), session=session)
    client.connect()
    with pytest.raises(Unreachable):
        client.repository("app")
    assert trap.sent == []
