"""`berth elb top`: a live terminal view of the load balancers' listeners and targets.

    $ berth elb top [--metrics-url URL] [--interval S] [--once]

It reads the daemon's Prometheus endpoint (`berth daemon --metrics-addr`, default
http://127.0.0.1:9464/metrics) every interval and redraws (ANSI clear, no curses): per listener
and per target the request rate (from counter deltas between two scrapes), the request and 5xx
counts, the average response time HAProxy reports (over the last 1024 requests) and the health.
`--once` scrapes twice, one interval apart, prints one frame and exits.

Fetching (`scrape`) is apart from rendering (`render_frame`), which is pure: two scrapes in,
text out.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from berth.cli.failures import CliError
from berth.cli.table import render_table
from berth.types.prometheus import ParseError, Sample, parse

DEFAULT_METRICS_URL = "http://127.0.0.1:9464/metrics"
CLEAR = "\x1b[H\x1b[2J"

_LISTENER = ("load_balancer", "listener_port", "listener")
_TARGET = ("target_group", "target", "port")


def add_elb_parser(subparsers: Any) -> None:
    group = subparsers.add_parser("elb", help="Watch the ELB load balancers (top)",
                                  description="Views of berth's ELBv2 load balancers.")
    verbs = group.add_subparsers(title="Commands", metavar="COMMAND")
    group.set_defaults(func=lambda _args: (group.print_help(), 0)[1])
    top = verbs.add_parser("top", help="Live requests/s, 5xx, response time and health per listener and target",
                           description="A live view of every listener and target, from the daemon's /metrics.")
    top.add_argument("--metrics-url", default=DEFAULT_METRICS_URL, metavar="URL",
                     help=f"the daemon's metrics endpoint (default {DEFAULT_METRICS_URL})")
    top.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                     help="seconds between refreshes (default 2)")
    top.add_argument("--once", action="store_true", help="print one frame (two scrapes, one interval apart) and exit")
    top.set_defaults(func=_top)


def scrape(url: str, timeout: float = 10.0) -> list[Sample]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise CliError(f"cannot read the daemon's metrics at {url}: {reason} "
                       "(is the daemon running with --metrics-addr?)") from err
    try:
        return parse(text)
    except ParseError as err:
        raise CliError(f"{url}: not Prometheus text format: {err}") from err


def _index(samples: Sequence[Sample], name: str, keys: tuple[str, ...],
           **match: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for s in samples:
        if s.name != name or any(s.label(k) != v for k, v in match.items()):
            continue
        out[tuple(s.label(k) for k in keys)] = s.value
    return out


def _rate(now: float, before: float | None, seconds: float) -> str:
    if before is None or seconds <= 0:
        return "-"
    delta = now - before if now >= before else now   # HAProxy reloaded: its counters restarted
    return f"{delta / seconds:.1f}"


def _count(value: float | None) -> str:
    return "-" if value is None else str(int(value))


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"


def render_frame(previous: Sequence[Sample] | None, current: Sequence[Sample], seconds: float) -> str:
    """One view: the listeners, then the targets; rates are per second over the `seconds`
    between the two scrapes (none without a previous one)."""
    prev = previous or []

    def series(name: str, keys: tuple[str, ...], **match: str) -> tuple[dict[tuple[str, ...], float],
                                                                          dict[tuple[str, ...], float]]:
        return _index(current, name, keys, **match), _index(prev, name, keys, **match)

    req, req0 = series("berth_elb_listener_requests_total", _LISTENER)
    conns, conns0 = series("berth_elb_listener_connections_total", _LISTENER)
    err5, _ = series("berth_elb_listener_http_responses_total", _LISTENER, code="5xx")
    listener_rows = []
    for key in sorted(set(conns) | set(req), key=lambda k: (k[0], int(k[1] or 0), k[2])):
        # TCP listeners count connections, not requests
        total, before = (req[key], req0.get(key)) if key in req else (conns[key], conns0.get(key))
        listener_rows.append([key[0], key[1], _rate(total, before, seconds if previous is not None else 0),
                              _count(total), _count(err5.get(key)), _count(conns.get(key))])

    treq, treq0 = series("berth_elb_target_requests_total", _TARGET)
    tconns, tconns0 = series("berth_elb_target_connections_total", _TARGET)
    t5, _ = series("berth_elb_target_http_responses_total", _TARGET, code="5xx")
    rtime, _ = series("berth_elb_target_response_time_average_seconds", _TARGET)
    health = {tuple(s.label(k) for k in _TARGET): s.label("state")
              for s in current if s.name == "berth_elb_target_health" and s.value}
    target_rows = []
    for key in sorted(set(tconns) | set(treq) | set(health), key=lambda k: (k[0], k[1], int(k[2] or 0))):
        total, before = (treq[key], treq0.get(key)) if key in treq else (tconns.get(key, 0.0), tconns0.get(key))
        target_rows.append([key[0], f"{key[1]}:{key[2]}", health.get(key, "-"),
                            _rate(total, before, seconds if previous is not None else 0), _count(total),
                            _count(t5.get(key)), _ms(rtime.get(key))])

    out = ["LISTENERS\n"]
    out.append(render_table(["LOAD BALANCER", "PORT", "REQ/S", "REQUESTS", "5XX", "CONNECTIONS"], listener_rows)
               if listener_rows else "  (no listeners)\n")
    out.append("\nTARGETS\n")
    out.append(render_table(["TARGET GROUP", "TARGET", "HEALTH", "REQ/S", "REQUESTS", "5XX", "AVG RESPONSE"],
                            target_rows) if target_rows else "  (no targets)\n")
    return "".join(out)


def _top(args: argparse.Namespace) -> int:
    interval = max(0.1, float(args.interval))
    previous: list[Sample] | None = None
    taken = time.monotonic()
    if args.once:
        previous = scrape(args.metrics_url)
        taken = time.monotonic()
        time.sleep(interval)
        current = scrape(args.metrics_url)
        sys.stdout.write(render_frame(previous, current, time.monotonic() - taken))
        return 0
    try:
        while True:
            current = scrape(args.metrics_url)
            now = time.monotonic()
            frame = render_frame(previous, current, now - taken)
            sys.stdout.write(f"{CLEAR}berth elb top — {args.metrics_url} — every {interval:g}s (Ctrl-C quits)\n\n"
                             f"{frame}")
            sys.stdout.flush()
            previous, taken = current, now
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
