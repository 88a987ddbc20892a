"""The AWS endpoint: one port, JSON 1.1 services routed by `X-Amz-Target` (aws-apis.md §1).

    POST /   X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.CreateRepository
             Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/ecr/aws4_request, ...
             {"repositoryName": "x"}
    → 200    Content-Type: application/x-amz-json-1.1, x-amzn-RequestId: <uuid>, {...output...}
    → 400    {"__type": "RepositoryAlreadyExistsException", "message": "..."}

Services register explicitly (`AwsApi.add_json_service`) in the composition root; each operation
is a blocking function `(params, context) -> output` run in a worker thread. Query-protocol
services (ELBv2) can hook in through `add_query_service`.

Every request is checked by the `Authenticator` (SigV4, `_auth.py`) before it is dispatched, so a
refused request changes nothing; the context then carries the verified credential and its account.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from berth.api.aws._auth import Authenticator, Credential, for_query_protocol
from berth.api.aws._errors import AwsError, to_aws_error
from berth.api.aws._sigv4 import DEFAULT_ACCOUNT, DEFAULT_REGION, parse_scope
from berth.api.shapes import Shape, ShapeError, Struct, check

log = logging.getLogger("berth.api.aws")

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
_VERIFY_INLINE_BYTES = 1 << 20  # hashing a larger body moves to a worker thread


@dataclass(frozen=True)
class AwsContext:
    """Who called, where: the account comes from the verified credential, the region from the SigV4
    scope (with authentication off: both from the scope, defaults when unsigned)."""

    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    access_key: str = ""
    operation: str = ""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    credential: Credential | None = None  # None when authentication is off


Operation = Callable[[dict[str, Any], AwsContext], dict[str, Any]]
QueryHandler = Callable[[web.Request, AwsContext], "asyncio.Future[web.Response] | Any"]
# Renders an error in a protocol's own shape: (error, request id) -> response.
ErrorRenderer = Callable[[AwsError, str], web.Response]


@dataclass(frozen=True)
class JsonService:
    target_prefix: str              # "AmazonEC2ContainerRegistry_V20150921"
    signing_name: str               # "ecr"
    operations: Mapping[str, Operation]
    # The JSON type of each input member the operations read (any operation, same name, same
    # type): a wrong type is the caller's SerializationException, never a fault in an operation.
    params: Mapping[str, Shape] = field(default_factory=dict)


class AwsApi:
    """The table of services served on the AWS endpoint."""

    def __init__(self, account_for: Callable[[str], str] | None = None,
                 authenticator: Authenticator | None = None) -> None:
        """`authenticator` None serves everyone unchecked (unit tests); the daemon always passes one."""
        self._json: dict[str, JsonService] = {}
        self._query: dict[str, Callable[[web.Request, AwsContext], Awaitable[web.StreamResponse]]] = {}
        self._query_errors: dict[str, ErrorRenderer] = {}
        self._account_for = account_for or (lambda _key: DEFAULT_ACCOUNT)
        self.authenticator = authenticator

    def add_json_service(self, service: JsonService) -> None:
        self._json[service.target_prefix] = service

    def add_query_service(self, signing_name: str, handler: Callable[[web.Request, AwsContext], Any],
                          render_error: ErrorRenderer | None = None) -> None:
        """An async `handler(request, context) -> web.Response` for form-encoded Query requests;
        `render_error` draws the service's own error shape (default: a generic XML ErrorResponse)
        for the refusals the endpoint answers before the handler runs (authentication)."""
        self._query[signing_name] = handler
        self._query_errors[signing_name] = render_error or query_error

    def context(self, request: web.Request, operation: str = "", credential: Credential | None = None) -> AwsContext:
        scope = parse_scope(request.headers, request.query)
        if credential is not None and self.authenticator is not None and self.authenticator.enabled:
            return AwsContext(region=scope.region if scope else DEFAULT_REGION, account=credential.account,
                              access_key=credential.access_key, operation=operation, credential=credential)
        if scope is None:
            return AwsContext(operation=operation)
        return AwsContext(region=scope.region or DEFAULT_REGION, account=self._account_for(scope.access_key),
                          access_key=scope.access_key, operation=operation)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = request.headers.get("X-Amz-Target", "")
        scope = parse_scope(request.headers, request.query)
        name = ""
        if not target:
            name = scope.service if scope and scope.service in self._query else ""
            # An unsigned form post (auth off) can only mean the one Query service; a JSON body or
            # another service's signature without a target is a JSON service's missing target.
            form = request.content_type == "application/x-www-form-urlencoded"
            if not name and scope is None and form and len(self._query) == 1 and request.method == "POST":
                name = next(iter(self._query))
        # Refused before anything is dispatched: a request that fails here has changed nothing.
        try:
            credential = await self._authenticate(request)
        except AwsError as err:
            request_id = str(uuid.uuid4())
            if name:
                return self._query_errors[name](for_query_protocol(err), request_id)
            return _error(err, request_id)
        if target:
            return await self._json_call(request, target, credential)
        handler = self._query.get(name)
        if handler is None:
            return _unknown_operation(request)
        return await handler(request, self.context(request, credential=credential))

    async def _authenticate(self, request: web.Request) -> Credential | None:
        """The verified credential; None when authentication is off.

        Raises:
            AwsError: the refusal, in the JSON services' codes.
        """
        auth = self.authenticator
        if auth is None or not auth.enabled:
            return None
        try:
            body = await request.read()  # aiohttp keeps it: the operation reads the same bytes
        except (ConnectionResetError, HttpProcessingError) as err:  # the body ended early
            raise AwsError("SerializationException", f"incomplete request body: {err}") from err
        except web.HTTPRequestEntityTooLarge as err:
            raise AwsError("SerializationException", f"request body too large: {err.text}", 413) from err
        url = request.rel_url
        args = (request.method, url.raw_path, url.raw_query_string, request.headers.items(), body)
        if len(body) > _VERIFY_INLINE_BYTES:
            return await asyncio.to_thread(auth.verify, *args)
        return auth.verify(*args)

    async def _json_call(self, request: web.Request, target: str, credential: Credential | None = None) -> web.Response:
        prefix, _, name = target.rpartition(".")
        ctx = self.context(request, name, credential)
        service = self._json.get(prefix)
        operation = service.operations.get(name) if service else None
        if operation is None:
            return _error(AwsError("UnknownOperationException", f"unknown operation {target}"), ctx.request_id)
        shapes = service.params if service is not None else {}
        try:
            params = _parse_body(await request.read())
            _check_params(params, shapes)
            output = await asyncio.to_thread(operation, params, ctx)
        except (ConnectionResetError, HttpProcessingError) as err:  # the body ended early
            return _error(AwsError("SerializationException", f"incomplete request body: {err}"), ctx.request_id)
        except Exception as err:  # noqa: BLE001 - every failure becomes an AWS error shape
            aws = _client_error(err, target) or to_aws_error(err)
            if aws.status >= 500:
                log.exception("%s failed", target)
            return _error(aws, ctx.request_id)
        return web.Response(body=json.dumps(output, default=_default).encode(), content_type=JSON_CONTENT_TYPE,
                            headers={"x-amzn-RequestId": ctx.request_id})


def _client_error(err: Exception, target: str) -> AwsError | None:
    """Failures that are the request's, not the server's, although they are not berth error kinds:
    an operation berth does not implement (SDKs retry a 5xx, so it must never be one) and aiohttp's
    own 4xx (a body over the size limit)."""
    if isinstance(err, NotImplementedError):
        return AwsError("UnknownOperationException", f"berth does not implement {target}: {err}".rstrip(": "))
    if isinstance(err, web.HTTPClientError):
        return AwsError("SerializationException", err.text or err.reason, err.status)
    return None


def _unknown_operation(request: web.Request) -> web.Response:
    """No service here serves this request. A form post is a Query-protocol client's (STS, IAM, ...),
    which reads only an XML ErrorResponse (AWS's Query services say InvalidAction); any other request
    gets the JSON protocol's UnknownOperationException. Both are 400: SDKs do not retry them."""
    request_id = str(uuid.uuid4())
    if request.content_type == "application/x-www-form-urlencoded":
        return query_error(AwsError("InvalidAction", "The action or operation requested is not implemented by "
                                                     "this endpoint"), request_id)
    return _error(AwsError("UnknownOperationException", "missing X-Amz-Target"), request_id)


def _parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        params = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise AwsError("SerializationException", f"invalid JSON body: {err}") from err
    if not isinstance(params, dict):
        raise AwsError("SerializationException", "the request body must be a JSON object")
    return params


def _check_params(params: dict[str, Any], shapes: Mapping[str, Shape]) -> None:
    try:
        check(params, Struct("input", shapes))
    except ShapeError as err:
        raise AwsError("SerializationException",
                       f"Unable to parse {err.field}: expected {err.go_type}, got {err.kind}") from err


def _default(value: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _error(err: AwsError, request_id: str) -> web.Response:
    # An error shape may carry members besides the message (`members`, e.g. InvalidLayerPartException's).
    members = getattr(err, "members", None) or {}
    body = json.dumps({**members, "__type": err.code, "message": err.message}).encode()
    return web.Response(status=err.status, body=body, content_type=JSON_CONTENT_TYPE,
                        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": err.code})


def query_error(err: AwsError, request_id: str) -> web.Response:
    """A Query-protocol (ELBv2, IAM) ErrorResponse; services with a namespace pass their own renderer."""
    kind = "Receiver" if err.status >= 500 else "Sender"
    body = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{xml_escape(err.code)}</Code>"
            f"<Message>{xml_escape(err.message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return web.Response(status=err.status, body=body.encode(), content_type="text/xml",
                        headers={"x-amzn-RequestId": request_id})


class AwsServer:
    """Serves an AwsApi on a TCP address: `await start(host, port)`, later `await close()`."""

    def __init__(self, api: AwsApi) -> None:
        self.api = api
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        # UploadLayerPart carries up to 20 MiB of layer, base64-encoded in JSON (~27 MiB).
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.api.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server  # noqa: SLF001 - aiohttp exposes the bound port only here
        self.port = server.sockets[0].getsockname()[1] if server is not None else port  # type: ignore[attr-defined]
        log.info("AWS APIs listening on %s:%s", host, self.port)
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
