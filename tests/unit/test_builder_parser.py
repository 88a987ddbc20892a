"""The Dockerfile front end: lines, directives, continuations, flags, JSON form, heredocs, errors."""

from __future__ import annotations

import pytest

from berth.builder import DockerfileError, parse, plan
from berth.builder.dockerfile import MAX_DOCKERFILE_BYTES, parse_words
from berth.builder.instructions import needed_stages, target_stage
from berth.errors import InvalidArgument


def one(text: str):
    return parse(text).instructions[0]


@pytest.mark.parametrize("text, keyword, args", [
    ("FROM busybox", "FROM", "busybox"),
    ("from busybox", "FROM", "busybox"),
    ("  RUN   echo hi  ", "RUN", "echo hi"),
    ("RUN echo a \\\n  && echo b", "RUN", "echo a   && echo b"),
    ("RUN echo a \\  \n  b", "RUN", "echo a   b"),
    ("RUN a \\\n# comment inside\n b", "RUN", "a  b"),
    ("RUN a \\\n\n b", "RUN", "a  b"),
    ("RUN a \\", "RUN", "a"),
    ("CMD", "CMD", ""),
    ("ENV A=1\tB=2", "ENV", "A=1\tB=2"),
])
def test_instruction_text(text: str, keyword: str, args: str) -> None:
    instruction = one(text)
    assert (instruction.keyword, instruction.args) == (keyword, args)


def test_comments_blank_lines_and_line_numbers() -> None:
    df = parse("# comment\n\nFROM a\n   # indented comment\nRUN x \\\n  y\nCMD z\n")
    assert [(i.keyword, i.line, i.end_line) for i in df.instructions] == [
        ("FROM", 3, 3), ("RUN", 5, 6), ("CMD", 7, 7)]


def test_original_joins_continuations() -> None:
    assert one("RUN a \\\n b").original == "RUN a  b"


@pytest.mark.parametrize("text, flags, args", [
    ("COPY --from=build --chown=1:2 a b", (("from", "build"), ("chown", "1:2")), "a b"),
    ("COPY --link a b", (("link", None),), "a b"),
    ("RUN --network=none echo", (("network", "none"),), "echo"),
    ("COPY -- --weird b", (), "--weird b"),
    ("FROM --platform=linux/amd64 busybox AS x", (("platform", "linux/amd64"),), "busybox AS x"),
])
def test_flags(text: str, flags: tuple, args: str) -> None:
    instruction = one(text)
    assert instruction.flags == flags and instruction.args == args


@pytest.mark.parametrize("text, json_args", [
    ('CMD ["a", "b c"]', ("a", "b c")),
    ("CMD []", ()),
    ('CMD ["a", 1]', None),
    ("CMD [not json", None),
    ("CMD a b", None),
])
def test_json_form(text: str, json_args: tuple | None) -> None:
    assert one(text).json_args == json_args


def test_escape_directive_backtick() -> None:
    df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo x\n")
    assert df.escape == "`"
    assert df.instructions[1].args == "dir c:\\   && echo x"


def test_directives_stop_at_first_other_line() -> None:
    df = parse("# syntax=docker/dockerfile:1\n# a comment\n# escape=`\nFROM a\nRUN x \\\n y\n")
    assert df.escape == "\\"
    assert df.directives == (("syntax", "docker/dockerfile:1"),)
    assert df.instructions[1].args == "x  y"


@pytest.mark.parametrize("text, message", [
    ("# escape=x\nFROM a", "Dockerfile:1: invalid escape token 'x' does not match ` or \\"),
    ("# escape=`\n# escape=`\nFROM a", "Dockerfile:2: only one escape parser directive can be used"),
    ("", "Dockerfile: file with no instructions"),
    ("# only a comment\n\n", "Dockerfile: file with no instructions"),
    ("FROM a\nRUN <<EOF\necho hi\n", "Dockerfile:2: unterminated heredoc EOF"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as err:
        parse(text)
    assert str(err.value) == message


def test_too_large_dockerfile_is_rejected_before_parsing() -> None:
    big = b"FROM a\n" + b"# padding\n" * (10 * 1024 * 1024 // 10)
    assert len(big) > MAX_DOCKERFILE_BYTES
    with pytest.raises(DockerfileError, match="Dockerfile too large"):
        parse(big)


def test_heredocs() -> None:
    df = parse("FROM a\nRUN <<EOF\necho $HOME\nline 2\nEOF\nCOPY <<-'END' /x\n\tindented\n\tEND\nCMD done\n")
    run, copy, cmd = df.instructions[1:]
    assert run.heredocs[0].name == "EOF" and run.heredocs[0].content == "echo $HOME\nline 2\n"
    assert run.heredocs[0].expand
    assert copy.heredocs[0].content == "indented\n" and not copy.heredocs[0].expand and copy.heredocs[0].chomp
    assert cmd.line == 9


def test_two_heredocs_on_one_line() -> None:
    run = parse("FROM a\nRUN cat <<A <<B\na\nA\nb\nB\n").instructions[1]
    assert [(h.name, h.content) for h in run.heredocs] == [("A", "a\n"), ("B", "b\n")]


def test_heredoc_only_for_run_copy_add() -> None:
    df = parse("FROM a\nCMD cat <<EOF\nFROM b\n")
    assert [i.keyword for i in df.instructions] == ["FROM", "CMD", "FROM"]


@pytest.mark.parametrize("rest, words", [
    ("a b  c", ["a", "b", "c"]),
    ('A="x y" B=z', ['A="x y"', "B=z"]),
    ("A='x y'", ["A='x y'"]),
    ('A=x\\ y', ["A=x\\ y"]),
    ('A="a \\" b"', ['A="a \\" b"']),
    ('""', ['""']),
])
def test_parse_words(rest: str, words: list[str]) -> None:
    assert parse_words(rest) == words


# -- instructions and stages ---------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("FROM a\nFOO bar", "Dockerfile:2: unknown instruction: FOO"),
    ("FROM a\nRUN", "Dockerfile:2: RUN requires at least one argument"),
    ("FROM a\nWORKDIR a b", "Dockerfile:2: WORKDIR requires exactly one argument"),
    ("FROM a\nUSER", "Dockerfile:2: USER requires exactly one argument"),
    ("FROM a\nCOPY x", "Dockerfile:2: COPY requires at least two arguments, but only one was provided. "
                       "Destination could not be determined"),
    ("FROM a\nCOPY --bogus=1 x y", "Dockerfile:2: COPY: unknown flag: bogus"),
    ("FROM a\nADD --from=b x y", "Dockerfile:2: ADD: unknown flag: from"),
    ("FROM a\nENV A", "Dockerfile:2: ENV must have two arguments"),
    ("FROM a\nENV A=1 B", "Dockerfile:2: Syntax error - can't find = in 'B'. Must be of the form: name=value"),
    ("FROM a\nENV =x", "Dockerfile:2: ENV names can not be blank"),
    ("FROM a\nSHELL /bin/bash -c", "Dockerfile:2: SHELL requires the arguments to be in JSON form"),
    ("FROM a\nHEALTHCHECK FOO x", "Dockerfile:2: Unknown type 'FOO' in HEALTHCHECK (try CMD)"),
    ("FROM a\nHEALTHCHECK CMD", "Dockerfile:2: Missing command after HEALTHCHECK CMD"),
    ("FROM a\nONBUILD FROM b", "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nRUN --mount=type=cache,target=/x true", "Dockerfile:2: the --mount and --security options require BuildKit"),
    ("FROM a\nRUN --network=weird true", "Dockerfile:2: unsupported network mode 'weird': use default, none or host"),
    ("FROM", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM a b", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM a to b", "Dockerfile:1: FROM requires either one or three arguments"),
    ("RUN x", "Dockerfile:1: no build stage in current context"),
    ("FROM a AS x\nFROM b AS X", "Dockerfile:2: duplicate stage name 'x'"),
    ("FROM a AS 1x", "Dockerfile:1: invalid name for build stage: '1x', name can't start with a number or contain symbols"),
])
def test_plan_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as err:
        plan(parse(text))
    assert str(err.value) == message


def test_error_names_the_dockerfile() -> None:
    with pytest.raises(DockerfileError, match=r"^app\.Dockerfile:3: unknown instruction: NOPE$"):
        plan(parse("FROM a\nRUN x\nNOPE", "app.Dockerfile"), "app.Dockerfile")


def test_meta_args_and_stages() -> None:
    p = plan(parse("ARG V=1\nARG B\nFROM busybox:${V} AS base\nRUN a\nFROM base\nCMD x\n"))
    assert [m.args for m in p.meta_args] == ["V=1", "B"]
    assert [(s.name, s.base, len(s.commands)) for s in p.stages] == [("base", "busybox:${V}", 1), ("", "base", 1)]
    assert p.stage("BASE") is p.stages[0] and p.stage("1") is p.stages[1] and p.stage("busybox") is None


def test_needed_stages_skip_unrelated_ones() -> None:
    p = plan(parse("FROM a AS one\nFROM a AS two\nFROM a AS three\nCOPY --from=one x y\n"
                   "FROM two AS four\nFROM a AS five\n"))
    assert [s.name for s in needed_stages(p, target_stage(p, "three"))] == ["one", "three"]
    assert [s.name for s in needed_stages(p, target_stage(p, "four"))] == ["two", "four"]
    assert [s.name for s in needed_stages(p, target_stage(p, ""))] == ["five"]
    with pytest.raises(InvalidArgument, match="^failed to reach build target nope in Dockerfile$"):
        target_stage(p, "nope")
