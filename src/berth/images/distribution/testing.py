"""Test kit: an in-memory registry behind a requests transport adapter (no sockets).

    registry = FakeRegistry(users={"bob": "pw"}, scheme="bearer")
    session = registry.session()
    client = RegistryClient([Endpoint("http://fake.test")], Credentials("bob", "pw"), session=session)
    client.connect()
    assert registry.calls[0] == ("GET", "/v2/")

It speaks enough of the distribution API for the client: `/v2/` with Basic or Bearer challenges
(token endpoint at `/token`), blobs HEAD/GET, uploads (POST, streamed PATCH, PUT ?digest=, mount),
manifests GET/HEAD/PUT by tag or digest, and tag lists. Every request is recorded in `calls`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

_REPO = r"(?P<name>[a-z0-9._/-]+?)"


@dataclass
class FakeRegistry:
    users: dict[str, str] = field(default_factory=dict)   # empty: anonymous access
    scheme: str = "basic"                                  # "basic" or "bearer"
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> bytes (global, like a registry)
    repo_blobs: dict[str, set[str]] = field(default_factory=dict)
    manifests: dict[str, dict[str, tuple[bytes, str]]] = field(default_factory=dict)  # repo -> ref -> (data, type)
    calls: list[tuple[str, str]] = field(default_factory=list)
    uploads: dict[str, bytearray] = field(default_factory=dict)
    base: str = "http://fake.test"

    def session(self) -> requests.Session:
        s = requests.Session()
        s.mount(self.base, _Adapter(self))
        return s

    # helpers for tests

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        self.repo_blobs.setdefault(repo, set()).add(digest)
        return digest

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.manifests.setdefault(repo, {})[ref] = (data, media_type)
        self.manifests[repo][digest] = (data, media_type)
        return digest

    # request handling

    def handle(self, req: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(req.url or "")
        path, query = url.path, parse_qs(url.query)
        method = req.method or "GET"
        self.calls.append((method, path))
        if path == "/token":
            return self._token(req)
        if self.users and not self._authorised(req):
            challenge = ('Basic realm="fake"' if self.scheme == "basic" else
                         f'Bearer realm="{self.base}/token",service="fake"')
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
            return 401, {"WWW-Authenticate": challenge}, body.encode()
        if path == "/v2/":
            return 200, {}, b"{}"
        return self._route(method, path, query, _body(req))

    def _authorised(self, req: requests.PreparedRequest) -> bool:
        header = req.headers.get("Authorization", "")
        if self.scheme == "bearer":
            return header == "Bearer fake-token"
        return header in {"Basic " + base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in self.users.items()}

    def _token(self, req: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        header = req.headers.get("Authorization", "")
        valid = {"Basic " + base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in self.users.items()}
        if header not in valid:
            return 401, {}, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
        return 200, {}, b'{"token":"fake-token"}'

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes
               ) -> tuple[int, dict[str, str], bytes]:
        if m := re.fullmatch(rf"/v2/{_REPO}/blobs/uploads/(?P<id>[^/]*)", path):
            return self._upload(method, m["name"], m["id"], query, body)
        if m := re.fullmatch(rf"/v2/{_REPO}/blobs/(?P<digest>sha256:[0-9a-f]+)", path):
            digest = m["digest"]
            if digest not in self.repo_blobs.get(m["name"], set()):
                return 404, {}, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}'
            data = self.blobs[digest]
            return 200, {"Content-Length": str(len(data)), "Docker-Content-Digest": digest}, data
        if m := re.fullmatch(rf"/v2/{_REPO}/manifests/(?P<ref>[^/]+)", path):
            return self._manifest(method, m["name"], m["ref"], body)
        if m := re.fullmatch(rf"/v2/{_REPO}/tags/list", path):
            tags = sorted(r for r in self.manifests.get(m["name"], {}) if not r.startswith("sha256:"))
            return 200, {}, json.dumps({"name": m["name"], "tags": tags}).encode()
        return 404, {}, b"{}"

    def _upload(self, method: str, repo: str, upload_id: str, query: dict[str, list[str]], body: bytes
                ) -> tuple[int, dict[str, str], bytes]:
        if method == "POST":
            mount = query.get("mount", [""])[0]
            source = query.get("from", [""])[0]
            if mount and mount in self.repo_blobs.get(source, set()):
                self.repo_blobs.setdefault(repo, set()).add(mount)
                return 201, {"Location": f"/v2/{repo}/blobs/{mount}", "Docker-Content-Digest": mount}, b""
            new = str(uuid.uuid4())
            self.uploads[new] = bytearray()
            return 202, {"Location": f"/v2/{repo}/blobs/uploads/{new}?state=x"}, b""
        if upload_id not in self.uploads:
            return 404, {}, b'{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown"}]}'
        self.uploads[upload_id] += body
        if method == "PATCH":
            size = len(self.uploads[upload_id])
            return 202, {"Location": f"/v2/{repo}/blobs/uploads/{upload_id}?state=y", "Range": f"0-{size - 1}"}, b""
        data = bytes(self.uploads.pop(upload_id))
        digest = query.get("digest", [""])[0]
        if digest != "sha256:" + hashlib.sha256(data).hexdigest():
            return 400, {}, b'{"errors":[{"code":"DIGEST_INVALID","message":"digest did not match"}]}'
        self.put_blob(repo, data)
        return 201, {"Location": f"/v2/{repo}/blobs/{digest}", "Docker-Content-Digest": digest}, b""

    def _manifest(self, method: str, repo: str, ref: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if method == "PUT":
            doc = json.loads(body)
            missing = [d["digest"] for d in [doc.get("config", {}), *doc.get("layers", [])]
                       if d and d["digest"] not in self.repo_blobs.get(repo, set())]
            if missing:
                return 400, {}, b'{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown"}]}'
            digest = self.put_manifest(repo, ref, body, doc.get("mediaType", ""))
            return 201, {"Docker-Content-Digest": digest}, b""
        found = self.manifests.get(repo, {}).get(ref)
        if found is None:
            code = "MANIFEST_UNKNOWN" if repo in self.manifests else "NAME_UNKNOWN"
            text = "manifest unknown" if repo in self.manifests else "repository name not known to registry"
            return 404, {}, json.dumps({"errors": [{"code": code, "message": text}]}).encode()
        data, media_type = found
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        return 200, {"Content-Type": media_type, "Docker-Content-Digest": digest}, data


def _body(req: requests.PreparedRequest) -> bytes:
    body: Any = req.body
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return b"".join(body)  # a generator: a streamed (chunked) upload


class _Adapter(BaseAdapter):
    def __init__(self, registry: FakeRegistry) -> None:
        super().__init__()
        self._registry = registry

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        status, headers, body = self._registry.handle(request)
        resp = requests.Response()
        resp.status_code = status
        resp.headers = CaseInsensitiveDict({"Content-Length": str(len(body)), **headers})
        resp._content = b"" if request.method == "HEAD" else body
        resp._content_consumed = True  # serve iter_content from _content
        resp.raw = None
        resp.url = request.url or ""
        resp.request = request
        resp.reason = {200: "OK", 201: "Created", 202: "Accepted", 401: "Unauthorized", 404: "Not Found"}.get(status, "")
        return resp

    def close(self) -> None:
        pass
