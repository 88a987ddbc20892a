"""stdcopy demultiplexing, detach keys, JSON message rendering and the inspect template subset."""

import struct

import pytest

from berth.cli.failures import CliError
from berth.cli.progress import render_message, split_json_lines
from berth.cli.stream import DetachScanner, FrameDemuxer
from berth.cli.template import TemplateError, render


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(data)) + data


def test_demuxer_whole_and_split_frames() -> None:
    data = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"")
    demux = FrameDemuxer()
    assert demux.feed(data) == [(1, b"out\n"), (2, b"err\n"), (1, b"")]
    # Byte by byte: frames come out only once complete.
    demux = FrameDemuxer()
    got = []
    for i in range(len(data)):
        got += demux.feed(data[i : i + 1])
    assert got == [(1, b"out\n"), (2, b"err\n"), (1, b"")]
    assert demux.pending == 0


def test_demuxer_keeps_partial_frame() -> None:
    demux = FrameDemuxer()
    assert demux.feed(frame(1, b"hello")[:7]) == []
    assert demux.pending == 7


def test_detach_scanner() -> None:
    scanner = DetachScanner()
    assert scanner.scan(b"ls\r") == b"ls\r"
    assert scanner.scan(b"a\x10") == b"a"  # held: could be the start of the sequence
    assert scanner.scan(b"b") == b"\x10b"  # not the sequence after all: released
    assert not scanner.detached
    assert scanner.scan(b"x\x10\x11y") == b"x"
    assert scanner.detached


def test_detach_scanner_across_reads() -> None:
    scanner = DetachScanner()
    assert scanner.scan(b"\x10") == b""
    assert scanner.scan(b"\x11") == b""
    assert scanner.detached


def test_render_message() -> None:
    assert render_message({"stream": "Loaded image: busybox:latest\n"}) == "Loaded image: busybox:latest\n"
    assert render_message({"status": "Pulling fs layer", "id": "abc"}) == "abc: Pulling fs layer\n"
    assert render_message({"status": "Downloading", "progressDetail": {"current": 1, "total": 2}}) is None
    assert render_message({"aux": {"ID": "sha256:x"}}) is None
    with pytest.raises(CliError) as err:
        render_message({"errorDetail": {"message": "boom", "code": 7}, "error": "boom"})
    assert err.value.message == "boom" and err.value.code == 7
    with pytest.raises(CliError) as err:
        render_message({"error": "plain"})
    assert err.value.code == 1


def test_split_json_lines() -> None:
    chunks = [b'{"a":', b'1}\n{"b":2}', b'{"c":3}\n']
    assert list(split_json_lines(chunks)) == [{"a": 1}, {"b": 2}, {"c": 3}]
    with pytest.raises(CliError):
        list(split_json_lines([b"not json"]))


def test_template() -> None:
    data = {"State": {"Running": True, "Pid": 42}, "Config": {"Env": ["A=1", "B=2"], "Labels": {"x": "y"}},
            "Name": "/web", "Empty": None}
    assert render("{{.State.Running}}", data) == "true"
    assert render("pid={{ .State.Pid }} name={{.Name}}", data) == "pid=42 name=/web"
    assert render("{{json .Config.Labels}}", data) == '{"x": "y"}'
    assert render('{{index .Config.Labels "x"}}', data) == "y"
    assert render('{{join .Config.Env ","}}', data) == "A=1,B=2"
    assert render("{{.Config.Env}}", data) == "[A=1 B=2]"
    assert render("{{.Config.Labels}}", data) == "map[x:y]"
    assert render("{{.Nope}}", data) == "<no value>"
    assert render("{{.Empty}}", data) == "<nil>"
    with pytest.raises(TemplateError):
        render("{{range .Config.Env}}", data)
