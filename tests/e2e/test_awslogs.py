"""`docker run --log-driver awslogs` on berth: the container's lines reach the CloudWatch Logs store
(read back with boto3) while `docker logs` keeps showing them (Docker's dual logging); create-time
option errors in dockerd's words; a missing group fails the start (blocking) or not (non-blocking,
where the container is never held up); a daemon restart while the container keeps logging leaves
no gap and no duplicate."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import BerthDaemon, running_aws_daemon, wait_for

pytestmark = pytest.mark.root
boto3 = pytest.importorskip("boto3")


@pytest.fixture(scope="module")
def d() -> Iterator[BerthDaemon]:
    with running_aws_daemon() as daemon:
        yield daemon


def messages(d: BerthDaemon, group: str, stream: str) -> list[str]:
    logs = d.aws_client("logs")
    out: list[str] = []
    token: str | None = None
    while True:
        kw: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kw["nextToken"] = token
        try:
            page = logs.get_log_events(**kw)
        except logs.exceptions.ResourceNotFoundException:
            return []  # not made yet
        out += [e["message"] for e in page["events"]]
        if not page["events"] or page.get("nextForwardToken") == token:
            return out
        token = page["nextForwardToken"]


def group_of(d: BerthDaemon) -> str:
    name = f"/berth/e2e/{secrets.token_hex(4)}"
    d.aws_client("logs").create_log_group(logGroupName=name)
    return name


def awslogs(group: str, *options: str) -> list[str]:
    args = ["--log-driver", "awslogs", "--log-opt", f"awslogs-group={group}"]
    for option in options:
        args += ["--log-opt", option]
    return args


def test_lines_reach_the_store_and_docker_logs_keeps_them(d: BerthDaemon) -> None:
    group = group_of(d)
    run = d.docker("run", "--name", "aw1", *awslogs(group, "awslogs-stream=s1"), "busybox", "sh", "-c",
                   "for i in 1 2 3; do echo out$i; echo err$i >&2; done", timeout=60)
    assert run.returncode == 0, run.stderr
    expected = sorted(f"{kind}{i}" for kind in ("out", "err") for i in (1, 2, 3))
    wait_for("six events in the store", lambda: sorted(messages(d, group, "s1")) == expected or None)
    shown = d.docker("logs", "aw1", check=True)
    assert sorted((shown.stdout + shown.stderr).split()) == expected
    inspect = d.docker("inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "aw1", check=True)
    assert inspect.stdout.strip() == "awslogs"
    out = d.aws_client("logs").filter_log_events(logGroupName=group, filterPattern="err2")["events"]
    assert [e["message"] for e in out] == ["err2"]


def test_stream_names_default_to_the_container_id_or_prefix(d: BerthDaemon) -> None:
    group = group_of(d)
    cid = d.docker("run", "-d", *awslogs(group), "busybox", "echo", "hi", check=True).stdout.strip()
    wait_for("the line under the container id", lambda: messages(d, group, cid) == ["hi"] or None)
    cid2 = d.docker("run", "-d", *awslogs(group, "awslogs-stream-prefix=web"), "busybox", "echo", "ho",
                    check=True).stdout.strip()
    wait_for("the line under prefix/id", lambda: messages(d, group, f"web/{cid2}") == ["ho"] or None)


@pytest.mark.parametrize(("args", "message"), [
    (["--log-driver", "bogus"], "logger: no log driver named 'bogus' is registered"),
    (["--log-driver", "awslogs", "--log-opt", "awslogs-group=g", "--log-opt", "colour=red"],
     "unknown log opt 'colour' for awslogs log driver"),
    (["--log-driver", "awslogs"], "must specify a value for log opt 'awslogs-group'"),
    (["--log-driver", "awslogs", "--log-opt", "awslogs-group=g", "--log-opt", "awslogs-datetime-format=%Y",
      "--log-opt", "awslogs-multiline-pattern=^x"],
     "you cannot configure log opt 'awslogs-datetime-format' and 'awslogs-multiline-pattern' at the same time"),
    (["--log-driver", "awslogs", "--log-opt", "awslogs-group=g", "--log-opt", "max-buffer-size=4m"],
     "logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
])
def test_create_refuses_bad_options_in_dockerds_words(d: BerthDaemon, args: list[str], message: str) -> None:
    out = d.docker("create", *args, "busybox", "true")
    assert out.returncode != 0
    assert f"Error response from daemon: {message}" in out.stderr, out.stderr


def test_missing_group_fails_the_start_unless_created(d: BerthDaemon) -> None:
    missing = f"/berth/missing/{secrets.token_hex(4)}"
    out = d.docker("run", *awslogs(missing), "busybox", "echo", "x")
    assert out.returncode != 0
    assert ("failed to initialize logging driver: failed to create Cloudwatch log stream: "
            "ResourceNotFoundException: The specified log group does not exist.") in out.stderr, out.stderr
    run = d.docker("run", *awslogs(missing, "awslogs-create-group=true", "awslogs-stream=s"), "busybox", "echo", "made")
    assert run.returncode == 0, run.stderr
    wait_for("the line in the new group", lambda: messages(d, missing, "s") == ["made"] or None)


def test_non_blocking_never_holds_the_container(d: BerthDaemon) -> None:
    """The store cannot take anything (no group): the container still writes all it wants."""
    missing = f"/berth/missing/{secrets.token_hex(4)}"
    run = d.docker("run", "--name", "nb1", *awslogs(missing, "mode=non-blocking", "max-buffer-size=64k"),
                   "busybox", "sh", "-c", "seq 1 20000", timeout=60)
    assert run.returncode == 0, run.stderr
    shown = d.docker("logs", "nb1", check=True).stdout.split()
    assert shown == [str(i) for i in range(1, 20001)]


def test_daemon_restart_leaves_no_gap_and_no_duplicate(d: BerthDaemon) -> None:
    group = group_of(d)
    cid = d.docker("run", "-d", *awslogs(group, "awslogs-stream=r"), "busybox", "sh", "-c",
                   "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); sleep 0.01; done",
                   check=True).stdout.strip()
    wait_for("some lines shipped", lambda: len(messages(d, group, "r")) > 20 or None)
    d.stop()
    d.start()
    wait_for("the container done", lambda: d.docker("inspect", "-f", "{{.State.Status}}", cid).stdout.strip()
             == "exited" or None, timeout=60)
    expected = [f"line{i}" for i in range(300)]
    wait_for("all 300 lines once each", lambda: messages(d, group, "r") == expected or None, timeout=30)


def test_blocking_mode_never_blocks_the_container_and_drops_nothing(d: BerthDaemon) -> None:
    """mode=blocking (the default) with the store refusing every line (its group deleted under it):
    the container still writes at full speed (conmon writes the file, the shipper only reads it);
    once the group is back, every line arrives, none dropped."""
    group = group_of(d)
    logs = d.aws_client("logs")
    name = "blk1"
    d.docker("run", "-d", "--name", name, *awslogs(group, "awslogs-stream=b"), "busybox", "sh", "-c",
             "while [ ! -e /tmp/go ]; do sleep 0.05; done; seq 1 20000", check=True)  # the stream exists now
    logs.delete_log_group(logGroupName=group)
    d.docker("exec", name, "touch", "/tmp/go", check=True)
    wait_for("the container done", lambda: d.docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip()
             == "exited" or None, timeout=60)
    assert d.docker("logs", name, check=True).stdout.split() == [str(i) for i in range(1, 20001)]
    logs.create_log_group(logGroupName=group)
    wait_for("every line once the group is back",
             lambda: messages(d, group, "b") == [str(i) for i in range(1, 20001)] or None, timeout=90)
