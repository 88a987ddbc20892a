"""The dependency direction of DESIGN.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "berth"
BASE = {"errors", "types"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "types": {"errors"},
    "state": BASE,
    "images": BASE | {"state"},
    "runtime": BASE | {"state"},
    "network": BASE | {"state"},
    "volumes": BASE | {"state"},
    "builder": BASE | {"state", "images", "runtime", "network", "volumes"},
    "engine": BASE | {"state", "images", "runtime", "network", "volumes", "builder"},
    "registry": BASE | {"state"},
    "ecr": BASE | {"state", "registry"},
    "scheduler": BASE,
    "ecs": BASE | {"state", "scheduler"},
    "controllers": BASE | {"state", "ecs", "scheduler"},
    # the agent runs tasks on its host's engine through a Protocol it declares (agent/_engine.py);
    # its adapter reaches the engine's services only as objects handed to it by the daemon
    "agent": BASE | {"ecs", "images", "state"},
    "elb": BASE | {"state"},
    "secrets": BASE | {"state"},  # SSM + Secrets Manager over the control-plane store
    "logs": BASE | {"state"},  # CloudWatch Logs: groups and streams in the store, events in segment files
    "api": BASE,  # the shared HTTP server and wire-shape helpers
    "api/docker": BASE | {"api", "engine", "builder", "images"},
    "api/aws": BASE | {"api", "ecr", "registry", "ecs", "scheduler", "elb", "secrets", "logs"},
    # The CLI talks to the daemon over HTTP; it only launches the daemon (`berth daemon`) and
    # runs the registry's offline garbage collection (`berth registry gc`).
    "cli": BASE | {"daemon", "registry"},
}


def _part(module_path: tuple[str, ...]) -> str:
    if module_path[0] == "api" and len(module_path) > 1 and module_path[1] in ("docker", "aws"):
        return f"api/{module_path[1]}"
    return module_path[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "berth" and len(parts) > 1:
                found.add(_part(tuple(parts[1:])))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] not in ("__init__.py", "daemon"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_dependency_direction(path: Path) -> None:
    part = _part(path.relative_to(SRC).parts)
    allowed = ALLOWED[part] | {part}
    assert _imports(path) <= allowed, f"{part} may not import {sorted(_imports(path) - allowed)}"



def _private_imports(text: str, own: str) -> list[str]:
    """`berth.<pkg>._x` modules (or `_x` names) the source imports from packages other than
    `own`: a package's surface is its `__init__`, its private modules are its own business."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("berth."):
            parts, names = node.module.split(".")[1:], [a.name for a in node.names]
            if parts[0] != own and any(x.startswith("_") for x in parts + names):
                found.append(f"{node.module} ({', '.join(names)})")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")[1:] if alias.name.startswith("berth.") else []
                if parts and parts[0] != own and any(x.startswith("_") for x in parts):
                    found.append(alias.name)
    return found


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_another_packages_private_module(path: Path) -> None:
    assert _private_imports(path.read_text(), path.relative_to(SRC).parts[0].removesuffix(".py")) == []


def test_the_private_import_rule_sees_both_import_forms() -> None:
    text = ("from berth.images._extract import apply_xattrs\nimport berth.volumes._options\n"
            "from berth.engine._own import x\nfrom berth.images import _hidden\nfrom berth.images import ImageStore\n")
    assert sorted(_private_imports(text, "engine")) == [
        "berth.images (_hidden)", "berth.images._extract (apply_xattrs)", "berth.volumes._options"]
