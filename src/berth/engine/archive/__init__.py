"""ArchiveService: `docker cp` (archive API), `docker diff` and `docker commit`.

Where the files are (Docker's view, daemon/containerfs_linux.go, running or not): the container's
overlay root plus its volumes, bind mounts and managed /etc files, never its tmpfs mounts. The
overlay is the one mounted at <container dir>/rootfs (mounted for the call when the container is
stopped), pinned by an fd; the mounts are mapped by hand (engine/archive/_view.py), so nothing is
mounted for them. All of it under the container's lock, so no start or removal interleaves.
diff and commit read the overlay upper dir (<container dir>/upper) against the image layers;
commit pauses a running container meanwhile (`pause`, default true, as Docker).

Safety: every container path is resolved in the container's namespace (symlinks interpreted
there, `..` stopping at its root) and then reached only through fds (`ContainerView.open()`):
walked from the root or a mount source with O_NOFOLLOW, so a running container that swaps a
directory for a symlink meanwhile fails the walk instead of sending the daemon to a host path
(CVE-2018-15664). Files are read only if they still are the regular file lstat'ed (a FIFO or
device swapped in is skipped), metadata is set through the fd of what was created, entries with
`..` components (or hard links to such) are refused, a mount point is never replaced, a hard
link never joins two mounts, and writes into a read-only volume or rootfs are refused per entry.

Modules: `_view` (the container's filesystem as cp sees it: ContainerView, ViewFs), `_paths` (request
paths, stat), `_tar` (write and extract tars through the view), `_changes` (diff, the layer tar and
the config of a commit), `_service` (ArchiveService, view_mounts).
"""

from berth.engine.archive._paths import stat_header, stat_path
from berth.engine.archive._service import ArchiveService, view_mounts
from berth.engine.archive._view import READ_ONLY_ROOTFS, READ_ONLY_VOLUME, ContainerView, ViewFs, ViewMount

__all__ = [
    "READ_ONLY_ROOTFS", "READ_ONLY_VOLUME", "ArchiveService", "ContainerView", "ViewFs", "ViewMount",
    "stat_header", "stat_path", "view_mounts",
]
