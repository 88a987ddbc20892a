""".dockerignore as Docker applies it: moby/patternmatcher matching, ignorefile reading, and what
dockerd itself removes from a context (only .dockerignore and the Dockerfile)."""

from __future__ import annotations

import pytest

from berth.builder.dockerignore import (
    DockerIgnore,
    PatternMatcher,
    clean,
    compile_pattern,
    read_patterns,
    removed_by_daemon,
)
from berth.errors import InvalidArgument

# (patterns, path, ignored) — Docker's documented rules and patternmatcher's own test table
MATCHES = [
    # `*` and `?` stay within one path element
    ("*.log", "a.log", True),
    ("*.log", "dir/a.log", False),
    ("*/*.log", "dir/a.log", True),
    ("*/*.log", "a/b/c.log", False),
    ("te?t", "test", True),
    ("te?t", "teest", False),
    ("te?t", "te/t", False),
    # a match on a parent directory ignores everything below it, at any depth
    ("build", "build/x/y", True),
    ("build", "build", True),
    ("build", "builds", False),
    ("build", "sub/build", False),
    ("*/temp*", "somedir/temporary.txt", True),
    ("*/temp*", "somedir/temp", True),
    ("*/*/temp*", "somedir/subdir/temporary.txt", True),
    ("*/*/temp*", "somedir/temporary.txt", False),
    ("**/foo", "a/b/c/foo/x/y", True),          # parents of every depth are checked
    ("a/*/c", "a/b/c/d/e", True),
    # `**` matches any number of directories, including none
    ("**/*.go", "main.go", True),
    ("**/*.go", "a/b/c/main.go", True),
    ("**/*.go", "a/b/main.go.txt", False),
    ("**/foo", "foo", True),
    ("**/foo", "x/foo", True),
    ("**/foo", "xfoo", False),
    ("**foo", "xfoo", True),                   # `**` then a literal: a suffix test
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/xb", False),
    ("a/**", "a/x/y", True),
    ("a/**", "a", False),
    ("a**", "abc", True),
    ("*/**", "a/b", True),
    ("**", "anything/at/all", True),
    ("a**b", "ab", True),
    ("a**b", "ax/b", True),
    ("a**b", "axb", False),                     # `**` not before `/` is `(.*/)?`, not `.*`
    ("docs/**/*.md", "docs/a.md", True),
    ("docs/**/*.md", "docs/x/y/b.md", True),
    # classes and escapes
    ("[a-c]x", "bx", True),
    ("[^a-c]x", "dx", True),
    ("[^a-c]x", "ax", False),
    ("\\*x", "*x", True),
    ("\\*x", "ax", False),
    ("a.b", "a.b", True),
    ("a.b", "axb", False),
    ("a+(b)", "a+(b)", True),
    # cleaning and the leading slash
    ("/build", "build", True),
    ("build/", "build/x", True),
    ("a/../b", "b", True),
    ("./a//b/", "a/b", True),
    # the last matching pattern decides; `!` re-includes
    ("*.md\n!README.md", "README.md", False),
    ("*.md\n!README.md", "CHANGES.md", True),
    ("!README.md\n*.md", "README.md", True),
    ("*\n!keep", "keep", False),
    ("*\n!keep", "other", True),
    # re-included below an ignored directory
    ("dir\n!dir/keep.txt", "dir/keep.txt", False),
    ("dir\n!dir/keep.txt", "dir/other.txt", True),
    ("dir\n!dir/keep.txt", "dir", True),        # the directory itself stays ignored
    ("docs\n!docs/keep", "docs/keep/deep", False),
    ("docs\n!docs/keep\ndocs/keep/x", "docs/keep/x", True),
    ("**/*.log\n!important.log", "important.log", False),
    ("**/*.log\n!important.log", "sub/important.log", True),
    ("docs/**/*.md\n!docs/keep/**", "docs/keep/c.md", False),
    # comments, blanks and trimming
    ("# comment\n\n  secret  ", "secret", True),
    ("  # not a comment", "# not a comment", True),
    ("! spaced", "spaced", False),
    ("", "anything", False),
]


@pytest.mark.parametrize("patterns, path, ignored", MATCHES)
def test_matching_table(patterns: str, path: str, ignored: bool) -> None:
    assert DockerIgnore(patterns).excluded(path) is ignored


@pytest.mark.parametrize("text, patterns", [
    ("test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ",
     ["test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!"]),  # ignorefile_test.go
    ("\ufeffbom\r\nwin\r\n", ["bom", "win"]),
    ("/\n!/\n", ["/", "!/"]),
    ("a/b/../../..\n", [".."]),
    ("  #x\n#y\n", ["#x"]),
])
def test_read_patterns(text: str, patterns: list[str]) -> None:
    assert read_patterns(text) == patterns


@pytest.mark.parametrize("path, cleaned", [
    ("", "."), ("a//b/./c/..", "a/b"), ("//a", "/a"), ("/..", "/"), ("../a", "../a"), ("a/", "a"),
])
def test_clean_is_gos(path: str, cleaned: str) -> None:
    assert clean(path) == cleaned


@pytest.mark.parametrize("pattern, message", [
    ("!", 'illegal exclusion pattern: "!"'),
    ("[abc", "syntax error in pattern"),
    ("a[", "syntax error in pattern"),
])
def test_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("[", "\\[")):
        compile_pattern(pattern)
    with pytest.raises(InvalidArgument):
        DockerIgnore(pattern if pattern != "!" else "!\n")


def test_exclusions_flag() -> None:
    assert not PatternMatcher(["a", "b"]).exclusions
    assert PatternMatcher(["a", "!b"]).exclusions


@pytest.mark.parametrize("ignore, dockerfile, removed", [
    (None, "Dockerfile", []),                                   # no .dockerignore: nothing removed
    ("*.md\n", "Dockerfile", []),
    ("Dockerfile\n", "Dockerfile", ["Dockerfile"]),
    ("*\n!keep\n", "Dockerfile", [".dockerignore", "Dockerfile"]),
    (".dockerignore\n.dockerfile.0123abcd\n", ".dockerfile.0123abcd", [".dockerignore", ".dockerfile.0123abcd"]),
    ("secret\n.dockerfile.0123abcd\n", ".dockerfile.0123abcd", [".dockerfile.0123abcd"]),
    ("sub\n", "sub/Dockerfile.dev", ["sub/Dockerfile.dev"]),     # a parent directory matches
    ("sub\n", "./sub/Dockerfile.dev", ["./sub/Dockerfile.dev"]),
    ("[bad\nDockerfile\n", "Dockerfile", []),                   # a bad pattern: dockerd removes nothing
])
def test_what_the_daemon_removes(ignore: str | None, dockerfile: str, removed: list[str]) -> None:
    assert removed_by_daemon(ignore, dockerfile) == removed


def test_hiding_exact_paths() -> None:
    hidden = DockerIgnore.hiding(["./sub/Dockerfile.dev", ".dockerignore"])
    assert hidden and hidden.excluded("sub/Dockerfile.dev") and hidden.excluded(".dockerignore")
    assert not hidden.excluded("sub") and not hidden.excluded("sub/Dockerfile") and not hidden.excluded("x")
    assert not DockerIgnore.hiding([])
