"""The distribution API end to end over HTTP (a real server on a loopback port, no root needed)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from berth.registry import RegistryConfig, RegistryServer, hash_password


@contextmanager
def running_registry(config: RegistryConfig) -> Iterator[tuple[RegistryServer, str]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = RegistryServer(config)
    try:
        port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(10)
        yield server, f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


class Client:
    """A requests.Session that answers Bearer challenges the way docker and skopeo do."""

    def __init__(self, base: str, auth: tuple[str, str] | None = None) -> None:
        self.base = base
        self.http = requests.Session()
        self.auth = auth
        self.tokens: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; on a 401 fetch a token for the challenged scope and retry once."""
        headers = dict(kwargs.pop("headers", None) or {})
        key = path.split("?")[0].split("/blobs/")[0].split("/manifests/")[0]
        for attempt in range(2):
            if key in self.tokens:
                headers["Authorization"] = f"Bearer {self.tokens[key]}"
            resp = self.http.request(method, self.base + path, headers=headers, allow_redirects=False, **kwargs)
            if resp.status_code != 401 or attempt:
                return resp
            self.tokens[key] = self.fetch_token(resp.headers["WWW-Authenticate"])
        raise AssertionError("unreachable")

    def fetch_token(self, challenge: str) -> str:
        params = {k: v.strip('"') for k, v in (p.split("=", 1) for p in challenge.removeprefix("Bearer ").split('",'))}
        query = {"service": params["service"]}
        if "scope" in params:
            query["scope"] = params["scope"]
        resp = self.http.get(params["realm"], params=query, auth=self.auth)
        resp.raise_for_status()
        return str(resp.json()["token"])

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def head(self, path: str, **kw: Any) -> requests.Response:
        return self.request("HEAD", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)


USERS = {"bob": "hunter2"}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[RegistryServer, str]]:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("".join(f"{u}:{hash_password(p, rounds=4)}\n" for u, p in USERS.items()))
    config = RegistryConfig(root=tmp_path / "registry", htpasswd=htpasswd, fsync=False)
    with running_registry(config) as running:
        yield running


@pytest.fixture
def bob(registry: tuple[RegistryServer, str]) -> Client:
    return Client(registry[1], ("bob", USERS["bob"]))


@pytest.fixture
def anon(registry: tuple[RegistryServer, str]) -> Client:
    return Client(registry[1])


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(client: Client, repo: str, data: bytes) -> str:
    digest = digest_of(data)
    resp = client.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", data=data,
                       headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, resp.text
    return digest


def image_manifest(config: str, layers: list[str], sizes: dict[str, int] | None = None,
                   **extra: Any) -> bytes:
    sizes = sizes or {}
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                      "size": sizes.get(config, 2)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d,
                       "size": sizes.get(d, 1)} for d in layers], **extra}
    return json.dumps(doc).encode()


def push_image(client: Client, repo: str, tag: str, layer: bytes = b"layer-bytes") -> tuple[str, bytes]:
    config = push_blob(client, repo, b"{}")
    layer_digest = push_blob(client, repo, layer)
    manifest = image_manifest(config, [layer_digest])
    resp = client.put(f"/v2/{repo}/manifests/{tag}", data=manifest,
                      headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert resp.status_code == 201, resp.text
    assert resp.headers["Docker-Content-Digest"] == digest_of(manifest)
    return digest_of(manifest), manifest


def error_code(resp: requests.Response) -> str:
    return str(resp.json()["errors"][0]["code"])


# -- base, auth ------------------------------------------------------------------------------

def test_base_challenges_then_accepts_token(registry: tuple[RegistryServer, str], anon: Client) -> None:
    raw = requests.get(registry[1] + "/v2/")
    assert raw.status_code == 401
    assert raw.headers["WWW-Authenticate"].startswith('Bearer realm="http://127.0.0.1:')
    assert raw.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert anon.get("/v2/").status_code == 200


def test_anonymous_push_is_refused_with_challenge(anon: Client) -> None:
    resp = anon.post("/v2/bob/cats/blobs/uploads/")
    assert resp.status_code == 401
    challenge = resp.headers["WWW-Authenticate"]
    assert 'scope="repository:bob/cats:pull,push"' in challenge
    assert error_code(resp) == "UNAUTHORIZED"


def test_anonymous_pull_allowed_by_default(bob: Client, anon: Client) -> None:
    digest, manifest = push_image(bob, "bob/cats", "v1")
    resp = anon.get("/v2/bob/cats/manifests/v1")
    assert resp.status_code == 200 and resp.content == manifest


def test_anonymous_pull_can_be_disabled(tmp_path: Path) -> None:
    with running_registry(RegistryConfig(root=tmp_path / "r", anonymous_pull=False, fsync=False)) as (_, base):
        resp = Client(base).get("/v2/x/manifests/latest")
        assert resp.status_code == 401


def test_basic_auth_directly_and_bad_password(registry: tuple[RegistryServer, str]) -> None:
    base = registry[1]
    assert requests.get(base + "/v2/", auth=("bob", "hunter2")).status_code == 200
    assert requests.get(base + "/v2/", auth=("bob", "wrong")).status_code == 401
    assert requests.get(base + "/token", auth=("bob", "wrong")).status_code == 401
    assert requests.get(base + "/token", auth=("bob", "hunter2")).status_code == 200


def test_token_scopes_are_per_repository(registry: tuple[RegistryServer, str], bob: Client) -> None:
    base = registry[1]
    token = requests.get(base + "/token", params={"scope": "repository:a/one:pull,push"},
                         auth=("bob", "hunter2")).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.post(base + "/v2/a/one/blobs/uploads/", headers=headers).status_code == 202
    other = requests.post(base + "/v2/a/two/blobs/uploads/", headers=headers)
    assert other.status_code == 401 and 'error="insufficient_scope"' in other.headers["WWW-Authenticate"]
    assert requests.get(base + "/v2/", headers={"Authorization": "Bearer nonsense"}).status_code == 401


# -- blobs and uploads -----------------------------------------------------------------------

def test_monolithic_post_put_and_get_with_range(bob: Client) -> None:
    data = bytes(range(256)) * 40
    digest = digest_of(data)
    resp = bob.post("/v2/r/blobs/uploads/")
    assert resp.status_code == 202 and resp.headers["Location"].startswith("/v2/r/blobs/uploads/")
    put = bob.put(resp.headers["Location"] + f"?digest={digest}", data=data)
    assert put.status_code == 201
    assert put.headers["Location"] == f"/v2/r/blobs/{digest}"
    assert put.headers["Docker-Content-Digest"] == digest
    head = bob.head(f"/v2/r/blobs/{digest}")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))
    assert head.headers["Docker-Content-Digest"] == digest
    got = bob.get(f"/v2/r/blobs/{digest}")
    assert got.content == data
    assert head.headers["ETag"] == got.headers["ETag"] == f'"{digest}"'  # as distribution: the digest
    part = bob.get(f"/v2/r/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]



def test_large_blob_get_spans_copy_chunks(bob: Client) -> None:
    """Blob GETs copy in 1 MB chunks (not sendfile): whole bodies and ranges across chunk edges."""
    data = hashlib.sha256(b"seed").digest() * (3 * 32768 + 7)  # ~3 MB, not a chunk multiple
    digest = digest_of(data)
    resp = bob.post("/v2/r/blobs/uploads/")
    assert bob.put(resp.headers["Location"] + f"?digest={digest}", data=data).status_code == 201
    full = bob.get(f"/v2/r/blobs/{digest}")
    assert full.status_code == 200 and full.headers["Content-Length"] == str(len(data)) and full.content == data
    start, end = (1 << 20) - 5, (2 << 20) + 5
    part = bob.get(f"/v2/r/blobs/{digest}", headers={"Range": f"bytes={start}-{end}"})
    assert part.status_code == 206 and part.content == data[start:end + 1]
    assert part.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"

def test_chunked_upload_checks_order(bob: Client) -> None:
    data = b"0123456789" * 5
    loc = bob.post("/v2/r/blobs/uploads/").headers["Location"]
    first = bob.patch(loc, data=data[:20], headers={"Content-Range": "0-19", "Content-Type": "application/octet-stream"})
    assert first.status_code == 202 and first.headers["Range"] == "0-19"
    loc = first.headers["Location"]
    replay = bob.patch(loc, data=data[:20], headers={"Content-Range": "0-19"})
    assert replay.status_code == 416
    skip = bob.patch(loc, data=data[30:], headers={"Content-Range": "30-49"})
    assert skip.status_code == 416
    status = bob.get(loc)
    assert status.status_code == 204 and status.headers["Range"] == "0-19"
    second = bob.patch(loc, data=data[20:], headers={"Content-Range": "20-49"})
    assert second.status_code == 202 and second.headers["Range"] == "0-49"
    done = bob.put(loc + f"?digest={digest_of(data)}")
    assert done.status_code == 201
    assert bob.get(f"/v2/r/blobs/{digest_of(data)}").content == data
    assert bob.get(loc).status_code == 404


def test_streamed_patch_without_content_range(bob: Client) -> None:
    data = b"x" * 100_000 + b"y" * 5_000_000
    loc = bob.post("/v2/r/blobs/uploads/").headers["Location"]
    resp = bob.patch(loc, data=iter([data[:70_000], data[70_000:]]))  # chunked transfer encoding
    assert resp.status_code == 202 and resp.headers["Range"] == f"0-{len(data) - 1}"
    assert bob.put(resp.headers["Location"] + f"?digest={digest_of(data)}").status_code == 201
    assert bob.head(f"/v2/r/blobs/{digest_of(data)}").headers["Content-Length"] == str(len(data))


def test_wrong_digest_stores_nothing(registry: tuple[RegistryServer, str], bob: Client) -> None:
    data, wrong = b"real content", digest_of(b"other content")
    resp = bob.post(f"/v2/r/blobs/uploads/?digest={wrong}", data=data)
    assert resp.status_code == 400 and error_code(resp) == "DIGEST_INVALID"
    loc = bob.post("/v2/r/blobs/uploads/").headers["Location"]
    resp = bob.put(loc + f"?digest={wrong}", data=data)
    assert resp.status_code == 400 and error_code(resp) == "DIGEST_INVALID"
    assert bob.head(f"/v2/r/blobs/{wrong}").status_code == 404
    assert bob.head(f"/v2/r/blobs/{digest_of(data)}").status_code == 404
    storage = registry[0].registry.storage
    assert list(storage.digests()) == []
    assert list(storage.upload_dir.iterdir()) == []
    bad = bob.put(loc + "?digest=sha256:nothex")
    assert bad.status_code in (400, 404)


def test_killed_upload_leaves_no_blob(registry: tuple[RegistryServer, str], bob: Client) -> None:
    data = b"z" * 1_000_000
    digest = digest_of(data)
    loc = bob.post("/v2/r/blobs/uploads/").headers["Location"]
    token = bob.tokens["/v2/r"]
    port = int(registry[1].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall((f"PUT {loc}?digest={digest} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Length: {len(data)}\r\n\r\n").encode() + data[:300_000])
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while registry[0].registry.uploads.active_ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bob.head(f"/v2/r/blobs/{digest}").status_code == 404
    assert list(registry[0].registry.storage.digests()) == []
    assert registry[0].registry.uploads.active_ids() == set()
    assert list(registry[0].registry.storage.upload_dir.iterdir()) == []


def test_cross_repository_mount(bob: Client) -> None:
    digest = push_blob(bob, "src/repo", b"shared layer")
    resp = bob.post(f"/v2/dst/repo/blobs/uploads/?mount={digest}&from=src/repo")
    assert resp.status_code == 201 and resp.headers["Docker-Content-Digest"] == digest
    assert bob.get(f"/v2/dst/repo/blobs/{digest}").content == b"shared layer"
    missing = digest_of(b"nowhere")
    resp = bob.post(f"/v2/dst/repo/blobs/uploads/?mount={missing}&from=src/repo")
    assert resp.status_code == 202 and "/blobs/uploads/" in resp.headers["Location"]


def test_blob_not_visible_in_other_repository(bob: Client) -> None:
    digest = push_blob(bob, "one", b"private")
    assert bob.head(f"/v2/two/blobs/{digest}").status_code == 404


def test_cancel_upload_and_delete_blob(bob: Client) -> None:
    loc = bob.post("/v2/r/blobs/uploads/").headers["Location"]
    assert bob.delete(loc).status_code == 204
    assert bob.get(loc).status_code == 404
    digest = push_blob(bob, "r", b"gone soon")
    assert bob.delete(f"/v2/r/blobs/{digest}").status_code == 202
    assert bob.get(f"/v2/r/blobs/{digest}").status_code == 404
    assert error_code(bob.delete(f"/v2/r/blobs/{digest}")) == "BLOB_UNKNOWN"


# -- manifests -------------------------------------------------------------------------------

def test_manifest_by_tag_and_digest(bob: Client) -> None:
    digest, manifest = push_image(bob, "bob/cats", "latest")
    for ref in ("latest", digest):
        resp = bob.get(f"/v2/bob/cats/manifests/{ref}")
        assert resp.status_code == 200 and resp.content == manifest
        assert resp.headers["Content-Type"] == "application/vnd.oci.image.manifest.v1+json"
        assert resp.headers["Docker-Content-Digest"] == digest
        head = bob.head(f"/v2/bob/cats/manifests/{ref}")
        assert head.headers["Content-Length"] == str(len(manifest))
    assert error_code(bob.get("/v2/bob/cats/manifests/nope")) == "MANIFEST_UNKNOWN"
    assert error_code(bob.get("/v2/nobody/manifests/latest")) == "NAME_UNKNOWN"


def test_manifest_referencing_missing_blob_is_refused(bob: Client) -> None:
    config = push_blob(bob, "r", b"{}")
    missing = digest_of(b"never pushed")
    resp = bob.put("/v2/r/manifests/v1", data=image_manifest(config, [missing]),
                   headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert resp.status_code == 400 and error_code(resp) == "MANIFEST_BLOB_UNKNOWN"
    assert bob.get("/v2/r/manifests/v1").status_code == 404


def test_manifest_push_by_digest_and_docker_list(bob: Client) -> None:
    child, _ = push_image(bob, "r", "child")
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": child,
                                       "size": 1, "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    resp = bob.put(f"/v2/r/manifests/{digest_of(index)}", data=index,
                   headers={"Content-Type": "application/vnd.docker.distribution.manifest.list.v2+json"})
    assert resp.status_code == 201
    wrong = bob.put(f"/v2/r/manifests/{digest_of(b'x')}", data=index,
                    headers={"Content-Type": "application/vnd.docker.distribution.manifest.list.v2+json"})
    assert wrong.status_code == 400
    dangling = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                          "digest": digest_of(b"nope"), "size": 1}]}).encode()
    resp = bob.put("/v2/r/manifests/idx", data=dangling,
                   headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert error_code(resp) == "MANIFEST_BLOB_UNKNOWN"


def test_invalid_and_oversized_manifests(bob: Client) -> None:
    resp = bob.put("/v2/r/manifests/v1", data=b"not json",
                   headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert resp.status_code == 400 and error_code(resp) == "MANIFEST_INVALID"
    resp = bob.put("/v2/r/manifests/v1", data=b" " * (4 * 1024 * 1024 + 10),
                   headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert resp.status_code == 413


def test_delete_manifest_removes_its_tags(bob: Client) -> None:
    digest, _ = push_image(bob, "r", "a")
    bob.put("/v2/r/manifests/b", data=bob.get("/v2/r/manifests/a").content,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert bob.delete("/v2/r/manifests/a").status_code == 202  # tag only
    assert bob.get("/v2/r/manifests/a").status_code == 404
    assert bob.get("/v2/r/manifests/b").status_code == 200
    assert bob.delete(f"/v2/r/manifests/{digest}").status_code == 202
    assert bob.get("/v2/r/manifests/b").status_code == 404
    assert bob.get(f"/v2/r/manifests/{digest}").status_code == 404
    assert bob.get("/v2/r/tags/list").json()["tags"] == []


# -- discovery -------------------------------------------------------------------------------

def test_tags_pagination_and_catalog(bob: Client) -> None:
    _, manifest = push_image(bob, "p/q", "a")
    for tag in ("b", "c", "d"):
        bob.put(f"/v2/p/q/manifests/{tag}", data=manifest,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert bob.get("/v2/p/q/tags/list").json() == {"name": "p/q", "tags": ["a", "b", "c", "d"]}
    first = bob.get("/v2/p/q/tags/list?n=2")
    assert first.json()["tags"] == ["a", "b"]
    assert first.headers["Link"] == '</v2/p/q/tags/list?n=2&last=b>; rel="next"'
    assert bob.get("/v2/p/q/tags/list?n=2&last=b").json()["tags"] == ["c", "d"]
    assert bob.get("/v2/p/q/tags/list?last=c").json()["tags"] == ["d"]
    zero = bob.get("/v2/p/q/tags/list?n=0")
    assert zero.json()["tags"] == [] and "Link" not in zero.headers
    assert error_code(bob.get("/v2/no/such/tags/list")) == "NAME_UNKNOWN"
    push_image(bob, "a/first", "x")
    assert bob.get("/v2/_catalog").json()["repositories"] == ["a/first", "p/q"]
    assert bob.get("/v2/_catalog?n=1").json()["repositories"] == ["a/first"]


def test_referrers_api(bob: Client) -> None:
    subject, manifest = push_image(bob, "r", "v1")
    empty = push_blob(bob, "r", b"{}")
    sbom = image_manifest(empty, [], artifactType="application/vnd.example.sbom.v1",
                          subject={"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "digest": subject, "size": len(manifest)},
                          annotations={"org.example": "yes"})
    resp = bob.put(f"/v2/r/manifests/{digest_of(sbom)}", data=sbom,
                   headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert resp.status_code == 201 and resp.headers["OCI-Subject"] == subject
    listing = bob.get(f"/v2/r/referrers/{subject}")
    assert listing.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    [entry] = listing.json()["manifests"]
    assert entry == {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": len(sbom),
                     "digest": digest_of(sbom), "artifactType": "application/vnd.example.sbom.v1",
                     "annotations": {"org.example": "yes"}}
    filtered = bob.get(f"/v2/r/referrers/{subject}?artifactType=application/other")
    assert filtered.json()["manifests"] == [] and filtered.headers["OCI-Filters-Applied"] == "artifactType"
    unknown = bob.get(f"/v2/r/referrers/{digest_of(b'nothing')}")
    assert unknown.status_code == 200 and unknown.json()["manifests"] == []
    assert bob.get("/v2/r/referrers/sha256:bad").status_code == 400
    bob.delete(f"/v2/r/manifests/{digest_of(sbom)}")
    assert bob.get(f"/v2/r/referrers/{subject}").json()["manifests"] == []


def test_referrer_pushed_before_its_subject(bob: Client) -> None:
    empty = push_blob(bob, "r", b"{}")
    subject = digest_of(b"future subject")
    ref = image_manifest(empty, [], artifactType="application/x", subject={
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": 3})
    assert bob.put("/v2/r/manifests/ref", data=ref,
                   headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}).status_code == 201
    assert len(bob.get(f"/v2/r/referrers/{subject}").json()["manifests"]) == 1


def test_unknown_endpoint_and_bad_name(bob: Client) -> None:
    assert bob.get("/v2/r/whatever").status_code == 404
    assert error_code(bob.get("/v2/UPPER/tags/list")) == "NAME_INVALID"


def test_416_carries_session_headers_and_keeps_connection_usable(registry: tuple[RegistryServer, str]) -> None:
    base = registry[1]
    http = requests.Session()
    http.auth = ("bob", "hunter2")
    loc = http.post(base + "/v2/r/blobs/uploads/").headers["Location"]
    bad = http.patch(base + loc, data=b"abc", headers={"Content-Range": "5-7"})
    assert bad.status_code == 416 and bad.headers["Range"] == "0-0" and bad.headers["Location"] == loc
    assert bad.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    assert http.get(base + loc).status_code == 204  # same keep-alive connection still parses


def test_push_by_digest_with_tags(bob: Client) -> None:
    """`PUT /manifests/<digest>?tag=a&tag=b` (distribution spec after 1.1.1): tagged at once."""
    config = push_blob(bob, "multi", b"{}")
    manifest = image_manifest(config, [])
    digest = digest_of(manifest)
    resp = bob.put(f"/v2/multi/manifests/{digest}?tag=v1&tag=latest&tag=v1", data=manifest,
                   headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert resp.status_code == 201, resp.text
    assert resp.raw.headers.getlist("OCI-Tag") == ["v1", "latest"]
    assert sorted(bob.get("/v2/multi/tags/list").json()["tags"]) == ["latest", "v1"]
    assert bob.get("/v2/multi/manifests/latest").headers["Docker-Content-Digest"] == digest


def test_push_by_digest_with_bad_or_too_many_tags_stores_nothing(bob: Client) -> None:
    config = push_blob(bob, "multi2", b"{}")
    manifest = image_manifest(config, [])
    digest = digest_of(manifest)
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    bad = bob.put(f"/v2/multi2/manifests/{digest}?tag=ok&tag=-bad", data=manifest, headers=headers)
    assert bad.status_code == 400 and error_code(bad) == "TAG_INVALID"
    many = "&".join(f"tag=t{i}" for i in range(101))
    resp = bob.put(f"/v2/multi2/manifests/{digest}?{many}", data=manifest, headers=headers)
    assert resp.status_code == 414 and error_code(resp) == "TAG_INVALID"
    assert bob.get(f"/v2/multi2/manifests/{digest}").status_code == 404
    assert bob.get("/v2/multi2/tags/list").json().get("tags") in ([], None)


def test_blob_conditional_requests_use_the_digest_etag(bob: Client) -> None:
    data = bytes(range(256)) * 8192  # 2 MB: the copying response path
    digest = push_blob(bob, "cond", data)
    url, etag = f"/v2/cond/blobs/{digest}", f'"{digest}"'
    assert bob.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert bob.get(url, headers={"If-None-Match": f'"sha256:{"0" * 64}", W/{etag}'}).status_code == 304
    assert bob.head(url, headers={"If-None-Match": etag}).status_code == 304
    matched = bob.get(url, headers={"If-Match": etag})
    assert matched.status_code == 200 and matched.content == data
    assert bob.get(url, headers={"If-Match": '"other"'}).status_code == 412
    part = bob.get(url, headers={"If-Range": etag, "Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == data[:10]
    stale = bob.get(url, headers={"If-Range": '"other"', "Range": "bytes=0-9"})
    assert stale.status_code == 200 and stale.content == data
