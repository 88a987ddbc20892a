"""CloudWatch Logs through the real clients against a berth daemon: boto3 and the AWS CLI v2
(/usr/bin/aws, which has `aws logs tail`): groups, streams, events, filter patterns, `aws logs
tail` (ends) and `aws logs tail --follow` (a new line within 1 s), and bad input over every
operation (AWS's codes and messages, never a 5xx, nothing half-written)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import BerthDaemon, running_aws_daemon, wait_for

pytestmark = pytest.mark.root
boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

AWS2 = "/usr/bin/aws"


@pytest.fixture(scope="module")
def d() -> Iterator[BerthDaemon]:
    if not os.path.exists(AWS2):
        pytest.skip("AWS CLI v2 (/usr/bin/aws) is not installed")
    with running_aws_daemon(busybox=False) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def logs(d: BerthDaemon) -> Any:
    return d.aws_client("logs", config=Config(retries={"max_attempts": 1}, parameter_validation=False))


def cli_env(d: BerthDaemon) -> dict[str, str]:
    return {**d.aws_env, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


def aws(d: BerthDaemon, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AWS2, "--endpoint-url", d.aws_url, *args], env=cli_env(d), capture_output=True,
                          text=True, timeout=timeout)


def now() -> int:
    return int(time.time() * 1000)


def test_cli_group_stream_events_and_filters(d: BerthDaemon, logs: Any) -> None:
    assert aws(d, "logs", "create-log-group", "--log-group-name", "/e2e/app").returncode == 0
    assert aws(d, "logs", "create-log-stream", "--log-group-name", "/e2e/app", "--log-stream-name",
               "web/app/1").returncode == 0
    lines = [{"level": "info", "msg": "starting"}, {"level": "error", "msg": "db down"},
             {"level": "warn", "msg": "retry"}, {"level": "error", "msg": "retry failed"}]
    t = now() - 1000
    events = json.dumps([{"timestamp": t + i, "message": json.dumps(line)} for i, line in enumerate(lines)])
    put = aws(d, "logs", "put-log-events", "--log-group-name", "/e2e/app", "--log-stream-name", "web/app/1",
              "--log-events", events)
    assert put.returncode == 0, put.stderr
    assert "nextSequenceToken" in json.loads(put.stdout)

    errors = aws(d, "logs", "filter-log-events", "--log-group-name", "/e2e/app", "--filter-pattern",
                 '{ $.level = "error" }')
    assert errors.returncode == 0, errors.stderr
    assert [json.loads(e["message"])["msg"] for e in json.loads(errors.stdout)["events"]] == ["db down", "retry failed"]
    terms = aws(d, "logs", "filter-log-events", "--log-group-name", "/e2e/app", "--filter-pattern", "?warn ?starting")
    assert len(json.loads(terms.stdout)["events"]) == 2

    got = aws(d, "logs", "get-log-events", "--log-group-name", "/e2e/app", "--log-stream-name", "web/app/1",
              "--start-from-head")
    assert [e["message"] for e in json.loads(got.stdout)["events"]] == [json.dumps(line) for line in lines]

    streams = json.loads(aws(d, "logs", "describe-log-streams", "--log-group-name", "/e2e/app").stdout)
    assert streams["logStreams"][0]["lastEventTimestamp"] == t + 3
    groups = json.loads(aws(d, "logs", "describe-log-groups", "--log-group-name-prefix", "/e2e/").stdout)
    assert [g["logGroupName"] for g in groups["logGroups"]] == ["/e2e/app"]
    assert aws(d, "logs", "put-retention-policy", "--log-group-name", "/e2e/app", "--retention-in-days",
               "30").returncode == 0
    assert logs.describe_log_groups(logGroupNamePrefix="/e2e/app")["logGroups"][0]["retentionInDays"] == 30

    bad = aws(d, "logs", "filter-log-events", "--log-group-name", "/e2e/app", "--filter-pattern", "{ $.level = ")
    assert bad.returncode != 0
    assert "(InvalidParameterException)" in bad.stderr and "Invalid filter pattern" in bad.stderr


def test_tail_without_follow_ends(d: BerthDaemon, logs: Any) -> None:
    logs.create_log_group(logGroupName="/e2e/tail")
    logs.create_log_stream(logGroupName="/e2e/tail", logStreamName="s")
    t = now() - 60_000
    logs.put_log_events(logGroupName="/e2e/tail", logStreamName="s",
                        logEvents=[{"timestamp": t + i, "message": f"line {i}"} for i in range(20)])
    started = time.monotonic()
    out = aws(d, "logs", "tail", "/e2e/tail", "--since", "10m", "--format", "short", timeout=60)
    assert out.returncode == 0, out.stderr
    assert [line.split(" ", 1)[1] for line in out.stdout.splitlines()] == [f"line {i}" for i in range(20)]
    # ended once the group was quiet for a few seconds (it was written just now)
    assert time.monotonic() - started < 30
    filtered = aws(d, "logs", "tail", "/e2e/tail", "--since", "10m", "--filter-pattern", "\"line 1\"",
                   "--format", "short", timeout=60)
    assert len(filtered.stdout.splitlines()) == 11  # line 1, line 10..19


def test_tail_follow_shows_a_new_line_within_a_second(d: BerthDaemon, logs: Any) -> None:
    group = "/e2e/follow"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="app")
    stop = threading.Event()

    def writer() -> None:  # an active service: a line every 0.3 s
        i = 0
        while not stop.is_set():
            logs.put_log_events(logGroupName=group, logStreamName="app",
                                logEvents=[{"timestamp": now(), "message": f"tick {i}"}])
            i += 1
            stop.wait(0.3)

    ticker = threading.Thread(target=writer)
    ticker.start()
    follow = subprocess.Popen([AWS2, "--endpoint-url", d.aws_url, "logs", "tail", group, "--follow",
                               "--since", "1m", "--format", "short"], env=cli_env(d), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[tuple[float, str]] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put((time.monotonic(), line)) for line in follow.stdout or []])
    reader.start()
    try:
        wait_for("aws logs tail --follow printing ticks", lambda: _drain(lines, "tick"), timeout=30)
        delays = []
        for n in range(5):
            stream = "app" if n % 2 == 0 else f"other{n}"  # also a stream that did not exist before
            if stream != "app":
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
            marker = f"marker {n} {time.time_ns()}"
            put_at = time.monotonic()
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": now(), "message": marker}])
            seen = wait_for(f"{marker!r} in aws logs tail --follow", lambda m=marker: _drain(lines, m), timeout=10)
            delays.append(seen - put_at)
        print("tail --follow delays (s):", [round(x, 3) for x in delays])
        assert max(delays) <= 1.0, delays
    finally:
        stop.set()
        ticker.join()
        follow.terminate()
        follow.wait(10)
        reader.join(10)


def _drain(lines: queue.Queue[tuple[float, str]], text: str) -> float | None:
    """The time a line holding `text` arrived, consuming lines up to it."""
    while True:
        try:
            at, line = lines.get_nowait()
        except queue.Empty:
            return None
        if text in line:
            return at


BIG = "x" * (1_048_576 - 25)
BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("create_log_group", {"logGroupName": "/e2e/bad"}, "ResourceAlreadyExistsException", "The specified log group already exists"),
    ("create_log_group", {"logGroupName": "has space"}, "InvalidParameterException", "1 validation error detected"),
    ("describe_log_groups", {"logGroupNamePrefix": "/a", "logGroupNamePattern": "b"}, "InvalidParameterException", "LogGroup name prefix"),
    ("delete_log_group", {"logGroupName": "/e2e/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("put_retention_policy", {"logGroupName": "/e2e/bad", "retentionInDays": 2}, "InvalidParameterException", "1 validation error detected"),
    ("delete_retention_policy", {"logGroupName": "/e2e/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("tag_log_group", {"logGroupName": "/e2e/none", "tags": {"a": "b"}}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("untag_log_group", {"logGroupName": "/e2e/none", "tags": ["a"]}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("list_tags_log_group", {"logGroupName": "/e2e/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("tag_resource", {"resourceArn": "arn:aws:logs:us-east-1:123456789012:log-group:/e2e/none", "tags": {"a": "b"}}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("untag_resource", {"resourceArn": "bogus", "tagKeys": ["a"]}, "InvalidParameterException", "Invalid resource arn"),
    ("list_tags_for_resource", {"resourceArn": "arn:aws:logs:us-east-1:123456789012:log-group:/e2e/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("create_log_stream", {"logGroupName": "/e2e/none", "logStreamName": "s"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("create_log_stream", {"logGroupName": "/e2e/bad", "logStreamName": "s"}, "ResourceAlreadyExistsException", "The specified log stream already exists"),
    ("create_log_stream", {"logGroupName": "/e2e/bad", "logStreamName": "a:b"}, "InvalidParameterException", "1 validation error detected"),
    ("describe_log_streams", {"logGroupName": "/e2e/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("delete_log_stream", {"logGroupName": "/e2e/bad", "logStreamName": "none"}, "ResourceNotFoundException", "The specified log stream does not exist."),
    ("put_log_events", {"logGroupName": "/e2e/bad", "logStreamName": "none", "logEvents": "ONE"}, "ResourceNotFoundException", "The specified log stream does not exist."),
    ("put_log_events", {"logGroupName": "/e2e/bad", "logStreamName": "s", "logEvents": "ORDER"}, "InvalidParameterException", "Log events in a single PutLogEvents request must be in chronological order."),
    ("put_log_events", {"logGroupName": "/e2e/bad", "logStreamName": "s", "logEvents": "SPAN"}, "InvalidParameterException", "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."),
    ("put_log_events", {"logGroupName": "/e2e/bad", "logStreamName": "s", "logEvents": "BIG"}, "InvalidParameterException", "Upload too large: 1048577 bytes exceeds limit of 1048576"),
    ("put_log_events", {"logGroupName": "/e2e/bad", "logStreamName": "s", "logEvents": "MANY"}, "InvalidParameterException", "1 validation error detected"),
    ("get_log_events", {"logGroupName": "/e2e/bad", "logStreamName": "none"}, "ResourceNotFoundException", "The specified log stream does not exist."),
    ("get_log_events", {"logGroupName": "/e2e/bad", "logStreamName": "s", "nextToken": "f/1"}, "InvalidParameterException", "The specified nextToken is invalid."),
    ("filter_log_events", {"logGroupName": "/e2e/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("filter_log_events", {"logGroupName": "/e2e/bad", "filterPattern": "[a, b"}, "InvalidParameterException", "Invalid filter pattern"),
]


@pytest.fixture(scope="module")
def bad_group(logs: Any) -> str:
    logs.create_log_group(logGroupName="/e2e/bad")
    logs.create_log_stream(logGroupName="/e2e/bad", logStreamName="s")
    logs.put_log_events(logGroupName="/e2e/bad", logStreamName="s", logEvents=[{"timestamp": now(), "message": "kept"}])
    return "/e2e/bad"


def _events(kind: str) -> list[dict[str, Any]]:
    t = now() - 86400_000
    return {
        "ONE": [{"timestamp": now(), "message": "x"}],
        "ORDER": [{"timestamp": t + 2, "message": "b"}, {"timestamp": t + 1, "message": "a"}],
        "SPAN": [{"timestamp": t, "message": "a"}, {"timestamp": t + 86400_000 + 1, "message": "b"}],
        "BIG": [{"timestamp": t, "message": BIG}],
        "MANY": [{"timestamp": t, "message": "m"}] * 10_001,
    }[kind]


def _state(logs: Any) -> Any:
    groups = logs.describe_log_groups(logGroupNamePrefix="/e2e/bad")["logGroups"]
    streams = logs.describe_log_streams(logGroupName="/e2e/bad")["logStreams"]
    events = logs.get_log_events(logGroupName="/e2e/bad", logStreamName="s")["events"]
    return ([(g["logGroupName"], g.get("retentionInDays")) for g in groups], [s["logStreamName"] for s in streams],
            [e["message"] for e in events], logs.list_tags_log_group(logGroupName="/e2e/bad")["tags"])


@pytest.mark.parametrize("operation, params, code, message", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input(logs: Any, bad_group: str, operation: str, params: dict[str, Any], code: str,
                   message: str) -> None:
    params = dict(params)
    if isinstance(params.get("logEvents"), str):
        params["logEvents"] = _events(params["logEvents"])
    before = _state(logs)
    with pytest.raises(ClientError) as err:
        getattr(logs, operation)(**params)
    response = err.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (response["Error"]["Code"], response["Error"]["Message"][:len(message)]) == (code, message)
    assert _state(logs) == before


def test_cli_bad_input_is_an_aws_error(d: BerthDaemon, bad_group: str) -> None:
    for args, code in [
        (("create-log-group", "--log-group-name", "/e2e/bad"), "ResourceAlreadyExistsException"),
        (("get-log-events", "--log-group-name", "/e2e/none", "--log-stream-name", "s"), "ResourceNotFoundException"),
        (("put-log-events", "--log-group-name", "/e2e/bad", "--log-stream-name", "s", "--log-events",
          json.dumps(_events("ORDER"))), "InvalidParameterException"),
    ]:
        out = aws(d, "logs", *args)
        assert out.returncode == 254 and f"({code})" in out.stderr, out.stderr
