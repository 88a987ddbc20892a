#!/usr/bin/env python3
"""CloudWatch Logs on berth: the awslogs driver's throughput and latency, and FilterLogEvents on 1 GB.

One private berth daemon with its AWS endpoint on (boto3 and the AWS CLI v2 signed with its keys):
  lines/s        a busybox container writing 100,000 lines as fast as it can (awk in a loop),
                 timed from `docker start` until all of them are where they go:
                   default   k8s-file (reported as json-file): until the container has exited, when
                             conmon has written every line (`docker logs` then shows all 100,000,
                             checked untimed)
                   awslogs   until the last line is in the store (GetLogEvents, newest first, polled
                             every 20 ms; the store is append-ordered, so the last line there means all
                             are; the count is checked untimed)
                 alternating, -n runs each; target: awslogs >= 0.8x default.
  tail latency   `aws logs tail GROUP --follow` (AWS CLI v2, --format detailed) while a container
                 writes a line every 50 ms: arrival on tail's stdout minus the event's timestamp (the
                 time conmon wrote the line); --samples of them; target p99 <= 1 s.
  filter 1 GB    a log group filled with ~1 GB of varied, realistic lines (access logs, JSON app logs,
                 stack traces) through boto3 PutLogEvents in 1 MB batches over 8 streams and 12 hours,
                 then FilterLogEvents over the whole group, every page followed, for a rare term, a
                 JSON pattern and a `?` alternative; target <= 2 s each (medians of -n).
Usage: .venv/bin/python bench/logs.py [-n 5] [--samples 200] [--gigabytes 1.0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import queue
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import BerthDaemon, aws_daemon, wait_for  # noqa: E402

AWS2 = "/usr/bin/aws"
LINES = 100_000
WRITER = ("awk 'BEGIN { for (i = 1; i <= %d; i++) printf \"%%d GET /api/v1/items/%%d HTTP/1.1 200 %%d ms "
          "user=%%d region=eu-west-1 agent=curl/8.1\\n\", i, i %% 977, i %% 113, i %% 5003 }'" % LINES)
PROBE = "i=0; while true; do echo \"probe $i\"; i=$((i+1)); sleep 0.05; done"


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- lines/s ---------------------------------------------------------------------------------------

def last_message(logs: Any, group: str, stream: str) -> str | None:
    try:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=False,
                                     limit=1)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return None
    return str(events[-1]["message"]) if events else None


def count_events(logs: Any, group: str, stream: str) -> int:
    total, token = 0, None
    while True:
        kw: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kw["nextToken"] = token
        page = logs.get_log_events(**kw)
        total += len(page["events"])
        if not page["events"] or page["nextForwardToken"] == token:
            return total
        token = page["nextForwardToken"]


def throughput_once(d: BerthDaemon, awslogs: bool, i: int) -> float:
    name = f"tp-{'aws' if awslogs else 'def'}-{i}"
    group, stream = "/bench/throughput", name
    args = ["--log-driver", "awslogs", "--log-opt", f"awslogs-group={group}", "--log-opt",
            f"awslogs-stream={stream}", "--log-opt", "awslogs-create-group=true"] if awslogs else []
    d.docker("create", "--name", name, *args, "busybox", "sh", "-c", WRITER, check=True)
    logs = d.aws_client("logs")
    last = f"{LINES} GET"
    t0 = time.monotonic()
    d.docker("start", name, check=True)
    if awslogs:
        wait_for("the last line in the store",
                 lambda: (last_message(logs, group, stream) or "").startswith(last) or None, timeout=300, every=0.02)
    else:
        wait_for("the container to exit", lambda: d.docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip()
                 == "exited" or None, timeout=300, every=0.02)
    elapsed = time.monotonic() - t0
    shown = d.docker("logs", name, timeout=120).stdout.count("\n")
    assert shown == LINES, f"docker logs shows {shown} lines"
    if awslogs:
        stored = count_events(logs, group, stream)
        assert stored == LINES, f"the store has {stored} events"
    d.docker("rm", "-f", name)
    return LINES / elapsed


# --- tail latency ----------------------------------------------------------------------------------

def tail_latency(d: BerthDaemon, samples: int) -> list[float]:
    logs = d.aws_client("logs")
    logs.create_log_group(logGroupName="/bench/tail")
    cid = d.docker("run", "-d", "--log-driver", "awslogs", "--log-opt", "awslogs-group=/bench/tail",
                   "busybox", "sh", "-c", PROBE, check=True).stdout.strip()
    proc = subprocess.Popen([AWS2, "--endpoint-url", d.aws_url, "logs", "tail", "/bench/tail", "--follow",
                             "--format", "detailed", "--color", "off", "--since", "1m"],
                            env={**d.aws_env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    arrivals: queue.Queue[tuple[float, str]] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            arrivals.put((time.time(), line))

    threading.Thread(target=pump, daemon=True).start()
    out: list[float] = []
    try:
        deadline = time.monotonic() + 30 + samples * 0.2
        skip_until = time.time() + 2  # the backlog tail prints first is not a latency sample
        while len(out) < samples and time.monotonic() < deadline:
            try:
                arrival, line = arrivals.get(timeout=1)
            except queue.Empty:
                continue
            written = dt.datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
            if written >= skip_until:
                out.append(arrival - written)
    finally:
        proc.kill()  # the tail we started, by its pid
        proc.wait(timeout=10)
        d.docker("rm", "-f", cid)
    return out


# --- FilterLogEvents over 1 GB --------------------------------------------------------------------

PATHS = ["/api/v1/items", "/api/v1/orders", "/login", "/static/app.js", "/api/v2/search", "/health", "/cart"]
USERS = [f"user-{random.Random(i).getrandbits(40):010x}" for i in range(2000)]
WORDS = ("cache miss upstream timeout retry connection pool exhausted payment gateway inventory shard "
         "replica lag token refreshed session expired rate limited").split()


def realistic_lines(rng: random.Random) -> list[str]:
    """A pool of varied lines: access logs, JSON application logs, multi-line stack traces."""
    pool = []
    for i in range(20000):
        kind = i % 5
        if kind <= 1:
            pool.append(f'10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} - - '
                        f'"{rng.choice(["GET", "POST", "PUT"])} {rng.choice(PATHS)}/{rng.randrange(10**6)} HTTP/1.1" '
                        f'{rng.choice([200, 200, 200, 201, 304, 404, 500])} {rng.randrange(50, 90000)} '
                        f'"-" "Mozilla/5.0 (X11; Linux x86_64)" rt={rng.random():.3f}')
        elif kind <= 3:
            pool.append(json.dumps({
                "level": rng.choice(["debug", "info", "info", "info", "warn", "error"]),
                "msg": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 12))),
                "user": rng.choice(USERS), "latency_ms": rng.randrange(1, 3000),
                "request_id": f"{rng.getrandbits(64):016x}", "service": rng.choice(["web", "api", "worker"])}))
        else:
            frames = "\n".join(f"  at com.example.{rng.choice(WORDS)}.Handler{rng.randrange(50)}"
                               f"(Handler.java:{rng.randrange(900)})" for _ in range(rng.randrange(3, 15)))
            pool.append(f"java.lang.IllegalStateException: {' '.join(rng.choice(WORDS) for _ in range(5))}\n{frames}")
    return pool


def fill(d: BerthDaemon, group: str, gigabytes: float, streams: int = 8) -> tuple[int, int, float]:
    """~`gigabytes` GB in 1 MB PutLogEvents batches; returns (events, bytes, seconds)."""
    logs = d.aws_client("logs")
    logs.create_log_group(logGroupName=group)
    for s in range(streams):
        logs.create_log_stream(logGroupName=group, logStreamName=f"app/{s}")
    rng = random.Random(12)
    pool = realistic_lines(rng)
    target = int(gigabytes * 1e9)
    now_ms = int(time.time() * 1000)
    span_ms = 12 * 3600 * 1000
    events_total, size, batch_no = 0, 0, 0
    batches_planned = max(1, target // 1_000_000)
    t0 = time.monotonic()
    while size < target:
        events, batch_bytes = [], 0
        base = now_ms - span_ms + span_ms * batch_no // batches_planned
        while batch_bytes < 1_000_000 - 2000 and len(events) < 10000:
            message = rng.choice(pool)
            if rng.random() < 0.0002:
                message = f"ERROR payment-declined-7f3a card=**** order={rng.getrandbits(32)}"
            events.append({"timestamp": base + len(events) // 50, "message": message})
            batch_bytes += len(message.encode()) + 26
        logs.put_log_events(logGroupName=group, logStreamName=f"app/{batch_no % streams}", logEvents=events)
        events_total += len(events)
        size += batch_bytes
        batch_no += 1
        if batch_no % 100 == 0:
            print(f"  filled {size / 1e9:.2f} GB ({events_total} events) in {time.monotonic() - t0:.0f} s", flush=True)
    return events_total, size, time.monotonic() - t0


def filter_once(d: BerthDaemon, group: str, pattern: str) -> tuple[float, int]:
    logs = d.aws_client("logs")
    found, token = 0, None
    t0 = time.monotonic()
    while True:
        kw: dict[str, Any] = {"logGroupName": group, "filterPattern": pattern}
        if token:
            kw["nextToken"] = token
        page = logs.filter_log_events(**kw)
        found += len(page["events"])
        token = page.get("nextToken")
        if not token:
            return time.monotonic() - t0, found


FILTERS = {"rare term": '"payment-declined-7f3a"', "json": '{ $.level = "error" && $.latency_ms > 2900 }',
           "? alternatives": '?"payment-declined-7f3a" ?"card-expired-0c1d"'}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5, help="runs of each throughput and filter figure")
    parser.add_argument("--samples", type=int, default=200, help="tail latency samples")
    parser.add_argument("--gigabytes", type=float, default=1.0, help="size of the filtered log group")
    args = parser.parse_args()
    d = aws_daemon()
    fig: dict[str, list[float]] = {"default": [], "awslogs": []}
    found: dict[str, int] = {}
    filled: tuple[int, int, float] = (0, 0, 0.0)
    try:
        d.start()
        d.bootstrap_busybox()
        for i in range(args.n):
            for kind in ("default", "awslogs"):
                fig[kind].append(throughput_once(d, kind == "awslogs", i))
                print(f"  {kind} run {i + 1}: {fig[kind][-1]:.0f} lines/s", flush=True)
        fig["tail"] = tail_latency(d, args.samples)
        print(f"  tail: {len(fig['tail'])} samples", flush=True)
        filled = fill(d, "/bench/big", args.gigabytes)
        for label, pattern in FILTERS.items():
            fig[label] = []
            for _ in range(args.n):
                seconds, found[label] = filter_once(d, "/bench/big", pattern)
                fig[label].append(seconds)
            print(f"  filter {label}: {med(fig[label]):.2f} s, {found[label]} events", flush=True)
    finally:
        d.destroy()
    report(fig, found, filled, args)
    return 0


def report(fig: dict[str, list[float]], found: dict[str, int], filled: tuple[int, int, float],
           args: argparse.Namespace) -> None:
    default, aws = med(fig["default"]), med(fig["awslogs"])
    print(f"\n{LINES} lines per run, medians of {args.n} runs (alternating)")
    print(f"{'figure':<32}{'value':>12}   target")
    print(f"{'default (k8s-file) lines/s':<32}{default:>12.0f}")
    print(f"{'awslogs lines/s':<32}{aws:>12.0f}")
    ratio = aws / default
    print(f"{'awslogs / default':<32}{ratio:>11.2f}x   >= 0.8x {'met' if ratio >= 0.8 else 'MISSED'}")
    tail = fig.get("tail") or [float("nan")]
    p99 = pct(tail, 99)
    print(f"{'tail latency p50 / p99 / max s':<32}{med(tail):>6.3f} / {p99:.3f} / {max(tail):.3f}   p99 <= 1 s "
          f"{'met' if p99 <= 1 else 'MISSED'} ({len(tail)} samples)")
    events, size, seconds = filled
    print(f"filled {size / 1e9:.2f} GB, {events} events, in {seconds:.0f} s ({size / 1e6 / max(seconds, 1e-9):.1f} MB/s)")
    for label in FILTERS:
        m = med(fig.get(label) or [float("nan")])
        print(f"{'filter ' + label + ' s':<32}{m:>12.2f}   <= 2 s {'met' if m <= 2 else 'MISSED'} "
              f"({found.get(label, 0)} events)")


if __name__ == "__main__":
    sys.exit(main())
