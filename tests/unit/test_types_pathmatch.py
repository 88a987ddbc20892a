"""Go-style path patterns shared by image filters and .dockerignore."""

from __future__ import annotations

import re

import pytest

from berth.errors import InvalidArgument
from berth.types.pathmatch import path_match, pattern_regex


@pytest.mark.parametrize(("pattern", "name", "hit"), [
    ("bob/*", "bob/cats", True),
    ("bob/*", "bob/cats/x", False),
    ("ca?s", "cats", True),
    ("ca?s", "ca/s", False),
    ("[a-c]ats", "cats", True),
    ("[^x]ats", "cats", True),
    ("[^c]ats", "cats", False),
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("[]a]x", "]x", True),          # a leading ] is a member, as in Go
    ("[\\]]x", "]x", True),         # \ escapes inside a class
    ("a.b", "axb", False),          # regex metacharacters are literal
])
def test_path_match(pattern: str, name: str, hit: bool) -> None:
    assert path_match(pattern, name) is hit


@pytest.mark.parametrize("pattern", ["[abc", "x[", "[^"])
def test_unterminated_class_is_a_bad_pattern(pattern: str) -> None:
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        path_match(pattern, "x")


@pytest.mark.parametrize(("pattern", "name", "hit"), [
    ("**/*.log", "a.log", True),      # **/ also matches no directory
    ("**/*.log", "x/y/a.log", True),
    ("a/**", "a/b/c", True),
    ("*.log", "x/a.log", False),
])
def test_double_star(pattern: str, name: str, hit: bool) -> None:
    assert (re.fullmatch(pattern_regex(pattern, double_star=True), name) is not None) is hit


def test_double_star_is_two_stars_without_the_option() -> None:
    assert not path_match("**/a", "x/y/a")


def test_dockerignore_with_a_bad_pattern_is_refused() -> None:
    from berth.builder.dockerignore import DockerIgnore

    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        DockerIgnore("ok.txt\n[broken\n")
