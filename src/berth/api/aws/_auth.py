"""Who may call the AWS endpoint: the keys berth knows, and the SigV4 check against them.

The endpoint runs ECS (RunTask of a privileged container with a host mount is root on the host)
and listens on TCP, where every local user can reach it, so every request is verified before any
operation runs:

- `KeyFile`: `<root>/aws/credentials`, made on first start (dir 0700, file 0600, the daemon's
  owner); `berth aws-credentials` prints it for root.
- `StaticKeys`: those plus the `--aws-credentials FILE` keys (`ACCESS_KEY_ID SECRET_ACCESS_KEY
  [ACCOUNT_ID]` per line, `#` comments).
- `TemporaryCredentials`: task-role keys with a session token, accepted until they expire.
- `Authenticator.verify(...)` → the `Credential` that signed the request, or an AwsError with the
  JSON services' code; `for_query_protocol` gives the Query services' (ELBv2) code for it.
"""

from __future__ import annotations

import hashlib
import json
import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from berth.api.aws._errors import AwsError
from berth.api.aws._sigv4 import (
    DEFAULT_ACCOUNT, EMPTY_SHA256, UNSIGNED_PAYLOAD, SignedParts, canonical_query_strings, canonical_request,
    canonical_uri, format_amz_date, header_map, incomplete, parse_amz_date, parse_signed_parts, signature,
    signing_key, string_to_sign,
)
from berth.errors import InvalidArgument

log = logging.getLogger("berth.api.aws")

AuthMode = Literal["sigv4", "none"]
AUTH_MODES: tuple[AuthMode, ...] = ("sigv4", "none")
SKEW_SECONDS = 15 * 60             # AWS's window around X-Amz-Date, either direction
EXPIRED_GRACE_SECONDS = 3600       # expired temporary keys are remembered (ExpiredToken) this long
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SECRET_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_ACCESS_KEY_RE = re.compile(r"^[A-Za-z0-9_.+=@-]{1,128}$")  # no '/': it would split the credential scope
_ACCOUNT_RE = re.compile(r"^\d{12}$")

MESSAGES = {
    "MissingAuthenticationTokenException": "Missing Authentication Token",
    "UnrecognizedClientException": "The security token included in the request is invalid.",
    "InvalidSignatureException": "The request signature we calculated does not match the signature you "
                                 "provided. Check your AWS Secret Access Key and signing method. Consult the "
                                 "service documentation for details.",
    "ExpiredTokenException": "The security token included in the request is expired",
}
# The Query protocol's (ELBv2, IAM, STS) names and statuses for the same refusals.
_QUERY_CODES: dict[str, tuple[str, int]] = {
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "ExpiredTokenException": ("ExpiredToken", 403),
}


def refusal(code: str, message: str | None = None) -> AwsError:
    status = 403 if code == "MissingAuthenticationTokenException" else 400
    return AwsError(code, message or MESSAGES[code], status)


def for_query_protocol(err: AwsError) -> AwsError:
    """The Query protocol's code for an authentication refusal (other errors unchanged)."""
    code, status = _QUERY_CODES.get(err.code, (err.code, err.status))
    return AwsError(code, err.message, status)


@dataclass(frozen=True)
class Credential:
    access_key: str
    secret_key: str = field(repr=False)
    account: str = DEFAULT_ACCOUNT
    session_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None    # epoch seconds; None = never
    role_arn: str | None = None        # temporary task-role keys: the role they stand for


ANONYMOUS = Credential(access_key="", secret_key="", account=DEFAULT_ACCOUNT)


class CredentialStore(Protocol):
    def lookup(self, access_key: str) -> Credential | None: ...


# --- static keys ---------------------------------------------------------------------------------

class StaticKeys:
    """Long-term keys: the generated pair and any `--aws-credentials` files."""

    def __init__(self, credentials: Iterable[Credential] = ()) -> None:
        self._keys: dict[str, Credential] = {}
        for credential in credentials:
            self.add(credential)

    def add(self, credential: Credential) -> None:
        known = self._keys.get(credential.access_key)
        if known is not None and known != credential:
            raise InvalidArgument(f"AWS access key {credential.access_key} is defined twice with different secrets")
        self._keys[credential.access_key] = credential

    def lookup(self, access_key: str) -> Credential | None:
        return self._keys.get(access_key)

    def __len__(self) -> int:
        return len(self._keys)

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> StaticKeys:
        """Keys from `--aws-credentials` files.

        Raises:
            berth.errors.InvalidArgument: a file cannot be read or has a malformed line (named).
        """
        keys = cls()
        for path in paths:
            try:
                text = path.read_text()
            except OSError as err:
                raise InvalidArgument(f"--aws-credentials {path}: {err.strerror or err}") from err
            for credential in parse_credentials(text, str(path)):
                keys.add(credential)
        return keys


def parse_credentials(text: str, source: str) -> list[Credential]:
    """`ACCESS_KEY_ID SECRET_ACCESS_KEY [ACCOUNT_ID]` per line; blank lines and `#` comments skipped.

    Raises:
        berth.errors.InvalidArgument: naming `source` and the line number of a malformed line.
    """
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) not in (2, 3):
            raise InvalidArgument(f"{source}:{number}: expected 'ACCESS_KEY_ID SECRET_ACCESS_KEY [ACCOUNT_ID]', "
                                  f"got {len(words)} field(s)")
        access_key, secret = words[0], words[1]
        account = words[2] if len(words) == 3 else DEFAULT_ACCOUNT
        if not _ACCESS_KEY_RE.match(access_key):
            raise InvalidArgument(f"{source}:{number}: invalid access key id {access_key!r} "
                                  "(letters, digits and _.+=@- only, up to 128)")
        if not _ACCOUNT_RE.match(account):
            raise InvalidArgument(f"{source}:{number}: the account id must be 12 digits, got {account!r}")
        found.append(Credential(access_key=access_key, secret_key=secret, account=account))
    return found


def new_access_key(prefix: str) -> str:
    """AWS's shape: four letters then 16 base32 characters ("BKIA…" long-term, "BSIA…" temporary)."""
    return prefix + "".join(secrets.choice(_BASE32) for _ in range(16))


def new_secret_key() -> str:
    return "".join(secrets.choice(_SECRET_CHARS) for _ in range(40))


@dataclass(frozen=True)
class KeyFile:
    """`<root>/aws/credentials`: the daemon's own key pair, readable by its owner (root) only."""

    root: Path

    @property
    def path(self) -> Path:
        return self.root / "aws" / "credentials"

    def read(self) -> Credential:
        """Raises OSError when unreadable (not root), InvalidArgument when not one key pair."""
        found = parse_credentials(self.path.read_text(), str(self.path))
        if len(found) != 1:
            raise InvalidArgument(f"{self.path}: expected one key pair, found {len(found)}")
        return found[0]

    def ensure(self) -> Credential:
        """The key pair, made (atomically, 0600 in a 0700 dir) when there is none yet."""
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask, and an old dir may be wider
        if not self.path.exists():
            self._create()
        mode = self.path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("%s was mode %o: made it 0600 (it holds the AWS endpoint's root-equivalent key)",
                        self.path, mode)
            os.chmod(self.path, 0o600)
        return self.read()

    def _create(self) -> None:
        text = ("# berth's AWS endpoint key (ACCESS_KEY_ID SECRET_ACCESS_KEY); print it with "
                "`berth aws-credentials`\n" f"{new_access_key('BKIA')} {new_secret_key()}\n")
        tmp = self.path.with_name(f".credentials.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.path)  # unlike rename, never replaces a pair another process just made
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --- temporary (task-role) keys --------------------------------------------------------------------

class TemporaryCredentials:
    """Task-role keys for the ECS credentials endpoint: a session token and an expiry.

    With a `path` (a root-only file under the daemon's root) the unexpired keys survive a daemon
    restart: the SDKs in running tasks cache them until shortly before they expire, and a
    restarted daemon must keep accepting them meanwhile.
    """

    def __init__(self, clock: Callable[[], float] = time.time, path: Path | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._issued: dict[str, Credential] = {}
        self._path = path
        if path is not None:
            self._issued = _load_temporary(path)

    def issue(self, role_arn: str, account: str, ttl_seconds: float) -> Credential:
        credential = Credential(access_key=new_access_key("BSIA"), secret_key=new_secret_key(), account=account,
                                session_token=secrets.token_urlsafe(96),
                                expires_at=self._clock() + ttl_seconds, role_arn=role_arn)
        with self._lock:
            self._forget_old()
            self._issued[credential.access_key] = credential
            if self._path is not None:
                _save_temporary(self._path, self._issued)
        return credential

    def lookup(self, access_key: str) -> Credential | None:
        """The credential, None if unknown.

        Raises:
            AwsError: ExpiredTokenException once it has expired.
        """
        with self._lock:
            self._forget_old()
            credential = self._issued.get(access_key)
        if credential is not None and _expired(credential, self._clock()):
            raise refusal("ExpiredTokenException")
        return credential

    def _forget_old(self) -> None:
        now = self._clock()
        for key in [k for k, c in self._issued.items()
                    if c.expires_at is not None and c.expires_at + EXPIRED_GRACE_SECONDS < now]:
            del self._issued[key]


def _load_temporary(path: Path) -> dict[str, Credential]:
    try:
        items = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable task-role credentials in %s: %s", path, err)
        return {}
    out = {}
    for item in items if isinstance(items, list) else []:
        try:
            credential = Credential(access_key=str(item["access_key"]), secret_key=str(item["secret_key"]),
                                    account=str(item["account"]), session_token=str(item["session_token"]),
                                    expires_at=float(item["expires_at"]), role_arn=str(item.get("role_arn") or ""))
        except (KeyError, TypeError, ValueError):
            continue
        out[credential.access_key] = credential
    return out


def _save_temporary(path: Path, issued: Mapping[str, Credential]) -> None:
    """Atomically, root-only: a temp file in the same 0700 directory, fsync, rename."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = json.dumps([{"access_key": c.access_key, "secret_key": c.secret_key, "account": c.account,
                        "session_token": c.session_token, "expires_at": c.expires_at, "role_arn": c.role_arn}
                       for c in issued.values()]).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _expired(credential: Credential, now: float) -> bool:
    return credential.expires_at is not None and now >= credential.expires_at


# --- the check ---------------------------------------------------------------------------------------

class Authenticator:
    """Verifies SigV4 against the stores; mode "none" accepts everyone as ANONYMOUS."""

    def __init__(self, stores: Sequence[CredentialStore] = (), clock: Callable[[], float] = time.time,
                 mode: AuthMode = "sigv4") -> None:
        if mode not in AUTH_MODES:
            raise InvalidArgument(f"invalid AWS auth mode {mode!r}: use sigv4 or none")
        self.stores = tuple(stores)
        self.clock = clock
        self.mode: AuthMode = mode

    @property
    def enabled(self) -> bool:
        return self.mode == "sigv4"

    def verify(self, method: str, path: str, query_string: str,
               headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes) -> Credential:
        """The credential that signed this request.

        `path` and `query_string` are raw (as sent, percent-encoded); a header sent twice may come
        as two (name, value) pairs.

        Raises:
            AwsError: MissingAuthenticationTokenException (403), IncompleteSignatureException,
                InvalidSignatureException (bad signature, body or date), UnrecognizedClientException
                (unknown key or token), ExpiredTokenException.
        """
        if not self.enabled:
            return ANONYMOUS
        lower = header_map(headers.items() if isinstance(headers, Mapping) else headers)
        parts = parse_signed_parts(lower, query_string)
        if parts is None:
            raise refusal("MissingAuthenticationTokenException")
        _check_signed_headers(parts, lower)
        self._check_date(parts)
        credential = self._lookup(parts.scope.access_key)
        body_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        declared = lower.get("x-amz-content-sha256")
        if declared is not None and declared != UNSIGNED_PAYLOAD and declared != body_hash:
            raise refusal("InvalidSignatureException",
                          "The provided 'x-amz-content-sha256' header does not match what was computed.")
        # The header form always signs the body (non-S3 services take no unsigned payloads); a
        # presigned URL cannot sign a body it does not know, so it may say UNSIGNED-PAYLOAD.
        payloads = [body_hash]
        if parts.presigned:
            payloads = [declared] if declared is not None else [body_hash, UNSIGNED_PAYLOAD]
        queries = canonical_query_strings(query_string, drop="X-Amz-Signature" if parts.presigned else None)
        key = signing_key(credential.secret_key, parts.scope)
        uri = canonical_uri(path)
        matched = False
        for query in queries:
            for payload in payloads:
                canonical = canonical_request(method, uri, query, lower, parts.signed_headers, payload)
                expected = signature(key, string_to_sign(parts.amz_date, parts.scope, canonical))
                matched |= hmac.compare_digest(expected, parts.signature)
        if not matched:
            raise refusal("InvalidSignatureException")
        _check_token(credential, parts.security_token)
        if _expired(credential, self.clock()):
            raise refusal("ExpiredTokenException")
        return credential

    def _lookup(self, access_key: str) -> Credential:
        for store in self.stores:
            credential = store.lookup(access_key)
            if credential is not None:
                return credential
        raise refusal("UnrecognizedClientException")

    def _check_date(self, parts: SignedParts) -> None:
        if parts.scope.date != parts.amz_date[:8]:
            raise refusal("InvalidSignatureException",
                          f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
                          f"HTTP: '{parts.scope.date}' != '{parts.amz_date[:8]}', from '{parts.amz_date}'.")
        signed_at = parse_amz_date(parts.amz_date)
        assert signed_at is not None  # parse_signed_parts checked it
        now = self.clock()
        stamp, now_stamp = parts.amz_date, format_amz_date(now)
        if signed_at > now + SKEW_SECONDS:
            raise refusal("InvalidSignatureException",
                          f"Signature not yet current: {stamp} is still later than "
                          f"{format_amz_date(now + SKEW_SECONDS)} ({now_stamp} + 15 min.)")
        if parts.presigned:
            assert parts.expires is not None
            if now > signed_at + parts.expires:
                raise refusal("InvalidSignatureException",
                              f"Signature expired: {stamp} is now earlier than {format_amz_date(now - parts.expires)} "
                              f"({now_stamp} - {parts.expires} sec.)")
        elif signed_at < now - SKEW_SECONDS:
            raise refusal("InvalidSignatureException",
                          f"Signature expired: {stamp} is now earlier than {format_amz_date(now - SKEW_SECONDS)} "
                          f"({now_stamp} - 15 min.)")


def _check_signed_headers(parts: SignedParts, headers: Mapping[str, str]) -> None:
    """`host` is always signed, and so is every x-amz-* header sent (X-Amz-Target picks the
    operation: left unsigned, one signature would serve for any operation)."""
    signed = set(parts.signed_headers)
    if "host" not in signed:
        raise incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    unsigned = sorted(name for name in headers if name.startswith("x-amz-") and name not in signed)
    if unsigned:
        raise incomplete(f"Headers {', '.join(unsigned)} must be signed (listed in SignedHeaders).")


def _check_token(credential: Credential, token: str | None) -> None:
    """Session keys need their token; long-term keys take none (AWS refuses a stray one too)."""
    want = credential.session_token
    if (want is None) != (token is None) or (want is not None and token is not None
                                             and not hmac.compare_digest(want.encode(), token.encode())):
        raise refusal("UnrecognizedClientException")
