"""Exec bodies are read as Go's encoding/json reads them: field names match ignoring case."""

from __future__ import annotations

from berth.api.docker import wire
from berth.api.docker.exec import _go_field_names


def test_keys_match_fields_ignoring_case_and_the_last_one_wins() -> None:
    body = {"cmd": ["true"], "detachKeys": "ctrl-a,a", "TTY": True, "Unknown": 1}
    assert _go_field_names(body, wire.EXEC_CREATE) == {"Cmd": ["true"], "DetachKeys": "ctrl-a,a", "Tty": True,
                                                       "Unknown": 1}
    assert _go_field_names({"tty": False, "Tty": True}, wire.EXEC_START) == {"Tty": True}
    assert _go_field_names(None, wire.EXEC_START) is None
    assert _go_field_names(["not", "an", "object"], wire.EXEC_START) == ["not", "an", "object"]
