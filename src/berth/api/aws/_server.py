"""The AWS endpoint: one port, JSON 1.1 services routed by `X-Amz-Target` (aws-apis.md §1).

    POST /   X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.CreateRepository
             Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/ecr/aws4_request, ...
             {"repositoryName": "x"}
    → 200    Content-Type: application/x-amz-json-1.1, x-amzn-RequestId: <uuid>, {...output...}
    → 400    {"__type": "RepositoryAlreadyExistsException", "message": "..."}

Services register explicitly (`AwsApi.add_json_service`) in the composition root; each operation
is a blocking function `(params, context) -> output` run in a worker thread. Query-protocol
services (ELBv2) can hook in through `add_query_service`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from berth.api.aws._errors import AwsError, to_aws_error
from berth.api.aws._sigv4 import DEFAULT_ACCOUNT, DEFAULT_REGION, parse_scope
from berth.api.shapes import Shape, ShapeError, Struct, check

log = logging.getLogger("berth.api.aws")

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class AwsContext:
    """Who called, where: region and account come from the SigV4 scope (defaults when unsigned)."""

    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    access_key: str = ""
    operation: str = ""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


Operation = Callable[[dict[str, Any], AwsContext], dict[str, Any]]
QueryHandler = Callable[[web.Request, AwsContext], "asyncio.Future[web.Response] | Any"]


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

    def __init__(self, account_for: Callable[[str], str] | None = None) -> None:
        self._json: dict[str, JsonService] = {}
        self._query: dict[str, Callable[[web.Request, AwsContext], Any]] = {}
        self._account_for = account_for or (lambda _key: DEFAULT_ACCOUNT)

    def add_json_service(self, service: JsonService) -> None:
        self._json[service.target_prefix] = service

    def add_query_service(self, signing_name: str, handler: Callable[[web.Request, AwsContext], Any]) -> None:
        """An async `handler(request, context) -> web.Response` for form-encoded Query requests."""
        self._query[signing_name] = handler

    def context(self, request: web.Request, operation: str = "") -> AwsContext:
        scope = parse_scope(request.headers, request.query)
        if scope is None:
            return AwsContext(operation=operation)
        return AwsContext(region=scope.region or DEFAULT_REGION, account=self._account_for(scope.access_key),
                          access_key=scope.access_key, operation=operation)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = request.headers.get("X-Amz-Target", "")
        if target:
            return await self._json_call(request, target)
        scope = parse_scope(request.headers, request.query)
        handler = self._query.get(scope.service if scope else "")
        if handler is None and len(self._query) == 1 and request.method == "POST":
            handler = next(iter(self._query.values()))
        if handler is None:
            return _error(AwsError("UnknownOperationException", "missing X-Amz-Target"), str(uuid.uuid4()))
        return await handler(request, self.context(request))

    async def _json_call(self, request: web.Request, target: str) -> web.Response:
        prefix, _, name = target.rpartition(".")
        ctx = self.context(request, name)
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
            aws = to_aws_error(err)
            if aws.status >= 500:
                log.exception("%s failed", target)
            return _error(aws, ctx.request_id)
        return web.Response(body=json.dumps(output, default=_default).encode(), content_type=JSON_CONTENT_TYPE,
                            headers={"x-amzn-RequestId": ctx.request_id})


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
    body = json.dumps({"__type": err.code, "message": err.message}).encode()
    return web.Response(status=err.status, body=body, content_type=JSON_CONTENT_TYPE,
                        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": err.code})


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
        self.port = server.sockets[0].getsockname()[1] if server is not None else port  # type: ignore[union-attr]
        log.info("AWS APIs listening on %s:%s", host, self.port)
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
