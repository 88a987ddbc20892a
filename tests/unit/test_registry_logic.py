"""Pure parts of the registry: routes, names, manifest parsing, scopes, tokens and policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from berth.registry import Access, Htpasswd, Policy, RegistryAuth, RegistryError, TokenSigner, hash_password
from berth.registry._auth import Unauthorized, challenge, parse_scope
from berth.registry._manifests import parse_manifest
from berth.registry._names import check_name, is_tag, looks_like_digest, parse_digest
from berth.registry._routes import Route, match
from berth.registry._server import parse_listen_addr

D = "sha256:" + "a" * 64
E = "sha256:" + "b" * 64


@pytest.mark.parametrize(("path", "route"), [
    ("", Route("base")),
    ("_catalog", Route("catalog")),
    ("a/b/tags/list", Route("tags", "a/b")),
    ("a/b/blobs/uploads/", Route("uploads", "a/b")),
    ("a/b/blobs/uploads", Route("uploads", "a/b")),
    ("a/b/blobs/uploads/1234", Route("upload", "a/b", "1234")),
    (f"a/b/blobs/{D}", Route("blob", "a/b", D)),
    ("a/manifests/b/manifests/latest", Route("manifest", "a/manifests/b", "latest")),
    (f"x/referrers/{D}", Route("referrers", "x", D)),
    ("x/nothing", None),
])
def test_routes(path: str, route: Route | None) -> None:
    assert match(path) == route


def test_names_tags_digests() -> None:
    assert check_name("library/busy-box_1.2")
    for bad in ("UPPER", "a//b", "-a", "a/", "a" * 256):
        with pytest.raises(RegistryError):
            check_name(bad)
    assert is_tag("v1.0_rc-2") and not is_tag(".hidden") and not is_tag("a" * 129)
    assert looks_like_digest(D) and not looks_like_digest("latest")
    with pytest.raises(RegistryError) as err:
        parse_digest("sha256:short")
    assert err.value.error.code == "DIGEST_INVALID"


def test_parse_image_manifest_and_index() -> None:
    image = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": D},
                        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": E},
                                   {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                                    "digest": "sha256:" + "c" * 64}]}).encode()
    parsed = parse_manifest(image, "application/vnd.docker.distribution.manifest.v2+json")
    assert [str(d) for d in parsed.blobs] == [D, E] and parsed.subject is None
    index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": D}], "subject": {"digest": E},
                        "artifactType": "x/y"}).encode()
    parsed = parse_manifest(index, None)
    assert parsed.media_type == "application/vnd.oci.image.index.v1+json"
    assert [str(d) for d in parsed.manifests] == [D] and str(parsed.subject) == E and parsed.artifact_type == "x/y"


@pytest.mark.parametrize("doc", [
    b"{", b"[]", b'{"schemaVersion": 1}',
    b'{"schemaVersion": 2, "mediaType": "text/plain"}',
    b'{"schemaVersion": 2, "config": {"digest": "sha256:zz"}, "layers": []}',
    b'{"schemaVersion": 2, "config": {"digest": "' + D.encode() + b'"}, "layers": {}}',
])
def test_invalid_manifests(doc: bytes) -> None:
    with pytest.raises(RegistryError) as err:
        parse_manifest(doc, None)
    assert err.value.error.code == "MANIFEST_INVALID"


def test_scope_parsing() -> None:
    assert parse_scope("repository:a/b:pull,push") == Access("repository", "a/b", ("pull", "push"))
    assert parse_scope("registry:catalog:*") == Access("registry", "catalog", ("*",))
    assert parse_scope("garbage") is None


def test_tokens_sign_verify_expire() -> None:
    now = [1000.0]
    signer = TokenSigner(b"k" * 32, ttl=60, clock=lambda: now[0])
    token, _ = signer.issue("bob", [Access("repository", "a", ("pull",))])
    claims = signer.verify(token)
    assert claims is not None and claims.subject == "bob" and claims.access[0].actions == ("pull",)
    assert TokenSigner(b"x" * 32).verify(token) is None
    assert signer.verify(token[:-2] + "AA") is None
    now[0] += 120
    assert signer.verify(token) is None


def test_policy() -> None:
    policy = Policy(anonymous_pull=True, anonymous_push=False)
    want = Access("repository", "a", ("pull", "push"))
    assert policy.allowed(None, want) == ("pull",)
    assert policy.allowed("bob", want) == ("pull", "push")
    assert Policy(anonymous_pull=False).allowed(None, want) == ()
    assert policy.allowed("bob", Access("repository", "a", ("*",))) == ("*",)


def test_auth_check_and_challenge(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"bob:{hash_password('pw', rounds=4)}\n")
    auth = RegistryAuth(TokenSigner(b"k" * 32), Policy(), [Htpasswd(htpasswd)])
    need = Access("repository", "a", ("pull", "push"))
    with pytest.raises(Unauthorized) as err:
        auth.check(None, need)
    assert challenge("http://h/token", err.value) == \
        'Bearer realm="http://h/token",service="berth-registry",scope="repository:a:pull,push"'
    token = auth.token("Basic " + __import__("base64").b64encode(b"bob:pw").decode(), ["repository:a:pull,push"])
    assert auth.check(f"Bearer {token['token']}", need) == "bob"
    anonymous = auth.token(None, ["repository:a:pull,push"])
    with pytest.raises(Unauthorized):
        auth.check(f"Bearer {anonymous['token']}", need)
    assert auth.check(f"Bearer {anonymous['token']}", Access("repository", "a", ("pull",))) is None
    with pytest.raises(Unauthorized):
        auth.token("Basic " + __import__("base64").b64encode(b"bob:nope").decode(), [])


def test_listen_addr() -> None:
    assert parse_listen_addr("127.0.0.1:5000") == ("127.0.0.1", 5000)
    assert parse_listen_addr("[::1]:5000") == ("::1", 5000)
    assert parse_listen_addr("off") is None


def test_htpasswd_accepts_apache_2y_hashes_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("# users\nalice:" + hash_password("one", rounds=4).replace("$2b$", "$2y$") + "\n")
    users = Htpasswd(path)
    assert users.authenticate("alice", "one") and not users.authenticate("alice", "two")
    assert not users.authenticate("nobody", "one")
    path.write_text("alice:" + hash_password("two", rounds=4) + "\n")
    import os

    os.utime(path, (1, 1))  # a different mtime marks the change even within one clock tick
    assert users.authenticate("alice", "two") and not users.authenticate("alice", "one")
