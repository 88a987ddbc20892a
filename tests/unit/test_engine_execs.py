"""An exec instance's process is reachable only once the exec has started."""

from __future__ import annotations

import pytest

from berth.engine.execs import ExecInstance
from berth.errors import Conflict
from berth.runtime import ExecSpec


def _instance() -> ExecInstance:
    return ExecInstance(id="e1", container_id="c1", spec=ExecSpec(args=("true",)), attach_stdin=False,
                        attach_stdout=True, attach_stderr=True)


def test_an_exec_not_started_has_no_process_in_dockers_words() -> None:
    with pytest.raises(Conflict, match="^Exec e1 is not running$"):
        _instance().started_process()


def test_a_started_exec_gives_its_process() -> None:
    instance = _instance()
    process = object()
    instance.process = process  # type: ignore[assignment] - any object stands for the runtime's process
    assert instance.started_process() is process
