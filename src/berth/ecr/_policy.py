"""Cross-account access to ECR by resource-based policy (pure).

berth has one registry per account id. A request that names another account's registry
(`registryId`) is served only where AWS would serve it without an IAM role in that account: when
the repository policy (or, for CreateRepository, the registry policy) allows the caller's account
the action. Explicit Deny wins; anything not allowed is refused with AWS's AccessDeniedException.

Only what these policies use is read: `Effect`, `Principal` ("*", {"AWS": account id, root ARN or
any ARN in the account, or a list of them}) and `Action` (with `*` wildcards, case-insensitive).
`Condition` blocks are not evaluated: a statement with one never allows (it may deny).
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any


def policy_allows(text: str | None, account: str, action: str) -> bool:
    """Whether the policy document `text` lets `account` perform `action` (e.g. "ecr:BatchGetImage")."""
    statements = _statements(text)
    matching = [s for s in statements if _principal_matches(s.get("Principal"), account)
                and _action_matches(s.get("Action"), action)]
    if any(s.get("Effect") == "Deny" for s in matching):
        return False
    return any(s.get("Effect") == "Allow" and "Condition" not in s for s in matching)


def _statements(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    found = doc.get("Statement") if isinstance(doc, dict) else None
    found = [found] if isinstance(found, dict) else found
    return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []


def _principal_matches(principal: Any, account: str) -> bool:
    if principal == "*":
        return True
    values = principal.get("AWS") if isinstance(principal, dict) else None
    values = [values] if isinstance(values, str) else values
    return any(isinstance(v, str) and (v in ("*", account) or f"::{account}:" in v) for v in values or [])


def _action_matches(actions: Any, action: str) -> bool:
    actions = [actions] if isinstance(actions, str) else actions
    return any(isinstance(a, str) and fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions or [])
