"""A blocking HTTP client for one registry (OCI distribution v2), with the Docker auth flow.

Lifecycle: `RegistryClient(endpoints, credentials)` → `connect()` pings `/v2/` on each endpoint in
order and keeps the first that answers (and its auth challenge) → `repository(name, actions)`
fetches a token for those actions once → blob and manifest calls. Requests without a streamed
body are retried once after a 401 (an expired token, or a scope the challenge widened).

Where a registry may send the client: Docker follows redirects, token realms and upload
Locations to any host (blob downloads from a CDN are normal). berth does too, except that a
registry reached on loopback may only lead to loopback (nothing on this host has a reason to
send berth elsewhere, and a hostile or misconfigured local registry must not make the daemon
dial out: berth's network rule), and a registry elsewhere may never lead to loopback (the
classic server-side request forgery against local services). URLs whose host parsers could
read differently (userinfo, a backslash in the authority) are refused outright.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin

import requests
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from berth.images.distribution import _mediatypes as mt
from berth.images.distribution._auth import Challenge, Credentials, parse_challenge, repository_scope
from berth.images.distribution._errors import RegistryError, Unreachable, registry_error
from berth.images.distribution._hosts import Endpoint, is_loopback
from berth.types import Digest

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 300.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Manifest:
    data: bytes
    media_type: str
    digest: Digest


class RegistryClient:
    """One registry host (see the module docstring for the lifecycle)."""

    def __init__(self, endpoints: list[Endpoint], credentials: Credentials | None = None,
                 *, session: requests.Session | None = None, user_agent: str = "berth") -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        self._endpoints = endpoints
        self.credentials = credentials or Credentials()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.endpoint: Endpoint = endpoints[0]
        self.challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], str] = {}
        self._lock = threading.Lock()
        self.session.hooks["response"].append(self._check_redirect)

    @property
    def base_url(self) -> str:
        return self.endpoint.url

    # connecting and logging in

    def connect(self) -> None:
        """Ping `/v2/` on each endpoint until one answers; remember its auth challenge.

        Raises:
            Unreachable: no endpoint answered.
            RegistryError: the endpoint does not speak the v2 API.
        """
        failures = []
        for endpoint in self._endpoints:
            self.endpoint = endpoint  # the redirect check applies this endpoint's confinement
            try:
                resp = self.session.get(endpoint.url + "/v2/", verify=endpoint.verify_tls,
                                        timeout=(CONNECT_TIMEOUT, 30), allow_redirects=True)
            except requests.RequestException as err:
                failures.append(f'Get "{endpoint.url}/v2/": {_reason(err)}')
                continue
            self.endpoint = endpoint
            if resp.status_code == 401:
                self.challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            elif resp.status_code >= 400 and resp.status_code != 404:
                # 404 on /v2/ comes from some v2 registries behind proxies; treat as "no auth".
                raise registry_error(resp.status_code, resp.content, resp.reason)
            return
        raise Unreachable("; ".join(failures))

    def login(self) -> None:
        """Check the credentials against `/v2/` like `docker login` does.

        Raises:
            RegistryError: status 401 with dockerd's "login attempt to ... failed" message.
            Unreachable: no endpoint answered.
        """
        self.connect()
        if self.challenge is None:
            return
        url = self.base_url + "/v2/"
        if self.challenge.scheme == "bearer":
            try:
                self._fetch_token(())
            except RegistryError as err:
                raise _login_failed(url, err.status) from err
            resp = self._send("GET", url, headers=self._auth_header(()))
        else:
            resp = self._send("GET", url, headers={"Authorization": self.credentials.basic()})
        if resp.status_code != 200:
            raise _login_failed(url, resp.status_code)

    def repository(self, name: str, actions: tuple[str, ...] = ("pull",),
                   extra_scopes: tuple[str, ...] = ()) -> "Repository":
        """A handle on `name` with a token for `actions` (and any extra scopes, e.g. mount sources)."""
        scopes = (repository_scope(name, actions), *extra_scopes)
        if self.challenge is not None and self.challenge.scheme == "bearer":
            self._fetch_token(scopes)
        return Repository(self, name, scopes)

    # auth plumbing

    def _auth_header(self, scopes: tuple[str, ...]) -> dict[str, str]:
        if self.challenge is None:
            return {}
        if self.challenge.scheme == "basic":
            return {"Authorization": self.credentials.basic()} if not self.credentials.empty else {}
        if self.credentials.registry_token:
            return {"Authorization": f"Bearer {self.credentials.registry_token}"}
        with self._lock:
            token = self._tokens.get(scopes)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _fetch_token(self, scopes: tuple[str, ...]) -> str:
        """GET the challenge's realm for a bearer token covering `scopes`.

        Raises:
            RegistryError: the token server refused (401 with wrong credentials).
        """
        assert self.challenge is not None
        if self.credentials.registry_token:
            return self.credentials.registry_token
        params: list[tuple[str, str]] = []
        if self.challenge.params.get("service"):
            params.append(("service", self.challenge.params["service"]))
        params += [("scope", s) for s in scopes]
        if self.credentials.username:
            params.append(("account", self.credentials.username))
        headers = {}
        if self.credentials.identity_token:
            resp = self._send("POST", self.challenge.realm, data={
                "grant_type": "refresh_token", "refresh_token": self.credentials.identity_token,
                "service": self.challenge.params.get("service", ""), "scope": " ".join(scopes),
                "client_id": "berth"})
        else:
            if self.credentials.username or self.credentials.password:
                headers["Authorization"] = self.credentials.basic()
            resp = self._send("GET", self.challenge.realm, params=params, headers=headers)
        if resp.status_code != 200:
            raise registry_error(resp.status_code, resp.content, resp.reason)
        doc = resp.json()
        token = str(doc.get("token") or doc.get("access_token") or "")
        with self._lock:
            self._tokens[scopes] = token
        return token

    def _reauthenticate(self, resp: requests.Response, scopes: tuple[str, ...]) -> bool:
        """After a 401: adopt the new challenge and fetch a fresh token. False if pointless."""
        challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            return False
        self.challenge = challenge
        if challenge.scheme == "basic":
            return not self.credentials.empty
        wanted = tuple(dict.fromkeys((*scopes, *([challenge.params["scope"]] if "scope" in challenge.params else []))))
        self._fetch_token(wanted)
        with self._lock:
            self._tokens[scopes] = self._tokens[wanted]
        return True

    # HTTP

    def check_target(self, url: str) -> None:
        """Refuse `url` unless it is on loopback exactly when the registry is (module docstring).

        Raises:
            Unreachable: with the registry and the refused URL.
        """
        here, there = _dialled_host(self.endpoint.url), _dialled_host(url)
        if there is None or is_loopback(there) != is_loopback(here or ""):
            where = "loopback" if is_loopback(here or "") else "another host"
            raise Unreachable(f"registry {self.endpoint.url} sent berth to {url!r}: a registry on {where} "
                              f"may only refer to {'loopback addresses' if where == 'loopback' else 'hosts off loopback'}")

    def _check_redirect(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        if resp.is_redirect:
            self.check_target(urljoin(resp.url, resp.headers["Location"]))

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.check_target(url)
        kwargs.setdefault("timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
        kwargs.setdefault("verify", self.endpoint.verify_tls)
        try:
            return self.session.request(method, url, **kwargs)
        except requests.RequestException as err:
            raise Unreachable(f'{method.capitalize()} "{url}": {_reason(err)}') from err

    def request(self, method: str, path_or_url: str, scopes: tuple[str, ...], *,
                retry: bool = True, **kwargs: Any) -> requests.Response:
        """An authenticated request; `retry=False` for streamed bodies that cannot be resent."""
        url = urljoin(self.base_url + "/", path_or_url)
        headers = {**kwargs.pop("headers", {}), **self._auth_header(scopes)}
        resp = self._send(method, url, headers=headers, **kwargs)
        if resp.status_code == 401 and retry and self._reauthenticate(resp, scopes):
            resp.close()
            headers.update(self._auth_header(scopes))
            resp = self._send(method, url, headers=headers, **kwargs)
        return resp


class Repository:
    """Blob and manifest operations on one repository of a connected registry."""

    def __init__(self, client: RegistryClient, name: str, scopes: tuple[str, ...]) -> None:
        self.client = client
        self.name = name
        self._scopes = scopes

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.client.request(method, path, self._scopes, **kwargs)

    @staticmethod
    def _check(resp: requests.Response, *ok: int) -> requests.Response:
        if resp.status_code not in ok:
            err = registry_error(resp.status_code, resp.content, resp.reason)
            resp.close()
            raise err
        return resp

    # manifests

    def get_manifest(self, reference: str, accept: str = mt.PULL_ACCEPT) -> Manifest:
        """GET a manifest by tag or digest; checks the bytes against a requested digest.

        Raises:
            RegistryError: 404 `MANIFEST_UNKNOWN` and friends; a digest mismatch.
        """
        resp = self._check(self._request("GET", f"/v2/{self.name}/manifests/{reference}",
                                         headers={"Accept": accept}), 200)
        data = resp.content
        digest = Digest.of(data)
        if reference.startswith("sha256:") and str(digest) != reference:
            raise RegistryError(400, f"manifest verification failed for digest {reference}",
                                ("DIGEST_INVALID",))
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(data, media_type, digest)

    def put_manifest(self, reference: str, media_type: str, data: bytes) -> Digest:
        resp = self._check(self._request("PUT", f"/v2/{self.name}/manifests/{reference}",
                                         data=data, headers={"Content-Type": media_type}), 201)
        resp.close()
        return Digest.of(data)

    def tags(self) -> list[str]:
        """Every tag of the repository (following `Link` pagination)."""
        tags: list[str] = []
        url = f"/v2/{self.name}/tags/list"
        while url:
            resp = self._check(self._request("GET", url), 200)
            tags += resp.json().get("tags") or []
            url = resp.links.get("next", {}).get("url", "")
        return tags

    # blobs

    def blob_size(self, digest: Digest) -> int | None:
        """HEAD a blob: its size, or None when the repository does not have it."""
        resp = self._request("HEAD", f"/v2/{self.name}/blobs/{digest}", allow_redirects=True)
        if resp.status_code == 404:
            return None
        self._check(resp, 200)
        return int(resp.headers.get("Content-Length", "0"))

    def open_blob(self, digest: Digest) -> requests.Response:
        """GET a blob as a streamed response (close it when done)."""
        resp = self._request("GET", f"/v2/{self.name}/blobs/{digest}", stream=True)
        return self._check(resp, 200)

    def iter_blob(self, digest: Digest) -> Iterator[bytes]:
        with self.open_blob(digest) as resp:
            yield from resp.iter_content(_CHUNK)

    def mount_blob(self, digest: Digest, source: str) -> str | None:
        """Try a cross-repository mount; None when mounted, else the upload session it opened."""
        query = urlencode({"mount": str(digest), "from": source})
        resp = self._check(self._request("POST", f"/v2/{self.name}/blobs/uploads/?{query}"), 201, 202)
        resp.close()
        if resp.status_code == 201:
            return None
        return resp.headers["Location"]

    def start_upload(self) -> str:
        resp = self._check(self._request("POST", f"/v2/{self.name}/blobs/uploads/"), 202)
        resp.close()
        return resp.headers["Location"]

    def upload(self, location: str, chunks: Iterable[bytes], digest_of: Callable[[], Digest]) -> Digest:
        """Stream `chunks` in one PATCH, then close the session with PUT ?digest=.

        `digest_of()` is called after the body is sent (the digest of a stream being compressed
        is known only at its end).
        """
        resp = self._check(self._request("PATCH", location, data=chunks, retry=False,
                                         headers={"Content-Type": "application/octet-stream"}), 202)
        resp.close()
        digest = digest_of()
        self._finish(resp.headers.get("Location", location), digest)
        return digest

    def put_blob(self, data: bytes, location: str | None = None) -> Digest:
        """A small blob (a config) in one PUT on a new or given session."""
        digest = Digest.of(data)
        location = location or self.start_upload()
        self._finish(location, digest, data)
        return digest

    def _finish(self, location: str, digest: Digest, data: bytes = b"") -> None:
        sep = "&" if "?" in location else "?"
        resp = self._check(self._request("PUT", f"{location}{sep}digest={digest}", data=data,
                                         headers={"Content-Type": "application/octet-stream"}), 201, 204)
        resp.close()


def _dialled_host(url: str) -> str | None:
    """The host requests would connect to for `url` (urllib3's parse, as its pool uses), in the
    `[v6]` form is_loopback takes; None for a URL that names a host ambiguously (userinfo or a
    backslash in the authority, which parsers read differently) or not at all."""
    authority = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority or "\\" in authority:
        return None
    try:
        host = parse_url(url).host
    except (LocationParseError, ValueError):
        return None
    if not host:
        return None
    host = host.lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _login_failed(url: str, status: int) -> RegistryError:
    reason = {401: "Unauthorized", 403: "Forbidden"}.get(status, "")
    return RegistryError(401, f"login attempt to {url} failed with status: {status} {reason}".strip(),
                         ("UNAUTHORIZED",))


def _reason(err: requests.RequestException) -> str:
    text = str(err)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "no such host"
    return text
