from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import BerthDaemon, conmons_under, mounts_under

pytestmark = pytest.mark.root


@pytest.fixture(scope="session")
def daemon() -> Iterator[BerthDaemon]:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    d = BerthDaemon()
    try:
        d.start()
        d.bootstrap_busybox()
        yield d
    finally:
        base = d.base
        d.destroy()
        assert conmons_under(base) == [], "conmon processes left behind"
        assert mounts_under(base) == [], "mounts left behind"


@pytest.fixture()
def private() -> Iterator[BerthDaemon]:
    """A daemon of the test's own, for tests that restart, kill or reconfigure it."""
    d = BerthDaemon()
    try:
        d.start()
        d.bootstrap_busybox()
        yield d
    finally:
        d.destroy()
