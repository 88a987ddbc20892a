#!/usr/bin/env python3
"""A compose project of 50 replicas on its user network: berth vs Debian's dockerd, in one run.

The project is one service, `web`, of busybox `httpd -f` (PID 1, so it ignores SIGTERM and every
stop waits out the grace period, then SIGKILLs), on compose's project network `<project>_default`
(a user-defined bridge network), in two variants: without a published port, and with container
port 80 published on a kernel-chosen host port for each replica (`ports: ["80"]`). Per round and
variant, timed with wall clocks around Debian's docker-compose (v1):

  up      `up -d --scale web=N` until N containers of the project run
          (with ports, every replica then answers GET / on its published port: checked, untimed)
  stop    `stop -t GRACE`; reported as the time beyond the grace period (stop − GRACE)
  rm      `rm -f` of the N stopped containers
  down    a second `up` (timed as another up sample), then `down -t GRACE`: stop + rm + network
          rm; reported beyond the grace period too

Each figure is given twice: `wall`, the whole command as a user waits for it, and `engine`, the
same without the client's own start-up and exit (compose v1 spends about 0.5 s importing itself
before its first request, the same for every engine, and most of a 50-container `rm`): every
engine is reached through bench/socket_clock.py, a byte relay that notes the first request and
the last answer of each command, and `engine` = wall − (first request − launch) − (exit − last
answer).

berth runs as a private daemon (tests.helpers.BerthDaemon, temp root, own bridge); the peer is
Debian's dockerd on its own socket, data root, exec root and bridge (run_latency.PrivateDockerd),
loaded with the very busybox image berth runs. Rounds alternate between the two engines, so both
see the same host load. Each figure is the median over the rounds. Everything is stopped and
removed at the end (compose down, both daemons, the peer's bridge and chains).
Usage: .venv/bin/python bench/compose.py [-c 50] [--rounds 3] [--grace 10] [--no-peer]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run_latency import DOCKERD, PrivateDockerd, load_busybox_into  # noqa: E402
from bench.socket_clock import SocketClock  # noqa: E402
from tests.helpers import BerthDaemon, api, wait_for  # noqa: E402

COMPOSE = shutil.which("docker-compose")
VARIANTS = ("plain", "ports")
FIGURES = ("up", "stop", "rm", "down")
TARGETS = {"up": 0.4, "stop": 0.5, "rm": 0.5}  # ratio berth / dockerd (issue 11 §6)


def compose_file(ports: bool) -> str:
    text = ("services:\n  web:\n    image: busybox\n"
            '    command: ["httpd", "-f", "-p", "80", "-h", "/etc"]\n')
    return text + ('    ports: ["80"]\n' if ports else "")


class Engine:
    """One engine under test: its name, its socket, and the relay the clients reach it through."""

    def __init__(self, name: str, env: dict[str, str], sock: str, relay_dir: Path) -> None:
        self.name = name
        self.sock = sock
        self.clock = SocketClock(sock, str(relay_dir / f"{name}.sock"))
        self.env = {**env, "DOCKER_HOST": f"unix://{self.clock.listen}"}
        self.clock.start()

    def containers(self, project: str, *, all_states: bool = False) -> list[dict[str, Any]]:
        query = '{"label":["com.docker.compose.project=%s"]}' % project
        path = "/containers/json?filters=" + urllib.request.quote(query) + ("&all=1" if all_states else "")
        status, items = api(self.sock, "GET", path)
        if status != 200:
            raise RuntimeError(f"{self.name}: list containers: {status} {items}")
        return list(items or [])


class Project:
    """A compose project in a temp dir, driven through docker-compose."""

    def __init__(self, engine: Engine, name: str, ports: bool, count: int, grace: int) -> None:
        self.engine, self.name, self.ports, self.count, self.grace = engine, name, ports, count, grace
        self.dir = Path(tempfile.mkdtemp(prefix="bench-compose-"))
        (self.dir / "docker-compose.yml").write_text(compose_file(ports))

    def compose(self, *args: str, timeout: float = 600) -> tuple[float, float]:
        """Run docker-compose; returns its wall time and its client-side time (start-up before
        the first request, exit after the last answer) in s."""
        cmd = [COMPOSE or "docker-compose", "-p", self.name, "-f", str(self.dir / "docker-compose.yml"), *args]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=self.engine.env, capture_output=True, text=True, timeout=timeout)
        t1 = time.perf_counter()
        if done.returncode != 0:
            raise RuntimeError(f"{self.engine.name}: docker-compose {' '.join(args)}: {done.stderr[-2000:]}")
        span = self.engine.clock.span(t0, t1)
        client = 0.0 if span is None else (span[0] - t0) + (t1 - span[1])
        return t1 - t0, client

    def up(self) -> tuple[float, float]:
        t0 = time.perf_counter()
        _, client = self.compose("up", "-d", "--scale", f"web={self.count}")
        wait_for(f"{self.count} running on {self.engine.name}",
                 lambda: len([c for c in self.engine.containers(self.name) if c.get("State") == "running"])
                 >= self.count, 300, 0.02)
        elapsed = time.perf_counter() - t0
        if self.ports:
            self.check_ports()
        return elapsed, elapsed - client

    def check_ports(self) -> None:
        """Every replica serves on its published port (untimed: correctness, not speed)."""
        ports = [p["PublicPort"] for c in self.engine.containers(self.name)
                 for p in c.get("Ports") or [] if p.get("PublicPort")]
        unique = sorted(set(ports))
        if len(unique) != self.count:
            raise RuntimeError(f"{self.engine.name}: {len(unique)} published ports for {self.count} replicas")
        for port in unique:
            wait_for(f"GET / on 127.0.0.1:{port} ({self.engine.name})", lambda p=port: _answers(p), 30, 0.05)

    def stop(self) -> tuple[float, float]:
        elapsed, client = self.compose("stop", "-t", str(self.grace))
        if any(c.get("State") == "running" for c in self.engine.containers(self.name, all_states=True)):
            raise RuntimeError(f"{self.engine.name}: containers still running after stop")
        return elapsed - self.grace, elapsed - self.grace - client

    def rm(self) -> tuple[float, float]:
        elapsed, client = self.compose("rm", "-f")
        if self.engine.containers(self.name, all_states=True):
            raise RuntimeError(f"{self.engine.name}: containers left after rm")
        return elapsed, elapsed - client

    def down(self) -> tuple[float, float] | None:
        t0 = time.perf_counter()
        try:
            elapsed, client = self.compose("down", "-t", str(self.grace))
        except RuntimeError as err:
            # dockerd under load sometimes refuses the network while it still releases its
            # endpoints, and compose stops there; the retries count in the figure (wall and
            # engine alike: the client time of the retries is not taken off).
            if "has active endpoints" not in str(err):
                raise
            print(f"{self.engine.name}: down: network refused (active endpoints); retrying", file=sys.stderr)
            try:
                wait_for("the project's network to go", self._down_again, 30, 0.5)
            except AssertionError as stuck:
                print(f"{self.engine.name}: down: no sample this round ({stuck})", file=sys.stderr)
                return None
            elapsed, client = time.perf_counter() - t0, 0.0
        return elapsed - self.grace, elapsed - self.grace - client

    def _down_again(self) -> bool:
        """Force the network's stale endpoints off (what users do about that dockerd error:
        `docker network disconnect -f`), then `down` again."""
        network = f"{self.name}_default"
        status, info = api(self.engine.sock, "GET", f"/networks/{network}")
        stale = (info or {}).get("Containers") or {} if status == 200 else {}
        for container in stale:
            api(self.engine.sock, "POST", f"/networks/{network}/disconnect", {"Container": container, "Force": True})
        try:
            self.compose("down", "-t", "0")
        except RuntimeError:
            return False
        return True

    def clean(self) -> None:
        try:
            self.compose("down", "-t", "0", timeout=300)
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            print(f"clean-up of {self.name} on {self.engine.name}: {err}", file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/passwd", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


Samples = dict[str, list[tuple[float, float]]]  # figure -> [(wall, engine)]


def one_round(engine: Engine, variant: str, index: int, count: int, grace: int, out: Samples) -> None:
    project = Project(engine, f"bc{variant[0]}{index}", variant == "ports", count, grace)
    try:
        out["up"].append(project.up())
        out["stop"].append(project.stop())
        out["rm"].append(project.rm())
        out["up"].append(project.up())
        down = project.down()
        if down is not None:
            out["down"].append(down)
    finally:
        project.clean()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--count", type=int, default=50, help="replicas (--scale web=N)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per engine and variant")
    parser.add_argument("--grace", type=int, default=10, help="stop timeout in s (compose's default is 10)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="plain,ports")
    parser.add_argument("--no-peer", action="store_true", help="berth only")
    args = parser.parse_args()
    if COMPOSE is None:
        print("docker-compose is not installed (make test installs Debian's)", file=sys.stderr)
        return 1
    variants = [v for v in args.variants.split(",") if v in VARIANTS]

    berth = BerthDaemon()
    peer: PrivateDockerd | None = None
    results: dict[tuple[str, str], Samples] = {}
    relay_dir = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    engines: list[Engine] = []
    try:
        berth.start()
        berth.bootstrap_busybox()
        engines.append(Engine("berth", berth.env, berth.sock, relay_dir))
        if DOCKERD and not args.no_peer:
            peer = PrivateDockerd()
            peer.start()
            load_busybox_into(peer, berth)
            engines.append(Engine("dockerd", peer.env, str(peer.sock), relay_dir))
        for r in range(args.rounds):
            for variant in variants:
                for engine in engines:  # alternating: both engines see the same load
                    out: Samples = results.setdefault((engine.name, variant), {f: [] for f in FIGURES})
                    t0 = time.perf_counter()
                    one_round(engine, variant, r, args.count, args.grace, out)
                    print(f"round {r + 1} {variant:<6} {engine.name:<8} "
                          + " ".join(f"{f} {out[f][-1][0]:.2f}/{out[f][-1][1]:.2f}" for f in FIGURES if out[f])
                          + f"  (wall/engine s; {time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    finally:
        for engine in engines:
            engine.clock.stop()
        shutil.rmtree(relay_dir, ignore_errors=True)
        berth.destroy()
        if peer is not None:
            peer.stop()
    report(results, variants, args)
    return 0


def report(results: dict[tuple[str, str], Samples], variants: list[str], args: argparse.Namespace) -> None:
    print(f"docker-compose up/stop/rm/down of --scale web={args.count} (busybox httpd) on the project's user "
          f"network; medians of {args.rounds} rounds (up: {2 * args.rounds} samples); stop and down are "
          f"the time beyond the {args.grace} s grace period; engine = wall without compose's own start-up/exit")
    print(f"{'figure':<22}{'berth s':>9}{'dockerd s':>11}{'ratio':>8}   target")
    for variant in variants:
        mine = results.get(("berth", variant), {})
        theirs = results.get(("dockerd", variant), {})
        for fig in FIGURES:
            for kind, index in (("wall", 0), ("engine", 1)):
                if not mine.get(fig):
                    continue
                value = statistics.median(s[index] for s in mine[fig])
                other = statistics.median(s[index] for s in theirs[fig]) if theirs.get(fig) else None
                ratio = value / other if other else None
                target = TARGETS.get(fig)
                verdict = "" if target is None else (
                    f"<= {target:g}x " + ("-" if ratio is None else "met" if ratio <= target else "MISSED"))
                label = f"{fig} {kind} ({variant})"
                print(f"{label:<22}{value:>9.2f}{(f'{other:.2f}' if other else '-'):>11}"
                      f"{(f'{ratio:.2f}x' if ratio else '-'):>8}   {verdict}")
    if not any(engine == "dockerd" for engine, _ in results):
        print("dockerd not measured (" + ("--no-peer" if args.no_peer else "make bench-deps installs docker.io") + ")")


if __name__ == "__main__":
    sys.exit(main())
