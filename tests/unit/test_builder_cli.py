"""`berth build`: flags to /build parameters, and the context tar the CLI sends."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from berth.cli.build import build_params, context_body
from berth.cli.failures import CliError
from berth.cli.main import build_parser


def names(body) -> set[str]:
    with tarfile.open(fileobj=body) as tar:
        return {m.name for m in tar.getmembers()}


def test_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_ENV", "e")
    args = build_parser().parse_args(["build", "-t", "a", "-t", "b:2", "--build-arg", "X=1", "--build-arg", "FROM_ENV",
                                      "--label", "k=v", "--target", "t", "-q", "--no-cache", "--network", "none", "."])
    params = build_params(args, "Dockerfile")
    assert params["t"] == ["a", "b:2"] and params["dockerfile"] == "Dockerfile"
    assert json.loads(params["buildargs"]) == {"X": "1", "FROM_ENV": "e"}
    assert json.loads(params["labels"]) == {"k": "v"}
    assert (params["target"], params["q"], params["nocache"], params["networkmode"]) == ("t", "1", "1", "none")


def test_context_applies_dockerignore_but_keeps_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / ".dockerignore").write_text("*\n!keep\n")
    (tmp_path / "keep").write_text("k")
    (tmp_path / "drop").write_text("d")
    body, name = context_body(str(tmp_path), None, io.BytesIO())
    assert name is None and names(body) == {"Dockerfile", ".dockerignore", "keep"}


def test_dockerfile_outside_the_context(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    outside = tmp_path / "other.Dockerfile"
    outside.write_text("FROM busybox\n")
    body, name = context_body(str(tmp_path / "ctx"), str(outside), io.BytesIO())
    assert name is not None and name.startswith(".dockerfile.") and name in names(body)


def test_stdin_dockerfile_and_tar(tmp_path: Path) -> None:
    body, name = context_body("-", None, io.BytesIO(b"FROM busybox\n"))
    assert name == "Dockerfile" and names(body) == {"Dockerfile"}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("Dockerfile"))
    body, name = context_body("-", None, io.BytesIO(raw.getvalue()))
    assert name is None and names(body) == {"Dockerfile"}


def test_missing_context_dir() -> None:
    with pytest.raises(CliError, match="unable to prepare context"):
        context_body("/nonexistent/ctx", None, io.BytesIO())
