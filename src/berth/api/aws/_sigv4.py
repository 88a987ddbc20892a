"""SigV4 credential scopes: who is calling, for which region and service (signatures unchecked).

    Authorization: AWS4-HMAC-SHA256 Credential=<AKID>/<yyyymmdd>/<region>/<service>/aws4_request,
                   SignedHeaders=..., Signature=...

Local emulators do not verify signatures by default (aws-apis.md §1.4); the scope still routes
requests and partitions state by region.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
_CREDENTIAL_RE = re.compile(r"Credential=([^,\s]+)")


@dataclass(frozen=True)
class Scope:
    access_key: str
    date: str
    region: str
    service: str


def parse_scope(headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> Scope | None:
    """The credential scope from the Authorization header, or from a presigned URL's query.

    Header names are matched case-insensitively; None when the request is unsigned.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization", "")
    credential = ""
    if auth.startswith("AWS4-HMAC-SHA256"):
        m = _CREDENTIAL_RE.search(auth)
        credential = m.group(1) if m else ""
    elif query and query.get("X-Amz-Credential"):
        credential = query["X-Amz-Credential"]
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        return None
    return Scope(access_key=parts[0], date=parts[1], region=parts[2], service=parts[3])
