"""Image verbs: images, pull, push, tag, rmi, load, save, import, and `image bootstrap`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

import docker
from docker.errors import APIError

from berth.cli.client import delete, flags_param, get_json, iter_body, iter_messages, open_stream, post_json
from berth.cli.failures import CliError, daemon_message
from berth.cli.options import filters_param, parse_filters, split_repo_tag
from berth.cli.progress import render_message
from berth.cli.render import IMAGES_HEADERS, image_rows, short_id
from berth.cli.run import pull
from berth.cli.table import render_table
from berth.cli.units import utc_now
from berth.cli.verbs import Verb
from berth.errors import InvalidArgument
from berth.types import parse_reference

ANONYMOUS_AUTH = "e30="  # base64url("{}"): what docker sends when not logged in
BOOTSTRAP_PATH = "/berth/images/bootstrap"


def print_messages(messages: Iterator[dict[str, Any]], out: IO[str]) -> None:
    for message in messages:
        text = render_message(message)
        if text:
            out.write(text)
            out.flush()


def add_images_arguments(parser: argparse.ArgumentParser) -> None:
    flag = parser.add_argument
    flag("-a", "--all", action="store_true", help="show all images (default hides intermediate images)")
    flag("-q", "--quiet", action="store_true", help="only show image IDs")
    flag("--no-trunc", action="store_true", help="don't truncate output")
    flag("-f", "--filter", action="append", default=[], metavar="K=V", help="filter output (dangling=, reference=)")
    flag("reference", nargs="?", metavar="REPOSITORY[:TAG]")


def images_params(args: argparse.Namespace) -> dict[str, Any]:
    try:
        filters = parse_filters(args.filter)
    except ValueError as err:
        raise CliError(str(err)) from None
    if args.reference:
        # The daemon applies `reference`; `images -q NAME` relies on it.
        filters.setdefault("reference", {})[args.reference] = True
    params: dict[str, Any] = filters_param(filters)
    if args.all:
        params["all"] = 1
    return params


def cmd_images(api: docker.APIClient, args: argparse.Namespace) -> int:
    items = get_json(api, "/images/json", params=images_params(args)) or []
    now = utc_now()
    rows = [row for item in items for row in image_rows(item, now, trunc=not args.no_trunc)]
    if args.quiet:
        for row in rows:
            print(row[2] if args.no_trunc else short_id(row[2]))
        return 0
    sys.stdout.write(render_table(IMAGES_HEADERS, rows))
    return 0


def add_ref(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="NAME[:TAG]")


def cmd_pull(api: docker.APIClient, args: argparse.Namespace) -> int:
    if ":" not in args.reference.rsplit("/", 1)[-1] and "@" not in args.reference:
        print("Using default tag: latest")
    pull(api, args.reference, sys.stdout)
    print(parse_reference(args.reference))
    return 0


def cmd_push(api: docker.APIClient, args: argparse.Namespace) -> int:
    try:
        ref = parse_reference(args.reference)
    except InvalidArgument as err:
        raise CliError(str(err)) from None
    if ":" not in args.reference.rsplit("/", 1)[-1]:
        print("Using default tag: latest")
    response = open_stream(api, "POST", "/images/{0}/push", ref.familiar_repository,
                           params={"tag": ref.tag or ""}, headers={"X-Registry-Auth": ANONYMOUS_AUTH})
    print_messages(iter_messages(response), sys.stdout)
    return 0


def add_tag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    parser.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def cmd_tag(api: docker.APIClient, args: argparse.Namespace) -> int:
    try:
        repo, tag = split_repo_tag(args.target)
    except ValueError as err:
        raise CliError(str(err)) from None
    post_json(api, "/images/{0}/tag", args.source, params={"repo": repo, "tag": tag})
    return 0


def add_rmi_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    parser.add_argument("--no-prune", action="store_true", help="do not delete untagged parents")
    parser.add_argument("images", nargs="+", metavar="IMAGE")


def cmd_rmi(api: docker.APIClient, args: argparse.Namespace) -> int:
    params = flags_param(force=args.force, noprune=args.no_prune)
    failed = False
    for image in args.images:
        try:
            results = delete(api, "/images/{0}", image, params=params) or []
        except APIError as err:
            sys.stderr.write(daemon_message(err) + "\n")
            failed = True
            continue
        for result in results:
            for key in ("Untagged", "Deleted"):
                if result.get(key):
                    print(f"{key}: {result[key]}")
    return 1 if failed else 0


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--input", metavar="FILE", help="read from a tar archive file instead of STDIN")
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")


@contextlib.contextmanager
def input_file(path: str | None, what: str) -> Iterator[IO[bytes]]:
    """The named file, or stdin when it is not a terminal (docker refuses a terminal)."""
    if path and path != "-":
        try:
            with open(path, "rb") as handle:
                yield handle
        except FileNotFoundError:
            raise CliError(f"open {path}: no such file or directory") from None
        return
    if sys.stdin.isatty():
        raise CliError(f"requested {what} from stdin, but stdin is empty")
    yield sys.stdin.buffer


def cmd_load(api: docker.APIClient, args: argparse.Namespace) -> int:
    with input_file(args.input, "load") as body:
        params = {"quiet": 1} if args.quiet else None
        response = open_stream(api, "POST", "/images/load", params=params, data=body,
                               headers={"Content-Type": "application/x-tar"})
        print_messages(iter_messages(response), sys.stdout)
    return 0


def add_save_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write to a file instead of STDOUT")
    parser.add_argument("images", nargs="+", metavar="IMAGE")


def cmd_save(api: docker.APIClient, args: argparse.Namespace) -> int:
    if not args.output and sys.stdout.isatty():
        raise CliError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    response = open_stream(api, "GET", "/images/get", params={"names": args.images})
    if not args.output:
        for chunk in iter_body(response):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return 0
    # Write beside the target and rename, so a failed save leaves no truncated archive behind.
    partial = f"{args.output}.partial-{os.getpid()}"
    try:
        with open(partial, "wb") as out:
            for chunk in iter_body(response):
                out.write(chunk)
        os.replace(partial, args.output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
    return 0


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--change", action="append", default=[], metavar="CHANGE",
                        help="apply a Dockerfile instruction (CMD, ENV, ...) to the image")
    parser.add_argument("-m", "--message", help="set the commit message")
    parser.add_argument("file", metavar="FILE|-")
    parser.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")


def cmd_import(api: docker.APIClient, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"fromSrc": "-", "changes": args.change}
    if args.reference:
        params["repo"] = args.reference
    if args.message:
        params["message"] = args.message
    with input_file(args.file, "import") as body:
        response = open_stream(api, "POST", "/images/create", params=params, data=body,
                               headers={"Content-Type": "application/x-tar"})
        print_messages(iter_messages(response), sys.stdout)
    return 0


def add_bootstrap_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="image to build from host binaries, e.g. busybox")
    parser.add_argument("--tag", default="latest", help="tag to give it (default: latest)")


def cmd_bootstrap(api: docker.APIClient, args: argparse.Namespace) -> int:
    result = post_json(api, BOOTSTRAP_PATH, params={"name": args.name, "tag": args.tag}, versioned=False) or {}
    print(result.get("Id", ""))
    return 0


IMAGES = Verb("images", "List images", add_images_arguments, cmd_images)
PULL = Verb("pull", "Download an image from a registry", add_ref, cmd_pull)
PUSH = Verb("push", "Upload an image to a registry", add_ref, cmd_push)
TAG = Verb("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", add_tag_arguments, cmd_tag)
RMI = Verb("rmi", "Remove one or more images", add_rmi_arguments, cmd_rmi)
LOAD = Verb("load", "Load an image from a tar archive or STDIN", add_load_arguments, cmd_load)
SAVE = Verb("save", "Save one or more images to a tar archive (streamed to STDOUT by default)",
            add_save_arguments, cmd_save)
IMPORT = Verb("import", "Import a root filesystem tarball to create an image", add_import_arguments, cmd_import)
BOOTSTRAP = Verb("bootstrap", "Create an image from the host's static binaries (no registry needed)",
                 add_bootstrap_arguments, cmd_bootstrap,
                 description="Create an image such as busybox from the host's static binaries, "
                             "for hosts with no registry to pull from. Prints the image ID.")

VERBS = (IMAGES, PULL, PUSH, TAG, RMI, LOAD, SAVE, IMPORT)

# `berth image <sub>`: docker's management-command names, plus berth's bootstrap.
IMAGE_GROUP = (
    ("ls", IMAGES), ("pull", PULL), ("push", PUSH), ("tag", TAG), ("rm", RMI),
    ("load", LOAD), ("save", SAVE), ("import", IMPORT), ("bootstrap", BOOTSTRAP),
)
