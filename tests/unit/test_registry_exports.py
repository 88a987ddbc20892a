"""The registry's public surface stays what its docstring promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import berth.registry
from berth.registry import RegistryConfig, open_registry


def test_exports_resolve() -> None:
    for name in berth.registry.__all__:
        assert getattr(berth.registry, name) is not None, name
        assert name in (berth.registry.__doc__ or ""), f"{name} missing from the package docstring"


def test_gc_cli_on_an_empty_registry(tmp_path: Path) -> None:
    registry, db = open_registry(RegistryConfig(root=tmp_path / "registry", fsync=False))
    db.close()
    done = subprocess.run([sys.executable, "-m", "berth.cli.main", "registry", "gc", "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "removed 0 blob(s)" in done.stdout
