"""Instructions checked and grouped into build stages (pure).

`plan(dockerfile)` validates every instruction the way BuildKit's `instructions.Parse` does
(keyword known, flags allowed, argument count) before anything runs, and returns the stages.
`needed_stages(plan, target)` is the set of stages a target depends on (FROM <stage> and
COPY --from=<stage>), so only those are built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from berth.builder._errors import DockerfileError
from berth.builder.dockerfile import Dockerfile, Instruction, parse_words
from berth.errors import InvalidArgument

_FLAGS: dict[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "RUN": frozenset({"network", "mount", "security"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "ADD": frozenset({"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
    "ONBUILD": frozenset(),
}
KEYWORDS = frozenset({
    "FROM", "RUN", "CMD", "ENTRYPOINT", "ENV", "ARG", "LABEL", "EXPOSE", "WORKDIR", "USER",
    "VOLUME", "COPY", "ADD", "SHELL", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "MAINTAINER",
})
# Instructions that need a non-empty argument.
_AT_LEAST_ONE = frozenset({"RUN", "CMD", "ENTRYPOINT", "ENV", "ARG", "LABEL", "EXPOSE", "VOLUME",
                           "SHELL", "HEALTHCHECK", "ONBUILD"})
_EXACTLY_ONE = frozenset({"WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"})
_Fail = Callable[[str], DockerfileError]  # builds the error for the instruction being checked


@dataclass(frozen=True)
class Stage:
    index: int
    name: str                              # lower-cased `AS` name, "" when unnamed
    base: str                              # image or stage reference, unexpanded
    from_: Instruction
    commands: tuple[Instruction, ...]

    @property
    def platform(self) -> str | None:
        return self.from_.flag("platform")


@dataclass(frozen=True)
class Plan:
    meta_args: tuple[Instruction, ...]     # ARGs before the first FROM
    stages: tuple[Stage, ...]
    escape: str = "\\"

    def stage(self, ref: str) -> Stage | None:
        """A stage by `AS` name (case-insensitive) or index; None for anything else (an image)."""
        wanted = ref.lower()
        for stage in self.stages:
            if stage.name and stage.name == wanted:
                return stage
        if wanted.isdigit() and int(wanted) < len(self.stages):
            return self.stages[int(wanted)]
        return None


def plan(dockerfile: Dockerfile, filename: str = "Dockerfile") -> Plan:
    """Validate and group; raises DockerfileError naming the line and the instruction."""
    meta: list[Instruction] = []
    stages: list[tuple[Instruction, list[Instruction]]] = []
    for instruction in dockerfile.instructions:
        check(instruction, filename, dockerfile.escape)
        if instruction.keyword == "FROM":
            stages.append((instruction, []))
        elif not stages:
            if instruction.keyword != "ARG":
                raise DockerfileError(filename, instruction.line, "no build stage in current context")
            meta.append(instruction)
        else:
            stages[-1][1].append(instruction)
    built = tuple(_stage(i, f, cmds, filename) for i, (f, cmds) in enumerate(stages))
    _check_stage_names(built, filename)
    return Plan(meta_args=tuple(meta), stages=built, escape=dockerfile.escape)


def check(instruction: Instruction, filename: str, escape: str = "\\") -> None:
    """One instruction's keyword, flags and argument count."""
    keyword = instruction.keyword

    def fail(message: str) -> DockerfileError:
        return DockerfileError(filename, instruction.line, message)

    if keyword not in KEYWORDS:
        raise fail(f"unknown instruction: {keyword}")
    allowed = _FLAGS.get(keyword, frozenset())
    for name, _ in instruction.flags:
        if name not in allowed:
            raise fail(f"{keyword}: unknown flag: {name}")
    args = instruction.args.strip()
    if keyword in _AT_LEAST_ONE and not args:
        raise fail(f"{keyword} requires at least one argument")
    if keyword in _EXACTLY_ONE and (not args or (keyword != "MAINTAINER" and len(parse_words(args, escape)) != 1)):
        raise fail(f"{keyword} requires exactly one argument")
    _CHECKS.get(keyword, _no_check)(instruction, fail, escape)


def _no_check(instruction: Instruction, fail: _Fail, escape: str) -> None:
    return None


def _check_from(instruction: Instruction, fail: _Fail, escape: str) -> None:
    words = instruction.args.split()
    if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
        raise fail("FROM requires either one or three arguments")


def _check_copy(instruction: Instruction, fail: _Fail, escape: str) -> None:
    words = list(instruction.json_args) if instruction.json_args is not None else instruction.args.split()
    if not words:
        raise fail(f"{instruction.keyword} requires at least two arguments")
    if len(words) < 2:
        raise fail(f"{instruction.keyword} requires at least two arguments, but only one was provided. "
                   "Destination could not be determined")
    if instruction.keyword == "ADD" and instruction.flag("from") is not None:
        raise fail("ADD: unknown flag: from")


def _check_run(instruction: Instruction, fail: _Fail, escape: str) -> None:
    if instruction.flag("mount") is not None or instruction.flag("security") is not None:
        raise fail("the --mount and --security options require BuildKit")
    network = instruction.flag("network")
    if network is not None and network not in ("default", "none", "host"):
        raise fail(f"unsupported network mode {network!r}: use default, none or host")


def _check_shell(instruction: Instruction, fail: _Fail, escape: str) -> None:
    if instruction.json_args is None:
        raise fail("SHELL requires the arguments to be in JSON form")
    if not instruction.json_args:
        raise fail("SHELL requires at least one argument")


def _check_env(instruction: Instruction, fail: _Fail, escape: str) -> None:
    words = parse_words(instruction.args, escape)
    if words and "=" not in words[0]:
        if len(instruction.args.split(None, 1)) < 2:
            raise fail(f"{instruction.keyword} must have two arguments")
        return
    for word in words:
        if "=" not in word:
            raise fail(f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        if not word.split("=", 1)[0]:
            raise fail(f"{instruction.keyword} names can not be blank")


def _check_arg(instruction: Instruction, fail: _Fail, escape: str) -> None:
    for word in parse_words(instruction.args, escape):
        if not word.split("=", 1)[0]:
            raise fail("ARG names can not be blank")


def _check_healthcheck(instruction: Instruction, fail: _Fail, escape: str) -> None:
    kind = instruction.args.split(None, 1)[0].upper()
    if kind == "NONE":
        if instruction.args.split(None, 1)[1:] or instruction.flags:
            raise fail("HEALTHCHECK NONE takes no arguments")
        return
    if kind != "CMD":
        raise fail(f"Unknown type {kind!r} in HEALTHCHECK (try CMD)")
    if not instruction.args.split(None, 1)[1:]:
        raise fail("Missing command after HEALTHCHECK CMD")


def _check_onbuild(instruction: Instruction, fail: _Fail, escape: str) -> None:
    trigger = instruction.args.split(None, 1)[0].upper()
    if trigger in ("ONBUILD", "FROM", "MAINTAINER"):
        raise fail(f"{trigger} isn't allowed as an ONBUILD trigger")
    if trigger not in KEYWORDS:
        raise fail(f"unknown instruction: {trigger}")


_CHECKS = {
    "FROM": _check_from, "COPY": _check_copy, "ADD": _check_copy, "RUN": _check_run,
    "SHELL": _check_shell, "ENV": _check_env, "LABEL": _check_env, "ARG": _check_arg,
    "HEALTHCHECK": _check_healthcheck, "ONBUILD": _check_onbuild,
}


def _stage(index: int, from_: Instruction, commands: list[Instruction], filename: str) -> Stage:
    words = from_.args.split()
    name = words[2].lower() if len(words) == 3 else ""
    return Stage(index=index, name=name, base=words[0], from_=from_, commands=tuple(commands))


def _check_stage_names(stages: tuple[Stage, ...], filename: str) -> None:
    seen: set[str] = set()
    for stage in stages:
        if not stage.name:
            continue
        if stage.name in seen:
            raise DockerfileError(filename, stage.from_.line, f"duplicate stage name {stage.name!r}")
        if not stage.name[0].isalpha() or not all(c.isalnum() or c in "-_." for c in stage.name):
            raise DockerfileError(filename, stage.from_.line, f"invalid name for build stage: {stage.name!r}, "
                                  "name can't start with a number or contain symbols")
        seen.add(stage.name)


def target_stage(p: Plan, target: str, filename: str = "Dockerfile") -> Stage:
    """The stage `--target` names (by `AS` name, case-insensitively, as dockerd's HasStage),
    or the last one.

    Raises:
        InvalidArgument: no stage has that name, in dockerd's words (a 400 before any output).
    """
    if not target:
        return p.stages[-1]
    for stage in p.stages:
        if stage.name and stage.name == target.lower():
            return stage
    raise InvalidArgument(f"failed to reach build target {target} in Dockerfile")


def needed_stages(p: Plan, target: Stage) -> list[Stage]:
    """The stages `target` depends on, in Dockerfile order (dependencies always come first).

    References are taken literally here (no ARG expansion in `FROM ${X}` or `--from`), which is
    enough to skip unrelated stages; the executor builds a stage that only an expanded reference
    names when it gets there.
    """
    wanted = {target.index}
    for stage in reversed(p.stages[: target.index + 1]):
        if stage.index not in wanted:
            continue
        for ref in _references(stage):
            dep = p.stage(ref)
            if dep is not None and dep.index < stage.index:
                wanted.add(dep.index)
    return [s for s in p.stages if s.index in wanted]


def _references(stage: Stage) -> list[str]:
    refs = [stage.base]
    refs += [c.flag("from") or "" for c in stage.commands if c.keyword == "COPY" and c.flag("from")]
    return refs
