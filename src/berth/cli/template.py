"""A small subset of Go's text/template for `inspect --format`.

Supported actions: `{{.Path.To.Field}}`, `{{.}}`, `{{json .X}}`, `{{index .X "key"}}`,
`{{join .X ","}}`, `{{upper .X}}`, `{{lower .X}}`. Values print as Go prints them
(`true`, `map[a:b]`, `[x y]`, `<no value>` for a missing key).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}")
_MISSING = object()


class TemplateError(ValueError):
    """The template uses syntax outside the supported subset."""


def _lookup(data: Any, path: str) -> Any:
    value = data
    for key in filter(None, path.split(".")):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def go_string(value: Any) -> str:
    """Go's default formatting of a decoded-JSON value."""
    if value is _MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_string(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    return str(value)


def _argument(token: str, data: Any) -> Any:
    if token.startswith("."):
        return _lookup(data, token)
    if token[:1] in "\"'":
        return token
    raise TemplateError(f"unsupported template argument: {token}")


def _evaluate(action: str, data: Any) -> str:
    try:
        words = shlex.split(action)
    except ValueError as err:
        raise TemplateError(str(err)) from None
    if not words:
        raise TemplateError("empty template action")
    if len(words) == 1:
        return go_string(_argument(action, data))
    func, args = words[0], [_argument(w, data) if w.startswith(".") else w for w in words[1:]]
    if func == "json" and len(args) == 1:
        return json.dumps(None if args[0] is _MISSING else args[0], ensure_ascii=False)
    if func == "index" and len(args) == 2:
        container = args[0] if isinstance(args[0], (dict, list)) else {}
        key: Any = int(args[1]) if isinstance(container, list) else args[1]
        try:
            return go_string(container[key])
        except (KeyError, IndexError):
            return "<no value>"
    if func == "join" and len(args) == 2 and isinstance(args[0], list):
        return str(args[1]).join(go_string(v) for v in args[0])
    if func in ("upper", "lower") and len(args) == 1:
        text = go_string(args[0])
        return text.upper() if func == "upper" else text.lower()
    raise TemplateError(f"unsupported template action: {action}")


def render(template: str, data: Any) -> str:
    """Render `template` against one inspect result.

    Raises:
        TemplateError: unsupported syntax.
    """
    return _ACTION.sub(lambda m: _evaluate(m.group(1), data), template)
