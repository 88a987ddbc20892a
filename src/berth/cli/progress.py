"""JSON message streams (pull, load, import, build): one object per line -> text for the user."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from berth.cli.failures import CliError


def render_message(message: Mapping[str, Any]) -> str | None:
    """The text docker-cli's jsonmessage prints for one message off a terminal; None for nothing.

    Raises:
        CliError: the message carries `error`/`errorDetail` (printed without the daemon prefix).
    """
    if message.get("errorDetail") or message.get("error"):
        detail = message.get("errorDetail") or {}
        text = detail.get("message") or message.get("error") or "unknown error"
        raise CliError(str(text), code=int(detail.get("code") or 1))
    if message.get("stream"):
        return str(message["stream"])
    status = message.get("status")
    if not status:
        return None
    detail = message.get("progressDetail") or {}
    if detail.get("current") or detail.get("total"):
        # Progress bars are only drawn on a terminal; off one docker prints nothing for them.
        return None
    prefix = f"{message['id']}: " if message.get("id") else ""
    return f"{prefix}{status}\n"


def split_json_lines(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Decode newline-delimited JSON from arbitrary byte chunks; tolerate concatenated objects."""
    decoder = json.JSONDecoder()
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode("utf-8", errors="replace")
        while True:
            buffer = buffer.lstrip()
            if not buffer:
                break
            try:
                obj, end = decoder.raw_decode(buffer)
            except json.JSONDecodeError:
                break
            buffer = buffer[end:]
            if isinstance(obj, dict):
                yield obj
    if buffer.strip():
        raise CliError(f"unexpected response from daemon: {buffer.strip()[:200]}")
