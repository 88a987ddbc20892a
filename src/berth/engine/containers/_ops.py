"""Introspection and housekeeping verbs' logic: `docker top`, `docker container prune`,
`docker rename` checks. Pure apart from `run_ps`; ContainerService applies the results."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from typing import Any

from berth.engine.containers import _config as cfg
from berth.engine import filters as filters_mod
from berth.engine.containers._list_filters import matches_filters
from berth.engine.containers._model import Container
from berth.errors import InvalidArgument

PRUNABLE = ("exited", "created", "dead")


def run_ps(ps_args: str) -> str:
    """`ps` over the whole host (`-ef` unless the client chose other options)."""
    args = ps_args.split() if ps_args else ["-ef"]
    out = subprocess.run(["ps", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise InvalidArgument(f"Error running ps: {out.stderr.strip()}")
    return out.stdout


def ps_table(ps_output: str, pids: set[int]) -> dict[str, Any]:
    """`docker top`'s body: ps's titles and the rows whose PID belongs to the container."""
    lines = ps_output.splitlines()
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidArgument("Couldn't find PID field in ps output")
    pid_at = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_at and fields[pid_at].isdigit() and int(fields[pid_at]) in pids:
            rows.append(fields)
    return {"Titles": titles, "Processes": rows}


def prune_candidates(containers: Iterable[Container], filters: dict[str, list[str]]) -> list[Container]:
    """Stopped containers that `docker container prune` removes (label/until filters honoured;
    any other filter is refused before anything is deleted)."""
    filters_mod.check_keys(filters, ("label", "until"))
    until = min((filters_mod.timestamp(v) for v in filters.get("until", [])), default=None)
    labels = {k: v for k, v in filters.items() if k == "label"}
    return [c for c in containers
            if c.state.status in PRUNABLE and matches_filters(c, labels)
            and (until is None or filters_mod.timestamp(c.created) <= until)]


def check_rename(container: Container, new_name: str) -> str:
    """The validated new name; InvalidArgument with moby's wording when empty or unchanged."""
    if not new_name:
        raise InvalidArgument("Neither old nor new names may be empty")
    name = cfg.validate_name(new_name)
    if name == container.name:
        raise InvalidArgument("Renaming a container with the same name as its current name")
    return name
