"""Validation of repository names, tags and digests as the distribution spec §1 defines them."""

from __future__ import annotations

import re

from berth.registry._errors import DIGEST_INVALID, NAME_INVALID, TAG_INVALID, RegistryError
from berth.errors import InvalidArgument
from berth.types import Digest

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
_DIGEST_SHAPE_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
MAX_NAME_LENGTH = 255


def valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and bool(_NAME_RE.match(name))


def check_name(name: str) -> str:
    if not valid_name(name):
        raise RegistryError(NAME_INVALID, {"name": name})
    return name


def is_tag(reference: str) -> bool:
    return bool(_TAG_RE.match(reference))


def check_tag(tag: str) -> str:
    if not is_tag(tag):
        raise RegistryError(TAG_INVALID, {"tag": tag}, "invalid tag")
    return tag


def looks_like_digest(reference: str) -> bool:
    """True for anything of the `alg:encoded` shape, valid or not (so it is not mistaken for a tag)."""
    return ":" in reference and bool(_DIGEST_SHAPE_RE.match(reference))


def parse_digest(text: str) -> Digest:
    """A sha256 digest, or DIGEST_INVALID (400) for a malformed or unsupported one."""
    try:
        return Digest(text)
    except InvalidArgument as err:
        raise RegistryError(DIGEST_INVALID, {"digest": text}, "invalid or unsupported digest") from err
