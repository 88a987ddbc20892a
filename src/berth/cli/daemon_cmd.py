"""`berth daemon`: parse flags into a DaemonConfig and run the daemon."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_daemon_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("daemon", help="Run the berth daemon (Docker Engine API server)",
                              description="Run the berth daemon in the foreground. SIGTERM stops it; "
                                          "containers keep running and the next daemon adopts them.")
    p.add_argument("--root", default="/var/lib/berth", help="state directory (default /var/lib/berth)")
    p.add_argument("--run-root", default="/run/berth", help="runtime directory (default /run/berth)")
    p.add_argument("--docker-host", action="append", default=None, metavar="unix://PATH",
                   help="where to serve the Docker API (repeatable; default unix:///run/berth/docker.sock)")
    p.add_argument("--runtime", choices=("auto", "crun", "runc"), default="auto",
                   help="OCI runtime; auto = crun when the host's cgroup layout allows it "
                        "(with --crun-cgroup-fix), else runc")
    p.add_argument("--crun-cgroup-fix", choices=("auto", "mask", "none"), default="auto",
                   help="on hybrid cgroup hosts crun refuses to run while cgroup2 owns a controller; "
                        "mask (auto: when it works) runs every crun call in a private mount namespace "
                        "with that controller list hidden; none disables it (auto then picks runc)")
    p.add_argument("--network-spares", type=int, default=2, metavar="N",
                   help="bridge network namespaces attached ahead of time to speed up starts "
                        "(default 2; 0 disables)")
    p.add_argument("--iptables-rules", choices=("batch", "plugins"), default="batch",
                   help="who writes a container's masquerade, forward and published-port rules: "
                        "berth, in one iptables-restore per start and stop (default), or the CNI "
                        "bridge/firewall/portmap plugins (≈ 1 ms per rule on the nft backend)")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]|CIDR",
                   help="registry reached without TLS verification, or over plain HTTP "
                        "(repeatable; loopback registries always are)")
    p.add_argument("--registry-mirror", action="append", default=[], metavar="URL",
                   help="pull-through mirror tried before Docker Hub (repeatable)")
    p.add_argument("--registry-addr", default="127.0.0.1:5000", metavar="HOST:PORT|off",
                   help="where the built-in OCI registry listens (default 127.0.0.1:5000; off disables it)")
    p.add_argument("--registry-htpasswd", default=None, metavar="FILE",
                   help="htpasswd file (bcrypt, `htpasswd -B`) with the registry's users")
    p.add_argument("--registry-anonymous-pull", choices=("true", "false"), default="true",
                   help="let clients without credentials pull from the registry (default true)")
    p.add_argument("--registry-anonymous-push", choices=("true", "false"), default="false",
                   help="let clients without credentials push to the registry (default false)")
    p.add_argument("--aws-addr", default="127.0.0.1:4566", metavar="HOST:PORT|off",
                   help="where the AWS APIs (ECR, ECS) listen (default 127.0.0.1:4566; off disables them)")
    p.add_argument("--aws-auth", choices=("sigv4", "none"), default="sigv4",
                   help="sigv4 (default): every AWS API request must be signed with a key berth knows "
                        "(`berth aws-credentials` prints the generated one); none: accept anyone who can "
                        "reach --aws-addr, for throwaway local setups only (ECS can run containers as root)")
    p.add_argument("--aws-credentials", action="append", default=[], metavar="FILE",
                   help="more AWS keys, one `ACCESS_KEY_ID SECRET_ACCESS_KEY` per line (repeatable)")
    p.add_argument("--cluster", default="default", metavar="NAME",
                   help="the ECS cluster this host's agent registers into (default: default)")
    p.add_argument("--no-agent", action="store_true",
                   help="run no ECS agent on this host (the control plane still answers)")
    p.add_argument("--ecs-agents", type=int, default=1, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--ecs-agent-resources", default="", metavar="CPU,MEMORY",
                   help="CPU units and MiB this host offers to ECS tasks (default: 1024 per core, all memory)")
    p.add_argument("--ecs-task-retention", type=float, default=3600.0, metavar="SECONDS",
                   help="how long STOPPED tasks stay describable before they and their containers go "
                        "(default 3600, as ECS)")
    p.add_argument("--ecs-healthy-after", type=float, default=40.0, metavar="SECONDS",
                   help="a service task without health checks counts as healthy this long after RUNNING "
                        "(default 40, as ECS); rolling deployments wait for it")
    p.add_argument("--elb-bind", default="127.0.0.1", metavar="ADDRESS",
                   help="the address ELBv2 listeners (HAProxy) listen on (default 127.0.0.1)")
    p.add_argument("--metrics-addr", default="127.0.0.1:9464", metavar="HOST:PORT|off",
                   help="where GET /metrics (Prometheus text format: ELB listener and target counts) is "
                        "served, without authentication (default 127.0.0.1:9464; off disables it)")
    p.add_argument("--bridge-name", default="berth0", help="Linux bridge of the default network")
    p.add_argument("--bridge-subnet", default="10.88.0.0/16", help="subnet of the default network")
    p.add_argument("--network-name", default=None, help="CNI network name (default: berth, or the bridge name)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument("-G", "--group", default="", metavar="NAME|GID",
                   help="group that may use the API unix sockets (mode 0660; default: root only)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from berth.daemon.config import DaemonConfig
    from berth.daemon.main import run

    network_name = args.network_name or ("berth" if args.bridge_name == "berth0" else args.bridge_name)
    config = DaemonConfig(
        root=Path(args.root).resolve(), run_root=Path(args.run_root).resolve(),
        docker_hosts=tuple(args.docker_host or ["unix:///run/berth/docker.sock"]),
        runtime=args.runtime, crun_cgroup_fix=args.crun_cgroup_fix,
        network_spares=max(0, args.network_spares), network_iptables_rules=args.iptables_rules,
        bridge_name=args.bridge_name, bridge_subnet=args.bridge_subnet,
        network_name=network_name, log_level=args.log_level, socket_group=args.group,
        insecure_registries=tuple(args.insecure_registry), registry_mirrors=tuple(args.registry_mirror),
        registry_addr=args.registry_addr,
        registry_htpasswd=Path(args.registry_htpasswd).resolve() if args.registry_htpasswd else None,
        registry_anonymous_pull=args.registry_anonymous_pull == "true",
        registry_anonymous_push=args.registry_anonymous_push == "true",
        aws_addr=args.aws_addr, aws_auth=args.aws_auth,
        aws_credentials=tuple(Path(p).resolve() for p in args.aws_credentials),
        ecs_cluster=args.cluster, ecs_agent=not args.no_agent, ecs_agents=max(1, args.ecs_agents),
        ecs_agent_cpu=_resources(args.ecs_agent_resources)[0], ecs_agent_memory=_resources(args.ecs_agent_resources)[1],
        ecs_task_retention=args.ecs_task_retention, ecs_healthy_after=args.ecs_healthy_after,
        elb_bind=args.elb_bind, metrics_addr=args.metrics_addr,
    )
    return run(config)


def _resources(text: str) -> tuple[int | None, int | None]:
    """`--ecs-agent-resources CPU,MEMORY` → (cpu units, MiB); empty → host defaults."""
    if not text:
        return None, None
    cpu, _, memory = text.partition(",")
    try:
        return (int(cpu) if cpu else None), (int(memory) if memory else None)
    except ValueError:
        raise SystemExit(f"berth daemon: --ecs-agent-resources wants CPU,MEMORY (numbers), not {text!r}") from None
