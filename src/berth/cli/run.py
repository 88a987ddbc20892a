"""`berth run` and `berth exec`: create/attach/wait/start, exit with the process's status.

Request order for an attached run, as docker-cli (see reference/docker-engine-api.md §3.5):
create (404 -> pull, then create again) -> attach (hijack) -> wait (headers received) -> start
-> [resize] -> copy streams until the daemon closes them -> read the wait result -> exit with it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
from docker.errors import APIError

from berth.cli.client import get_json, iter_body, iter_messages, open_stream, post_json
from berth.cli.envfile import merge_env
from berth.cli.failures import CliError, daemon_message, status_code
from berth.cli.options import familiar_ref, pull_params
from berth.cli.progress import render_message
from berth.cli.runconfig import add_create_options, create_body
from berth.cli.stream import hijack, raw_terminal, run_session, stdin_is_tty, terminal_size
from berth.cli.verbs import Verb
from berth.errors import InvalidArgument

PROXIED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def run_failure(message: str, code: int = 125) -> CliError:
    """docker's run error shape: `docker: <msg>`, a blank line, a pointer to --help."""
    return CliError(f"berth: {message}\n\nRun 'berth run --help' for more information", code)


def start_exit_code(message: str) -> int:
    """126/127 when the command cannot be run, as docker maps start errors; 125 otherwise."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered:
        return 126
    return 125


def pull(api: docker.APIClient, image: str, out: Any) -> None:
    """`POST /images/create?fromImage=..&tag=..`, progress text to `out`.

    Raises:
        CliError: the reference is invalid or the stream reports an error.
        APIError: the daemon refused before the stream started.
    """
    try:
        params = pull_params(image)
    except InvalidArgument as err:
        raise CliError(str(err)) from None
    response = open_stream(api, "POST", "/images/create", params=params, headers={"X-Registry-Auth": "e30="})
    for message in iter_messages(response):
        text = render_message(message)
        if text:
            out.write(text)
            out.flush()


def create_with_pull(api: docker.APIClient, body: dict[str, Any], name: str | None) -> str:
    """Create the container; on 404 pull the image once and retry. Returns the container ID."""
    try:
        created = api.create_container_from_config(body, name=name)
    except APIError as err:
        if status_code(err) != 404:
            raise
        sys.stderr.write(f"Unable to find image '{familiar_ref(body['Image'])}' locally\n")
        pull(api, body["Image"], sys.stderr)
        created = api.create_container_from_config(body, name=name)
    for warning in created.get("Warnings") or []:
        sys.stderr.write(f"WARNING: {warning}\n")
    return str(created["Id"])


class Waiter:
    """A `/wait` request whose headers have arrived, so no exit after this can be missed."""

    def __init__(self, api: docker.APIClient, container_id: str, condition: str) -> None:
        self._response = open_stream(api, "POST", "/containers/{0}/wait", container_id,
                                     params={"condition": condition})

    def status(self) -> int:
        """Block until the daemon answers; the container's exit status.

        Raises:
            CliError: the wait result carries an error (exit 125), or the answer is unreadable.
        """
        raw = b"".join(iter_body(self._response))
        try:
            result = json.loads(raw or b"{}")
        except ValueError:
            raise CliError(f"berth: unexpected wait response: {raw[:200]!r}", 125) from None
        error = result.get("Error") or {}
        if error.get("Message"):
            raise CliError(f"berth: {error['Message']}", 125)
        return int(result.get("StatusCode", 0))

    def close(self) -> None:
        self._response.close()


def _in_background(action: Callable[[], object]) -> None:
    """Run an API call off the signal handler, ignoring its failure (container already gone)."""

    def call() -> None:
        with contextlib.suppress(Exception):
            action()

    threading.Thread(target=call, daemon=True).start()


@contextlib.contextmanager
def proxy_signals(api: docker.APIClient, container_id: str) -> Iterator[None]:
    """Forward the signals we receive to the container, as docker's sig-proxy does."""

    def forward(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name.removeprefix("SIG")
        _in_background(lambda: api.kill(container_id, name))

    previous = {}
    for name in PROXIED_SIGNALS:
        signum = getattr(signal, name)
        previous[signum] = signal.signal(signum, forward)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def follow_resizes(resize: Callable[[int, int], object], enabled: bool = True) -> Iterator[None]:
    """Send our terminal size now and on every SIGWINCH (failures are not fatal, as in docker)."""
    if not enabled or not sys.stdout.isatty():
        yield
        return

    def send(*_: object) -> None:
        _in_background(lambda: resize(*terminal_size()))

    send()
    previous = signal.signal(signal.SIGWINCH, send)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def console_size(tty_mode: bool) -> tuple[int, int]:
    return terminal_size() if tty_mode and sys.stdout.isatty() else (0, 0)


def check_tty(args: argparse.Namespace) -> None:
    if args.tty and args.interactive and not args.detach and not stdin_is_tty():
        raise CliError("the input device is not a TTY")


def run_attached(api: docker.APIClient, container_id: str, args: argparse.Namespace) -> int:
    params = {"stream": 1, "stdout": 1, "stderr": 1}
    if args.interactive:
        params["stdin"] = 1
    conn = hijack(api, "/containers/{0}/attach", container_id, params=params)
    waiter = Waiter(api, container_id, "removed" if args.rm else "next-exit")
    raw = args.tty and args.interactive
    resize = lambda h, w: api.resize(container_id, height=h, width=w)  # noqa: E731
    # Signals are proxied and the terminal is raw from before /start, as in docker, so early
    # keystrokes and an early Ctrl-C reach the container.
    with proxy_signals(api, container_id), raw_terminal(sys.stdin.fileno(), raw):
        try:
            api.start(container_id)
        except APIError as err:
            conn.close()
            waiter.close()
            raise run_failure(daemon_message(err), start_exit_code(daemon_message(err))) from None
        with follow_resizes(resize, args.tty):
            detached = run_session(conn, tty_mode=args.tty, forward_stdin=args.interactive)
    if detached:
        waiter.close()
        return 0
    return waiter.status()


def cmd_run(api: docker.APIClient, args: argparse.Namespace) -> int:
    try:
        body = create_body(args, os.environ, console_size(args.tty))
    except (ValueError, OSError) as err:
        raise run_failure(str(err)) from None
    check_tty(args)
    try:
        container_id = create_with_pull(api, body, args.name)
    except APIError as err:
        raise run_failure(daemon_message(err)) from None
    except CliError as err:
        raise run_failure(err.message) from None
    if not args.detach:
        return run_attached(api, container_id, args)
    try:
        api.start(container_id)
    except APIError as err:
        raise run_failure(daemon_message(err), start_exit_code(daemon_message(err))) from None
    print(container_id)
    return 0


def add_exec_arguments(parser: argparse.ArgumentParser) -> None:
    flag = parser.add_argument
    flag("-d", "--detach", action="store_true", help="run the command in the background")
    flag("-i", "--interactive", action="store_true", help="keep STDIN open and attach it")
    flag("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    flag("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment variable")
    flag("--env-file", action="append", default=[], metavar="FILE", help="read environment variables from a file")
    flag("-u", "--user", help="user name or UID[:GID]")
    flag("-w", "--workdir", help="working directory inside the container")
    flag("--privileged", action="store_true", help="give extended privileges to the command")
    flag("container", metavar="CONTAINER")
    flag("command", nargs=argparse.REMAINDER, metavar="COMMAND")


def exec_body(args: argparse.Namespace, console: tuple[int, int]) -> dict[str, Any]:
    attached = not args.detach
    return {
        "User": args.user or "",
        "Privileged": args.privileged,
        "Tty": args.tty,
        "ConsoleSize": list(console),
        "AttachStdin": attached and args.interactive,
        "AttachStdout": attached,
        "AttachStderr": attached,
        "Detach": args.detach,
        "DetachKeys": "",
        "Env": merge_env(args.env_file, args.env, os.environ) or None,
        "WorkingDir": args.workdir or "",
        "Cmd": args.command,
    }


def exec_exit_code(api: docker.APIClient, exec_id: str) -> int:
    """The exec's ExitCode; briefly tolerates a daemon that has not recorded it yet."""
    deadline = time.monotonic() + 2.0
    while True:
        info = api.exec_inspect(exec_id)
        if not info.get("Running") or time.monotonic() > deadline:
            return int(info.get("ExitCode") or 0)
        time.sleep(0.05)


def cmd_exec(api: docker.APIClient, args: argparse.Namespace) -> int:
    if not args.command:
        raise CliError("\"berth exec\" requires at least 2 arguments.\nSee 'berth exec --help'.")
    check_tty(args)
    get_json(api, "/containers/{0}/json", args.container)
    try:
        body = exec_body(args, console_size(args.tty))
    except (ValueError, OSError) as err:
        raise CliError(str(err)) from None
    exec_id = str(post_json(api, "/containers/{0}/exec", args.container, body=body)["Id"])
    if args.detach:
        post_json(api, "/exec/{0}/start", exec_id, body={"Detach": True, "Tty": args.tty})
        return 0
    conn = hijack(api, "/exec/{0}/start", exec_id,
                  body={"Detach": False, "Tty": args.tty, "ConsoleSize": body["ConsoleSize"]})
    raw = args.tty and args.interactive
    resize = lambda h, w: api.exec_resize(exec_id, height=h, width=w)  # noqa: E731
    with raw_terminal(sys.stdin.fileno(), raw), follow_resizes(resize, args.tty):
        detached = run_session(conn, tty_mode=args.tty, forward_stdin=args.interactive)
    return 0 if detached else exec_exit_code(api, exec_id)


VERBS = (
    Verb("run", "Create and run a new container from an image", add_create_options, cmd_run, add_help=False),
    Verb("exec", "Execute a command in a running container", add_exec_arguments, cmd_exec),
)
