""".dockerignore (pure): moby/patternmatcher's matcher and the ignorefile reader, ported rule by rule.

Reading (`read_patterns`, ignorefile.ReadAll):
    # comment            only when `#` is the line's first character (`  # x` is a pattern)
    blank lines          skipped; every line is trimmed; a UTF-8 BOM on line 1 is dropped
    !pattern             an exception; blanks after the `!` are trimmed too
    /a/../b/             cleaned like Go's filepath.Clean (`b`), then one leading `/` dropped

Matching (`PatternMatcher.matches`, MatchesOrParentMatches): the last pattern that matches the
path *or any of its parent directories* decides. `*` and `?` never cross `/`; `**/` matches zero
or more directories; a pattern starting with `**` and otherwise literal is a suffix test
(`**/foo` matches `foo` and `a/foo`), one ending in `**` with nothing special before it a prefix
test (`a/**` matches everything below `a`).

Who applies it: the *client* filters the context (the docker CLI, docker-py, `berth build`).
dockerd itself only drops `.dockerignore` and the Dockerfile from the context when the patterns
match them (builder/remotecontext/detect.go: removeDockerfile); `removed_by_daemon` is that rule,
and `DockerIgnore.hiding` turns its result into what ContextTree hides.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from berth.errors import InvalidArgument
from berth.types.pathmatch import path_match

_BOM = "\ufeff"
_ESCAPE = frozenset(".+()|{}$")   # regexp meta characters with no meaning in filepath.Match
_EXACT, _PREFIX, _SUFFIX, _REGEXP = "exact", "prefix", "suffix", "regexp"


def clean(path: str) -> str:
    """Go's path.Clean: `` -> `.`, `a//b/./c/..` -> `a/b`, `/..` -> `/`."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):  # POSIX keeps a leading `//`; Go does not
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, as moby's ignorefile.ReadAll returns them."""
    out = []
    for number, line in enumerate(text.split("\n")):
        line = line.removesuffix("\r")
        if number == 0:
            line = line.removeprefix(_BOM)
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


@dataclass(frozen=True)
class Pattern:
    """One compiled pattern: `text` is cleaned and without its `!`."""

    text: str
    exclusion: bool
    kind: str
    regex: re.Pattern[str] | None = None

    def match(self, path: str) -> bool:
        if self.kind == _EXACT:
            return path == self.text
        if self.kind == _PREFIX:
            return path.startswith(self.text[:-2])
        if self.kind == _SUFFIX:
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        return self.regex.match(path) is not None


def compile_pattern(raw: str) -> Pattern:
    """patternmatcher.New for one pattern.

    Raises:
        InvalidArgument: a lone `!`, or a pattern Go's filepath.Match rejects.
    """
    text = clean(raw.strip())
    exclusion = text.startswith("!")
    if exclusion:
        if len(text) == 1:
            raise InvalidArgument('illegal exclusion pattern: "!"')
        text = text[1:]
    path_match(text, ".")  # the syntax check patternmatcher makes (ErrBadPattern)
    kind, regex = _compile(text)
    return Pattern(text, exclusion, kind, re.compile(regex) if kind == _REGEXP else None)


def _compile(pattern: str) -> tuple[str, str]:
    """(match kind, regex) following Pattern.compile in moby/patternmatcher."""
    regex, kind, i = "^", _EXACT, 0
    while i < len(pattern):
        ch = pattern[i]
        first = i == 0
        i += 1
        if ch == "*" and pattern.startswith("*", i):
            i += 1
            if pattern.startswith("/", i):
                i += 1
            if i >= len(pattern):
                if kind == _EXACT:
                    kind = _PREFIX
                else:
                    regex, kind = regex + ".*", _REGEXP
            else:
                regex, kind = regex + "(.*/)?", _REGEXP
            if first:
                kind = _SUFFIX
        elif ch == "*":
            regex, kind = regex + "[^/]*", _REGEXP
        elif ch == "?":
            regex, kind = regex + "[^/]", _REGEXP
        elif ch in _ESCAPE:
            regex += "\\" + ch
        elif ch == "\\":
            if i < len(pattern):
                regex, kind = regex + re.escape(pattern[i]), _REGEXP
                i += 1
            else:
                regex += "\\\\"
        elif ch in "[]":
            regex, kind = regex + ch, _REGEXP
        else:
            regex += ch
    return kind, regex + "$"


class PatternMatcher:
    """A list of patterns; `matches` is MatchesOrParentMatches."""

    def __init__(self, patterns: Iterable[str]) -> None:
        """Raises InvalidArgument for a bad pattern (see `compile_pattern`)."""
        self.patterns = [compile_pattern(p) for p in patterns if p.strip()]

    @property
    def exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """Whether `path` (relative, `/`-separated) is ignored: the last pattern matching it or
        one of its parent directories decides."""
        path = clean(path)
        if path == ".":
            return False
        parent = posixpath.dirname(path)
        parents = ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 1)] if parent else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # an inclusion cannot change a match, nor an exclusion a non-match
            if pattern.match(path) or any(pattern.match(p) for p in parents):
                matched = not pattern.exclusion
        return matched


class DockerIgnore:
    """What ContextTree hides: a .dockerignore's patterns, or (`hiding`) exact paths."""

    def __init__(self, text: str = "") -> None:
        """Raises InvalidArgument for a bad pattern."""
        self.matcher = PatternMatcher(read_patterns(text))

    @classmethod
    def hiding(cls, paths: Iterable[str]) -> DockerIgnore:
        """Hide exactly `paths` (and what is below them), nothing else."""
        ignore = cls()
        ignore.matcher.patterns = [Pattern(clean(p).lstrip("/"), False, _EXACT) for p in paths]
        return ignore

    @property
    def patterns(self) -> list[Pattern]:
        return self.matcher.patterns

    def __bool__(self) -> bool:
        return bool(self.matcher.patterns)

    def excluded(self, path: str) -> bool:
        """Whether `path` (relative to the context root, `/`-separated) is left out."""
        return self.matcher.matches(path.lstrip("/"))


def removed_by_daemon(ignore_text: str | None, dockerfile: str) -> list[str]:
    """The files dockerd drops from a context after reading the Dockerfile: `.dockerignore` and
    the Dockerfile, each only if the patterns match it (a bad pattern removes nothing)."""
    if ignore_text is None:
        return []
    try:
        matcher = PatternMatcher(read_patterns(ignore_text))
    except InvalidArgument:
        return []
    return [name for name in (".dockerignore", dockerfile) if matcher.matches(name)]
