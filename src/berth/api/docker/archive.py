"""Archive routes: `docker cp` (HEAD/GET/PUT /containers/{id}/archive), `docker export`, `docker diff`,
`docker commit`."""

from __future__ import annotations

import asyncio
import contextlib
import os

from berth.api.docker import wire
from berth.api.docker.backend import Backend
from berth.api.httpserver import Request, Response, Router, json_response
from berth.api.shapes import check
from berth.engine.archive import stat_header
from berth.errors import InvalidArgument

STAT_HEADER = "X-Docker-Container-Path-Stat"


def register(router: Router, backend: Backend) -> None:
    svc = backend.archive

    async def get_archive(req: Request) -> Response | None:
        path = req.query("path")
        if req.method == "HEAD":
            info = await svc.stat(req.match["id"], path)
            return Response(status=200, body=b"", headers={STAT_HEADER: stat_header(info)})
        info, tar_path = await svc.get(req.match["id"], path)
        try:
            stream = await req.stream(200, "application/x-tar", {STAT_HEADER: stat_header(info)})
            with open(tar_path, "rb") as f:
                while piece := await asyncio.to_thread(f.read, 1 << 20):
                    await stream.write(piece)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tar_path)
        return None

    async def export(req: Request) -> Response | None:
        tar_path = await svc.export(req.match["id"])
        try:
            stream = await req.stream(200, "application/x-tar")
            with open(tar_path, "rb") as f:
                while piece := await asyncio.to_thread(f.read, 1 << 20):
                    await stream.write(piece)
        finally:
            tar_path.unlink(missing_ok=True)
        return None

    async def put_archive(req: Request) -> Response:
        path = req.query("path")
        if not path:
            raise InvalidArgument("Path cannot be empty")
        tar_path = await req.save_body(backend.tmp_dir)
        try:
            await svc.put(req.match["id"], path, tar_path,
                          no_overwrite_dir_non_dir=req.qbool("noOverwriteDirNonDir"),
                          copy_uid_gid=req.qbool("copyUIDGID"))
        finally:
            tar_path.unlink(missing_ok=True)
        return Response(status=200, body=b"", content_type="text/plain")

    async def changes(req: Request) -> Response:
        return json_response(await asyncio.to_thread(svc.diff, req.match["id"]))

    async def commit(req: Request) -> Response:
        body = check(await req.json(), wire.CONTAINER_CONFIG)
        repo, tag = req.query("repo"), req.query("tag")
        reference = f"{repo}:{tag}" if repo and tag else (repo or None)
        # `pause` defaults to true (moby, API >= 1.13); `docker commit --pause=false` sends pause=0
        image_id = await svc.commit_container(
            req.query("container"), pause=req.qbool("pause", default=True), reference=reference,
            comment=req.query("comment"), author=req.query("author"),
            changes_=req.query_all.get("changes") or [], config=body or None)
        return json_response({"Id": image_id}, status=201)

    router.add("GET", "/containers/{id}/archive", get_archive)
    router.add("PUT", "/containers/{id}/archive", put_archive)
    router.add("GET", "/containers/{id}/changes", changes)
    router.add("GET", "/containers/{id}/export", export)
    router.add("POST", "/commit", commit)
