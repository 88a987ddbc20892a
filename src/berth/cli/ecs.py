"""`berth ecs`: a terminal view of the ECS control plane, over the daemon's AWS endpoint.

    $ berth ecs ps [--cluster C] [-a]          # the cluster's services, then its tasks
    $ berth ecs events SERVICE [-n N]          # a service's events, oldest first

It is an ECS API client like the AWS CLI (DescribeServices, ListTasks, DescribeTasks, signed with
SigV4 by botocore): the CLI reaches the daemon only through its HTTP APIs. Credentials come from
the standard AWS chain (environment, profile), else from the daemon's key file
`<root>/aws/credentials` as `berth aws-credentials` reads it (root only). The endpoint is
`--endpoint-url`, else $AWS_ENDPOINT_URL_ECS, $AWS_ENDPOINT_URL, else http://127.0.0.1:4566.

Fetching (`fetch_ps`, `fetch_events`) is apart from rendering (`render_ps`, `render_events`),
which is pure: describe outputs and a clock in, text out.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

from berth.cli.failures import CliError
from berth.cli.humanize import ago
from berth.cli.table import render_table

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"
DEFAULT_REGION = "us-east-1"
DEFAULT_ROOT = "/var/lib/berth"

Obj = Mapping[str, Any]


# --- parser -----------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Connection flags, accepted before and after the verb (`berth ecs --root R ps` or `ps --root R`):
    the group parser sets the defaults, the verbs' parsers only what is given (argparse.SUPPRESS)."""

    def d(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--cluster", default=d("default"), metavar="NAME",
                        help="the cluster (name or ARN; default: default)")
    parser.add_argument("--endpoint-url", default=d(None), metavar="URL",
                        help=f"the AWS endpoint (default: $AWS_ENDPOINT_URL_ECS, $AWS_ENDPOINT_URL or {DEFAULT_ENDPOINT})")
    parser.add_argument("--region", default=d(None),
                        help=f"the region (default: $AWS_REGION, $AWS_DEFAULT_REGION, the profile's, or {DEFAULT_REGION})")
    parser.add_argument("--profile", default=d(None), metavar="NAME", help="an AWS CLI profile to take keys from")
    parser.add_argument("--root", default=d(DEFAULT_ROOT),
                        help="the daemon's state directory, whose aws/credentials is read when no AWS "
                             f"credentials are configured (default {DEFAULT_ROOT}; root only)")


def add_ecs_parser(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "ecs", help="Show ECS services, tasks and service events (ps, events)",
        description="Show what the daemon's ECS control plane runs, through its AWS endpoint. "
                    "Credentials: the AWS chain (environment, profile), else the daemon's generated key.")
    _common(group, defaults=True)
    sub = group.add_subparsers(title="Commands", metavar="COMMAND")
    ps = sub.add_parser("ps", help="List a cluster's services and tasks",
                        description="List a cluster's services (counts, task definition, rollout) and "
                                    "tasks (status, health, ports, age).")
    _common(ps, defaults=False)
    ps.add_argument("-a", "--all", action="store_true",
                    help="also show STOPPED tasks (ECS keeps them for the retention period), with why they stopped")
    ps.set_defaults(func=_ps)
    events = sub.add_parser("events", help="Show a service's events, oldest first",
                            description="Show a service's events (deployments, started and stopped tasks, "
                                        "steady state), oldest first.")
    _common(events, defaults=False)
    events.add_argument("service", metavar="SERVICE", help="service name or ARN")
    events.add_argument("-n", "--tail", type=int, default=None, metavar="N", help="only the last N events")
    events.set_defaults(func=_events)
    group.set_defaults(func=lambda args: group.print_help() or 0)


# --- client -----------------------------------------------------------------------------------


def endpoint_url(flag: str | None, environ: Mapping[str, str]) -> str:
    return flag or environ.get("AWS_ENDPOINT_URL_ECS") or environ.get("AWS_ENDPOINT_URL") or DEFAULT_ENDPOINT


def _client(args: argparse.Namespace) -> Any:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]
    from botocore.exceptions import ProfileNotFound  # type: ignore[import-untyped]

    try:
        session = boto3.session.Session(profile_name=args.profile)
    except ProfileNotFound as err:
        raise CliError(f"error: {err}") from None
    region = args.region or session.region_name or DEFAULT_REGION
    keys: dict[str, str] = {}
    if session.get_credentials() is None:
        from berth.cli.aws_credentials import read_key_file

        path = Path(args.root).resolve() / "aws" / "credentials"
        try:
            keys["aws_access_key_id"], keys["aws_secret_access_key"] = read_key_file(path)
        except PermissionError:
            raise CliError(f"no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or a profile), "
                           f"or run as root to use the daemon's key in {path}") from None
        except FileNotFoundError:
            raise CliError(f"no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or a profile); "
                           f"there is no daemon key file {path} (pass the daemon's --root)") from None
        except (OSError, ValueError) as err:
            raise CliError(f"cannot read {path}: {err}") from None
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    return session.client("ecs", region_name=region, endpoint_url=endpoint_url(args.endpoint_url, os.environ),
                          config=config, **keys)


def _call(args: argparse.Namespace, fetch: Any, *rest: Any) -> Any:
    """Run `fetch(client, ...)`, turning the AWS client's failures into one-line CLI errors."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    client = _client(args)
    try:
        return fetch(client, *rest)
    except EndpointConnectionError:
        url = endpoint_url(args.endpoint_url, os.environ)
        raise CliError(f"Cannot connect to the AWS endpoint at {url}: is the berth daemon running "
                       "(with --aws-addr)?") from None
    except ClientError as err:
        error = err.response.get("Error", {})
        raise CliError(f"error: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")) from None
    except BotoCoreError as err:
        raise CliError(f"error: {err}") from None


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def fetch_ps(client: Any, cluster: str, include_stopped: bool) -> tuple[list[Obj], list[Obj]]:
    """(services, tasks) of `cluster` as DescribeServices and DescribeTasks return them."""
    service_arns: list[str] = []
    for page in client.get_paginator("list_services").paginate(cluster=cluster):
        service_arns.extend(page.get("serviceArns", []))
    services: list[Obj] = []
    for chunk in _chunks(service_arns, 10):
        services.extend(client.describe_services(cluster=cluster, services=list(chunk)).get("services", []))
    task_arns: list[str] = []
    for status in ("RUNNING", "STOPPED") if include_stopped else ("RUNNING",):
        for page in client.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus=status):
            task_arns.extend(page.get("taskArns", []))
    tasks: list[Obj] = []
    for chunk in _chunks(task_arns, 100):
        tasks.extend(client.describe_tasks(cluster=cluster, tasks=list(chunk)).get("tasks", []))
    return services, tasks


def fetch_events(client: Any, cluster: str, service: str) -> Obj:
    """The service as DescribeServices returns it (its `events` newest first, as ECS orders them)."""
    out = client.describe_services(cluster=cluster, services=[service])
    found = out.get("services", [])
    if not found:
        reason = (out.get("failures") or [{}])[0].get("reason", "MISSING")
        raise CliError(f"error: service {service} in cluster {cluster}: {reason}")
    return dict(found[0])


# --- handlers ---------------------------------------------------------------------------------


def _ps(args: argparse.Namespace) -> int:
    services, tasks = _call(args, fetch_ps, args.cluster, args.all)
    sys.stdout.write(render_ps(services, tasks, now=datetime.now(timezone.utc).timestamp(),
                               include_stopped=args.all))
    return 0


def _events(args: argparse.Namespace) -> int:
    if args.tail is not None and args.tail < 0:
        raise CliError("error: --tail must be 0 or more")
    service = _call(args, fetch_events, args.cluster, args.service)
    sys.stdout.write(render_events(service.get("events", []), tail=args.tail))
    return 0


# --- rendering (pure) -------------------------------------------------------------------------


def epoch(value: Any) -> float | None:
    """A timestamp as botocore parses it (aware datetime) or as the wire carries it (epoch seconds)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    return float(value)


def short_task_definition(arn: str) -> str:
    """`arn:aws:ecs:…:task-definition/cats:2` → `cats:2`."""
    return arn.rsplit("/", 1)[-1] if arn else ""


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def deployments_column(service: Obj) -> str:
    """The rollout at a glance: `cats:2 IN_PROGRESS 1/3, cats:1 draining (3)`."""
    deployments = sorted(service.get("deployments", []), key=lambda d: d.get("status") != "PRIMARY")
    parts = []
    for d in deployments:
        td = short_task_definition(d.get("taskDefinition", ""))
        if d.get("status") == "PRIMARY":
            text = f"{td} {d.get('rolloutState', '')}".rstrip()
            if len(deployments) > 1 or d.get("runningCount", 0) != d.get("desiredCount", 0):
                text += f" {d.get('runningCount', 0)}/{d.get('desiredCount', 0)}"
            if d.get("failedTasks"):
                text += f" ({d['failedTasks']} failed)"
        else:
            text = f"{td} draining ({d.get('runningCount', 0) + d.get('pendingCount', 0)})"
        parts.append(text)
    return ", ".join(parts) or "-"


def ports_column(task: Obj) -> str:
    """Docker's PORTS wording: `0.0.0.0:32768->80/tcp`; awsvpc tasks show their own address."""
    out = []
    for container in task.get("containers", []):
        for b in container.get("networkBindings", []):
            host = b.get("hostPort")
            port = f"{b.get('containerPort')}/{b.get('protocol', 'tcp')}"
            out.append(f"{b.get('bindIP', '0.0.0.0')}:{host}->{port}" if host else port)
    if not out:
        ips = {i.get("privateIpv4Address") for c in task.get("containers", [])
               for i in c.get("networkInterfaces", []) if i.get("privateIpv4Address")}
        out.extend(sorted(ip for ip in ips if ip))
    return ", ".join(dict.fromkeys(out))


def group_column(task: Obj) -> str:
    group = str(task.get("group", ""))
    return group.removeprefix("service:") if group.startswith("service:") else group


def stopped_column(task: Obj) -> str:
    """Why a task stopped: `EssentialContainerExited: Essential container in task exited (web: 137)`."""
    if task.get("lastStatus") != "STOPPED" and task.get("desiredStatus") != "STOPPED":
        return ""
    text = ": ".join(x for x in (task.get("stopCode"), task.get("stoppedReason")) if x)
    exits = [f"{c.get('name')}: {c['exitCode']}" for c in task.get("containers", []) if c.get("exitCode") is not None]
    reasons = [f"{c.get('name')}: {c['reason']}" for c in task.get("containers", []) if c.get("reason")]
    detail = ", ".join(exits + reasons)
    return f"{text} ({detail})" if detail else text


def _age(value: Any, now: float) -> str:
    when = epoch(value)
    return ago(when, now) if when is not None else ""


def render_ps(services: Sequence[Obj], tasks: Sequence[Obj], *, now: float, include_stopped: bool = False) -> str:
    """Two tables, as `berth ecs ps` prints them: services, a blank line, then tasks."""
    service_rows = [
        [s.get("serviceName", ""), s.get("status", ""), str(s.get("desiredCount", 0)), str(s.get("runningCount", 0)),
         str(s.get("pendingCount", 0)), short_task_definition(s.get("taskDefinition", "")), deployments_column(s)]
        for s in sorted(services, key=lambda s: str(s.get("serviceName", "")))
    ]
    out = render_table(["SERVICE", "STATUS", "DESIRED", "RUNNING", "PENDING", "TASK DEFINITION", "DEPLOYMENTS"],
                       service_rows) if service_rows else "no services\n"
    shown = [t for t in tasks if include_stopped or t.get("lastStatus") != "STOPPED"]
    # per service (standalone tasks last), running before stopped, newest first, as `docker ps`
    shown.sort(key=lambda t: (not str(t.get("group", "")).startswith("service:"), group_column(t),
                              t.get("lastStatus") == "STOPPED", -(epoch(t.get("createdAt")) or 0.0)))
    headers = ["TASK", "SERVICE/GROUP", "TASK DEFINITION", "LAST STATUS", "DESIRED", "HEALTH", "CREATED", "PORTS"]
    rows = []
    for t in shown:
        row = [task_id(t.get("taskArn", "")), group_column(t), short_task_definition(t.get("taskDefinitionArn", "")),
               t.get("lastStatus", ""), t.get("desiredStatus", ""), t.get("healthStatus", "UNKNOWN"),
               _age(t.get("createdAt"), now), ports_column(t)]
        if include_stopped:
            row.append(stopped_column(t))
        rows.append(row)
    if include_stopped:
        headers.append("STOPPED")
    out += "\n"
    out += render_table(headers, rows) if rows else "no tasks\n"
    return out


def render_events(events: Sequence[Obj], *, tail: int | None = None, tz: tzinfo | None = None) -> str:
    """Events oldest → newest, one a line: `2024-05-01 12:00:03  (service web) has reached a steady state.`

    `events` as DescribeServices returns them (newest first); times in `tz` (default: local time).
    """
    # reversed first: events of one reconcile share a timestamp and arrive newest first
    ordered = sorted(reversed(events), key=lambda e: epoch(e.get("createdAt")) or 0.0)
    if tail is not None:
        ordered = ordered[len(ordered) - tail:] if tail else []
    lines = []
    for event in ordered:
        when = epoch(event.get("createdAt"))
        stamp = datetime.fromtimestamp(when, tz).strftime("%Y-%m-%d %H:%M:%S") if when else "-"
        lines.append(f"{stamp}  {event.get('message', '')}\n")
    return "".join(lines)
