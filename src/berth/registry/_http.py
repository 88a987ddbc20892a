"""The distribution API over aiohttp: thin handlers that parse, call `Registry` and serialise.

Every `/v2/` request goes through `_dispatch`: match the route, check the name, authorise the
scope the route needs, run the handler, and map RegistryError to the spec's JSON error body.
Blob bodies are hashed and written in 256 KB steps on the registry's loop thread (see
`receive`); blob GETs go through FileResponse (Range, conditional
requests) but copy through user space instead of sendfile (see `_CopiedFileResponse`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from berth.errors import BerthError, InvalidArgument, NotFound
from berth.registry._auth import Access, RegistryAuth, Unauthorized, challenge
from berth.registry._errors import (
    BLOB_UPLOAD_INVALID,
    DIGEST_INVALID,
    MANIFEST_TOO_LARGE,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PAGINATION_INVALID,
    RANGE_INVALID,
    SIZE_INVALID,
    UNAUTHORIZED,
    ErrorCode,
    RegistryError,
)
from berth.registry._names import check_name, parse_digest
from berth.registry._routes import Route, action_for, match
from berth.registry._service import MAX_MANIFEST_BYTES, Registry
from berth.registry._storage import Ingest
from berth.registry._uploads import UploadSession
from berth.types import Digest

log = logging.getLogger("berth.registry")

FLUSH_BYTES = 256 << 10  # ~0.2 ms of hashing + writing per step on the registry loop
RESERVE_MIN_BYTES = 4 << 20  # bodies this large get their disk space preallocated
COPY_MIN_BYTES = 1 << 20  # blob GETs this large copy instead of sendfile (_CopiedFileResponse)
MAX_PAGE = 1 << 31
API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
Handler = Callable[[web.Request, Route], Awaitable[web.StreamResponse]]


def _error(err: RegistryError, headers: dict[str, str] | None = None) -> web.Response:
    extra = {k: v for k, v in (headers or {}).items() if k != "Content-Length"}  # the body sets its own
    return web.Response(status=err.status, body=err.body(), content_type="application/json", headers=extra)


def _blob_url(name: str, digest: Digest) -> str:
    return f"/v2/{name}/blobs/{digest}"


def _upload_headers(session: UploadSession) -> dict[str, str]:
    return {"Location": f"/v2/{session.repo}/blobs/uploads/{session.id}", "Range": session.range_header(),
            "Docker-Upload-UUID": session.id, "Content-Length": "0"}


def _created(name: str, digest: Digest) -> web.Response:
    return web.Response(status=201, headers={"Location": _blob_url(name, digest), "Docker-Content-Digest": str(digest),
                                             "Content-Length": "0"})


def _page_size(request: web.Request) -> int | None:
    text = request.query.get("n")
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise RegistryError(PAGINATION_INVALID, {"n": text})
    return min(int(text), MAX_PAGE)  # a registry may return fewer; SQLite's LIMIT is 64-bit


def _content_range(header: str | None) -> tuple[int, int] | None:
    if header is None:
        return None
    start, sep, end = header.removeprefix("bytes ").strip().partition("-")
    if not (sep and start.isdigit() and end.isdigit()) or int(end) < int(start):
        raise RegistryError(RANGE_INVALID, {"Content-Range": header})
    return int(start), int(end)


async def receive(request: web.Request, ingest: Ingest) -> int:
    """Append the request body to `ingest`; returns the byte count.

    Every FLUSH_BYTES gathered are hashed and written right here, on the registry's own loop
    thread (RegistryServer runs one), not handed to a worker: a push then keeps berth on one
    core, and on a loopback push the client sending the bytes needs the other one. Measured on
    a 2-core host with skopeo, a 4 MB hand-off to a worker thread made a 100 MB push ~15% slower
    (bench/README.md). A body shorter than its Content-Length raises SIZE_INVALID.
    """
    if request.content_length and request.content_length >= RESERVE_MIN_BYTES:
        await asyncio.to_thread(ingest.reserve, request.content_length)
    parts: list[bytes] = []
    held = total = 0
    while chunk := await request.content.readany():
        parts.append(chunk)
        held += len(chunk)
        total += len(chunk)
        if held >= FLUSH_BYTES:
            ingest.write_parts(parts)
            parts, held = [], 0
    if parts:
        ingest.write_parts(parts)
    if request.content_length is not None and total != request.content_length:
        raise RegistryError(SIZE_INVALID, {"expected": request.content_length, "received": total})
    return total


async def read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise RegistryError(MANIFEST_TOO_LARGE, {"size": request.content_length, "limit": limit})
    data = bytearray()
    while chunk := await request.content.readany():
        data += chunk
        if len(data) > limit:
            raise RegistryError(MANIFEST_TOO_LARGE, {"limit": limit})
    return bytes(data)


class _CopiedFileResponse(web.FileResponse):
    """FileResponse that sends with read()+send() in 1 MB chunks rather than sendfile(2).

    A pull is bound by the client (skopeo/docker copy, hash and write every byte), not by this
    server. On loopback, sendfile hands the client page-cache pages that are cold in the CPU
    cache, while a user-space copy leaves the bytes cache-hot for the client's own copy out of
    the socket: big-blob skopeo pulls measured ~8% faster this way (and on par with
    distribution, whose Go blob reader is not an *os.File, so it copies too). The extra copy
    costs this process a little CPU, off the client's critical path. Bodies under
    COPY_MIN_BYTES keep sendfile: one syscall, no worker-thread hop per small layer.
    """

    digest = ""  # the blob's digest: its ETag (FileResponse would send one made of mtime and size)

    async def prepare(self, request: web.BaseRequest) -> Any:
        return await super().prepare(_digest_validated(request, f'"{self.digest}"') if self.digest else request)

    async def _sendfile(self, request: web.BaseRequest, fobj: Any, offset: int, count: int) -> Any:
        fallback = getattr(self, "_sendfile_fallback", None)
        if fallback is None or count < COPY_MIN_BYTES:  # (None: an aiohttp without the copying path)
            return await super()._sendfile(request, fobj, offset, count)
        writer = await web.StreamResponse.prepare(self, request)
        assert writer is not None
        return await fallback(writer, fobj, offset, count)


class RegistryApp:
    """Builds the aiohttp application serving `/v2/` and `/token` for one Registry."""

    def __init__(self, registry: Registry, auth: RegistryAuth) -> None:
        self.registry = registry
        self.auth = auth
        self._handlers: dict[tuple[str, str], Handler] = {
            ("base", "GET"): self.base, ("base", "HEAD"): self.base,
            ("catalog", "GET"): self.catalog, ("tags", "GET"): self.tags,
            ("blob", "GET"): self.get_blob, ("blob", "HEAD"): self.get_blob, ("blob", "DELETE"): self.delete_blob,
            ("uploads", "POST"): self.start_upload,
            ("upload", "GET"): self.upload_status, ("upload", "PATCH"): self.patch_upload,
            ("upload", "PUT"): self.put_upload, ("upload", "DELETE"): self.cancel_upload,
            ("manifest", "GET"): self.get_manifest, ("manifest", "HEAD"): self.get_manifest,
            ("manifest", "PUT"): self.put_manifest, ("manifest", "DELETE"): self.delete_manifest,
            ("referrers", "GET"): self.referrers,
        }

    def build(self) -> web.Application:
        app = web.Application(client_max_size=MAX_MANIFEST_BYTES + 1)
        app.router.add_route("*", "/v2", self._dispatch)
        app.router.add_route("*", "/v2/{tail:.*}", self._dispatch)
        app.router.add_route("GET", "/token", self.token)
        app.router.add_route("POST", "/token", self.oauth_token)
        app.on_response_prepare.append(_add_version_header)
        return app

    # -- dispatch ----------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            route = match(request.match_info.get("tail", ""))
            if route is None:
                raise RegistryError(NOT_FOUND, {"path": request.path})
            handler = self._handlers.get((route.kind, request.method))
            if route.name:
                check_name(route.name)
            await self._authorize(request, route)
            if handler is None:
                raise RegistryError(METHOD_NOT_ALLOWED, {"method": request.method})
            return await handler(request, route)
        except Unauthorized as err:
            return _unread_body_closes(request, self._unauthorized(request, err))
        except RegistryError as err:
            return _unread_body_closes(request, _error(err))
        except BerthError as err:
            return _unread_body_closes(request, _error(_wrap(err)))
        except (ConnectionResetError, HttpProcessingError) as err:
            # The body ended before its length, or the client went away: the handler has already
            # rolled its upload back; answer the client's error (if anyone still listens).
            incomplete = RegistryError(BLOB_UPLOAD_INVALID, None, f"request body incomplete: {err}")
            return _unread_body_closes(request, _error(incomplete))

    def _need(self, request: web.Request, route: Route) -> Access | None:
        if route.kind == "base":
            return None
        if route.kind == "catalog":
            return Access("registry", "catalog", ("*",))
        actions = ("pull", "push") if route.kind in ("uploads", "upload") else (action_for(request.method),)
        if route.kind == "manifest" and request.method == "PUT":
            actions = ("pull", "push")
        return Access("repository", route.name, actions)

    async def _authorize(self, request: web.Request, route: Route) -> str | None:
        header = request.headers.get("Authorization")
        if self.auth.is_slow(header):
            return await asyncio.to_thread(self.auth.check, header, self._need(request, route))
        return self.auth.check(header, self._need(request, route))  # HMAC only: microseconds

    def _unauthorized(self, request: web.Request, err: Unauthorized) -> web.Response:
        realm = f"{request.scheme}://{request.host}/token"
        detail = [err.need.to_json()] if err.need is not None else None
        body = RegistryError(UNAUTHORIZED, detail)
        return _error(body, {"WWW-Authenticate": challenge(realm, err)})

    # -- base and discovery ------------------------------------------------------------------
    async def base(self, request: web.Request, route: Route) -> web.StreamResponse:
        return web.json_response({})

    async def catalog(self, request: web.Request, route: Route) -> web.StreamResponse:
        n, last = _page_size(request), request.query.get("last")
        names = await asyncio.to_thread(self.registry.catalog, None if n is None else n + 1, last)
        return _paged("/v2/_catalog", {"repositories": names}, "repositories", n)

    async def tags(self, request: web.Request, route: Route) -> web.StreamResponse:
        n, last = _page_size(request), request.query.get("last")
        tags = await asyncio.to_thread(self.registry.tags, route.name, None if n is None else n + 1, last)
        return _paged(f"/v2/{route.name}/tags/list", {"name": route.name, "tags": tags}, "tags", n)

    async def referrers(self, request: web.Request, route: Route) -> web.StreamResponse:
        subject = parse_digest(route.ref)
        artifact_type = request.query.get("artifactType")
        index = await asyncio.to_thread(self.registry.referrers, route.name, subject, artifact_type)
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type is not None else None
        return web.Response(body=json.dumps(index).encode(), headers=headers,
                            content_type="application/vnd.oci.image.index.v1+json")

    # -- blobs -------------------------------------------------------------------------------
    async def get_blob(self, request: web.Request, route: Route) -> web.StreamResponse:
        info = await asyncio.to_thread(self.registry.blob, route.name, parse_digest(route.ref))
        etag = f'"{info.digest}"'
        headers = {"Docker-Content-Digest": str(info.digest), "Content-Type": "application/octet-stream",
                   "ETag": etag, "Cache-Control": "max-age=31536000"}
        # Conditional requests are judged against the digest ETag (content-addressed: it never changes).
        if _etag_listed(request.headers.get("If-None-Match"), etag, weak=True):
            return web.Response(status=304, headers=headers)
        if_match = request.headers.get("If-Match")
        if if_match is not None and not _etag_listed(if_match, etag, weak=False):
            return web.Response(status=412, headers=headers)
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(info.size)})
        response = _CopiedFileResponse(info.path, chunk_size=1 << 20, headers=headers)
        response.digest = str(info.digest)
        return response

    async def delete_blob(self, request: web.Request, route: Route) -> web.StreamResponse:
        await asyncio.to_thread(self.registry.delete_blob, route.name, parse_digest(route.ref))
        return web.Response(status=202, headers={"Content-Length": "0"})

    # -- uploads -----------------------------------------------------------------------------
    async def start_upload(self, request: web.Request, route: Route) -> web.StreamResponse:
        mount, source = request.query.get("mount"), request.query.get("from")
        if mount is not None and source is not None:
            mounted = await self._try_mount(request, route.name, parse_digest(mount), source)
            if mounted is not None:
                return _created(route.name, mounted)
        digest = parse_digest(request.query["digest"]) if "digest" in request.query else None
        session = await asyncio.to_thread(self.registry.start_upload, route.name)
        if digest is None:
            return web.Response(status=202, headers=_upload_headers(session))
        return await self._finish(request, self.registry.uploads.claim(route.name, session.id), digest)

    async def _try_mount(self, request: web.Request, name: str, digest: Digest, source: str) -> Digest | None:
        try:
            check_name(source)
        except RegistryError:
            return None
        if not await asyncio.to_thread(self.auth.may, request.headers.get("Authorization"),
                                       Access("repository", source, ("pull",))):
            return None  # not allowed to read the source: an ordinary upload instead (spec §4.5)
        info = await asyncio.to_thread(self.registry.mount_blob, name, digest, source)
        return info.digest if info is not None else None

    async def upload_status(self, request: web.Request, route: Route) -> web.StreamResponse:
        session = self.registry.uploads.get(route.name, route.ref)
        return web.Response(status=204, headers=_upload_headers(session))

    async def cancel_upload(self, request: web.Request, route: Route) -> web.StreamResponse:
        session = self.registry.uploads.claim(route.name, route.ref)
        await asyncio.to_thread(self.registry.cancel_upload, session)
        return web.Response(status=204)

    async def patch_upload(self, request: web.Request, route: Route) -> web.StreamResponse:
        session = self.registry.uploads.claim(route.name, route.ref)
        try:
            await self._append(request, session)
            return web.Response(status=202, headers=_upload_headers(session))
        except RegistryError as err:
            if err.status == 416:
                return _error(err, _upload_headers(session))
            raise
        finally:
            self.registry.uploads.release(session)

    async def _append(self, request: web.Request, session: UploadSession) -> None:
        """One chunk: in order (416 otherwise), all or nothing (a failed chunk is undone)."""
        span = _content_range(request.headers.get("Content-Range"))
        if span is not None and span[0] != session.offset:
            raise RegistryError(RANGE_INVALID, {"offset": session.offset, "Content-Range": f"{span[0]}-{span[1]}"})
        mark = session.ingest.mark()
        try:
            received = await receive(request, session.ingest)
            if span is not None and received != span[1] - span[0] + 1:
                raise RegistryError(BLOB_UPLOAD_INVALID, {"Content-Range": f"{span[0]}-{span[1]}", "received": received},
                                    "chunk length does not match Content-Range")
        except BaseException:
            await asyncio.to_thread(session.ingest.rollback, mark)
            raise

    async def put_upload(self, request: web.Request, route: Route) -> web.StreamResponse:
        text = request.query.get("digest")
        if text is None:
            raise RegistryError(DIGEST_INVALID, None, "digest parameter missing")
        digest = parse_digest(text)
        return await self._finish(request, self.registry.uploads.claim(route.name, route.ref), digest)

    async def _finish(self, request: web.Request, session: UploadSession, digest: Digest) -> web.StreamResponse:
        """The closing request: append its body (if any), verify, publish.

        The session ends with it (a digest mismatch stores nothing), except on an out-of-order
        final chunk (416), after which the client may resume.
        """
        try:
            await self._append(request, session)
        except RegistryError as err:
            if err.status == 416:
                self.registry.uploads.release(session)
                return _error(err, _upload_headers(session))
            await asyncio.to_thread(self.registry.cancel_upload, session)
            raise
        except BaseException:
            await asyncio.to_thread(self.registry.cancel_upload, session)
            raise
        info = await asyncio.to_thread(self.registry.finish_upload, session, digest)
        return _created(session.repo, info.digest)

    # -- manifests ---------------------------------------------------------------------------
    async def get_manifest(self, request: web.Request, route: Route) -> web.StreamResponse:
        info = await asyncio.to_thread(self.registry.manifest, route.name, route.ref)
        headers = {"Docker-Content-Digest": str(info.digest), "Content-Type": info.media_type,
                   "ETag": f'"{info.digest}"'}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(info.size)})
        return web.Response(body=await asyncio.to_thread(info.path.read_bytes), headers=headers)

    async def put_manifest(self, request: web.Request, route: Route) -> web.StreamResponse:
        data = await read_limited(request, MAX_MANIFEST_BYTES)
        result = await asyncio.to_thread(self.registry.put_manifest, route.name, route.ref, data,
                                         request.headers.get("Content-Type"), request.query.getall("tag", []))
        headers = CIMultiDict({"Location": f"/v2/{route.name}/manifests/{result.digest}",
                               "Docker-Content-Digest": str(result.digest), "Content-Length": "0"})
        if "tag" in request.query:
            for tag in result.tags:  # one OCI-Tag header per tag applied, as the spec words it
                headers.add("OCI-Tag", tag)
        if result.subject is not None:
            headers["OCI-Subject"] = str(result.subject)
        return web.Response(status=201, headers=headers)

    async def delete_manifest(self, request: web.Request, route: Route) -> web.StreamResponse:
        await asyncio.to_thread(self.registry.delete_manifest, route.name, route.ref)
        return web.Response(status=202, headers={"Content-Length": "0"})

    # -- token endpoint ----------------------------------------------------------------------
    async def token(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await asyncio.to_thread(self.auth.token, request.headers.get("Authorization"),
                                           request.query.getall("scope", []))
        except Unauthorized:
            return _error(RegistryError(UNAUTHORIZED, None, "invalid username or password"),
                          {"WWW-Authenticate": 'Basic realm="berth-registry"'})
        return web.json_response(body)

    async def oauth_token(self, request: web.Request) -> web.StreamResponse:
        """OAuth2 password grant (docker's POST form); refresh tokens are not issued."""
        form = await request.post()
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        if form.get("grant_type") != "password" or not await asyncio.to_thread(self.auth.login, user, password):
            return _error(RegistryError(UNAUTHORIZED, None, "invalid username or password"))
        body = await asyncio.to_thread(self.auth.grant, user, str(form.get("scope", "")).split(" "))
        return web.json_response({"access_token": body["token"], "expires_in": body["expires_in"],
                                  "issued_at": body["issued_at"], "scope": form.get("scope", "")})


def _paged(path: str, body: dict[str, Any], key: str, n: int | None) -> web.Response:
    """Trim a list fetched with one extra item; when that item existed, add the `Link` to the next page."""
    items: list[str] = body[key]
    headers = {}
    if n is not None and len(items) > n:
        items = items[:n]
        if n > 0:
            headers["Link"] = f'<{path}?{urlencode({"n": n, "last": items[-1]}, quote_via=quote)}>; rel="next"'
    return web.json_response({**body, key: items}, headers=headers)


def _unread_body_closes(request: web.Request, response: web.Response) -> web.Response:
    """Refused before reading the body (e.g. 401 on a 100 MB PUT): close rather than drain it."""
    if request.body_exists and not request.content.is_eof():
        response.force_close()
    return response


def _etag_listed(header: str | None, etag: str, *, weak: bool) -> bool:
    """Whether an If-(None-)Match header names `etag` (or is `*`); weak comparison drops `W/`."""
    if header is None:
        return False
    for item in (part.strip() for part in header.split(",")):
        if item == "*" or item == etag or (weak and item.removeprefix("W/") == etag):
            return True
    return False


def _digest_validated(request: web.BaseRequest, etag: str) -> web.BaseRequest:
    """The request FileResponse should see once get_blob has judged the ETag preconditions itself:
    without If-Match / If-None-Match (FileResponse would compare them with its own mtime tag),
    and with an ETag If-Range resolved (Range kept if it names this blob, dropped if not)."""
    drop = {"if-match", "if-none-match"}
    if_range = request.headers.get("If-Range", "")
    if if_range.startswith(('"', "W/")):
        drop |= {"if-range"} if if_range == etag else {"if-range", "range"}
    if not any(name.lower() in drop for name in request.headers):
        return request
    return request.clone(headers=CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in drop))


def _wrap(err: BerthError) -> RegistryError:
    code = NOT_FOUND if isinstance(err, NotFound) else ErrorCode("UNSUPPORTED", str(err), 400)
    if not isinstance(err, (NotFound, InvalidArgument)):
        log.warning("registry: unexpected %s: %s", type(err).__name__, err)
    return RegistryError(code, None, str(err))


async def _add_version_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(API_VERSION)
    if isinstance(response, _CopiedFileResponse) and response.digest:
        response.etag = response.digest  # content-addressed: the digest is the one true validator
