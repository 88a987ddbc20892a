"""berth's container runtime layer: OCI bundles, overlay root filesystems, crun/runc under
conmon, attach, exec and k8s-file logs. See README.md in this directory for the flow.

    rt = Runtime(run_dir=Path("/run/berth/runtime"))      # rt.name, rt.selection_reason
    rootfs = rt.mount_rootfs(layer_dirs, container_dir)
    pid = rt.create(spec, rootfs, container_dir / "ctr.log")
    rt.start(spec.id)
    code = await rt.wait_exit(spec.id)
    rt.delete(spec.id); rt.unmount_rootfs(container_dir)
"""

from berth.runtime._fdwait import readable
from berth.runtime.attach import AttachStream
from berth.runtime.exec import ExecProcess
from berth.runtime.logs import follow_logs, read_logs, read_logs_async
from berth.runtime.oci import build_oci_spec
from berth.runtime.runtime import Runtime
from berth.runtime.selection import (
    RuntimeChoice,
    prepare_host_for_crun,
    select_runtime,
    undo_prepare_host,
)
from berth.runtime.spec import ContainerSpec, ExecSpec, Mount, Resources

__all__ = [
    "readable",
    "AttachStream",
    "ContainerSpec",
    "ExecProcess",
    "ExecSpec",
    "Mount",
    "Resources",
    "Runtime",
    "RuntimeChoice",
    "build_oci_spec",
    "follow_logs",
    "prepare_host_for_crun",
    "read_logs",
    "read_logs_async",
    "select_runtime",
    "undo_prepare_host",
]
