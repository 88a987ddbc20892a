"""`maxResults` / `nextToken` paging for the JSON services (opaque tokens: a base64 offset)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, TypeVar

from berth.api.aws._errors import AwsError

T = TypeVar("T")


def page(items: Sequence[T], params: dict[str, Any], *, default: int = 100, limit: int = 1000
         ) -> tuple[list[T], str | None]:
    """One page of `items` and the token for the next one (None at the end).

    Raises:
        AwsError: InvalidParameterException for a bad maxResults or nextToken.
    """
    size = params.get("maxResults", default)
    if not isinstance(size, int) or not 1 <= size <= limit:
        raise AwsError("InvalidParameterException", f"maxResults must be between 1 and {limit}")
    start = _offset(params.get("nextToken"))
    chunk = list(items[start:start + size])
    more = start + size < len(items)
    return chunk, (base64.urlsafe_b64encode(str(start + size).encode()).decode() if more else None)


def _offset(token: Any) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(str(token).encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise AwsError("InvalidParameterException", "Invalid parameter at 'nextToken'") from err


def with_token(output: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token:
        output["nextToken"] = token
    return output
