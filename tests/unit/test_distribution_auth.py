"""Credentials (X-Registry-Auth, /auth bodies) and WWW-Authenticate challenges."""

from __future__ import annotations

import base64
import json

import pytest

from berth.errors import InvalidArgument
from berth.images.distribution import Credentials, credentials_from_json, decode_registry_auth, parse_challenge


def _encode(doc: dict[str, str], *, pad: bool) -> str:
    text = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
    return text if pad else text.rstrip("=")


@pytest.mark.parametrize("pad", [True, False])
def test_registry_auth_decodes_with_or_without_padding(pad: bool) -> None:
    doc = {"username": "bob", "password": "s3cr?t>>", "serveraddress": "127.0.0.1:5000"}
    creds = decode_registry_auth(_encode(doc, pad=pad))
    assert creds == Credentials("bob", "s3cr?t>>", server_address="127.0.0.1:5000")


@pytest.mark.parametrize("header", ["", "e30=", "e30"])
def test_registry_auth_empty_is_anonymous(header: str) -> None:
    assert decode_registry_auth(header).empty


def test_registry_auth_garbage_is_invalid() -> None:
    with pytest.raises(InvalidArgument):
        decode_registry_auth("!!!not-base64")


def test_auth_body_keys_are_case_insensitive_and_auth_field_counts() -> None:
    creds = credentials_from_json({"Username": "bob", "Password": "pw", "ServerAddress": "r:5000"})
    assert (creds.username, creds.password, creds.server_address) == ("bob", "pw", "r:5000")
    packed = credentials_from_json({"auth": base64.b64encode(b"alice:a:b").decode()})
    assert (packed.username, packed.password) == ("alice", "a:b")
    assert credentials_from_json({"identitytoken": "tok"}).identity_token == "tok"


def test_basic_header() -> None:
    assert Credentials("bob", "pw").basic() == "Basic " + base64.b64encode(b"bob:pw").decode()


def test_parse_bearer_challenge() -> None:
    c = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                        'scope="repository:bob/cats:pull,push"')
    assert c is not None and c.scheme == "bearer"
    assert c.realm == "https://auth.example/token"
    assert c.params["service"] == "registry.example"
    assert c.params["scope"] == "repository:bob/cats:pull,push"


def test_parse_basic_challenge_and_none() -> None:
    c = parse_challenge('Basic realm="berth"')
    assert c is not None and c.scheme == "basic" and c.realm == "berth"
    assert parse_challenge("") is None
