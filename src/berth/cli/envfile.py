"""Environment variables from `-e` and `--env-file`, with Docker's rules for bare names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

_WHITESPACE = " \t"


def parse_env_file(text: str, environ: Mapping[str, str]) -> list[str]:
    """Lines of an env file -> `KEY=VALUE` strings, as docker-cli's parseKeyValueFile.

    Blank lines and `#` comments are skipped; a value is taken verbatim (no quoting rules);
    a bare `KEY` takes its value from `environ` and stays bare when unset.

    Raises:
        ValueError: a variable name is empty or contains whitespace.
    """
    result = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.removeprefix("\ufeff") if number == 1 else raw
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        name, has_value, value = line.partition("=")
        name = name.lstrip(_WHITESPACE)
        if any(c in name for c in _WHITESPACE):
            raise ValueError(f"variable '{name}' contains whitespaces")
        if not name:
            raise ValueError(f"no variable name on line '{line}'")
        result.append(f"{name}={value}" if has_value else expand_env_item(name.strip(), environ))
    return result


def expand_env_item(item: str, environ: Mapping[str, str]) -> str:
    """`-e KEY` takes KEY's value from the caller's environment when it is set (docker ValidateEnv)."""
    if "=" in item or item not in environ:
        return item
    return f"{item}={environ[item]}"


def merge_env(files: Iterable[str], items: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    """Files first, then `-e` flags, in order: Docker's order, so a later `-e` wins in the daemon."""
    result: list[str] = []
    for path in files:
        with open(path, encoding="utf-8") as handle:
            result.extend(parse_env_file(handle.read(), environ))
    result.extend(expand_env_item(item, environ) for item in items)
    return result
