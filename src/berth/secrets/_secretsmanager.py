"""Secrets Manager: secrets with versions and staging labels, a recovery window, tags; every
value sealed at rest.

Lifecycle of one secret::

    absent --CreateSecret--> live --DeleteSecret(window 7-30 d)--> scheduled --RestoreSecret--> live
                              |                                      | window ends (seen lazily on access)
                              +--DeleteSecret(ForceDeleteWithoutRecovery)--> absent <--+

A scheduled secret refuses reads and writes with InvalidRequestException; its name stays taken.

Versions carry staging labels. A new value (PutSecretValue, UpdateSecret, CreateSecret) is
AWSCURRENT unless other stages are named; when AWSCURRENT moves, the version that had it becomes
AWSPREVIOUS. A version without labels is deprecated; the oldest deprecated ones go beyond 100.
A version id is the request's ClientRequestToken: the same token with the same value is the same
request (idempotent), with another value a ResourceExistsException.

Values are sealed with the context ``secretsmanager|<arn>|<version id>|string|binary``.
"""

from __future__ import annotations

import secrets as _random
import string
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from berth.secrets._crypto import Sealer
from berth.secrets._errors import (
    MARKED_FOR_DELETION, SECRET_NOT_FOUND, InvalidParameter, InvalidRequest, LimitExceeded, ResourceExists,
    ResourceNotFound, SecretsValidation,
)
from berth.secrets._model import CURRENT, PREVIOUS, Secret, SecretVersion
from berth.secrets._names import check_secret_name
from berth.secrets._store import Records, key
from berth.state import ObjectStore

Clock = Callable[[], float]
KIND = "secretsmanager.secret"
DAY = 86400.0
MAX_VERSIONS = 100
MAX_STAGES = 20
MAX_TAGS = 50
MAX_VALUE = 65536
FILTER_KEYS = ("description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all")
_SUFFIX_CHARS = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Value:
    """A secret value in clear, as one request carries it (exactly one of the two)."""

    string: str | None = None
    binary: bytes | None = None

    @property
    def given(self) -> bool:
        return self.string is not None or self.binary is not None


@dataclass(frozen=True)
class Revealed:
    secret: Secret
    version: SecretVersion
    value: Value


class SecretsManager:
    """Secrets of every account and region, over the control-plane store.

    Lookups take a name, a full ARN or a partial ARN (the ARN without its 6-character suffix).
    Raises the `_errors` kinds (each with Secrets Manager's wire code); messages never quote a value.
    """

    def __init__(self, store: ObjectStore, sealer: Sealer, *, clock: Clock = time.time,
                 suffix: Callable[[], str] | None = None) -> None:
        self._records: Records[Secret] = Records(store, KIND, Secret)
        self._sealer = sealer
        self._clock = clock
        self._suffix = suffix or (lambda: "".join(_random.choice(_SUFFIX_CHARS) for _ in range(6)))

    # --- create / values -----------------------------------------------------------------------

    def create(self, name: str, value: Value, *, account: str, region: str, token: str | None = None,
               description: str | None = None, kms_key_id: str | None = None,
               tags: Mapping[str, str] | None = None) -> tuple[Secret, str | None]:
        """A new secret (with a first AWSCURRENT version when a value is given). Returns the
        secret and that version's id. The same token and value again return the same."""
        check_secret_name(name)
        _check_value(value)
        _check_description(description)
        _check_tags(tags or {})
        token = _token(token)
        now = self._clock()
        k = key(account, region, name)
        existing = self._live(k)
        if existing is not None:
            return self._repeat_create(existing, value, token)
        arn = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-{self._suffix()}"
        versions = (self._version(arn, token, value, (CURRENT,), now),) if value.given else ()
        secret = Secret(name=name, account=account, region=region, arn=arn, created_at=now, last_changed_at=now,
                        description=description or "", kms_key_id=kms_key_id or "", tags=dict(tags or {}),
                        versions=versions)
        if not self._records.create(k, secret):
            again = self._live(k)
            if again is None:
                raise ResourceExists(f"The operation failed because the secret {name} already exists.")
            return self._repeat_create(again, value, token)
        return secret, (token if value.given else None)

    def _repeat_create(self, existing: Secret, value: Value, token: str) -> tuple[Secret, str | None]:
        if existing.deleted:
            raise InvalidRequest("You can't create this secret because a secret with this name is already "
                                 "scheduled for deletion.")
        same = existing.by_id(token)
        if same is not None and self._opened(existing, same) == value:
            return existing, token
        raise ResourceExists(f"The operation failed because the secret {existing.name} already exists.")

    def put_value(self, secret_id: str, value: Value, *, account: str, region: str, token: str | None = None,
                  stages: Sequence[str] | None = None) -> tuple[Secret, SecretVersion]:
        """A new version carrying `stages` (default AWSCURRENT)."""
        if not value.given:
            raise InvalidRequest("You must provide either SecretString or SecretBinary.")
        _check_value(value)
        wanted = tuple(dict.fromkeys(stages if stages is not None else (CURRENT,)))
        if not 1 <= len(wanted) <= MAX_STAGES or any(not 1 <= len(s) <= 256 for s in wanted):
            raise SecretsValidation("1 validation error detected: Value at 'versionStages' failed to satisfy "
                                    "constraint: Member must have length less than or equal to 20")
        token = _token(token)
        made: list[SecretVersion] = []

        def change(s: Secret) -> Secret:
            _refuse_deleted(s)
            same = s.by_id(token)
            if same is not None:
                if self._opened(s, same) != value:
                    raise ResourceExists("You can't modify an existing version, you can only create a new version.")
                made[:] = [same]
                return s
            new = self._version(s.arn, token, value, (), self._clock())
            versions = _prune(_stage(s.versions + (new,), token, wanted))
            made[:] = [next(v for v in versions if v.version_id == token)]
            return replace(s, versions=versions, last_changed_at=self._clock())

        secret = self._change(secret_id, change, account, region)
        return secret, made[0]

    def update(self, secret_id: str, value: Value, *, account: str, region: str, token: str | None = None,
               description: str | None = None, kms_key_id: str | None = None) -> tuple[Secret, str | None]:
        """Change the description / KMS key and, with a value, add an AWSCURRENT version."""
        _check_value(value)
        _check_description(description)

        def change(s: Secret) -> Secret:
            _refuse_deleted(s)
            return replace(s, description=s.description if description is None else description,
                           kms_key_id=s.kms_key_id if kms_key_id is None else kms_key_id,
                           last_changed_at=self._clock())

        secret = self._change(secret_id, change, account, region)
        if not value.given:
            return secret, None
        secret, version = self.put_value(secret.arn, value, account=account, region=region, token=token)
        return secret, version.version_id

    def get_value(self, secret_id: str, *, account: str, region: str, version_id: str | None = None,
                  stage: str | None = None) -> Revealed:
        """The value of the version named by id and/or stage (default AWSCURRENT), in clear."""
        if version_id is not None and not 32 <= len(version_id) <= 64:
            raise SecretsValidation("1 validation error detected: Value at 'versionId' failed to satisfy "
                                    "constraint: Member must have length between 32 and 64")
        s = self.describe(secret_id, account=account, region=region)
        _refuse_deleted(s)
        v = _pick(s, version_id, stage)
        self._touch(s)
        return Revealed(s, v, self._opened(s, v))

    def _opened(self, s: Secret, v: SecretVersion) -> Value:
        ctx = f"secretsmanager|{s.arn}|{v.version_id}"
        return Value(
            string=None if v.sealed_string is None else self._sealer.open(v.sealed_string, ctx + "|string").decode(),
            binary=None if v.sealed_binary is None else self._sealer.open(v.sealed_binary, ctx + "|binary"))

    def _version(self, arn: str, token: str, value: Value, stages: tuple[str, ...], now: float) -> SecretVersion:
        ctx = f"secretsmanager|{arn}|{token}"
        return SecretVersion(
            version_id=token, created_at=now, stages=stages,
            sealed_string=None if value.string is None else self._sealer.seal(value.string.encode(), ctx + "|string"),
            sealed_binary=None if value.binary is None else self._sealer.seal(value.binary, ctx + "|binary"))

    def _touch(self, s: Secret) -> None:
        """LastAccessedDate is a day, as AWS keeps it: one write per secret per day at most."""
        today = self._clock() // DAY * DAY
        if s.last_accessed_at != today:
            self._records.update(key(s.account, s.region, s.name),
                                 lambda cur: replace(cur, last_accessed_at=today))

    # --- stages ------------------------------------------------------------------------------

    def update_stage(self, secret_id: str, stage: str, *, account: str, region: str,
                     remove_from: str | None = None, move_to: str | None = None) -> Secret:
        """Move a staging label to `move_to` and/or take it off `remove_from` (UpdateSecretVersionStage)."""
        if not 1 <= len(stage) <= 256:
            raise SecretsValidation("1 validation error detected: Value at 'versionStage' failed to satisfy "
                                    "constraint: Member must have length between 1 and 256")

        def change(s: Secret) -> Secret:
            _refuse_deleted(s)
            holder = s.by_stage(stage)
            if move_to is not None and s.by_id(move_to) is None:
                raise ResourceNotFound(f"Secrets Manager can't find the specified secret value for VersionId: "
                                       f"{move_to}")
            if remove_from is not None and (holder is None or holder.version_id != remove_from):
                raise InvalidParameter(f"The staging label {stage} is not attached to the version {remove_from}, "
                                       "so you can't remove it from that version.")
            if holder is not None and move_to != holder.version_id and remove_from is None:
                raise InvalidParameter(f"The parameter RemoveFromVersionId can't be empty. Staging label {stage} is "
                                       f"currently attached to version {holder.version_id}, so you must explicitly "
                                       "reference that version in RemoveFromVersionId.")
            if move_to is None and stage == CURRENT:
                raise InvalidParameter("You can't remove the staging label AWSCURRENT from a version without "
                                       "moving it to another version (MoveToVersionId).")
            if move_to is None:
                versions = tuple(replace(v, stages=tuple(x for x in v.stages if x != stage)) for v in s.versions)
            else:
                versions = _stage(s.versions, move_to, (stage,), keep_others=True)
            return replace(s, versions=_prune(versions), last_changed_at=self._clock())

        return self._change(secret_id, change, account, region)

    # --- metadata ----------------------------------------------------------------------------

    def describe(self, secret_id: str, *, account: str, region: str) -> Secret:
        found = self._lookup(secret_id, account, region)
        if found is None:
            raise ResourceNotFound(SECRET_NOT_FOUND)
        return found

    def list(self, *, account: str, region: str, filters: Sequence[tuple[str, Sequence[str]]] = (),
             include_deleted: bool = False, sort_by: str = "created-date", descending: bool = True) -> list[Secret]:
        checked = [_check_filter(k, v) for k, v in filters]
        found = [s for s in (self._expire(x) for x in self._records.list(key(account, region, "")))
                 if s is not None and (include_deleted or not s.deleted)
                 and all(_match(s, k, v) for k, v in checked)]
        order: Callable[[Secret], tuple[float | str, str]] = {
            "name": lambda s: (s.name, s.name), "last-changed-date": lambda s: (s.last_changed_at, s.name),
            "last-accessed-date": lambda s: (s.last_accessed_at or 0.0, s.name),
        }.get(sort_by, lambda s: (s.created_at, s.name))
        return sorted(found, key=order, reverse=descending)

    def tag(self, secret_id: str, tags: Mapping[str, str], *, account: str, region: str) -> None:
        _check_tags(tags)

        def change(s: Secret) -> Secret:
            _refuse_deleted(s)
            merged = {**s.tags, **tags}
            if len(merged) > MAX_TAGS:
                raise LimitExceeded("A secret can have at most 50 tags.")
            return replace(s, tags=merged)

        self._change(secret_id, change, account, region)

    def untag(self, secret_id: str, keys: Sequence[str], *, account: str, region: str) -> None:
        def change(s: Secret) -> Secret:
            _refuse_deleted(s)
            return replace(s, tags={k: v for k, v in s.tags.items() if k not in keys})

        self._change(secret_id, change, account, region)

    # --- deletion ----------------------------------------------------------------------------

    def delete(self, secret_id: str, *, account: str, region: str, recovery_days: int | None = None,
               force: bool = False) -> Secret:
        """Schedule deletion after `recovery_days` (7-30, default 30), or delete now with `force`.
        Returns the secret as deleted (`deletion_date` set)."""
        if force and recovery_days is not None:
            raise InvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with "
                                   "RecoveryWindowInDays.")
        if recovery_days is not None and not 7 <= recovery_days <= 30:
            raise InvalidParameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
        now = self._clock()
        s = self.describe(secret_id, account=account, region=region)
        k = key(s.account, s.region, s.name)
        if force:
            self._records.delete(k)
            return replace(s, deleted_at=now, deletion_date=now)
        days = 30 if recovery_days is None else recovery_days

        def change(cur: Secret) -> Secret:
            if cur.arn != s.arn:
                raise ResourceNotFound(SECRET_NOT_FOUND)
            _refuse_deleted(cur)
            return replace(cur, deleted_at=now, deletion_date=now + days * DAY)

        done = self._records.update(k, change)
        if done is None:
            raise ResourceNotFound(SECRET_NOT_FOUND)
        return done

    def restore(self, secret_id: str, *, account: str, region: str) -> Secret:
        """Cancel a scheduled deletion (a live secret stays as it is)."""
        return self._change(secret_id, lambda s: replace(s, deleted_at=None, deletion_date=None), account, region)

    # --- lookup ------------------------------------------------------------------------------

    def _change(self, secret_id: str, change: Callable[[Secret], Secret], account: str, region: str) -> Secret:
        s = self.describe(secret_id, account=account, region=region)

        def same_secret(cur: Secret) -> Secret:
            if cur.arn != s.arn:  # deleted and re-created meanwhile
                raise ResourceNotFound(SECRET_NOT_FOUND)
            return change(cur)

        done = self._records.update(key(s.account, s.region, s.name), same_secret)
        if done is None:
            raise ResourceNotFound(SECRET_NOT_FOUND)
        return done

    def _lookup(self, secret_id: str, account: str, region: str) -> Secret | None:
        if not secret_id.startswith("arn:"):
            return self._live(key(account, region, secret_id))
        parts = secret_id.split(":", 6)
        if len(parts) < 7 or parts[2] != "secretsmanager" or parts[5] != "secret":
            return None
        region, account, resource = parts[3], parts[4], parts[6]
        if len(resource) > 7 and resource[-7] == "-":
            full = self._live(key(account, region, resource[:-7]))
            if full is not None and full.arn == secret_id:
                return full
        partial = self._live(key(account, region, resource))
        return partial

    def _live(self, k: str) -> Secret | None:
        s = self._records.get(k)
        return None if s is None else self._expire(s)

    def _expire(self, s: Secret) -> Secret | None:
        """A secret whose recovery window has ended is gone: drop its record now."""
        if s.deletion_date is None or s.deletion_date > self._clock():
            return s
        self._records.update(key(s.account, s.region, s.name),
                             lambda cur: None if cur.arn == s.arn and cur.deleted else cur)
        return None

    def purge_expired(self) -> int:
        """Drop every secret whose recovery window has ended; returns how many."""
        return sum(1 for s in self._records.list("") if s.deleted and self._expire(s) is None)


# --- helpers -------------------------------------------------------------------------------------


def _refuse_deleted(s: Secret) -> None:
    if s.deleted:
        raise InvalidRequest(MARKED_FOR_DELETION)


def _pick(s: Secret, version_id: str | None, stage: str | None) -> SecretVersion:
    if version_id is not None:
        v = s.by_id(version_id)
        if v is None or (stage is not None and stage not in v.stages):
            raise ResourceNotFound(f"Secrets Manager can't find the specified secret value for VersionId: "
                                   f"{version_id}")
        return v
    wanted = stage or CURRENT
    found = s.by_stage(wanted)
    if found is None:
        raise ResourceNotFound(f"Secrets Manager can't find the specified secret value for staging label: {wanted}")
    return found


def _stage(versions: tuple[SecretVersion, ...], target: str, stages: Sequence[str], *,
           keep_others: bool = False) -> tuple[SecretVersion, ...]:
    """`stages` onto version `target`, off every other version; AWSCURRENT moving leaves
    AWSPREVIOUS on the version that had it. `keep_others` keeps the target's other stages
    (UpdateSecretVersionStage); PutSecretValue gives the new version exactly `stages`."""
    moving = set(stages)
    old_current = next((v.version_id for v in versions if CURRENT in v.stages), None)
    current_moves = CURRENT in moving and old_current not in (None, target)
    out = []
    for v in versions:
        if v.version_id == target:
            kept = [x for x in v.stages if keep_others and x not in moving and not (current_moves and x == PREVIOUS)]
            out.append(replace(v, stages=tuple(dict.fromkeys([*kept, *stages]))))
            continue
        left = [x for x in v.stages if x not in moving and not (current_moves and x == PREVIOUS)]
        if current_moves and v.version_id == old_current:
            left.append(PREVIOUS)
        out.append(replace(v, stages=tuple(left)))
    return tuple(out)


def _prune(versions: tuple[SecretVersion, ...]) -> tuple[SecretVersion, ...]:
    """At most 100 versions: the oldest ones without a staging label go first."""
    extra = len(versions) - MAX_VERSIONS
    if extra <= 0:
        return versions
    drop = set([v.version_id for v in versions if not v.stages][:extra])
    return tuple(v for v in versions if v.version_id not in drop)


def _token(token: str | None) -> str:
    if token is None:
        return str(uuid.uuid4())
    if not 32 <= len(token) <= 64:
        raise SecretsValidation("1 validation error detected: Value at 'clientRequestToken' failed to satisfy "
                                "constraint: Member must have length between 32 and 64")
    return token


def _check_value(value: Value) -> None:
    if value.string is not None and value.binary is not None:
        raise InvalidParameter("You can't specify both a binary secret value and a string secret value in the same "
                               "secret.")
    size = len(value.string.encode()) if value.string is not None else len(value.binary or b"")
    if value.given and not 1 <= size <= MAX_VALUE:
        member = "secretString" if value.string is not None else "secretBinary"
        raise SecretsValidation(f"1 validation error detected: Value '*** Sensitive Data Redacted ***' at "
                                f"'{member}' failed to satisfy constraint: Member must have length between 1 and "
                                f"{MAX_VALUE}")


def _check_description(description: str | None) -> None:
    if description is not None and len(description) > 2048:
        raise SecretsValidation("1 validation error detected: Value at 'description' failed to satisfy constraint: "
                                "Member must have length less than or equal to 2048")


def _check_tags(tags: Mapping[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise LimitExceeded("A secret can have at most 50 tags.")
    for k, v in tags.items():
        if not 1 <= len(k) <= 128 or len(v) > 256:
            raise SecretsValidation("1 validation error detected: Value at 'tags' failed to satisfy constraint: a "
                                    "tag key has 1 to 128 characters and a tag value at most 256")
        if k.lower().startswith("aws:"):
            raise InvalidParameter("Tag keys can't start with \"aws:\": that prefix is reserved for AWS use.")


def _check_filter(k: str, values: Sequence[str]) -> tuple[str, Sequence[str]]:
    if k not in FILTER_KEYS:
        raise SecretsValidation(f"1 validation error detected: Value '{k}' at 'filters.1.member.key' failed to "
                                f"satisfy constraint: Member must satisfy enum value set: [{', '.join(FILTER_KEYS)}]")
    if not values:
        raise InvalidParameter(f"Invalid filter values for key: {k}")
    return k, values


def _match(s: Secret, k: str, values: Sequence[str]) -> bool:
    """One filter: any (non-negated) value matches as a prefix; "!value" excludes."""
    fields = {"name": [s.name], "description": [s.description], "tag-key": list(s.tags),
              "tag-value": list(s.tags.values()), "primary-region": [s.region], "owning-service": []}
    seen = [x for f in FILTER_KEYS[:-1] for x in fields[f]] if k == "all" else fields[k]
    positive = [v for v in values if not v.startswith("!")]
    negative = [v[1:] for v in values if v.startswith("!")]
    if any(x.startswith(v) for v in negative for x in seen):
        return False
    return not positive or any(x.startswith(v) for v in positive for x in seen)
