"""SigV4: the credential scope (who is calling, for which region and service) and the signature.

    Authorization: AWS4-HMAC-SHA256 Credential=<AKID>/<yyyymmdd>/<region>/<service>/aws4_request,
                   SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=<hex>

or the presigned-query form (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
`X-Amz-SignedHeaders`, `X-Amz-Signature`, `X-Amz-Security-Token`). This module is pure: it parses
the signed parts of a request and computes the signature a secret would have produced; the key
store, the clock and the decision live in `_auth.py`. Malformed signing parts raise AwsError
`IncompleteSignatureException` (the JSON services' code; `_auth.for_query_protocol` maps it).

Written from the SigV4 spec, checked against botocore's `SigV4Auth` (the reference client).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import mktime_tz, parsedate_tz
from urllib.parse import quote, unquote, unquote_plus

from berth.api.aws._errors import AwsError

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_CREDENTIAL_RE = re.compile(r"Credential=([^,\s]+)")
_AMZ_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")
_HEX_SIGNATURE_RE = re.compile(r"^[0-9a-f]{64}$")


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
    if auth.startswith(ALGORITHM):
        m = _CREDENTIAL_RE.search(auth)
        credential = m.group(1) if m else ""
    elif query and query.get("X-Amz-Credential"):
        credential = query["X-Amz-Credential"]
    return _scope_of(credential)


def _scope_of(credential: str) -> Scope | None:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts[:4]):
        return None
    return Scope(access_key=parts[0], date=parts[1], region=parts[2], service=parts[3])


@dataclass(frozen=True)
class SignedParts:
    """What a request claims about its signature, from either form."""

    scope: Scope
    signed_headers: tuple[str, ...]     # lower-case, as listed by the client
    signature: str                      # lower-case hex
    amz_date: str                       # yyyymmddThhmmssZ: the date that went into the string to sign
    presigned: bool
    expires: int | None = None          # presigned: seconds the URL stays valid
    security_token: str | None = None


def header_map(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names; a header sent more than once joins its values with ',' (as SigV4 does)."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """The raw (still percent-encoded) name/value pairs of a query string, in order."""
    pairs = []
    for piece in raw_query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((name, value))
    return pairs


def incomplete(message: str) -> AwsError:
    return AwsError("IncompleteSignatureException", message)


def parse_signed_parts(headers: Mapping[str, str], raw_query: str) -> SignedParts | None:
    """The signature a request carries (`headers` lower-cased, see header_map); None if unsigned.

    Raises:
        AwsError: IncompleteSignatureException for a malformed or unsupported signature.
    """
    auth = headers.get("authorization")
    if auth is not None:
        return _parse_header_form(auth, headers)
    query = {unquote_plus(k): unquote_plus(v) for k, v in query_pairs(raw_query)}
    if "X-Amz-Algorithm" in query or "X-Amz-Signature" in query:
        return _parse_query_form(query)
    return None


def _parse_header_form(auth: str, headers: Mapping[str, str]) -> SignedParts:
    algorithm, _, rest = auth.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'; berth accepts {ALGORITHM} only")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, value = item.strip().partition("=")
        if eq:
            fields[name] = value.strip()
    missing = [f"Authorization header requires '{name}' parameter."
               for name in ("Credential", "Signature", "SignedHeaders") if not fields.get(name)]
    amz_date = headers.get("x-amz-date") or _from_http_date(headers.get("date"))
    if amz_date is None:
        missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if missing:
        raise incomplete(" ".join(missing) + f" Authorization={auth}")
    assert amz_date is not None
    return _signed_parts(fields["Credential"], fields["SignedHeaders"], fields["Signature"], amz_date,
                         presigned=False, expires=None, token=headers.get("x-amz-security-token"))


def _parse_query_form(query: Mapping[str, str]) -> SignedParts:
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise incomplete(f"Unsupported AWS 'algorithm': '{query.get('X-Amz-Algorithm', '')}'; "
                         f"berth accepts {ALGORITHM} only")
    names = ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date", "X-Amz-Expires")
    missing = [f"AWS query-string parameters must include '{name}'." for name in names if not query.get(name)]
    if missing:
        raise incomplete(" ".join(missing))
    expires = query["X-Amz-Expires"]
    if not expires.isdigit() or not 1 <= int(expires) <= 604800:
        raise incomplete("X-Amz-Expires must be a number of seconds from 1 to 604800 (one week)")
    return _signed_parts(query["X-Amz-Credential"], query["X-Amz-SignedHeaders"], query["X-Amz-Signature"],
                         query["X-Amz-Date"], presigned=True, expires=int(expires),
                         token=query.get("X-Amz-Security-Token"))


def _signed_parts(credential: str, signed_headers: str, signature: str, amz_date: str, *, presigned: bool,
                  expires: int | None, token: str | None) -> SignedParts:
    scope = _scope_of(credential)
    if scope is None:
        raise incomplete(f"Credential must have the form <AccessKeyId>/<yyyymmdd>/<region>/<service>/aws4_request, "
                         f"got '{credential}'")
    if not _AMZ_DATE_RE.match(amz_date) or parse_amz_date(amz_date) is None:
        raise incomplete(f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                         "See http://en.wikipedia.org/wiki/ISO_8601")
    names = tuple(signed_headers.split(";"))
    if not all(names) or any(n != n.strip().lower() for n in names):
        raise incomplete(f"SignedHeaders must be a ';'-separated list of lower-case header names, got '{signed_headers}'")
    if not _HEX_SIGNATURE_RE.match(signature):
        raise incomplete("Signature must be 64 lower-case hexadecimal digits")
    return SignedParts(scope=scope, signed_headers=names, signature=signature, amz_date=amz_date,
                       presigned=presigned, expires=expires, security_token=token)


def parse_amz_date(text: str) -> float | None:
    """yyyymmddThhmmssZ → epoch seconds; None when it is no real date."""
    try:
        return float(calendar.timegm(time.strptime(text, AMZ_DATE_FORMAT)))
    except ValueError:
        return None


def format_amz_date(epoch: float) -> str:
    return time.strftime(AMZ_DATE_FORMAT, time.gmtime(epoch))


def _from_http_date(text: str | None) -> str | None:
    """An RFC 7231 `Date` header as yyyymmddThhmmssZ (SigV4 allows it in place of X-Amz-Date)."""
    if not text:
        return None
    parsed = parsedate_tz(text)
    return format_amz_date(mktime_tz(parsed)) if parsed is not None else None


# --- the canonical request ---------------------------------------------------------------------

def canonical_uri(raw_path: str) -> str:
    """Dot segments and empty segments removed, then URI-encoded once more: services other than S3
    encode the already-encoded path again (botocore `_normalize_url_path`)."""
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    path = "/" + "/".join(segments)
    if raw_path.endswith("/") and segments:
        path += "/"
    return quote(path, safe="/~")


def canonical_query_strings(raw_query: str, drop: str | None = None) -> list[str]:
    """The canonical query strings a client may have signed, most likely first.

    The spec decodes each name and value and encodes it again (RFC 3986, unreserved kept); clients
    disagree on '+' (a space in form encoding, botocore's `params`) and some sign the query exactly
    as sent (botocore's URL form). Each candidate binds the same query the server will act on, so
    trying all three widens nothing an attacker could use.
    """
    pairs = [(k, v) for k, v in query_pairs(raw_query) if drop is None or unquote_plus(k) != drop]

    def encoded(decode: Callable[[str], str]) -> str:
        return _joined((quote(decode(k), safe="-_.~"), quote(decode(v), safe="-_.~")) for k, v in pairs)

    candidates = [encoded(unquote), encoded(unquote_plus), _joined(pairs)]
    return list(dict.fromkeys(candidates))


def _joined(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_headers(headers: Mapping[str, str], signed: Iterable[str]) -> str:
    """`name:value\\n` for each signed header, values trimmed with inner runs of spaces collapsed."""
    return "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in sorted(set(signed)))


def canonical_request(method: str, uri: str, query: str, headers: Mapping[str, str], signed: tuple[str, ...],
                      payload_hash: str) -> str:
    return "\n".join([method.upper(), uri, query, canonical_headers(headers, signed),
                      ";".join(sorted(set(signed))), payload_hash])


def string_to_sign(amz_date: str, scope: Scope, canonical: str) -> str:
    credential_scope = f"{scope.date}/{scope.region}/{scope.service}/aws4_request"
    return "\n".join([ALGORITHM, amz_date, credential_scope, hashlib.sha256(canonical.encode()).hexdigest()])


def signing_key(secret: str, scope: Scope) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), scope.date)
    for part in (scope.region, scope.service, "aws4_request"):
        key = _hmac(key, part)
    return key


def signature(key: bytes, to_sign: str) -> str:
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
