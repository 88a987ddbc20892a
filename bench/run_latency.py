#!/usr/bin/env python3
"""Container start latency through the docker CLI: berth vs Debian's docker.io engine.

Scenarios (median wall time over N runs, after one warm-up):
  run-rm-bridge   docker run --rm busybox true
  run-rm-none     docker run --rm --network none busybox true
  first-200       docker run -d -p PORT:80 busybox httpd …  until GET / answers 200
                  (the `docker rm -f` afterwards is not timed)

Each engine runs privately: berth on a temp root with its own bridge; dockerd (when installed)
with its own data root, exec root, socket and bridge. Everything is stopped and removed at the end.
Usage: .venv/bin/python bench/run_latency.py [-n 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import DOCKER, BerthDaemon  # noqa: E402

PORT = 18380
DOCKERD = shutil.which("dockerd")
PEER_BRIDGE, PEER_SUBNET = "bdock0", "10.89.0.1/24"


def docker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=120)


def timed(fn: Callable[[], None], n: int, after: Callable[[], None] | None = None) -> list[float]:
    samples = []
    for i in range(n + 1):
        start = time.perf_counter()
        fn()
        elapsed = (time.perf_counter() - start) * 1000
        if after:
            after()
        if i:  # the first run warms caches and is not counted
            samples.append(elapsed)
    return samples


def wait_200(url: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"{url} never answered 200")


def scenarios(env: dict[str, str], image: str, n: int) -> dict[str, float]:
    def run_rm(*extra: str) -> Callable[[], None]:
        def go() -> None:
            r = docker(env, "run", "--rm", *extra, image, "true")
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
        return go

    def first_200() -> None:
        r = docker(env, "run", "-d", "--name", "bench-web", "-p", f"{PORT}:80", image,
                   "httpd", "-f", "-p", "80", "-h", "/etc")
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        wait_200(f"http://127.0.0.1:{PORT}/passwd")

    def remove_web() -> None:
        docker(env, "rm", "-f", "bench-web")

    return {
        "run-rm-bridge": statistics.median(timed(run_rm(), n)),
        "run-rm-none": statistics.median(timed(run_rm("--network", "none"), n)),
        "first-200": statistics.median(timed(first_200, n, remove_web)),
    }


class PrivateDockerd:
    """dockerd on its own socket, data root and bridge (reference/host-notes.md §9.1)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-dockerd-"))
        self.sock = self.dir / "docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_CONFIG": str(self.dir / "cfg")}

    def start(self) -> None:
        subprocess.run(["ip", "link", "add", PEER_BRIDGE, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", PEER_SUBNET, "dev", PEER_BRIDGE], check=True)
        subprocess.run(["ip", "link", "set", PEER_BRIDGE, "up"], check=True)
        log = open(self.dir / "dockerd.log", "wb")
        self.proc = subprocess.Popen(
            [DOCKERD, "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
             "--pidfile", str(self.dir / "dockerd.pid"), "-H", f"unix://{self.sock}", "--bridge", PEER_BRIDGE,
             "--iptables=true", "--storage-driver", "overlay2"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if docker(self.env, "version").returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("dockerd did not start")

    def stop(self) -> None:
        if self.proc is not None:
            docker(self.env, "rm", "-f", "bench-web")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["ip", "link", "del", PEER_BRIDGE], capture_output=True)
        _remove_docker_chains()
        subprocess.run(["umount", "-R", "-l", str(self.dir)], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def _remove_docker_chains() -> None:
    """dockerd leaves its DOCKER* chains and MASQUERADE rule behind (host-notes §9.1)."""
    for table in ("nat", "filter"):
        rules = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout
        for line in rules.splitlines():
            if line.startswith("-A") and ("DOCKER" in line or PEER_BRIDGE in line
                                          or PEER_SUBNET.replace(".1/", ".0/") in line):
                if not line.split()[1].startswith("DOCKER"):
                    subprocess.run(["iptables", "-t", table, *line.replace("-A", "-D", 1).split()],
                                   capture_output=True)
        for line in rules.splitlines():
            if line.startswith("-N DOCKER"):
                chain = line.split()[1]
                subprocess.run(["iptables", "-t", table, "-F", chain], capture_output=True)
                subprocess.run(["iptables", "-t", table, "-X", chain], capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=15, help="measured runs per scenario")
    args = parser.parse_args()

    berth = BerthDaemon()
    results: dict[str, dict[str, float]] = {}
    peer: PrivateDockerd | None = None
    try:
        berth.start()
        berth.bootstrap_busybox()
        results["berth"] = scenarios(berth.env, "busybox", args.n)
        if DOCKERD:
            peer = PrivateDockerd()
            peer.start()
            load_busybox_into(peer, berth)
            results["dockerd"] = scenarios(peer.env, "busybox", args.n)
    finally:
        berth.destroy()
        if peer is not None:
            peer.stop()

    print_comparison(results, args.n)
    return 0


def load_busybox_into(peer: "PrivateDockerd", berth: BerthDaemon) -> None:
    """The peer runs the very image berth runs: saved from berth, loaded into dockerd."""
    saved = subprocess.run([DOCKER, "save", "busybox"], env=berth.env, capture_output=True, check=True).stdout
    subprocess.run([DOCKER, "load"], env=peer.env, input=saved, capture_output=True, check=True)


def print_comparison(results: dict[str, dict[str, float]], n: int) -> None:
    """Medians per scenario for berth and dockerd, and their ratio."""
    print(f"{'scenario':<16}{'berth ms':>10}{'dockerd ms':>12}{'ratio':>8}   (medians, n={n})")
    for name, value in results["berth"].items():
        other = results.get("dockerd", {}).get(name)
        ratio = f"{value / other:.2f}x" if other else "-"
        print(f"{name:<16}{value:>10.1f}{(f'{other:.1f}' if other else '-'):>12}{ratio:>8}")
    if "dockerd" not in results:
        print("dockerd not installed (make bench-deps installs docker.io): berth figures only")


if __name__ == "__main__":
    sys.exit(main())
