"""Variable expansion and quote removal (shellwords), .dockerignore matching, metadata steps."""

from __future__ import annotations

import pytest

from berth.builder import imageconfig as ic
from berth.builder import metadata
from berth.builder.dockerfile import parse
from berth.builder.dockerignore import DockerIgnore
from berth.builder.shellwords import ShellLex
from berth.errors import InvalidArgument

ENV = {"A": "a", "EMPTY": "", "SP": "x y", "PATH": "/usr/bin"}


@pytest.mark.parametrize("word, expected", [
    ("$A", "a"),
    ("${A}", "a"),
    ("$A$A", "aa"),
    ("pre${A}post", "prepost".replace("prepost", "preapost")),
    ("$NOPE", ""),
    ("${NOPE}", ""),
    ("$", "$"),
    ("a$", "a$"),
    ("$1x", "x"),
    ("$-x", "$-x"),
    ("${NOPE:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""),
    ("${NOPE-dflt}", "dflt"),
    ("${A:-dflt}", "a"),
    ("${A:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${NOPE+alt}", ""),
    ("${NOPE:-${A:-z}}", "a"),
    ("${NOPE:-$A}", "a"),
    ("${A:?must}", "a"),
    ("${PATH#/usr}", "/bin"),
    ("${PATH##*/}", "bin"),
    ("${PATH%/*}", "/usr"),
    ("${PATH%%b*}", "/usr/"),
    ("'$A'", "$A"),
    ('"$A"', "a"),
    ('"${A} b"', "a b"),
    ("\\$A", "$A"),
    ('"\\$A"', "$A"),
    ('"a\\"b"', 'a"b'),
    ('"a\\nb"', "a\\nb"),
    ("a\\ b", "a b"),
    ("''", ""),
    ('"it\'s"', "it's"),
    ("'a'\"b\"c", "abc"),
])
def test_process_word(word: str, expected: str) -> None:
    assert ShellLex().process_word(word, ENV) == expected


def test_backtick_escape() -> None:
    lex = ShellLex("`")
    assert lex.process_word("a`$A\\b", ENV) == "a$A\\b"


@pytest.mark.parametrize("word, message", [
    ("${NOPE:?is required}", "NOPE: is required"),
    ("${EMPTY:?}", "EMPTY: is not allowed to be unset"),
    ("${NOPE?}", "NOPE: is not allowed to be unset"),
    ("'open", "unexpected end of statement while looking for matching single-quote"),
    ('"open', "unexpected end of statement while looking for matching double-quote"),
    ("${A", "missing"),
    ("${}", "bad substitution"),
    ("${A/x/y}", "unsupported modifier"),
])
def test_process_word_errors(word: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("?", r"\?")):
        ShellLex().process_word(word, ENV)


@pytest.mark.parametrize("word, expected", [
    ("a b", ["a", "b"]),
    ("$SP", ["x", "y"]),
    ('"$SP"', ["x y"]),
    ("80/tcp $A", ["80/tcp", "a"]),
    ("p$SP", ["px", "y"]),
])
def test_process_words(word: str, expected: list[str]) -> None:
    assert ShellLex().process_words(word, ENV) == expected


def test_expand_vars_keeps_quotes() -> None:
    assert ShellLex().expand_vars("echo '$A' \"${A}\"\n", ENV) == "echo 'a' \"a\"\n"


# -- .dockerignore ---------------------------------------------------------------------------------


@pytest.mark.parametrize("patterns, path, excluded", [
    ("*.log", "a.log", True),
    ("*.log", "dir/a.log", False),
    ("**/*.log", "dir/sub/a.log", True),
    ("**/*.log", "a.log", True),
    ("build", "build/x/y", True),
    ("/build", "build", True),
    ("build/", "build/x", True),
    ("a/../b", "b", True),
    ("*.md\n!README.md", "README.md", False),
    ("*.md\n!README.md", "CHANGES.md", True),
    ("!README.md\n*.md", "README.md", True),
    ("# comment\n\n  secret  ", "secret", True),
    ("te?t", "test", True),
    ("te?t", "teest", False),
    ("[a-c]x", "bx", True),
    ("[^a-c]x", "dx", True),
    ("[^a-c]x", "ax", False),
    ("docs\n!docs/keep", "docs/keep", False),
    ("docs\n!docs/keep", "docs/other", True),
    ("", "anything", False),
])
def test_dockerignore(patterns: str, path: str, excluded: bool) -> None:
    assert DockerIgnore(patterns).excluded(path) is excluded


# -- metadata instructions -------------------------------------------------------------------------


def apply(text: str, c: dict | None = None, env: dict | None = None, cmd_set: bool = False) -> metadata.MetaResult:
    instruction = parse("FROM a\n" + text).instructions[1]
    return metadata.apply(instruction, c or {}, metadata.Expander(ShellLex(), env or {}), cmd_set=cmd_set)


@pytest.mark.parametrize("text, key, value", [
    ('CMD ["a", "b"]', "Cmd", ["a", "b"]),
    ("CMD echo $HOME", "Cmd", ["/bin/sh", "-c", "echo $HOME"]),
    ('ENTRYPOINT ["top"]', "Entrypoint", ["top"]),
    ('ENV A="x y" B=$A', "Env", ["A=x y", "B=old"]),
    ("ENV A x y", "Env", ["A=x y"]),
    ('LABEL "com.x"="1 2" b=c', "Labels", {"com.x": "1 2", "b": "c"}),
    ("EXPOSE 80 53/udp 8000-8001", "ExposedPorts", {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}),
    ("EXPOSE ${PORT:-8080}", "ExposedPorts", {"8080/tcp": {}}),
    ("USER $A:users", "User", "old:users"),
    ('VOLUME ["/data", "/logs"]', "Volumes", {"/data": {}, "/logs": {}}),
    ("VOLUME /a /b", "Volumes", {"/a": {}, "/b": {}}),
    ("STOPSIGNAL SIGQUIT", "StopSignal", "SIGQUIT"),
    ('SHELL ["/bin/bash", "-c"]', "Shell", ["/bin/bash", "-c"]),
    ("HEALTHCHECK NONE", "Healthcheck", {"Test": ["NONE"]}),
    ("HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost", "Healthcheck",
     {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5_000_000_000, "Retries": 3}),
    ('HEALTHCHECK --timeout=1m30s CMD ["true"]', "Healthcheck", {"Test": ["CMD", "true"], "Timeout": 90_000_000_000}),
    ("ONBUILD run echo hi", "OnBuild", ["RUN echo hi"]),
])
def test_metadata(text: str, key: str, value: object) -> None:
    result = apply(text, env={"A": "old"})
    assert result.config[key] == value


def test_expose_bad_port() -> None:
    with pytest.raises(InvalidArgument, match="invalid containerPort: 99999"):
        apply("EXPOSE 99999")


def test_cmd_uses_the_configured_shell() -> None:
    assert apply("CMD ls", {"Shell": ["/bin/bash", "-c"]}).config["Cmd"] == ["/bin/bash", "-c", "ls"]


def test_entrypoint_resets_inherited_cmd_only() -> None:
    assert apply('ENTRYPOINT ["x"]', {"Cmd": ["sh"]}).config["Cmd"] is None
    assert apply('ENTRYPOINT ["x"]', {"Cmd": ["y"]}, cmd_set=True).config["Cmd"] == ["y"]


def test_env_replaces_existing_key_in_place_order() -> None:
    result = apply("ENV PATH=/x:$PATH", {"Env": ["PATH=/bin", "K=v"]}, env={"PATH": "/bin"})
    assert result.config["Env"] == ["K=v", "PATH=/x:/bin"]
    assert result.history == "ENV PATH=/x:/bin"


def test_maintainer_sets_author() -> None:
    assert apply("MAINTAINER Jane <j@x>").author == "Jane <j@x>"


def test_workdir_paths() -> None:
    ex = metadata.Expander(ShellLex(), {"D": "data"})
    assert metadata.workdir("/", "/app", ex) == "/app"
    assert metadata.workdir("/app", "sub/../x", ex) == "/app/x"
    assert metadata.workdir("/app", "$D", ex) == "/app/data"
    assert metadata.workdir("/app", "/", ex) == "/"


def test_history_and_scratch_config() -> None:
    config = ic.start_config(None, "amd64")
    assert config["config"]["Env"] == [ic.DEFAULT_PATH]
    after = ic.with_history(config, ic.nop("CMD [\"x\"]"), empty_layer=True, created="2024-01-01T00:00:00Z")
    assert after["history"] == [{"created": "2024-01-01T00:00:00Z", "created_by": '/bin/sh -c #(nop)  CMD ["x"]',
                                 "empty_layer": True}]
    assert config["history"] == []


@pytest.mark.parametrize("text, ns", [("30s", 30 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8),
                                      ("0", 0), ("1h", 3600 * 10**9)])
def test_durations(text: str, ns: int) -> None:
    assert ic.parse_duration(text) == ns


def test_bad_duration() -> None:
    with pytest.raises(InvalidArgument):
        ic.parse_duration("5 seconds")
