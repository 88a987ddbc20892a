"""Dockerfile text -> instructions (pure). Follows BuildKit's frontend/dockerfile/parser.

What it handles:
    parser directives   `# escape=``  `# syntax=...` at the very top, before anything else
    comments            lines whose first non-blank character is `#` (also inside continuations)
    continuations       a line ending in the escape character (trailing blanks allowed)
    flags               `--name=value` / `--name` words right after the keyword
    JSON form           `["a", "b"]` arguments, kept in `json_args` when they parse
    heredocs            `<<EOF`, `<<-EOF`, `<<"EOF"` on RUN, COPY and ADD

Nothing is expanded here: variables depend on build args and ENV, which the executor knows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from berth.builder._errors import DockerfileError

MAX_DOCKERFILE_BYTES = 2 * 1024 * 1024  # BuildKit has no limit; 2 MiB is 20x any real Dockerfile
HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = frozenset({"escape", "syntax", "check"})
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([a-zA-Z_][a-zA-Z0-9_]*)\2")


@dataclass(frozen=True)
class Heredoc:
    """`<<NAME ... NAME`: `expand` is False when the name was quoted; `chomp` for `<<-`."""

    name: str
    content: str
    expand: bool = True
    chomp: bool = False


@dataclass(frozen=True)
class Instruction:
    """One instruction as written; `args` is the text after the keyword and its flags."""

    keyword: str                          # upper case: "RUN"
    args: str
    original: str                         # continuations joined, as `Step N/M :` shows it
    line: int                             # first line, 1-based
    end_line: int
    flags: tuple[tuple[str, str | None], ...] = ()   # (name, value) in order; value None for `--x`
    json_args: tuple[str, ...] | None = None         # when `args` is a JSON array of strings
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str) -> str | None:
        values = [v for n, v in self.flags if n == name]
        return values[-1] if values else None


@dataclass(frozen=True)
class Dockerfile:
    instructions: tuple[Instruction, ...]
    escape: str = "\\"
    directives: tuple[tuple[str, str], ...] = ()


def parse(text: str | bytes, filename: str = "Dockerfile") -> Dockerfile:
    """Parse a whole Dockerfile.

    Raises:
        DockerfileError: too large, bad directive, unterminated heredoc, no instructions.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_DOCKERFILE_BYTES:
            raise DockerfileError(filename, 0, _too_large(len(text)))
        text = text.decode("utf-8", errors="replace")
    elif len(text) > MAX_DOCKERFILE_BYTES:
        raise DockerfileError(filename, 0, _too_large(len(text)))
    lines = text.removeprefix("\ufeff").splitlines()
    directives, first = _directives(lines, filename)
    escape = dict(directives).get("escape", "\\")
    instructions = _Reader(lines, first, escape, filename).read_all()
    if not instructions:
        raise DockerfileError(filename, 0, "file with no instructions")
    return Dockerfile(instructions=tuple(instructions), escape=escape, directives=tuple(directives))


def _too_large(size: int) -> str:
    return f"Dockerfile too large: {size} bytes (the limit is {MAX_DOCKERFILE_BYTES} bytes)"


def _directives(lines: list[str], filename: str) -> tuple[list[tuple[str, str]], int]:
    """Leading `# key=value` lines; they stop at the first line that is anything else."""
    found: list[tuple[str, str]] = []
    for index, line in enumerate(lines):
        match = _DIRECTIVE.match(line.strip())
        if not match:
            return found, index
        key, value = match.group(1).lower(), match.group(2)
        if key not in _KNOWN_DIRECTIVES:
            return found, index  # an ordinary comment ends the directive block
        if any(k == key for k, _ in found):
            raise DockerfileError(filename, index + 1, f"only one {key} parser directive can be used")
        if key == "escape" and value not in ("\\", "`"):
            raise DockerfileError(filename, index + 1, f"invalid escape token '{value}' does not match ` or \\")
        found.append((key, value))
    return found, len(lines)


class _Reader:
    """Walks the lines once, joining continuations and collecting heredoc bodies."""

    def __init__(self, lines: list[str], start: int, escape: str, filename: str) -> None:
        self.lines = lines
        self.pos = start
        self.escape = escape
        self.filename = filename
        self._continuation = re.compile(re.escape(escape) + r"[ \t]*$")

    def read_all(self) -> list[Instruction]:
        out = []
        while (instruction := self._next()) is not None:
            out.append(instruction)
        return out

    def _next(self) -> Instruction | None:
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            self.pos += 1
            if _blank_or_comment(line):
                continue
            return self._instruction(line, self.pos)
        return None

    def _instruction(self, first: str, line_no: int) -> Instruction:
        text, end = self._join(first, line_no)
        keyword, rest = _split_keyword(text)
        flags, args = _split_flags(rest)
        heredocs: tuple[Heredoc, ...] = ()
        if keyword in HEREDOC_INSTRUCTIONS:
            heredocs, end = self._heredocs(args, end)
        return Instruction(
            keyword=keyword, args=args, original=text.strip(), line=line_no, end_line=end,
            flags=flags, json_args=json_list(args), heredocs=heredocs,
        )

    def _join(self, text: str, line_no: int) -> tuple[str, int]:
        """Append continuation lines; comment and blank lines inside are skipped (as BuildKit)."""
        text = text.lstrip()
        end = line_no
        while self._continuation.search(text):
            text = self._continuation.sub("", text)
            while self.pos < len(self.lines) and _blank_or_comment(self.lines[self.pos]):
                self.pos += 1
            if self.pos >= len(self.lines):
                break
            text += self.lines[self.pos]
            self.pos += 1
            end = self.pos
        return text.rstrip(), end

    def _heredocs(self, args: str, end: int) -> tuple[tuple[Heredoc, ...], int]:
        docs = []
        for match in _HEREDOC.finditer(args):
            chomp, quote, name = match.group(1) == "-", match.group(2), match.group(3)
            body: list[str] = []
            while True:
                if self.pos >= len(self.lines):
                    raise DockerfileError(self.filename, end, f"unterminated heredoc {name}")
                raw = self.lines[self.pos]
                self.pos += 1
                candidate = raw.lstrip("\t") if chomp else raw
                if candidate == name:
                    break
                body.append(candidate)
            end = self.pos
            content = "".join(b + "\n" for b in body)
            docs.append(Heredoc(name=name, content=content, expand=not quote, chomp=chomp))
        return tuple(docs), end


def _blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _split_keyword(text: str) -> tuple[str, str]:
    parts = text.strip().split(None, 1)
    return parts[0].upper(), (parts[1] if len(parts) > 1 else "")


def _split_flags(rest: str) -> tuple[tuple[tuple[str, str | None], ...], str]:
    """Leading `--name[=value]` words; a lone `--` ends them (and is dropped)."""
    flags: list[tuple[str, str | None]] = []
    remaining = rest.lstrip()
    while remaining.startswith("--"):
        word, after = _first_word(remaining)
        remaining = after
        if word == "--":
            break
        name, sep, value = word[2:].partition("=")
        flags.append((name.lower(), value if sep else None))
    return tuple(flags), remaining.strip()


def _first_word(text: str) -> tuple[str, str]:
    parts = text.split(None, 1)
    return parts[0], (parts[1].lstrip() if len(parts) > 1 else "")


def json_list(args: str) -> tuple[str, ...] | None:
    if not args.startswith("["):
        return None
    try:
        parsed = json.loads(args)
    except ValueError:
        return None
    if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
        return tuple(parsed)
    return None


def parse_words(rest: str, escape: str = "\\") -> list[str]:
    """BuildKit's parseWords: split on blanks outside quotes, keeping quotes and escapes.

    The quotes are removed later, when each word is expanded (`ShellLex.process_word`).
    """
    words: list[str] = []
    word, quote, in_word, blank_ok = "", "", False, False
    i = 0
    while i < len(rest):
        ch = rest[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'" and i + 1 < len(rest):
                word += ch
                i += 1
                ch = rest[i]
            word += ch
        elif ch.isspace():
            if in_word and (blank_ok or word):
                words.append(word)
            word, in_word, blank_ok = "", False, False
        else:
            in_word = True
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape:
                if i + 1 == len(rest):
                    break
                word += ch
                i += 1
                ch = rest[i]
            word += ch
        i += 1
    if in_word and (blank_ok or word):
        words.append(word)
    return words
