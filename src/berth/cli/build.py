"""`berth build`: docker build's flags over POST /build (the legacy builder's JSON stream).

The context is tarred here, as the docker CLI does: `.dockerignore` applied, a Dockerfile
outside the context added under a private name, `-` reading a Dockerfile (or a tar) from stdin.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import sys
import tarfile
from pathlib import Path
from typing import IO, Any

import docker
from docker.utils.build import tar

from berth.cli.client import iter_messages, open_stream
from berth.cli.failures import CliError
from berth.cli.verbs import Verb


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    flag = parser.add_argument
    flag("-t", "--tag", action="append", default=[], help="name and optionally a tag (name:tag); repeatable")
    flag("-f", "--file", help="name of the Dockerfile (default: PATH/Dockerfile)")
    flag("--build-arg", action="append", default=[], metavar="K=V", help="set a build-time variable")
    flag("--label", action="append", default=[], metavar="K=V", help="set metadata on the image")
    flag("--target", help="build this stage")
    flag("-q", "--quiet", action="store_true", help="suppress the build output and print the image ID")
    flag("--iidfile", help="write the image ID to the file")
    flag("--no-cache", action="store_true", help="do not use the cache")
    flag("--pull", action="store_true", help="always attempt to pull a newer base image")
    flag("--cache-from", action="append", default=[], help="images to consider as cache sources")
    flag("--network", help="networking mode for RUN instructions (default, none, host)")
    flag("--rm", default="true", help="remove intermediate containers (always done)")
    flag("--force-rm", action="store_true", help="always remove intermediate containers (always done)")
    flag("path", metavar="PATH | -")


def _pairs(items: list[str], *, allow_bare: bool) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
        elif allow_bare:  # docker takes a bare --build-arg NAME from the client's environment
            out[key] = os.environ.get(key)
        else:
            out[key] = ""
    return out


def build_params(args: argparse.Namespace, dockerfile: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"t": args.tag, "version": "1"}
    if dockerfile:
        params["dockerfile"] = dockerfile
    if args.build_arg:
        params["buildargs"] = json.dumps(_pairs(args.build_arg, allow_bare=True))
    if args.label:
        params["labels"] = json.dumps(_pairs(args.label, allow_bare=False))
    if args.cache_from:
        params["cachefrom"] = json.dumps(args.cache_from)
    for flag, name in ((args.no_cache, "nocache"), (args.pull, "pull"), (args.quiet, "q"), (args.force_rm, "forcerm")):
        if flag:
            params[name] = "1"
    if args.target:
        params["target"] = args.target
    if args.network:
        params["networkmode"] = args.network
    return params


def context_body(path: str, dockerfile: str | None, stdin: IO[bytes]) -> tuple[IO[bytes], str | None]:
    """The context tar and the `dockerfile` parameter, as the docker CLI builds them."""
    if path == "-":
        data = stdin.read()
        if _is_archive(data):
            return io.BytesIO(data), dockerfile
        return _single_file_tar("Dockerfile", data), "Dockerfile"
    root = Path(path)
    if not root.is_dir():
        raise CliError(f'unable to prepare context: path "{path}" not found')
    ignore_file = root / ".dockerignore"
    patterns = ignore_file.read_text().splitlines() if ignore_file.exists() else []
    patterns = [p for p in patterns if p.strip() and not p.strip().startswith("#")]
    extra: tuple[str, str] | None = None
    name = dockerfile
    if dockerfile:
        file_path = Path(dockerfile)
        if file_path.is_absolute() or not (root / dockerfile).exists():
            if not file_path.exists():
                raise CliError(f"unable to prepare context: the Dockerfile ({dockerfile}) does not exist")
            name = f".dockerfile.{secrets.token_hex(10)}"
            extra = (name, file_path.read_text())
    body = tar(str(root), exclude=_keep_specials(patterns, name), dockerfile=extra)
    return body, name


def _keep_specials(patterns: list[str], dockerfile: str | None) -> list[str]:
    """The Dockerfile and .dockerignore are always sent (the daemon reads them)."""
    return patterns + ["!.dockerignore", f"!{dockerfile or 'Dockerfile'}"] if patterns else patterns


def _is_archive(data: bytes) -> bool:
    if data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00":
        return True
    return len(data) >= 512 and data[257:262] == b"ustar"


def _single_file_tar(name: str, data: bytes) -> IO[bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def cmd_build(api: docker.APIClient, args: argparse.Namespace) -> int:
    body, dockerfile = context_body(args.path, args.file, sys.stdin.buffer)
    response = open_stream(api, "POST", "/build", params=build_params(args, dockerfile), data=body,
                           headers={"Content-Type": "application/x-tar", "X-Registry-Config": "e30="})
    image_id = ""
    for message in iter_messages(response):
        if "errorDetail" in message or "error" in message:
            detail = message.get("errorDetail") or {}
            raise CliError(detail.get("message") or message.get("error", "build failed"), detail.get("code") or 1)
        if "aux" in message:
            image_id = (message["aux"] or {}).get("ID", image_id)
        text = message.get("stream")
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
    if args.iidfile and image_id:
        Path(args.iidfile).write_text(image_id)
    return 0


BUILD = Verb("build", "Build an image from a Dockerfile", add_build_arguments, cmd_build)
VERBS = (BUILD,)
