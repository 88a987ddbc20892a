"""Builder: the engine-facing entry point; one `Build` per request, each in its own temp dir.

    <work_root>/build-<random>/     removed when the build ends, success or failure
        context.tar                 the request body, decompressed and terminated
        step-<n>/                   a RUN step's overlay (upper/work/rootfs) or a COPY layer tar

`recover()` (daemon start) unmounts and removes what a crash left there.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from berth.builder.cache import BuildCache
from berth.builder.executor import Build, BuildOptions, Emit, ImagesLike, PullBase
from berth.builder.runner import ContainerRunner, NetworkLike, RuntimeLike
from berth.state import Database

log = logging.getLogger(__name__)


class Builder:
    """Builds images from Dockerfiles; see the package README for the flow.

    Example:
        builder = Builder(images=store, db=db, runtime=rt, network=net, work_root=root / "tmp")
        image_id = await builder.build(BuildOptions(tags=("cats",)), Path("ctx.tar"), emit)
    """

    def __init__(self, *, images: ImagesLike, db: Database, runtime: RuntimeLike, network: NetworkLike,
                 work_root: Path, architecture: str = "amd64", pull_base: PullBase | None = None) -> None:
        self._images = images
        self._pull_base = pull_base
        self.cache = BuildCache(db)
        self._runner = ContainerRunner(runtime, network)
        self._work_root = Path(work_root)
        self._work_root.mkdir(parents=True, exist_ok=True)
        self._arch = architecture

    async def build(self, options: BuildOptions, raw_context: Path, emit: Emit) -> str:
        """Build from the context tar at `raw_context` (consumed); returns the image id.

        Raises:
            DockerfileError: the Dockerfile is invalid, or a step failed (file:line in the text).
            StepFailed: a RUN command exited non-zero (`code` is its exit status).
            InvalidArgument / NotFound: bad context, missing base image, ...
        """
        work = Path(tempfile.mkdtemp(dir=self._work_root, prefix="build-"))
        build = Build(images=self._images, cache=self.cache, runner=self._runner, work=work,
                      options=options, emit=emit, architecture=self._arch, pull_base=self._pull_base)
        try:
            return await build.run(raw_context)
        finally:
            if build.context is not None:
                build.context.close()
            raw_context.unlink(missing_ok=True)
            remove_work_dir(work)

    def recover(self) -> None:
        for entry in self._work_root.glob("build-*"):
            remove_work_dir(entry)

    def prune_cache(self, exists: Callable[[str], bool]) -> int:
        return self.cache.prune(exists)

    def clear_cache(self, older_than: float | None = None) -> list[str]:
        return self.cache.clear(older_than)

    async def close(self) -> None:
        await self._runner.close()


def remove_work_dir(work: Path) -> None:
    """Unmount anything still mounted below `work` (a crashed step), then delete it."""
    prefix = str(work.absolute()) + "/"
    try:
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    except OSError:
        mounts = []
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
    if os.path.exists(work):
        log.warning("could not remove build dir %s", work)
