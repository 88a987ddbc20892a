"""SigV4 verification (berth.api.aws._auth) against botocore's own signer, and the key files.

botocore signs (`SigV4Auth`, `SigV4QueryAuth`); the Authenticator must accept exactly what it signs
and refuse anything changed afterwards, with AWS's codes.
"""

from __future__ import annotations

import json

import datetime
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest

from berth.api.aws import (
    AwsError, Authenticator, Credential, KeyFile, StaticKeys, TemporaryCredentials, for_query_protocol,
    parse_credentials,
)
from berth.api.aws._sigv4 import canonical_uri, parse_amz_date
from berth.errors import InvalidArgument

botocore_auth = pytest.importorskip("botocore.auth")
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

KEY = Credential("BKIAAAAAAAAAAAAAAAAA", "s3cr3t/s3cr3t+s3cr3t/s3cr3t+s3cr3t/abcd", "111122223333")
NOW = 1796605200.0  # 2026-12-07T01:00:00Z
TARGET = "AmazonEC2ContainerRegistry_V20150921.CreateRepository"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signed(body: bytes = b'{"repositoryName": "x"}', *, key: str = KEY.access_key, secret: str = KEY.secret_key,
           token: str | None = None, url: str = "http://127.0.0.1:4566/", at: float = NOW,
           params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
           presign: int | None = None, method: str = "POST") -> tuple[str, str, str, dict[str, str], bytes]:
    """A request as botocore signs it at `at`: (method, raw path, raw query, headers, body)."""
    request = AWSRequest(method=method, url=url, data=body, params=params or {},
                         headers={"X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1",
                                  **(headers or {})})
    credentials = Credentials(key, secret, token)
    signer: Any = (botocore_auth.SigV4QueryAuth(credentials, "ecr", "us-east-1", expires=presign)
                   if presign is not None else botocore_auth.SigV4Auth(credentials, "ecr", "us-east-1"))
    when = datetime.datetime.fromtimestamp(at, datetime.timezone.utc).replace(tzinfo=None)
    with mock.patch.object(botocore_auth, "get_current_datetime", return_value=when):
        signer.add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    sent = {k: v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()}
    sent.setdefault("Host", parts.netloc)
    data = prepared.body or b""
    return method, parts.path or "/", parts.query, sent, data if isinstance(data, bytes) else data.encode()


@pytest.fixture()
def temporary() -> TemporaryCredentials:
    return TemporaryCredentials(clock=Clock())


def auth(clock: Clock | None = None, *extra: Any) -> Authenticator:
    return Authenticator([StaticKeys([KEY]), *extra], clock=clock or Clock())


def refused(request: tuple[str, str, str, dict[str, str], bytes], authenticator: Authenticator | None = None) -> AwsError:
    with pytest.raises(AwsError) as err:
        (authenticator or auth()).verify(*request)
    return err.value


# --- accepted --------------------------------------------------------------------------------------

def test_header_form_signed_by_botocore_is_accepted() -> None:
    assert auth().verify(*signed()) == KEY


def test_empty_body_and_get() -> None:
    assert auth().verify(*signed(b"", method="GET")) == KEY


def test_query_strings_with_odd_characters() -> None:
    params = {"b": "x y+z", "a": "ü/é=&?", "empty": "", "tilde~": "*'()!", "a2": "%41"}
    assert auth().verify(*signed(params=params, url="http://127.0.0.1:4566/some/path/")) == KEY
    # the same query written in the URL (botocore signs it as sent)
    assert auth().verify(*signed(url="http://127.0.0.1:4566/p?z=1&a=b%20c&a=a&k")) == KEY


def test_paths_are_encoded_twice() -> None:
    assert canonical_uri("") == "/"
    assert canonical_uri("/a/./b/../c//d/") == "/a/c/d/"
    assert canonical_uri("/a%20b") == "/a%2520b"
    assert auth().verify(*signed(url="http://127.0.0.1:4566/a%20b/c~d")) == KEY


def test_session_token_credentials(temporary: TemporaryCredentials) -> None:
    cred = temporary.issue("arn:aws:iam::111122223333:role/app", "111122223333", 3600)
    assert cred.access_key.startswith("BSIA") and len(cred.access_key) == 20 and cred.session_token
    request = signed(key=cred.access_key, secret=cred.secret_key, token=cred.session_token)
    assert auth(None, temporary).verify(*request) == cred
    # the token is required, and must be this credential's
    no_token = signed(key=cred.access_key, secret=cred.secret_key)
    assert refused(no_token, auth(None, temporary)).code == "UnrecognizedClientException"
    method, path, query, headers, body = request
    without = {k: v for k, v in headers.items() if k.lower() != "x-amz-security-token"}  # it was signed
    assert refused((method, path, query, without, body), auth(None, temporary)).code == "InvalidSignatureException"
    other = signed(key=cred.access_key, secret=cred.secret_key, token="not-the-token")
    assert refused(other, auth(None, temporary)).code == "UnrecognizedClientException"
    # a long-term key with a stray token is refused too (AWS does the same)
    assert refused(signed(token="stray")).code == "UnrecognizedClientException"


def test_presigned_form() -> None:
    request = signed(b"", presign=300, method="GET")
    assert "X-Amz-Signature=" in request[2] and "Authorization" not in request[3]
    assert auth().verify(*request) == KEY
    assert auth(Clock(NOW + 299)).verify(*request) == KEY
    err = refused(request, auth(Clock(NOW + 301)))
    assert err.code == "InvalidSignatureException" and err.message.startswith("Signature expired")


def test_presigned_with_session_token(temporary: TemporaryCredentials) -> None:
    cred = temporary.issue("arn:aws:iam::1:role/r", "111122223333", 60)
    request = signed(b"", presign=60, method="GET", key=cred.access_key, secret=cred.secret_key,
                     token=cred.session_token)
    assert "X-Amz-Security-Token=" in request[2]
    assert auth(None, temporary).verify(*request) == cred


def test_mode_none_accepts_anything_unchecked() -> None:
    anyone = Authenticator([], mode="none")
    assert not anyone.enabled
    assert anyone.verify("POST", "/", "", {}, b"").account == "123456789012"
    with pytest.raises(InvalidArgument):
        Authenticator([], mode="maybe")  # type: ignore[arg-type]


# --- refused ---------------------------------------------------------------------------------------

def test_wrong_secret() -> None:
    err = refused(signed(secret="wrong"))
    assert (err.code, err.status) == ("InvalidSignatureException", 400)
    assert err.message.startswith("The request signature we calculated does not match")


def test_tampered_body() -> None:
    method, path, query, headers, _ = signed(b'{"repositoryName": "x"}')
    assert refused((method, path, query, headers, b'{"repositoryName": "y"}')).code == "InvalidSignatureException"


def test_declared_payload_hash_must_match_the_body() -> None:
    method, path, query, headers, body = signed(headers={"X-Amz-Content-SHA256": "0" * 64})
    err = refused((method, path, query, headers, body))
    assert err.code == "InvalidSignatureException" and "x-amz-content-sha256" in err.message


def test_tampered_signed_header_and_query() -> None:
    method, path, query, headers, body = signed(params={"a": "1"})
    changed = {**headers, "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DeleteRepository"}
    assert refused((method, path, query, changed, body)).code == "InvalidSignatureException"
    assert refused((method, path, "a=2", headers, body)).code == "InvalidSignatureException"
    assert refused(("PUT", path, query, headers, body)).code == "InvalidSignatureException"
    assert refused((method, "/other", query, headers, body)).code == "InvalidSignatureException"


def test_host_must_be_signed_and_so_must_x_amz_headers() -> None:
    method, path, query, headers, body = signed()
    authz = headers["Authorization"]
    no_host = authz.replace("host;", "")
    assert no_host != authz
    err = refused((method, path, query, {**headers, "Authorization": no_host}, body))
    assert err.code == "IncompleteSignatureException" and "Host" in err.message
    no_target = authz.replace(";x-amz-target", "")
    err = refused((method, path, query, {**headers, "Authorization": no_target}, body))
    assert err.code == "IncompleteSignatureException" and "x-amz-target" in err.message


def test_date_window() -> None:
    old = signed(at=NOW - 20 * 60)
    err = refused(old)
    assert err.code == "InvalidSignatureException"
    assert err.message == ("Signature expired: 20261207T004000Z is now earlier than 20261207T004500Z "
                           "(20261207T010000Z - 15 min.)")
    assert auth().verify(*signed(at=NOW - 14 * 60)) == KEY
    err = refused(signed(at=NOW + 20 * 60))
    assert err.code == "InvalidSignatureException" and err.message.startswith("Signature not yet current")


def test_scope_date_must_be_the_signing_date() -> None:
    method, path, query, headers, body = signed()
    headers = {**headers, "Authorization": headers["Authorization"].replace("/20261207/", "/20261206/")}
    err = refused((method, path, query, headers, body))
    assert err.code == "InvalidSignatureException" and "Credential scope" in err.message


def test_unknown_key() -> None:
    err = refused(signed(key="BKIAUNKNOWNUNKNOWN00"))
    assert (err.code, err.message) == ("UnrecognizedClientException",
                                       "The security token included in the request is invalid.")


def test_expired_temporary_credentials() -> None:
    clock = Clock()
    temporary = TemporaryCredentials(clock=clock)
    cred = temporary.issue("arn:aws:iam::1:role/r", "111122223333", 600)
    authenticator = Authenticator([temporary], clock=clock)
    clock.now = NOW + 599
    request = signed(key=cred.access_key, secret=cred.secret_key, token=cred.session_token, at=clock.now)
    assert authenticator.verify(*request) == cred
    clock.now = NOW + 601
    request = signed(key=cred.access_key, secret=cred.secret_key, token=cred.session_token, at=clock.now)
    err = refused(request, authenticator)
    assert (err.code, err.message) == ("ExpiredTokenException", "The security token included in the request is expired")
    clock.now = NOW + 600 + 2 * 3600  # long gone: forgotten altogether
    request = signed(key=cred.access_key, secret=cred.secret_key, token=cred.session_token, at=clock.now)
    assert refused(request, authenticator).code == "UnrecognizedClientException"


def test_missing_and_malformed_authorization() -> None:
    err = refused(("POST", "/", "", {"Host": "h", "X-Amz-Target": TARGET}, b"{}"))
    assert (err.code, err.status, err.message) == ("MissingAuthenticationTokenException", 403,
                                                   "Missing Authentication Token")
    method, path, query, headers, body = signed()
    for bad in ("AWS4-HMAC-SHA256 Credential=x", "AWS AKID:sig", "AWS4-HMAC-SHA256 garbage",
                headers["Authorization"].replace("/aws4_request", "/aws5_request"),
                headers["Authorization"].split(", Signature=")[0] + ", Signature=zz"):
        err = refused((method, path, query, {**headers, "Authorization": bad}, body))
        assert (err.code, err.status) == ("IncompleteSignatureException", 400), bad
    no_date = {k: v for k, v in headers.items() if k.lower() != "x-amz-date"}
    assert refused((method, path, query, no_date, body)).code == "IncompleteSignatureException"
    assert refused((method, path, "X-Amz-Algorithm=AWS4-HMAC-SHA256", {"Host": "h"}, b"")).code == \
        "IncompleteSignatureException"


def test_query_protocol_codes() -> None:
    assert [for_query_protocol(AwsError(c, "m")).code for c in (
        "InvalidSignatureException", "UnrecognizedClientException", "MissingAuthenticationTokenException",
        "IncompleteSignatureException", "ExpiredTokenException", "Other")] == [
        "SignatureDoesNotMatch", "InvalidClientTokenId", "MissingAuthenticationToken", "IncompleteSignature",
        "ExpiredToken", "Other"]


def test_secrets_stay_out_of_reprs() -> None:
    assert KEY.secret_key not in repr(KEY)
    assert parse_amz_date("20261207T010000Z") == NOW


# --- key files -------------------------------------------------------------------------------------

@pytest.fixture()
def umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual: a careless create would come out 0644 / 0755
    try:
        yield
    finally:
        os.umask(old)


def test_key_file_is_created_private_and_kept(tmp_path: Path, umask: None) -> None:
    keys = KeyFile(tmp_path)
    first = keys.ensure()
    assert first.access_key.startswith("BKIA") and len(first.access_key) == 20
    assert len(first.secret_key) == 40 and first.account == "123456789012"
    info = keys.path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
    assert stat.S_IMODE(keys.path.parent.stat().st_mode) == 0o700
    assert keys.ensure() == first and keys.read() == first
    assert [p.name for p in keys.path.parent.iterdir()] == ["credentials"]  # no temp file left
    os.chmod(keys.path, 0o644)
    os.chmod(keys.path.parent, 0o755)
    assert keys.ensure() == first
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.path.parent.stat().st_mode) == 0o700
    assert KeyFile(tmp_path / "other").ensure() != first


def test_credentials_file_parsing(tmp_path: Path) -> None:
    text = "# team keys\n\nAKIDONE secretone\n  AKIDTWO secret/two+ 111122223333  \n"
    assert parse_credentials(text, "f") == [Credential("AKIDONE", "secretone"),
                                            Credential("AKIDTWO", "secret/two+", "111122223333")]
    for bad, line in [("AKID\n", 1), ("# c\nA B C D\n", 2), ("\n\nA/B s\n", 3), ("A s 123\n", 1)]:
        with pytest.raises(InvalidArgument) as err:
            parse_credentials(bad, "keys.txt")
        assert f"keys.txt:{line}:" in str(err.value)
    good, bad_file = tmp_path / "good", tmp_path / "bad"
    good.write_text("AKIDONE secretone\n")
    bad_file.write_text("AKIDONE secretone\nbroken\n")
    assert StaticKeys.from_files([good]).lookup("AKIDONE") == Credential("AKIDONE", "secretone")
    with pytest.raises(InvalidArgument, match=f"{bad_file}:2:"):
        StaticKeys.from_files([bad_file])
    with pytest.raises(InvalidArgument, match="missing"):
        StaticKeys.from_files([tmp_path / "missing"])
    conflicting = tmp_path / "conflict"
    conflicting.write_text("AKIDONE othersecret\n")
    with pytest.raises(InvalidArgument, match="twice"):
        StaticKeys.from_files([good, conflicting])


# --- the endpoint: refused before dispatch, in each protocol's shape --------------------------------

def _handle(api: Any, request: tuple[str, str, str, dict[str, str], bytes]) -> Any:
    import asyncio

    from aiohttp.test_utils import make_mocked_request

    method, path, query, headers, body = request

    class Payload:
        async def read(self) -> bytes:
            return body

    mocked = make_mocked_request(method, path + (f"?{query}" if query else ""), headers=headers)
    mocked.read = Payload().read  # type: ignore[method-assign]
    return asyncio.run(api.handle(mocked))


def test_endpoint_refuses_before_the_operation_runs() -> None:
    import json

    from berth.api.aws import AwsApi, JsonService

    calls: list[Any] = []
    api = AwsApi(authenticator=Authenticator([StaticKeys([KEY])]))  # the real clock: sign "now"
    api.add_json_service(JsonService("AmazonEC2ContainerRegistry_V20150921", "ecr",
                                     {"CreateRepository": lambda p, ctx: calls.append((p, ctx)) or {"ok": 1}}))
    import time

    good = signed(at=time.time())
    tampered = (*good[:4], b'{"repositoryName": "y"}')
    response = _handle(api, tampered)
    assert response.status == 400 and json.loads(response.body)["__type"] == "InvalidSignatureException"
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert calls == []
    response = _handle(api, good)
    assert (response.status, json.loads(response.body)) == (200, {"ok": 1})
    [(params, ctx)] = calls
    assert params == {"repositoryName": "x"}
    assert (ctx.account, ctx.region, ctx.access_key, ctx.credential) == ("111122223333", "us-east-1", KEY.access_key,
                                                                         KEY)


def test_query_services_render_their_own_refusals() -> None:
    import time

    from aiohttp import web

    from berth.api.aws import AwsApi

    seen: list[tuple[str, int]] = []

    def render(err: AwsError, request_id: str) -> web.Response:
        seen.append((err.code, err.status))
        return web.Response(status=err.status, text=f"<ErrorResponse>{err.code}</ErrorResponse>")

    async def handler(request: web.Request, ctx: Any) -> web.Response:
        raise AssertionError("must not run")

    api = AwsApi(authenticator=Authenticator([StaticKeys([KEY])]))
    api.add_query_service("elasticloadbalancing", handler, render)
    form = {"Host": "127.0.0.1:4566", "Content-Type": "application/x-www-form-urlencoded"}
    response = _handle(api, ("POST", "/", "", form, b"Action=DescribeLoadBalancers&Version=2015-12-01"))
    assert response.status == 403 and seen == [("MissingAuthenticationToken", 403)]
    unknown = signed(key="BKIAUNKNOWNUNKNOWN00", at=time.time())
    headers = {k: v for k, v in unknown[3].items() if k != "X-Amz-Target"}
    headers["Authorization"] = headers["Authorization"].replace(";x-amz-target", "")
    # signed for ECR (a JSON service) and missing its target: a JSON refusal, not the Query service's
    response = _handle(api, (*unknown[:3], headers, unknown[4]))
    assert len(seen) == 1 and response.status == 400
    assert json.loads(response.body)["__type"] == "UnrecognizedClientException"
    # without a renderer of its own, a Query service gets a generic XML ErrorResponse
    plain = AwsApi(authenticator=Authenticator([StaticKeys([KEY])]))
    plain.add_query_service("elasticloadbalancing", handler)
    response = _handle(plain, ("POST", "/", "", form, b"Action=X"))
    assert response.content_type == "text/xml"
    assert b"<Code>MissingAuthenticationToken</Code>" in response.body


def test_cli_reads_the_key_file_and_writes_a_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import configparser

    from berth.cli.aws_credentials import read_key_file
    from berth.cli.main import build_parser

    made = KeyFile(tmp_path).ensure()
    assert read_key_file(KeyFile(tmp_path).path) == (made.access_key, made.secret_key)
    parser = build_parser()
    args = parser.parse_args(["aws-credentials", "--root", str(tmp_path)])
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines() == [f"AWS_ACCESS_KEY_ID={made.access_key}",
                                                   f"AWS_SECRET_ACCESS_KEY={made.secret_key}"]
    creds, config = tmp_path / "home" / "credentials", tmp_path / "home" / "config"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    creds.parent.mkdir()
    creds.write_text("[other]\naws_access_key_id = KEEP\naws_secret_access_key = ME\n")
    for _ in range(2):  # writing again updates, never duplicates
        args = parser.parse_args(["aws-credentials", "--root", str(tmp_path), "--profile", "berth",
                                  "--endpoint-url", "http://127.0.0.1:9999"])
        assert args.func(args) == 0
    written = configparser.RawConfigParser()
    written.read(creds)
    assert written["other"]["aws_access_key_id"] == "KEEP"
    assert written["berth"]["aws_secret_access_key"] == made.secret_key
    settings = configparser.RawConfigParser()
    settings.read(config)
    assert dict(settings["profile berth"]) == {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:9999"}
    assert stat.S_IMODE(creds.stat().st_mode) == stat.S_IMODE(config.stat().st_mode) == 0o600
    args = parser.parse_args(["aws-credentials", "--root", str(tmp_path / "nowhere")])
    assert args.func(args) == 1 and "no key file" in capsys.readouterr().err


def test_temporary_credentials_survive_a_restart_in_a_root_only_file(tmp_path):
    from berth.api.aws import TemporaryCredentials

    now = [1_000_000.0]
    path = tmp_path / "aws" / "task-credentials.json"
    first = TemporaryCredentials(clock=lambda: now[0], path=path)
    issued = first.issue("arn:aws:iam::123456789012:role/app", "123456789012", 3600)
    assert path.stat().st_mode & 0o777 == 0o600
    again = TemporaryCredentials(clock=lambda: now[0], path=path)   # the next daemon
    found = again.lookup(issued.access_key)
    assert found is not None and found.secret_key == issued.secret_key
    assert found.session_token == issued.session_token and found.role_arn == issued.role_arn
    now[0] += 3601
    import pytest as _pytest
    from berth.api.aws import AwsError
    with _pytest.raises(AwsError) as err:
        again.lookup(issued.access_key)
    assert err.value.code == "ExpiredTokenException"
