"""Instructions that change only the image config (pure): CMD, ENTRYPOINT, ENV, LABEL, EXPOSE,
USER, VOLUME, STOPSIGNAL, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER, and WORKDIR's path.

Each returns the new `config` sub-dict and the history text moby writes for it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from berth.builder import imageconfig as ic
from berth.builder.dockerfile import Instruction, json_list, parse_words
from berth.builder.shellwords import ShellLex

Config = ic.Config
METADATA_KEYWORDS = frozenset({"CMD", "ENTRYPOINT", "ENV", "LABEL", "EXPOSE", "USER", "VOLUME",
                               "STOPSIGNAL", "SHELL", "HEALTHCHECK", "ONBUILD", "MAINTAINER"})


@dataclass(frozen=True)
class Expander:
    """Variable expansion bound to the variables in scope at one step."""

    lex: ShellLex
    vars: Mapping[str, str]

    def word(self, text: str) -> str:
        return self.lex.process_word(text, self.vars)

    def words(self, text: str) -> list[str]:
        return self.lex.process_words(text, self.vars)


@dataclass(frozen=True)
class MetaResult:
    config: Config
    history: str                    # text after `#(nop) `
    cmd_set: bool = False           # CMD was given in this stage
    author: str | None = None       # MAINTAINER


def apply(instruction: Instruction, c: Config, ex: Expander, *, cmd_set: bool) -> MetaResult:
    """Apply one metadata instruction to the config sub-dict `c`."""
    return _HANDLERS[instruction.keyword](instruction, c, ex, cmd_set)


def shell_of(c: Config) -> list[str]:
    return list(c.get("Shell") or ic.DEFAULT_SHELL)


def command(instruction: Instruction, c: Config) -> list[str]:
    """Exec form as given, or the shell form run through the config's SHELL."""
    if instruction.json_args is not None:
        return list(instruction.json_args)
    return shell_of(c) + [instruction.args]


def _cmd(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    cmd = command(i, c)
    return MetaResult(ic.set_key(c, "Cmd", cmd), f"CMD {ic.go_list(cmd)}", cmd_set=True)


def _entrypoint(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    entrypoint = command(i, c)
    out = ic.set_key(c, "Entrypoint", entrypoint)
    if not cmd_set:  # an inherited CMD does not survive a new ENTRYPOINT (moby)
        out = ic.set_key(out, "Cmd", None)
    return MetaResult(out, f"ENTRYPOINT {ic.go_list(entrypoint)}", cmd_set=cmd_set)


def key_values(i: Instruction, ex: Expander, lex: ShellLex) -> list[tuple[str, str]]:
    """ENV/LABEL pairs, expanded; the legacy `ENV key value words` form gives one pair."""
    words = parse_words(i.args, lex.escape)
    if words and "=" not in words[0]:
        key, _, value = i.args.strip().partition(" ")
        return [(ex.word(key), ex.word(value.strip()))]
    pairs = []
    for word in words:
        key, _, value = word.partition("=")
        pairs.append((ex.word(key), ex.word(value)))
    return pairs


def _env(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    pairs = key_values(i, ex, ex.lex)
    text = "ENV " + " ".join(f"{k}={v}" for k, v in pairs)
    return MetaResult(ic.set_env(c, pairs), text, cmd_set=cmd_set)


def _label(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    pairs = key_values(i, ex, ex.lex)
    text = "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)
    return MetaResult(ic.set_labels(c, pairs), text, cmd_set=cmd_set)


def _expose(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    specs = [s for w in i.args.split() for s in ex.words(w)]
    ports = [p for s in specs for p in ic.expand_port_spec(s)]
    return MetaResult(ic.expose(c, specs), "EXPOSE " + " ".join(ports), cmd_set=cmd_set)


def _user(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    user = ex.word(i.args.strip())
    return MetaResult(ic.set_key(c, "User", user), f"USER {user}", cmd_set=cmd_set)


def _volume(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    raw = list(i.json_args) if i.json_args is not None else i.args.split()
    paths = [ex.word(p) for p in raw]
    return MetaResult(ic.add_volumes(c, paths), f"VOLUME [{' '.join(paths)}]", cmd_set=cmd_set)


def _stopsignal(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    signal = ex.word(i.args.strip())
    return MetaResult(ic.set_key(c, "StopSignal", signal), f"STOPSIGNAL {signal}", cmd_set=cmd_set)


def _shell(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    shell = list(i.json_args or ())
    return MetaResult(ic.set_key(c, "Shell", shell), f"SHELL [{' '.join(shell)}]", cmd_set=cmd_set)


def _healthcheck(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    kind, _, rest = i.args.strip().partition(" ")
    if kind.upper() == "NONE":
        check: dict[str, object] = {"Test": ["NONE"]}
    else:
        rest = rest.strip()
        probe = Instruction(keyword="CMD", args=rest, original=rest, line=i.line, end_line=i.end_line,
                            json_args=json_list(rest))
        test = ["CMD", *probe.json_args] if probe.json_args is not None else ["CMD-SHELL", rest]
        check = ic.healthcheck(test, dict(i.flags))
    return MetaResult(ic.set_key(c, "Healthcheck", check), f"HEALTHCHECK {check}", cmd_set=cmd_set)


def _onbuild(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    keyword, _, rest = i.args.strip().partition(" ")
    trigger = f"{keyword.upper()} {rest.strip()}".strip()
    return MetaResult(ic.add_onbuild(c, trigger), f"ONBUILD {trigger}", cmd_set=cmd_set)


def _maintainer(i: Instruction, c: Config, ex: Expander, cmd_set: bool) -> MetaResult:
    author = ex.word(i.args.strip())
    return MetaResult(c, f"MAINTAINER {author}", cmd_set=cmd_set, author=author)


def workdir(current: str, text: str, ex: Expander) -> str:
    """The new WORKDIR: relative paths build on the current one; always absolute and clean."""
    path = ex.word(text.strip())
    joined = posixpath.join(current or "/", path)
    return posixpath.normpath(joined) if joined != "/" else "/"


_HANDLERS: dict[str, Callable[[Instruction, Config, Expander, bool], MetaResult]] = {
    "CMD": _cmd, "ENTRYPOINT": _entrypoint, "ENV": _env, "LABEL": _label, "EXPOSE": _expose,
    "USER": _user, "VOLUME": _volume, "STOPSIGNAL": _stopsignal, "SHELL": _shell,
    "HEALTHCHECK": _healthcheck, "ONBUILD": _onbuild, "MAINTAINER": _maintainer,
}
