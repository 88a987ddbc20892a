"""Exec routes (docker-engine-api.md §3.9), as dockerd's router decides them.

The framing of a started exec's output follows the `Tty` of the *start* request, not the one the
exec was created with: a start with `Tty: false` gets stdcopy frames even for a TTY exec (whose
output then all arrives as stdout), which docker-py's `exec_start(stream=True)` and
`exec_start(socket=True)` rely on. The detach keys (create's `DetachKeys`, ctrl-p ctrl-q by
default) are watched on a TTY exec's stdin; typing them ends the session, the process runs on.
"""

from __future__ import annotations

from typing import Any

from berth.api.docker import wire
from berth.api.docker.backend import Backend
from berth.api.docker.streams import RawPeer, api_at_least, frame, hijack_content_type, pump
from berth.api.httpserver import Request, Response, Router, json_response
from berth.api.shapes import Struct, check
from berth.engine.execs import ExecConfig, ExecInstance
from berth.errors import BerthError, InvalidArgument


def _go_field_names(body: Any, shape: Struct) -> Any:  # any JSON value; check() judges it next
    """The body with its top-level keys matched to `shape`'s fields as Go's encoding/json matches
    them: exactly, else ignoring case (docker-py sends exec create's `detachKeys` so); a later
    key for the same field wins."""
    if not isinstance(body, dict):
        return body
    folded = {name.lower(): name for name in shape.fields}
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = str(key)
        out[name if name in shape.fields else folded.get(name.lower(), name)] = value
    return out


def exec_from_wire(body: dict[str, Any]) -> ExecConfig:
    """Exec create's body (checked against wire.EXEC_CREATE) as the engine's ExecConfig."""
    cmd = body.get("Cmd")
    console = body.get("ConsoleSize")
    return ExecConfig(
        cmd=(cmd,) if isinstance(cmd, str) else tuple(cmd or ()), env=tuple(body.get("Env") or ()),
        user=body.get("User") or "", working_dir=body.get("WorkingDir") or "", tty=bool(body.get("Tty")),
        privileged=bool(body.get("Privileged")), attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=bool(body.get("AttachStdout")), attach_stderr=bool(body.get("AttachStderr")),
        detach_keys=body.get("DetachKeys") or "", console_size=None if console is None else tuple(console),
    )


def _start_console(req: Request, body: dict[str, Any]) -> tuple[int, int] | None:
    """The start request's ConsoleSize, when it counts: only with `Tty` and API 1.42+."""
    console = body.get("ConsoleSize")
    if console is None or not body.get("Tty") or not api_at_least(req.api_version, (1, 42)):
        return None
    if len(console) != 2 or any(not 0 <= v <= 0xFFFF for v in console):
        raise InvalidArgument(f"invalid ConsoleSize: {console!r} (want [height, width])")
    return int(console[0]), int(console[1])


def register(router: Router, backend: Backend) -> None:
    execs = backend.execs

    async def create(req: Request) -> Response:
        body = check(_go_field_names(await req.json(), wire.EXEC_CREATE), wire.EXEC_CREATE)
        if not api_at_least(req.api_version, (1, 42)):
            body.pop("ConsoleSize", None)  # dockerd: not supported by API versions before 1.42
        return json_response({"Id": execs.create(req.match["id"], exec_from_wire(body))}, status=201)

    async def start(req: Request) -> Response | None:
        body = check(_go_field_names(await req.json(), wire.EXEC_START), wire.EXEC_START)
        console = _start_console(req, body)
        if body.get("Detach"):
            instance = await execs.start(req.match["id"], console)
            await instance.started_process().detach()
            return Response(status=200, body=b"", content_type="application/json")
        instance = execs.check_startable(req.match["id"])  # 404/409 before the upgrade
        multiplexed = not body.get("Tty")
        # Upgrade first, then start the process (moby's order): output written in the same
        # segment as the 101 head would land in a client's HTTP read buffer and be lost
        # (docker-py reads the stream from the raw socket after parsing the head).
        content_type = hijack_content_type(multiplexed, api_at_least(req.api_version, (1, 42)))
        peer = RawPeer(*await req.hijack(content_type))
        try:
            instance = await execs.start(instance.id, console)
        except BerthError as err:  # dockerd writes a late failure to the stream's stdout
            message = f"{err}\r\n".encode()
            await peer.send(frame(1, message) if multiplexed else message)
            await peer.close()
            return None
        detached = await pump(peer, _Finishing(instance), multiplexed=multiplexed,
                              stdin=instance.attach_stdin, close_stdin_on_eof=True,
                              detach_keys=instance.escape_keys if instance.spec.tty else b"")
        if detached:
            await instance.started_process().detach()
            execs.detached(instance.id)
        return None

    async def resize(req: Request) -> Response:
        await execs.resize(req.match["id"], req.qint("h"), req.qint("w"))
        return Response(status=200, body=b"", content_type="text/plain")

    async def inspect(req: Request) -> Response:
        return json_response(execs.inspect(req.match["id"]))

    router.add("POST", "/containers/{id}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", inspect)


class _Finishing:
    """The exec's stdio, whose end also waits for the exit code (the CLI reads it right after)."""

    def __init__(self, instance: ExecInstance) -> None:
        self._instance = instance
        self._process = instance.started_process()

    async def read(self) -> tuple[int, bytes] | None:
        item: tuple[int, bytes] | None = await self._process.read()
        if item is None:
            await self._instance.done.wait()
        return item

    async def write(self, data: bytes) -> None:
        await self._process.write(data)

    async def close_stdin(self) -> None:
        await self._process.close_stdin()
