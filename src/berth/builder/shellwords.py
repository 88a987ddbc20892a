"""Variable substitution and quote removal for Dockerfile words (pure).

After BuildKit's frontend/dockerfile/shell/lex.go:

    'single'      literal, quotes removed
    "double"      $VAR expanded; the escape character escapes only `"`, `$` and itself
    <escape>x     x literally (outside quotes)
    $VAR ${VAR}   value, or "" when unset
    ${VAR:-w}     w when VAR is unset or empty      ${VAR-w}   w when VAR is unset
    ${VAR:+w}     w when VAR is set and non-empty   ${VAR+w}   w when VAR is set
    ${VAR:?msg}   error when unset or empty         ${VAR?msg} error when unset
    ${VAR#p} ${VAR##p} ${VAR%p} ${VAR%%p}           shortest/longest prefix/suffix removal (glob p)

`w` is itself expanded, so `${A:-${B:-c}}` works.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from berth.errors import InvalidArgument


class ShellLex:
    """Expands words against an environment; `escape` is the Dockerfile's escape character."""

    def __init__(self, escape: str = "\\") -> None:
        self.escape = escape

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """One word: expansions done, quotes and escapes removed, no splitting."""
        return "".join(_Scan(word, env, self.escape).run(stop="", split=False)[0])

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Like process_word, then split on blanks that were not quoted (EXPOSE, VOLUME ...)."""
        return [w for w in _Scan(word, env, self.escape).run(stop="", split=True) if w]

    def expand_vars(self, text: str, env: Mapping[str, str]) -> str:
        """Only `$VAR`/`${...}` forms; quotes and escapes stay (heredoc bodies)."""
        return _Scan(text, env, self.escape, keep_quotes=True).run(stop="", split=False)[0]


class _Scan:
    def __init__(self, text: str, env: Mapping[str, str], escape: str, *, keep_quotes: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.keep_quotes = keep_quotes

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _next(self) -> str:
        ch = self._peek()
        self.pos += 1
        return ch

    def run(self, *, stop: str, split: bool) -> list[str]:
        """Scan until `stop` (or the end); returns one word, or several when `split`."""
        words: list[str] = []
        current = ""
        started = False
        while self.pos < len(self.text):
            ch = self._peek()
            if stop and ch == stop:
                break
            self.pos += 1
            if self.keep_quotes:
                current += self._dollar() if ch == "$" else ch
                continue
            if split and ch.isspace():
                if started or current:
                    words.append(current)
                current, started = "", False
                continue
            if ch == "'":
                current += self._single_quoted()
                started = True
            elif ch == '"':
                current += self._double_quoted()
                started = True
            elif ch == "$":
                value = self._dollar()
                if split:
                    pieces = value.split()
                    if pieces and value[:1].isspace() and (started or current):
                        words.append(current)
                        current = ""
                    for piece in pieces[:-1]:
                        words.append(current + piece)
                        current = ""
                    current += pieces[-1] if pieces else ""
                    if pieces and value[-1:].isspace():
                        words.append(current)
                        current, started = "", False
                else:
                    current += value
            elif ch == self.escape:
                current += self._next()
            else:
                current += ch
        if started or current or not split:
            words.append(current)
        return words

    def _single_quoted(self) -> str:
        end = self.text.find("'", self.pos)
        if end < 0:
            raise InvalidArgument("unexpected end of statement while looking for matching single-quote")
        value = self.text[self.pos:end]
        self.pos = end + 1
        return value

    def _double_quoted(self) -> str:
        out = ""
        while True:
            if self.pos >= len(self.text):
                raise InvalidArgument("unexpected end of statement while looking for matching double-quote")
            ch = self._next()
            if ch == '"':
                return out
            if ch == "$":
                out += self._dollar()
            elif ch == self.escape and self.pos < len(self.text):
                nxt = self._next()
                out += nxt if nxt in ('"', "$", self.escape) else ch + nxt
            else:
                out += ch

    def _dollar(self) -> str:
        ch = self._peek()
        if ch == "{":
            self.pos += 1
            return self._braced()
        name = self._name()
        if not name:
            return "$"
        return self.env.get(name, "")

    def _name(self) -> str:
        if self._peek().isdigit():  # positional parameters are one digit: $1x is ${1}x
            self.pos += 1
            return self.text[self.pos - 1]
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] == "_"):
            self.pos += 1
        return self.text[start:self.pos]

    def _braced(self) -> str:
        name = self._name()
        if not name:
            raise InvalidArgument(f"bad substitution: {self.text!r}")
        ch = self._next()
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        if colon:
            ch = self._next()
        if ch in ("#", "%") and not colon:
            return self._trim(name, ch)
        if not ch:
            raise InvalidArgument(f"missing '}}' in substitution: {self.text!r}")
        if ch not in ("-", "+", "?"):
            raise InvalidArgument(f"unsupported modifier ({ch}) in substitution: {self.text!r}")
        word = self._nested_word()
        value = self.env.get(name)
        present = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if present and value is not None else word
        if ch == "+":
            return word if present else ""
        if not present:
            raise InvalidArgument(f"{name}: {word or 'is not allowed to be unset'}")
        return value or ""

    def _nested_word(self) -> str:
        inner = _Scan(self.text, self.env, self.escape, keep_quotes=self.keep_quotes)
        inner.pos = self.pos
        word = inner.run(stop="}", split=False)[0]
        self.pos = inner.pos
        if self._next() != "}":
            raise InvalidArgument(f"missing '}}' in substitution: {self.text!r}")
        return word

    def _trim(self, name: str, op: str) -> str:
        longest = self._peek() == op
        if longest:
            self.pos += 1
        pattern = self._nested_word()
        value = self.env.get(name, "")
        sizes = range(len(value), -1, -1) if longest else range(len(value) + 1)
        for size in sizes:
            if op == "#" and fnmatch.fnmatchcase(value[:size], pattern):
                return value[size:]
            if op == "%" and fnmatch.fnmatchcase(value[len(value) - size:], pattern):
                return value[:len(value) - size]
        return value
