"""The Prometheus text exposition format (0.0.4): samples, label escaping, value formatting, and a
reader. Pure; shared by the daemon's `/metrics` (berth.elb.metrics writes it) and `berth elb top`
(which reads it back over HTTP)."""

from __future__ import annotations

from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Labels
    value: float

    def label(self, key: str) -> str:
        return dict(self.labels).get(key, "")



def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


class ParseError(ValueError):
    pass


def parse(text: str) -> list[Sample]:
    """The samples of a text-format exposition (comments skipped; timestamps ignored)."""
    out: list[Sample] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        labels: list[tuple[str, str]] = []
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            i = brace + 1
            while True:
                while i < len(line) and line[i] in " ,":
                    i += 1
                if i < len(line) and line[i] == "}":
                    i += 1
                    break
                eq = line.find("=", i)
                if eq == -1 or eq + 1 >= len(line) or line[eq + 1] != '"':
                    raise ParseError(f"line {number}: bad label in {line!r}")
                key = line[i:eq].strip()
                j, value = eq + 2, []
                while j < len(line) and line[j] != '"':
                    if line[j] == "\\" and j + 1 < len(line):
                        j += 1
                        value.append({"n": "\n"}.get(line[j], line[j]))
                    else:
                        value.append(line[j])
                    j += 1
                if j >= len(line):
                    raise ParseError(f"line {number}: unterminated label value in {line!r}")
                labels.append((key, "".join(value)))
                i = j + 1
            rest = line[i:].split()
        else:
            name, *rest = line.split()
        if not rest:
            raise ParseError(f"line {number}: no value in {line!r}")
        try:
            value_ = float(rest[0])
        except ValueError as err:
            raise ParseError(f"line {number}: bad value in {line!r}") from err
        out.append(Sample(name, tuple(labels), value_))
    return out
