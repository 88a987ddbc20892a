#!/usr/bin/env python3
"""ELBv2 on berth: a listener's throughput and tail latency, and a target's registration until it serves.

One private berth daemon (boto3 on its AWS endpoint) runs a 3-task ECS service of busybox httpd behind
an HTTP listener (target group of type instance, health checks GET / every --interval s, timeout 2 s,
healthy/unhealthy threshold 2, deregistration delay 0). Figures:
  listener     `wrk -t2 -c32 -d5s --latency` against berth's listener: requests/s and the 99th
               percentile latency (median of --rounds runs)
  peer         the same wrk against a second HAProxy written by hand (same binary, mode http,
               balance roundrobin, the same timeouts, forwardfor, the same three servers with the same
               health checks), on another free port; berth and the peer alternate, after one short
               warm-up each (targets: berth >= 0.95x the peer's requests/s, <= 1.1x its p99)
  register     RegisterTargets of a fourth httpd (a container started through berth's Docker API, already
               answering on its host port) until DescribeTargetHealth says `healthy` (polled every 10 ms),
               and until the listener has served a response from it (GET every 5 ms, each httpd answers
               its own hostname); the figure is the later of the two (target: interval + 100 ms);
               the target is then deregistered and its container removed (untimed), -n times
Both HAProxys, wrk and the httpds share the host's CPUs (2 vCPUs on the bench hosts): wrk's two
threads compete with the proxy under test, so the absolute numbers are low; the ratio is the figure.
The peer HAProxy is stopped by its PID; the daemon and everything under it by `BerthDaemon.destroy`.
Usage: .venv/bin/python bench/elb.py [-n 5] [--rounds 3] [--duration 5]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import BerthDaemon, aws_daemon, free_port, wait_for  # noqa: E402

WRK = shutil.which("wrk")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SERVE = ("mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www")
HEALTH_POLL = 0.01   # s between DescribeTargetHealth calls while a target registers
GET_POLL = 0.005     # s between GETs through the listener while a target registers

# The hand-written peer: what berth's renderer writes for one listener forwarding to one target group
# (src/berth/elb/haproxy/_render.py), minus berth's runtime machinery (stats socket, state file).
PEER_CFG = """global
    hard-stop-after 15s

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 30s
    timeout http-keep-alive 10s
    option redispatch
    retries 3

frontend peer
    mode http
    bind 127.0.0.1:{port}
    option forwardfor
    default_backend web

backend web
    mode http
    balance roundrobin
    timeout check 2s
    option httpchk
    http-check send meth GET uri /
    http-check expect status 200
{servers}
"""


def med(values: list[float]) -> float:
    return statistics.median(values)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read().strip())


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, threads: int, conns: int, duration: float) -> tuple[float, float]:
    """(requests/s, p99 ms) of one wrk run."""
    out = subprocess.run([WRK or "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration:g}s", "--latency", url],
                         capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr or out.stdout)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out.stdout, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out.stdout)
    if rps is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output:\n{out.stdout}")
    if errors:
        print(f"wrk reported errors against {url}: {errors.group(0)}", file=sys.stderr)
    return float(rps.group(1)), float(p99.group(1)) * _UNITS[p99.group(2)]


class PeerHaproxy:
    """A foreground HAProxy (-db) on its own config in a temp dir, stopped by its PID."""

    def __init__(self, backends: list[int], interval: int) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bench-elb-peer-"))
        servers = "\n".join(f"    server t{i} 127.0.0.1:{p} weight 1 check inter {interval}s rise 2 fall 2"
                            for i, p in enumerate(backends))
        self.cfg = self.dir / "haproxy.cfg"
        self.cfg.write_text(PEER_CFG.format(port=self.port, servers=servers))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        check = subprocess.run([HAPROXY, "-c", "-q", "-f", str(self.cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(check.stderr)
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.cfg)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        # all three servers UP: HAProxy starts a checked server UP, but wait for one answer each
        wait_for("peer haproxy answers from 3 servers",
                 lambda: len({self._try_get() for _ in range(6)} - {None}) == 3 or None, 30, 0.05)

    def _try_get(self) -> bytes | None:
        try:
            return get(f"http://127.0.0.1:{self.port}/")
        except OSError:
            return None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Lb:
    def __init__(self, daemon: BerthDaemon, interval: int) -> None:
        self.daemon = daemon
        self.ecs = daemon.aws_client("ecs")
        self.elb = daemon.aws_client("elbv2")
        self.ecs.register_task_definition(family="web", containerDefinitions=[{
            "name": "web", "image": "busybox", "memory": 32, "portMappings": [{"containerPort": 80}],
            "command": ["sh", "-c", SERVE], "stopTimeout": 2}])
        lb = self.elb.create_load_balancer(Name="bench", Subnets=["subnet-1"])["LoadBalancers"][0]
        self.tg = str(self.elb.create_target_group(
            Name="web", Protocol="HTTP", Port=80, VpcId="vpc-1", TargetType="instance",
            HealthCheckIntervalSeconds=interval, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
            UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"])
        self.elb.modify_target_group_attributes(TargetGroupArn=self.tg, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])
        self.port = free_port()
        self.elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=self.port,
                                 DefaultActions=[{"Type": "forward", "TargetGroupArn": self.tg}])

    def health(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.elb.describe_target_health(TargetGroupArn=self.tg)["TargetHealthDescriptions"]
        return rows

    def service(self, count: int) -> list[int]:
        """Create the service; once all its targets are healthy, the tasks' host ports."""
        self.ecs.create_service(serviceName="web", taskDefinition="web", desiredCount=count, loadBalancers=[
            {"targetGroupArn": self.tg, "containerName": "web", "containerPort": 80}])
        wait_for(f"{count} healthy targets", lambda: len(h := self.health()) == count and all(
            r["TargetHealth"]["State"] == "healthy" for r in h) or None, 120, 0.1)
        tasks = self.ecs.describe_tasks(tasks=self.ecs.list_tasks(serviceName="web")["taskArns"])["tasks"]
        return sorted(b["hostPort"] for t in tasks for c in t["containers"] for b in c.get("networkBindings", []))


def throughput(lb: Lb, peer: PeerHaproxy, args: argparse.Namespace) -> dict[str, list[float]]:
    urls = {"berth": f"http://127.0.0.1:{lb.port}/", "peer": f"http://127.0.0.1:{peer.port}/"}
    for url in urls.values():   # warm-up, not counted
        wrk(url, args.threads, args.conns, 2)
    out: dict[str, list[float]] = {"berth-rps": [], "berth-p99": [], "peer-rps": [], "peer-p99": []}
    for r in range(args.rounds):
        order = ("berth", "peer") if r % 2 == 0 else ("peer", "berth")
        for who in order:
            rps, p99 = wrk(urls[who], args.threads, args.conns, args.duration)
            out[f"{who}-rps"].append(rps)
            out[f"{who}-p99"].append(p99)
            print(f"  round {r + 1} {who:<5} {rps:>9.0f} req/s  p99 {p99:.2f} ms", flush=True)
    return out


def registration_once(lb: Lb, instance: str, i: int) -> tuple[float, float]:
    """(ms until healthy, ms until served) for one fresh httpd registered as a target."""
    host_port = free_port()
    name = f"reg{i}"
    cid = lb.daemon.docker("run", "-d", "--hostname", name, "-p", f"{host_port}:80", "busybox", "sh", "-c",
                           SERVE, check=True).stdout.strip()
    try:
        wait_for(f"{name} answers directly", lambda: _try(f"http://127.0.0.1:{host_port}/") == name.encode() or None,
                 20, 0.02)
        served: list[float] = []
        stop = threading.Event()

        def client(t0: float) -> None:
            while not stop.is_set():
                if _try(f"http://127.0.0.1:{lb.port}/") == name.encode():
                    served.append(time.perf_counter() - t0)
                    return
                time.sleep(GET_POLL)

        t0 = time.perf_counter()
        lb.elb.register_targets(TargetGroupArn=lb.tg, Targets=[{"Id": instance, "Port": host_port}])
        thread = threading.Thread(target=client, args=(t0,), daemon=True)
        thread.start()
        healthy = 0.0
        deadline = time.monotonic() + 60
        while not healthy:
            rows = [r for r in lb.health() if r["Target"]["Port"] == host_port]
            if rows and rows[0]["TargetHealth"]["State"] == "healthy":
                healthy = time.perf_counter() - t0
            elif time.monotonic() > deadline:
                raise RuntimeError(f"{name} never healthy: {rows}")
            else:
                time.sleep(HEALTH_POLL)
        thread.join(30)
        stop.set()
        if not served:
            raise RuntimeError(f"{name} healthy but never served through the listener")
        lb.elb.deregister_targets(TargetGroupArn=lb.tg, Targets=[{"Id": instance, "Port": host_port}])
        wait_for(f"{name} deregistered", lambda: not any(r["Target"]["Port"] == host_port for r in lb.health()),
                 30, 0.05)
        return healthy * 1000, served[0] * 1000
    finally:
        lb.daemon.docker("rm", "-f", cid)


def _try(url: str) -> bytes | None:
    try:
        return get(url)
    except OSError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5, help="registrations timed")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per proxy")
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--conns", type=int, default=32, help="wrk -c")
    parser.add_argument("--interval", type=int, default=5, help="health-check interval (s)")
    args = parser.parse_args()
    if WRK is None:
        print("wrk is not installed (make bench-deps)", file=sys.stderr)
        return 1

    berth = aws_daemon("--ecs-healthy-after", "0")
    peer: PeerHaproxy | None = None
    fig: dict[str, list[float]] = {}
    try:
        berth.start()
        berth.bootstrap_busybox()
        lb = Lb(berth, args.interval)
        ports = lb.service(3)
        instance = lb.health()[0]["Target"]["Id"]
        print(f"targets: 127.0.0.1:{ports} (instance {instance}); berth listener :{lb.port}", flush=True)
        peer = PeerHaproxy(ports, args.interval)
        peer.start()
        print(f"peer haproxy :{peer.port} (pid {peer.proc.pid if peer.proc else '-'})", flush=True)
        fig.update(throughput(lb, peer, args))
        peer.stop()
        peer = None
        fig["reg-healthy"], fig["reg-served"], fig["reg"] = [], [], []
        for i in range(args.n):
            h, s = registration_once(lb, instance, i)
            fig["reg-healthy"].append(h)
            fig["reg-served"].append(s)
            fig["reg"].append(max(h, s))
            print(f"  registration {i + 1}: healthy {h:.0f} ms, served {s:.0f} ms", flush=True)
    finally:
        if peer is not None:
            peer.stop()
        berth.destroy()
    report(fig, args)
    return 0


def report(fig: dict[str, list[float]], args: argparse.Namespace) -> None:
    print(f"wrk -t{args.threads} -c{args.conns} -d{args.duration:g}s --latency, 3 busybox httpd targets; "
          f"medians of {args.rounds} runs each (alternating); {args.n} registrations; health checks every "
          f"{args.interval} s, healthy threshold 2")
    print(f"{'figure':<28}{'berth':>10}{'peer':>10}{'ratio':>8}   target")
    rps, prps = med(fig["berth-rps"]), med(fig["peer-rps"])
    p99, pp99 = med(fig["berth-p99"]), med(fig["peer-p99"])
    print(f"{'requests/s':<28}{rps:>10.0f}{prps:>10.0f}{rps / prps:>7.2f}x   >= 0.95x "
          f"{'met' if rps / prps >= 0.95 else 'MISSED'}")
    print(f"{'p99 latency ms':<28}{p99:>10.2f}{pp99:>10.2f}{p99 / pp99:>7.2f}x   <= 1.1x "
          f"{'met' if p99 / pp99 <= 1.1 else 'MISSED'}")
    goal = args.interval * 1000 + 100
    reg = med(fig["reg"])
    print(f"{'register→healthy ms':<28}{med(fig['reg-healthy']):>10.0f}")
    print(f"{'register→served ms':<28}{med(fig['reg-served']):>10.0f}")
    print(f"{'register→healthy+served ms':<28}{reg:>10.0f}{'':>18}   <= {goal} ms "
          f"{'met' if reg <= goal else 'MISSED'} (max {max(fig['reg']):.0f}, min {min(fig['reg']):.0f})")


if __name__ == "__main__":
    sys.exit(main())
