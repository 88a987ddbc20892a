"""The public surfaces of the registry client, ECR and the AWS layer import and list what they export."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module", ["berth.images.distribution", "berth.ecr", "berth.api.aws"])
def test_exports_resolve(module: str) -> None:
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name
