#!/usr/bin/env python3
"""Density: start 100 `busybox sleep` containers (8 at a time), memory per container, removal time.

For berth and, in the same run, a private dockerd (when installed):
  start-all   wall time from the first `docker run -d` until every container runs
  mem/ctr     (engine-side memory with N containers − with none) / N, in MiB, summed as PSS over the
              engine's processes: berth daemon + conmons; dockerd + containerd + containerd-shims
  remove-all  wall time of `docker rm -f` for all of them (8 at a time)
Each figure is the median over --rounds rounds. Usage: .venv/bin/python bench/density.py [-c 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run_latency import DOCKERD, PrivateDockerd, docker, load_busybox_into  # noqa: E402
from tests.helpers import BerthDaemon  # noqa: E402

BERTH_PROCS = ("berth", "conmon")
DOCKER_PROCS = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2")


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def engine_pss(names: tuple[str, ...], marker: str) -> int:
    """PSS (KiB) of processes whose name is in `names` and whose command line mentions `marker`."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if (comm in names or any(comm.startswith(n[:15]) for n in names)) and marker.encode() in cmdline:
            total += pss_kib(int(entry.name))
    return total


def one_round(env: dict[str, str], count: int, names: tuple[str, ...], marker: str) -> tuple[float, float, float]:
    base = engine_pss(names, marker)
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda i: docker(env, "run", "-d", "busybox", "sleep", "3600"), range(count)))
    failed = [r.stderr.strip() for r in runs if r.returncode != 0]
    if failed:  # a benchmark of an engine that failed some runs measures nothing
        raise RuntimeError(f"{len(failed)} of {count} `docker run -d` failed, e.g. {failed[0]}")
    ids = [r.stdout.strip() for r in runs]
    deadline = time.monotonic() + 300
    while len(docker(env, "ps", "-q").stdout.split()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} containers running after 300 s")
        time.sleep(0.05)
    start_all = time.perf_counter() - started
    time.sleep(1.0)  # let the engines settle before measuring memory
    per_ctr = (engine_pss(names, marker) - base) / count / 1024
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda cid: docker(env, "rm", "-f", cid), ids))
    remove_all = time.perf_counter() - started
    return start_all, per_ctr, remove_all


def measure(env: dict[str, str], count: int, rounds: int, names: tuple[str, ...], marker: str) -> list[float]:
    samples = [one_round(env, count, names, marker) for _ in range(rounds)]
    return [statistics.median(s[i] for s in samples) for i in range(3)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--count", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    results: dict[str, list[float]] = {}
    berth = BerthDaemon()
    peer: PrivateDockerd | None = None
    try:
        berth.start()
        berth.bootstrap_busybox()
        results["berth"] = measure(berth.env, args.count, args.rounds, BERTH_PROCS, str(berth.base))
        if DOCKERD:
            peer = PrivateDockerd()
            peer.start()
            load_busybox_into(peer, berth)
            # containerd and its shims do not name the data root; dockerd's exec root does.
            results["dockerd"] = measure(peer.env, args.count, args.rounds, DOCKER_PROCS, "")
    finally:
        berth.destroy()
        if peer is not None:
            peer.stop()

    labels = ("start-all s", "mem/ctr MiB", "remove-all s")
    print(f"{'figure':<14}{'berth':>10}{'dockerd':>10}{'ratio':>8}   (medians of {args.rounds} rounds, "
          f"{args.count} containers)")
    for i, label in enumerate(labels):
        b = results["berth"][i]
        d = results.get("dockerd", [None] * 3)[i]
        ratio = f"{b / d:.2f}x" if d else "-"
        print(f"{label:<14}{b:>10.2f}{(f'{d:.2f}' if d else '-'):>10}{ratio:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
