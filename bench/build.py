#!/usr/bin/env python3
"""Image build time through the docker CLI (legacy builder): berth vs Debian's docker.io engine.

Scenarios (median wall time of `docker build`, after one warm-up build):
  small-cold      3 steps (FROM, RUN, CMD), --no-cache
  small-cached    the same, fully cached
  multi-cold      12 steps, two stages, COPY of 2,000 small files twice, --no-cache
  multi-cached    the same, fully cached

Each engine runs privately (see run_latency.py): berth on a temp root with its own bridge,
dockerd (when installed) with its own data root, socket and bridge; both are removed at the end.
Usage: .venv/bin/python bench/build.py [-n 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_latency import DOCKERD, PrivateDockerd, docker, load_busybox_into, print_comparison  # noqa: E402

from tests.helpers import BerthDaemon  # noqa: E402

SMALL = 'FROM busybox\nRUN echo hello > /hello\nCMD ["cat", "/hello"]\n'
MULTI = """FROM busybox AS build
WORKDIR /src
COPY files/ ./files/
RUN find files -type f | wc -l > count.txt
RUN du -s files > size.txt
FROM busybox
ENV APP=/app
WORKDIR /app
COPY --from=build /src/count.txt /src/size.txt ./
COPY files/ ./files/
LABEL bench=build
CMD ["cat", "count.txt"]
"""
FILES = 2000


def make_contexts(base: Path) -> dict[str, Path]:
    small, multi = base / "small", base / "multi"
    small.mkdir()
    (small / "Dockerfile").write_text(SMALL)
    (multi / "files").mkdir(parents=True)
    (multi / "Dockerfile").write_text(MULTI)
    for i in range(FILES):
        sub = multi / "files" / f"d{i % 20:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i:04d}.txt").write_text(f"file {i}\n" * 4)
    return {"small": small, "multi": multi}


def build_time(env: dict[str, str], context: Path, tag: str, *extra: str) -> float:
    start = time.perf_counter()
    result = docker(env, "build", "-q", "-t", tag, *extra, str(context))
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        raise RuntimeError(f"build of {context.name} failed: {result.stderr}")
    return elapsed


def scenarios(env: dict[str, str], contexts: dict[str, Path], n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, context in contexts.items():
        tag = f"bench-{name}"
        build_time(env, context, tag)  # warm-up: base image unpacked, page cache filled
        out[f"{name}-cold"] = statistics.median(build_time(env, context, tag, "--no-cache") for _ in range(n))
        out[f"{name}-cached"] = statistics.median(build_time(env, context, tag) for _ in range(n))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=7, help="measured builds per scenario")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    berth = BerthDaemon()
    peer: PrivateDockerd | None = None
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        contexts = make_contexts(Path(tmp))
        try:
            berth.start()
            berth.bootstrap_busybox()
            results["berth"] = scenarios(berth.env, contexts, args.n)
            if DOCKERD:
                peer = PrivateDockerd()
                peer.start()
                load_busybox_into(peer, berth)
                results["dockerd"] = scenarios(peer.env, contexts, args.n)
        finally:
            berth.destroy()
            if peer is not None:
                peer.stop()

    print_comparison(results, args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
