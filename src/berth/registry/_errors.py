"""The registry's wire errors: one descriptor table (code, message, HTTP status), as in the spec §9.

Registry code raises `RegistryError(DESCRIPTOR, detail)`; the HTTP layer turns it into
`{"errors": [{"code", "message", "detail"}]}` with the descriptor's status, in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from berth.errors import BerthError


@dataclass(frozen=True)
class ErrorCode:
    code: str
    message: str
    status: int


BLOB_UNKNOWN = ErrorCode("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID = ErrorCode("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN = ErrorCode("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
RANGE_INVALID = ErrorCode("BLOB_UPLOAD_INVALID", "requested range not satisfiable", 416)
DIGEST_INVALID = ErrorCode("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
MANIFEST_BLOB_UNKNOWN = ErrorCode("MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", 400)
MANIFEST_INVALID = ErrorCode("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_TOO_LARGE = ErrorCode("SIZE_INVALID", "manifest too large", 413)
MANIFEST_UNKNOWN = ErrorCode("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
NAME_INVALID = ErrorCode("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN = ErrorCode("NAME_UNKNOWN", "repository name not known to registry", 404)
SIZE_INVALID = ErrorCode("SIZE_INVALID", "provided length did not match content length", 400)
TAG_INVALID = ErrorCode("TAG_INVALID", "manifest tag did not match URI", 400)
UNAUTHORIZED = ErrorCode("UNAUTHORIZED", "authentication required", 401)
DENIED = ErrorCode("DENIED", "requested access to the resource is denied", 403)
UNSUPPORTED = ErrorCode("UNSUPPORTED", "the operation is unsupported", 405)
NOT_FOUND = ErrorCode("UNSUPPORTED", "no such endpoint", 404)
METHOD_NOT_ALLOWED = ErrorCode("UNSUPPORTED", "method not allowed", 405)
TOO_MANY_TAGS = ErrorCode("TAG_INVALID", "too many tags in one request", 414)
PAGINATION_INVALID = ErrorCode("PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400)


class RegistryError(BerthError):
    """A registry failure with its wire descriptor; `detail` is any JSON value for the client."""

    def __init__(self, error: ErrorCode, detail: Any = None, message: str | None = None) -> None:
        super().__init__(message or error.message)
        self.error = error
        self.detail = detail
        self.message = message or error.message

    @property
    def status(self) -> int:
        return self.error.status

    def body(self) -> bytes:
        entry: dict[str, Any] = {"code": self.error.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return json.dumps({"errors": [entry]}).encode()
