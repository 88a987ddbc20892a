"""Several `label` filters must all hold (moby's MatchKVList): ps, prune, volume and network ls."""

from __future__ import annotations

import secrets

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root


def test_two_label_filters_select_what_carries_both(daemon: BerthDaemon) -> None:
    tag = secrets.token_hex(3)
    both, only_a = f"both-{tag}", f"onlya-{tag}"
    daemon.docker("create", "--name", both, "-l", f"a={tag}", "-l", f"b={tag}", "busybox", "true", check=True)
    daemon.docker("create", "--name", only_a, "-l", f"a={tag}", "busybox", "true", check=True)
    vols = [f"v{i}-{tag}" for i in range(2)]
    daemon.docker("volume", "create", "--label", f"a={tag}", "--label", f"b={tag}", vols[0], check=True)
    daemon.docker("volume", "create", "--label", f"a={tag}", vols[1], check=True)
    try:
        names = daemon.docker("ps", "-a", "--filter", f"label=a={tag}", "--filter", f"label=b={tag}",
                              "--format", "{{.Names}}", check=True).stdout.split()
        assert names == [both]
        listed = daemon.docker("volume", "ls", "-q", "--filter", f"label=a={tag}", "--filter", f"label=b={tag}",
                               check=True).stdout.split()
        assert listed == [vols[0]]
        # the prune deletes only what carries both labels: one label is not enough
        daemon.docker("container", "prune", "-f", "--filter", f"label=a={tag}", "--filter", f"label=b={tag}",
                      check=True)
        left = daemon.docker("ps", "-a", "--filter", f"label=a={tag}", "--format", "{{.Names}}", check=True)
        assert left.stdout.split() == [only_a]
    finally:
        daemon.docker("rm", "-f", both, only_a)
        daemon.docker("volume", "rm", "-f", *vols)
