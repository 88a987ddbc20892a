"""ECR lifecycle policies: validation and evaluation (pure; the service applies the result).

Rules run in `rulePriority` order (lowest number first). A rule selects images by tag status
(`tagged` with `tagPrefixList` / `tagPatternList`, `untagged`, `any`); every image a rule selects
is settled by that rule, expired or kept, and lower-priority rules never see it again. Counting:
`imageCountMoreThan` keeps the newest `countNumber` selected images; `sinceImagePushed` expires
images pushed more than `countNumber` days ago.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from berth.ecr._errors import InvalidParameter
from berth.ecr._model import StoredImage

_DAY = 86400.0


@dataclass(frozen=True)
class Rule:
    priority: int
    tag_status: str                 # tagged | untagged | any
    prefixes: tuple[str, ...]
    patterns: tuple[str, ...]
    count_type: str                 # imageCountMoreThan | sinceImagePushed
    count_number: int
    description: str = ""

    def selects(self, image: StoredImage) -> bool:
        if self.tag_status == "untagged":
            return not image.tags
        if self.tag_status == "any":
            return True
        return any(t.startswith(p) for t in image.tags for p in self.prefixes) or any(
            fnmatch.fnmatchcase(t, p) for t in image.tags for p in self.patterns)


@dataclass(frozen=True)
class Expiry:
    image: StoredImage
    rule_priority: int


def parse_policy(text: str) -> list[Rule]:
    """Validate a lifecycle policy text and return its rules, by priority.

    Raises:
        InvalidParameter: ECR's InvalidParameterException for a malformed policy.
    """
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise InvalidParameter(f"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
                               f"'Lifecycle policy validation failure: {err}'") from err
    rules = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(rules, list) or not rules:
        raise InvalidParameter("Lifecycle policy validation failure: 'rules' must be a non-empty list")
    parsed = sorted((_rule(r) for r in rules), key=lambda r: r.priority)
    if len({r.priority for r in parsed}) != len(parsed):
        raise InvalidParameter("Lifecycle policy validation failure: rulePriority must be unique")
    if any(r.tag_status == "any" for r in parsed[:-1]):
        raise InvalidParameter("Lifecycle policy validation failure: a rule with tagStatus 'any' must have "
                               "the highest rulePriority")
    return parsed


def _rule(doc: Any) -> Rule:
    def fail(why: str) -> InvalidParameter:
        return InvalidParameter(f"Lifecycle policy validation failure: {why}")

    if not isinstance(doc, dict):
        raise fail("each rule must be an object")
    selection, action = doc.get("selection") or {}, doc.get("action") or {}
    if action.get("type", "expire").lower() != "expire":
        raise fail("action.type must be 'expire'")
    priority, number = doc.get("rulePriority"), selection.get("countNumber")
    if not isinstance(priority, int) or priority < 1:
        raise fail("rulePriority must be a positive integer")
    if not isinstance(number, int) or number < 1:
        raise fail("selection.countNumber must be a positive integer")
    status = str(selection.get("tagStatus", "")).lower()
    prefixes = tuple(selection.get("tagPrefixList") or ())
    patterns = tuple(selection.get("tagPatternList") or ())
    if status not in ("tagged", "untagged", "any"):
        raise fail("selection.tagStatus must be tagged, untagged or any")
    if status == "tagged" and not (prefixes or patterns):
        raise fail("tagPrefixList or tagPatternList is required when tagStatus is tagged")
    count_type = str(selection.get("countType", ""))
    if count_type not in ("imageCountMoreThan", "sinceImagePushed"):
        raise fail("selection.countType must be imageCountMoreThan or sinceImagePushed")
    if count_type == "sinceImagePushed" and selection.get("countUnit") != "days":
        raise fail("selection.countUnit must be 'days' with sinceImagePushed")
    return Rule(priority, status, prefixes, patterns, count_type, number, str(doc.get("description", "")))


def evaluate(rules: Sequence[Rule], images: Sequence[StoredImage], now: float) -> list[Expiry]:
    """The images the policy expires (see the module docstring for the rule order)."""
    settled: set[str] = set()
    expired: list[Expiry] = []
    for rule in rules:
        selected = [i for i in images if i.digest not in settled and rule.selects(i)]
        settled.update(i.digest for i in selected)
        newest_first = sorted(selected, key=lambda i: (i.pushed_at, i.digest), reverse=True)
        if rule.count_type == "imageCountMoreThan":
            doomed = newest_first[rule.count_number:]
        else:
            doomed = [i for i in newest_first if i.pushed_at < now - rule.count_number * _DAY]
        expired += [Expiry(i, rule.priority) for i in doomed]
    return expired
