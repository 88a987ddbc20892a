#!/usr/bin/env python3
"""ECS on berth: task start, service task replacement, a 50-task service and its rolling update.

Driven with boto3 against a private berth daemon's AWS endpoint (signed with the keys it generated),
polling DescribeTasks / DescribeServices every few milliseconds to time state changes:
  run-task       RunTask of a one-container task (busybox sleeping) until DescribeTasks shows RUNNING
                 (median of -n tasks, alternating with docker-run; each is stopped afterwards, untimed)
  replacement    `kill` of a service task's container (Docker API on berth's socket) until the
                 service's replacement task is RUNNING (median of -n services of one task each:
                 berth's crash back-off would delay a second crash of the same service)
  svc50-steady   CreateService with desiredCount 50 until steady: one deployment and
                 runningCount == desiredCount (the services-stable waiter's condition)
  svc50-update   UpdateService of that service to a new revision (minimumHealthyPercent 100,
                 maximumPercent 200, ECS's defaults) until steady again, and until its deployment's
                 rolloutState is COMPLETED (svc50-completed)
The daemon runs with `--ecs-healthy-after 0`: a task without health checks counts healthy as soon as
it is RUNNING, so the rolling update is not held for ECS's 40 s rule. Every workload (tasks, docker run,
compose) is the same shell that exits on SIGTERM with a `sleep` under it (see SLEEP).

Peers, in the same run:
  docker-run     `docker run -d busybox sh -c '…sleep 3600…'` through berth's Docker API (the CLI returns
                 once the container runs): the peer of run-task (target: run-task <= 1.5x of it)
  compose-50     `docker-compose up -d --scale web=50` (Compose v1) on Debian's dockerd, on its own
                 socket, data root and bridge, until all 50 run: the peer of svc50-steady
                 (target: <= 0.5x of it). The same on berth's socket is printed for reference.
Usage: .venv/bin/python bench/ecs.py [-n 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run_latency import DOCKERD, PrivateDockerd, docker, load_busybox_into  # noqa: E402
from tests.helpers import BerthDaemon, api, aws_daemon, wait_for, wait_task  # noqa: E402

COMPOSE = shutil.which("docker-compose")
TASK_POLL = 0.01       # s between DescribeTasks while a task starts
SERVICE_POLL = 0.02    # s between DescribeServices while a service converges
LABEL_TASK = "com.amazonaws.ecs.task-arn"
# The same process everywhere: a shell that leaves at once on SIGTERM (busybox `sleep` as PID 1 ignores
# it, and every ECS stop would then wait out the 30 s stopTimeout), with `sleep` under it.
SLEEP = ["sh", "-c", "trap 'exit 0' TERM; sleep {s} & wait"]
COMPOSE_FILE = ("services:\n  web:\n    image: busybox\n"
                "    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 3600 & wait\"]\n")


def sleeper(family: str, seconds: int = 3600) -> dict[str, Any]:
    return {"family": family, "containerDefinitions": [
        {"name": "main", "image": "busybox", "essential": True, "memoryReservation": 16,
         "command": [*SLEEP[:2], SLEEP[2].format(s=seconds)]}]}


def wait_replacement(e: Ecs, service: str, old_arn: str, timeout: float = 60.0) -> dict[str, Any]:
    def replacement() -> dict[str, Any] | None:
        task = e.running_task_of(service)
        return task if task is not None and task["taskArn"] != old_arn else None

    return wait_for(f"{service}: a replacement RUNNING", replacement, timeout, TASK_POLL)


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


class Ecs:
    def __init__(self, daemon: BerthDaemon) -> None:
        self.daemon = daemon
        self.client = daemon.aws_client("ecs")

    def task(self, arn: str) -> dict[str, Any]:
        task: dict[str, Any] = self.client.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
        return task

    def service(self, name: str) -> dict[str, Any]:
        svc: dict[str, Any] = self.client.describe_services(cluster="default", services=[name])["services"][0]
        return svc

    def running_task_of(self, service: str) -> dict[str, Any] | None:
        arns = self.client.list_tasks(cluster="default", serviceName=service, desiredStatus="RUNNING")["taskArns"]
        if not arns:
            return None
        tasks = self.client.describe_tasks(cluster="default", tasks=arns)["tasks"]
        return next((t for t in tasks if t["lastStatus"] == "RUNNING"), None)

    def container_of(self, task_arn: str) -> str:
        filters = urllib.parse.quote(json.dumps({"label": [f"{LABEL_TASK}={task_arn}"], "status": ["running"]}))
        status, items = api(self.daemon.sock, "GET", f"/containers/json?filters={filters}")
        assert status == 200 and items, (status, items)
        return str(items[0]["Id"])


def run_task_once(e: Ecs) -> tuple[float, dict[str, float]]:
    """RunTask → RUNNING as the client sees it (ms), and the server-side steps of that start (ms)."""
    t0 = time.perf_counter()
    arn = e.client.run_task(cluster="default", taskDefinition="bench-run")["tasks"][0]["taskArn"]
    task = wait_task(e.client, arn, "RUNNING", timeout=60, every=TASK_POLL)
    elapsed = ms_since(t0)
    seen = time.time()
    e.client.stop_task(cluster="default", task=arn)
    wait_task(e.client, arn, "STOPPED", timeout=60, every=0.05)
    return elapsed, start_steps(task, seen)


def start_steps(task: dict[str, Any], seen: float) -> dict[str, float]:
    """A task's start, split by its own timestamps (ms): control plane → agent, image check,
    network + create + start, and the report until the client saw RUNNING."""
    ts = {k: task[k].timestamp() for k in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt") if k in task}
    if len(ts) < 4:
        return {"created→RUNNING": (ts["startedAt"] - ts["createdAt"]) * 1000}
    return {"created→agent picks up": (ts["pullStartedAt"] - ts["createdAt"]) * 1000,
            "image check": (ts["pullStoppedAt"] - ts["pullStartedAt"]) * 1000,
            "network+create+start": (ts["startedAt"] - ts["pullStoppedAt"]) * 1000,
            "RUNNING→seen by client": (seen - ts["startedAt"]) * 1000}


def docker_run_once(env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = docker(env, "run", "-d", "busybox", *SLEEP[:2], SLEEP[2].format(s=3600))
    elapsed = ms_since(t0)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    docker(env, "rm", "-f", r.stdout.strip())
    return elapsed


def start_figures(e: Ecs, n: int) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """RunTask → RUNNING and `docker run -d` through berth, interleaved so that both see the same
    host load; the first of each warms caches and is not counted."""
    e.client.register_task_definition(**sleeper("bench-run"))
    run_task: list[float] = []
    docker_run: list[float] = []
    steps: dict[str, list[float]] = {}
    for i in range(n + 1):
        d = docker_run_once(e.daemon.env)
        r, st = run_task_once(e)
        if i:
            docker_run.append(d)
            run_task.append(r)
            for k, v in st.items():
                steps.setdefault(k, []).append(v)
    return run_task, docker_run, steps


def replacement_figure(e: Ecs, n: int) -> tuple[list[float], dict[str, list[float]]]:
    """kill → replacement RUNNING (ms), with the server-side steps of each replacement."""
    e.client.register_task_definition(**sleeper("bench-repl"))
    names = [f"repl-{i}" for i in range(n + 1)]
    for name in names:
        e.client.create_service(cluster="default", serviceName=name, taskDefinition="bench-repl", desiredCount=1)
    for name in names:
        wait_steady(e, name)
    samples: list[float] = []
    steps: dict[str, list[float]] = {"kill→old STOPPED": [], "old STOPPED→new created": []}
    for i, name in enumerate(names):
        old = e.running_task_of(name)
        assert old is not None
        cid = e.container_of(old["taskArn"])
        wall0, t0 = time.time(), time.perf_counter()
        status, _ = api(e.daemon.sock, "POST", f"/containers/{cid}/kill")
        assert status == 204, status
        new = wait_replacement(e, name, old["taskArn"])
        elapsed = ms_since(t0)
        seen = time.time()
        if not i:
            continue
        samples.append(elapsed)
        before = e.task(old["taskArn"])
        stopped = before.get("stoppedAt") or before.get("executionStoppedAt")
        if stopped is not None:
            steps["kill→old STOPPED"].append((stopped.timestamp() - wall0) * 1000)
            steps["old STOPPED→new created"].append((new["createdAt"].timestamp() - stopped.timestamp()) * 1000)
        for k, v in start_steps(new, seen).items():
            steps.setdefault(k, []).append(v)
    for name in names:
        e.client.delete_service(cluster="default", service=name, force=True)
    wait_for("replacement services gone", lambda: not any(e.running_task_of(nm) for nm in names), 120, 0.2)
    return samples, steps


def wait_steady(e: Ecs, name: str) -> None:
    wait_for(f"{name} steady", lambda: steady(e.service(name)), 120, SERVICE_POLL)


def wait_compose(env: dict[str, str], project: str, count: int) -> None:
    ps = ("ps", "-q", "--filter", f"label=com.docker.compose.project={project}", "--filter", "status=running")
    wait_for("compose containers running", lambda: len(docker(env, *ps).stdout.split()) >= count, 120, SERVICE_POLL)


def steady(svc: dict[str, Any], task_definition: str | None = None) -> bool:
    deployments = svc["deployments"]
    return (len(deployments) == 1 and svc["runningCount"] == svc["desiredCount"]
            and (task_definition is None or deployments[0]["taskDefinition"] == task_definition))


def completed(svc: dict[str, Any]) -> bool:
    return any(d["status"] == "PRIMARY" and d.get("rolloutState") == "COMPLETED" for d in svc["deployments"])


def converge(e: Ecs, name: str, t0: float, task_definition: str, count: int) -> tuple[float, float, float]:
    """Seconds from t0 until steady, until the PRIMARY deployment is COMPLETED, and until the engine
    runs exactly `count` containers (the old revision's all gone)."""
    t_steady = t_done = t_engine = 0.0
    revision = task_definition.rsplit(":", 1)[1]
    deadline = time.monotonic() + 300
    while not (t_steady and t_done and t_engine):
        svc = e.service(name)
        now = time.perf_counter() - t0
        primary = svc["deployments"][0]["taskDefinition"] == task_definition
        if not t_steady and steady(svc, task_definition):
            t_steady = now
        if not t_done and completed(svc) and primary:
            t_done = now
        if not t_engine and primary and running_revisions(e.daemon.sock) == {revision: count}:
            t_engine = time.perf_counter() - t0
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not converge: {svc['deployments']}")
        time.sleep(SERVICE_POLL)
    return t_steady, t_done, t_engine


def service_figures(e: Ecs, count: int, rounds: int) -> dict[str, list[float]]:
    rev1 = e.client.register_task_definition(**sleeper("bench-web"))["taskDefinition"]["taskDefinitionArn"]
    rev2 = e.client.register_task_definition(**sleeper("bench-web", 3601))["taskDefinition"]["taskDefinitionArn"]
    out: dict[str, list[float]] = {"svc50-steady": [], "svc50-completed-create": [], "svc50-update": [],
                                   "svc50-completed": [], "svc50-old-gone": [], "svc50-delete": []}
    for r in range(rounds):
        name = f"web-{r}"
        t0 = time.perf_counter()
        e.client.create_service(cluster="default", serviceName=name, taskDefinition=rev1, desiredCount=count)
        t_steady, t_done, _ = converge(e, name, t0, rev1, count)
        out["svc50-steady"].append(t_steady)
        out["svc50-completed-create"].append(t_done)
        t0 = time.perf_counter()
        e.client.update_service(cluster="default", service=name, taskDefinition=rev2)
        t_steady, t_done, t_engine = converge(e, name, t0, rev2, count)
        out["svc50-update"].append(t_steady)
        out["svc50-completed"].append(t_done)
        out["svc50-old-gone"].append(t_engine)
        t0 = time.perf_counter()
        e.client.delete_service(cluster="default", service=name, force=True)
        wait_for("service tasks gone", lambda: not running_containers(e.daemon.sock), 300, SERVICE_POLL)
        out["svc50-delete"].append(time.perf_counter() - t0)
    return out


def running_containers(sock: str) -> int:
    status, items = api(sock, "GET", "/containers/json")
    assert status == 200
    return len(items)


def running_revisions(sock: str) -> dict[str, int]:
    """Running containers per task definition revision."""
    status, items = api(sock, "GET", "/containers/json")
    assert status == 200
    out: dict[str, int] = {}
    for item in items:
        rev = (item.get("Labels") or {}).get("com.amazonaws.ecs.task-definition-version", "")
        out[rev] = out.get(rev, 0) + 1
    return out


def compose_figure(env: dict[str, str], count: int, rounds: int) -> list[float]:
    """`docker-compose up -d --scale web=N` until N containers run; `down` afterwards (untimed)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    (workdir / "docker-compose.yml").write_text(COMPOSE_FILE)
    samples = []
    try:
        for r in range(rounds):
            cmd = [COMPOSE or "docker-compose", "-p", f"benchc{r}", "-f", str(workdir / "docker-compose.yml")]
            t0 = time.perf_counter()
            up = subprocess.run([*cmd, "up", "-d", "--scale", f"web={count}"], env=env, capture_output=True,
                                text=True, timeout=600)
            if up.returncode != 0:
                raise RuntimeError(up.stderr)
            wait_compose(env, f"benchc{r}", count)
            samples.append(time.perf_counter() - t0)
            subprocess.run([*cmd, "down", "-t", "0"], env=env, capture_output=True, timeout=600)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return samples


def peer_cleanup(peer: PrivateDockerd) -> None:
    ids = docker(peer.env, "ps", "-aq").stdout.split()
    if ids:
        docker(peer.env, "rm", "-f", *ids)
    docker(peer.env, "network", "prune", "-f")


def med(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20, help="tasks measured for run-task, docker-run and replacement")
    parser.add_argument("-c", "--count", type=int, default=50, help="tasks of the service")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the service and compose figures")
    parser.add_argument("--no-peer", action="store_true", help="skip dockerd")
    args = parser.parse_args()

    berth = aws_daemon("--ecs-healthy-after", "0")
    peer: PrivateDockerd | None = None
    fig: dict[str, list[float]] = {}
    run_steps: dict[str, list[float]] = {}
    repl_steps: dict[str, list[float]] = {}
    try:
        berth.start()
        berth.bootstrap_busybox()
        e = Ecs(berth)
        fig["run-task"], fig["docker-run"], run_steps = start_figures(e, args.n)
        fig["replacement"], repl_steps = replacement_figure(e, args.n)
        fig.update(service_figures(e, args.count, args.rounds))
        if COMPOSE:
            fig["compose-50 (berth)"] = compose_figure(berth.env, args.count, args.rounds)
        if DOCKERD and COMPOSE and not args.no_peer:
            peer = PrivateDockerd()
            peer.start()
            load_busybox_into(peer, berth)
            try:
                fig["compose-50"] = compose_figure(peer.env, args.count, args.rounds)
            finally:
                peer_cleanup(peer)
    finally:
        berth.destroy()
        if peer is not None:
            peer.stop()

    report(fig, run_steps, repl_steps, args)
    return 0


def report(fig: dict[str, list[float]], run_steps: dict[str, list[float]], repl_steps: dict[str, list[float]],
           args: argparse.Namespace) -> None:
    n, c, rounds = args.n, args.count, args.rounds
    print(f"berth daemon --ecs-healthy-after 0 (tasks count healthy once RUNNING); medians: n={n} for the ms "
          f"figures, {rounds} rounds of a {c}-task service / --scale web={c} for the s figures")
    print(f"{'figure':<30}{'berth':>10}  {'peer':<28}{'peer':>9}{'ratio':>8}   target")

    def row(label: str, key: str, unit: str, peer_label: str = "", peer_key: str = "",
            target_abs: float | None = None, target_ratio: float | None = None) -> None:
        if key not in fig:
            return
        value = med(fig[key])
        other = med(fig[peer_key]) if peer_key in fig else None
        ratio = value / other if other else None
        goals = []
        if target_abs is not None:
            goals.append(f"<= {target_abs:g} {unit} {'met' if value <= target_abs else 'MISSED'}")
        if target_ratio is not None:
            verdict = "-" if ratio is None else ("met" if ratio <= target_ratio else "MISSED")
            goals.append(f"<= {target_ratio:g}x {verdict}")
        fmt = ".1f" if unit == "ms" else ".2f"
        print(f"{label + ' ' + unit:<30}{value:>10{fmt}}  {peer_label if other else '-':<28}"
              f"{(format(other, fmt) if other else '-'):>9}{(f'{ratio:.2f}x' if ratio else '-'):>8}   "
              + "; ".join(goals))

    row("run-task→RUNNING", "run-task", "ms", "docker run -d (berth)", "docker-run", 500, 1.5)
    row("replacement→RUNNING", "replacement", "ms", target_abs=1000)
    row(f"svc{c} create→steady", "svc50-steady", "s", "compose up --scale (dockerd)", "compose-50",
        target_ratio=0.5)
    row(f"svc{c} create→COMPLETED", "svc50-completed-create", "s")
    row(f"svc{c} update→steady", "svc50-update", "s")
    row(f"svc{c} update→COMPLETED", "svc50-completed", "s")
    row(f"svc{c} update→old gone", "svc50-old-gone", "s")
    row(f"svc{c} delete→all gone", "svc50-delete", "s")
    row(f"compose {c} on berth", "compose-50 (berth)", "s", "compose up --scale (dockerd)", "compose-50")
    for title, steps in (("run-task", run_steps), ("replacement", repl_steps)):
        if steps:
            print(f"{title} steps from the tasks' timestamps (medians, ms): "
                  + ", ".join(f"{k} {med(v):.1f}" for k, v in steps.items() if v))
    if "compose-50" not in fig:
        print("compose peer skipped: " + ("--no-peer" if args.no_peer else
                                          "dockerd or docker-compose not installed (make bench-deps)"))


if __name__ == "__main__":
    sys.exit(main())
