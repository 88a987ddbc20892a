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
                   help="OCI runtime; auto = crun when the host's cgroup layout allows it, else runc")
    p.add_argument("--bridge-name", default="berth0", help="Linux bridge of the default network")
    p.add_argument("--bridge-subnet", default="10.88.0.0/16", help="subnet of the default network")
    p.add_argument("--network-name", default=None, help="CNI network name (default: berth, or the bridge name)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from berth.daemon.config import DaemonConfig
    from berth.daemon.main import run

    network_name = args.network_name or ("berth" if args.bridge_name == "berth0" else args.bridge_name)
    config = DaemonConfig(
        root=Path(args.root).resolve(), run_root=Path(args.run_root).resolve(),
        docker_hosts=tuple(args.docker_host or ["unix:///run/berth/docker.sock"]),
        runtime=args.runtime, bridge_name=args.bridge_name, bridge_subnet=args.bridge_subnet,
        network_name=network_name, log_level=args.log_level,
    )
    return run(config)
