"""Frozen data shared by every part of berth; no I/O here."""

from berth.types.digest import Digest
from berth.types.reference import Reference, parse_reference

__all__ = ["Digest", "Reference", "parse_reference"]
