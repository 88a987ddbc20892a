"""`berth registry gc`: garbage-collect the built-in registry's storage.

It works on the storage directly (like distribution's `registry garbage-collect`), under
`<root>/registry`, and is safe while the daemon serves: the pass runs in one write transaction
of the registry index, which every blob commit also takes (see berth.registry._gc).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_registry_parser(subparsers: Any) -> None:
    group = subparsers.add_parser("registry", help="Manage the built-in registry (gc)",
                                  description="Manage the built-in OCI registry's storage.")
    sub = group.add_subparsers(title="Commands", metavar="COMMAND")
    gc = sub.add_parser("gc", help="Remove blobs no manifest references",
                        description="Remove registry blobs that no manifest references and that no "
                                    "push touched within the grace period. Safe while the daemon runs.")
    gc.add_argument("--root", default="/var/lib/berth", help="the daemon's state directory (default /var/lib/berth)")
    gc.add_argument("--grace", type=float, default=3600.0, metavar="SECONDS",
                    help="keep blobs uploaded or used within this many seconds (default 3600): "
                         "protects pushes still in flight")
    gc.add_argument("--delete-untagged", action="store_true",
                    help="also remove manifests no tag, index or present subject refers to")
    gc.add_argument("--dry-run", "-n", action="store_true", help="only report what would be removed")
    gc.set_defaults(func=_gc)
    group.set_defaults(func=lambda args: group.print_help() or 0)


def _gc(args: argparse.Namespace) -> int:
    from berth.registry import RegistryConfig, collect_garbage, open_registry

    root = Path(args.root).resolve() / "registry"
    if not (root / "registry.db").exists():
        sys.stderr.write(f"no registry under {root}\n")
        return 1
    registry, db = open_registry(RegistryConfig(root=root))
    try:
        report = collect_garbage(registry.storage, registry.index, grace=args.grace,
                                 delete_untagged=args.delete_untagged, dry_run=args.dry_run)
    finally:
        db.close()
    verb = "would remove" if args.dry_run else "removed"
    for name in report.manifests_removed:
        print(f"manifest {name}")
    for digest in report.blobs_removed:
        print(f"blob {digest}")
    print(f"{verb} {len(report.blobs_removed)} blob(s) ({report.bytes_freed / 1e6:.1f} MB), "
          f"{len(report.manifests_removed)} manifest(s), {report.links_removed} stale link(s), "
          f"{report.uploads_removed} abandoned upload(s)")
    return 0
