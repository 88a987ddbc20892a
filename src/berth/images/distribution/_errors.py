"""Errors a registry reports, with the text dockerd prints for them."""

from __future__ import annotations

import json
from typing import Any

from berth.errors import Unavailable


class RegistryError(Unavailable):
    """A registry answered with an error status.

    `codes` are the spec error codes of the body (`MANIFEST_UNKNOWN`, `UNAUTHORIZED`, ...); the
    message is Docker's rendering of them: `manifest unknown: manifest unknown`.
    """

    def __init__(self, status: int, message: str, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.codes = codes

    @property
    def unauthorized(self) -> bool:
        return self.status in (401, 403) or bool({"UNAUTHORIZED", "DENIED"} & set(self.codes))

    @property
    def not_found(self) -> bool:
        return self.status == 404 or bool({"NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN"} & set(self.codes))


class Unreachable(Unavailable):
    """No endpoint of the registry could be reached (connection refused, DNS, TLS)."""


def registry_error(status: int, body: bytes, reason: str = "") -> RegistryError:
    """Build the error for a non-2xx answer from its spec error body, if it has one."""
    errors = _spec_errors(body)
    if errors:
        codes = tuple(str(e.get("code", "")) for e in errors)
        text = "; ".join(_render(e) for e in errors)
        return RegistryError(status, text, codes)
    if status == 401:
        return RegistryError(status, "unauthorized: authentication required", ("UNAUTHORIZED",))
    snippet = body.decode(errors="replace").strip()[:200]
    return RegistryError(status, f"unexpected status from registry: {status} {reason}".strip()
                         + (f": {snippet}" if snippet else ""))


def _spec_errors(body: bytes) -> list[dict[str, Any]]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _render(error: dict[str, Any]) -> str:
    """Go distribution's errcode.Error.Error(): `<code lower, spaces>: <message>`."""
    code = str(error.get("code", "unknown")).lower().replace("_", " ")
    message = str(error.get("message") or code)
    return f"{code}: {message}"
