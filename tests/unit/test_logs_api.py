"""CloudWatch Logs on the JSON 1.1 endpoint (berth.api.aws.logs) through boto3, against an
in-process AWS endpoint with the logs domain on a temporary directory: every operation's
output shape, and a table of bad input over every operation (AWS's code and message, never a
5xx, nothing half-written)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from berth.api.aws import AwsApi, AwsServer
from berth.api.aws.logs import logs_service
from berth.logs import LogsService
from berth.logs.testing import memory_logs

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

ACCOUNT, REGION = "123456789012", "us-east-1"
GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/app"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LogsService]]:
    logs = memory_logs(tmp_path_factory.mktemp("logs"))
    logs._clock = time.time  # noqa: SLF001 - real time: PutLogEvents judges timestamps against now
    api = AwsApi()
    api.add_json_service(logs_service(logs))
    server = AwsServer(api)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}", logs
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def client(served: tuple[str, LogsService]) -> Any:
    return boto3.client("logs", endpoint_url=served[0], region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}, parameter_validation=False))  # the server judges


@pytest.fixture
def app(client: Any) -> Iterator[Any]:
    client.create_log_group(logGroupName="/app", tags={"team": "web"})
    client.create_log_stream(logGroupName="/app", logStreamName="s1")
    yield client
    client.delete_log_group(logGroupName="/app")


def now() -> int:
    return int(time.time() * 1000)


def test_groups_streams_and_events(app: Any) -> None:
    groups = app.describe_log_groups(logGroupNamePrefix="/app")["logGroups"]
    assert groups[0]["logGroupName"] == "/app" and groups[0]["arn"] == GROUP_ARN + ":*"
    assert groups[0]["logGroupArn"] == GROUP_ARN and groups[0]["storedBytes"] == 0
    assert "retentionInDays" not in groups[0]
    t = now()
    out = app.put_log_events(logGroupName="/app", logStreamName="s1", sequenceToken="ignored",
                             logEvents=[{"timestamp": t - 2, "message": "hello"}, {"timestamp": t - 1, "message": "world"}])
    assert out["nextSequenceToken"] and "rejectedLogEventsInfo" not in out
    streams = app.describe_log_streams(logGroupName="/app")["logStreams"]
    assert streams[0]["logStreamName"] == "s1" and streams[0]["lastEventTimestamp"] == t - 1
    assert streams[0]["firstEventTimestamp"] == t - 2 and streams[0]["storedBytes"] == 0
    got = app.get_log_events(logGroupName="/app", logStreamName="s1")
    assert [e["message"] for e in got["events"]] == ["hello", "world"]
    assert got["nextForwardToken"].startswith("f/") and got["nextBackwardToken"].startswith("b/")
    again = app.get_log_events(logGroupIdentifier=GROUP_ARN, logStreamName="s1", nextToken=got["nextForwardToken"])
    assert again["events"] == [] and again["nextForwardToken"] == got["nextForwardToken"]
    found = app.filter_log_events(logGroupName="/app", filterPattern="world")
    assert [(e["logStreamName"], e["message"]) for e in found["events"]] == [("s1", "world")]
    assert found["searchedLogStreams"] == [] and "nextToken" not in found
    assert app.describe_log_groups(logGroupNamePrefix="/app")["logGroups"][0]["storedBytes"] > 0


def test_rejected_events_info(app: Any) -> None:
    t = now()
    out = app.put_log_events(logGroupName="/app", logStreamName="s1", logEvents=[
        {"timestamp": t + 3 * 3600_000, "message": "future"}])
    assert out["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 0}
    old = t - 15 * 86400_000
    out = app.put_log_events(logGroupName="/app", logStreamName="s1", logEvents=[
        {"timestamp": old, "message": "old"}])
    assert out["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    assert app.get_log_events(logGroupName="/app", logStreamName="s1")["events"] == []


def test_retention_and_tags(app: Any) -> None:
    app.put_retention_policy(logGroupName="/app", retentionInDays=14)
    assert app.describe_log_groups(logGroupNamePrefix="/app")["logGroups"][0]["retentionInDays"] == 14
    app.delete_retention_policy(logGroupName="/app")
    assert "retentionInDays" not in app.describe_log_groups(logGroupNamePrefix="/app")["logGroups"][0]
    app.tag_log_group(logGroupName="/app", tags={"env": "dev"})
    app.untag_log_group(logGroupName="/app", tags=["team"])
    assert app.list_tags_log_group(logGroupName="/app")["tags"] == {"env": "dev"}
    app.tag_resource(resourceArn=GROUP_ARN, tags={"x": "1"})
    app.untag_resource(resourceArn=GROUP_ARN, tagKeys=["env"])
    assert app.list_tags_for_resource(resourceArn=GROUP_ARN)["tags"] == {"x": "1"}


def test_describe_paging_and_ordering(app: Any) -> None:
    for i in range(7):
        app.create_log_stream(logGroupName="/app", logStreamName=f"p{i}")
    t = now()
    for i in (3, 1, 5):
        app.put_log_events(logGroupName="/app", logStreamName=f"p{i}", logEvents=[{"timestamp": t - 10 + i,
                                                                                    "message": "x"}])
    pages = app.get_paginator("describe_log_streams").paginate(logGroupName="/app", logStreamNamePrefix="p",
                                                             PaginationConfig={"PageSize": 3})
    names = [s["logStreamName"] for page in pages for s in page["logStreams"]]
    assert names == [f"p{i}" for i in range(7)]
    by_time = app.describe_log_streams(logGroupName="/app", orderBy="LastEventTime", descending=True, limit=3)
    assert [s["logStreamName"] for s in by_time["logStreams"]] == ["p5", "p3", "p1"]
    assert by_time["nextToken"]
    rest = app.describe_log_streams(logGroupName="/app", orderBy="LastEventTime", descending=True,
                                    nextToken=by_time["nextToken"])
    assert len(rest["logStreams"]) == 8 - 3 and "nextToken" not in rest
    desc = app.describe_log_streams(logGroupName="/app", descending=True, limit=2)["logStreams"]
    assert [s["logStreamName"] for s in desc] == ["s1", "p6"]
    for i in range(3):
        app.create_log_group(logGroupName=f"/app-page/{i}")
    try:
        pages = app.get_paginator("describe_log_groups").paginate(logGroupNamePrefix="/app-page/",
                                                                PaginationConfig={"PageSize": 2})
        assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == [f"/app-page/{i}" for i in range(3)]
        assert [g["logGroupName"] for g in app.describe_log_groups(logGroupNamePattern="PAGE/1")["logGroups"]] == [
            "/app-page/1"]
    finally:
        for i in range(3):
            app.delete_log_group(logGroupName=f"/app-page/{i}")


def test_filter_paginator_sees_every_event_once(app: Any) -> None:
    t = now()
    app.create_log_stream(logGroupName="/app", logStreamName="s2")
    for stream in ("s1", "s2"):
        app.put_log_events(logGroupName="/app", logStreamName=stream,
                           logEvents=[{"timestamp": t - 100 + i, "message": f"{stream} {i}"} for i in range(30)])
    pages = app.get_paginator("filter_log_events").paginate(logGroupName="/app", PaginationConfig={"PageSize": 7})
    events = [e for page in pages for e in page["events"]]
    assert len(events) == 60 and len({e["eventId"] for e in events}) == 60
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)


BIG = "x" * (1_048_576 - 25)
BAD: list[tuple[str, dict[str, Any], str, str]] = [
    # operation, input, code, message (a prefix)
    ("create_log_group", {"logGroupName": "/app"}, "ResourceAlreadyExistsException", "The specified log group already exists"),
    ("create_log_group", {"logGroupName": "bad name"}, "InvalidParameterException", "1 validation error detected: Value 'bad name' at 'logGroupName'"),
    ("create_log_group", {"logGroupName": "a:b"}, "InvalidParameterException", "1 validation error detected"),
    ("create_log_group", {"logGroupName": "/ok", "tags": {"": "x"}}, "InvalidParameterException", "1 validation error detected"),
    ("create_log_group", {"logGroupName": "/ok", "logGroupClass": "CHEAP"}, "InvalidParameterException", "1 validation error"),
    ("delete_log_group", {"logGroupName": "/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("describe_log_groups", {"logGroupNamePrefix": "/a", "logGroupNamePattern": "b"}, "InvalidParameterException", "LogGroup name prefix and LogGroup name pattern are mutually exclusive"),
    ("describe_log_groups", {"logGroupNamePrefix": "a:b"}, "InvalidParameterException", "1 validation error"),
    ("describe_log_groups", {"nextToken": "!!"}, "InvalidParameterException", "The specified nextToken is invalid."),
    ("put_retention_policy", {"logGroupName": "/app", "retentionInDays": 2}, "InvalidParameterException", "1 validation error detected: Value '2' at 'retentionInDays'"),
    ("put_retention_policy", {"logGroupName": "/none", "retentionInDays": 7}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("delete_retention_policy", {"logGroupName": "/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("tag_log_group", {"logGroupName": "/none", "tags": {"a": "b"}}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("untag_log_group", {"logGroupName": "/none", "tags": ["a"]}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("list_tags_log_group", {"logGroupName": "/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("tag_resource", {"resourceArn": GROUP_ARN, "tags": {f"k{i}": "v" for i in range(50)}}, "TooManyTagsException", "A resource can have no more than 50 tags"),
    ("tag_resource", {"resourceArn": "arn:aws:logs:us-east-1:123456789012:log-group:/none", "tags": {"a": "b"}}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("tag_resource", {"resourceArn": "not-an-arn", "tags": {"a": "b"}}, "InvalidParameterException", "Invalid resource arn"),
    ("untag_resource", {"resourceArn": "arn:aws:sqs:us-east-1:1:q", "tagKeys": ["a"]}, "InvalidParameterException", "Invalid resource arn"),
    ("list_tags_for_resource", {"resourceArn": "arn:aws:logs:us-east-1:123456789012:log-group:/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("create_log_stream", {"logGroupName": "/none", "logStreamName": "s"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("create_log_stream", {"logGroupName": "/app", "logStreamName": "s1"}, "ResourceAlreadyExistsException", "The specified log stream already exists"),
    ("create_log_stream", {"logGroupName": "/app", "logStreamName": "a:b"}, "InvalidParameterException", "1 validation error detected: Value 'a:b' at 'logStreamName'"),
    ("create_log_stream", {"logGroupName": "/app", "logStreamName": "a*"}, "InvalidParameterException", "1 validation error"),
    ("delete_log_stream", {"logGroupName": "/app", "logStreamName": "none"}, "ResourceNotFoundException", "The specified log stream does not exist."),
    ("delete_log_stream", {"logGroupName": "/none", "logStreamName": "s1"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("describe_log_streams", {"logGroupName": "/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("describe_log_streams", {"logGroupName": "/app", "orderBy": "LastEventTime", "logStreamNamePrefix": "s"}, "InvalidParameterException", "Cannot order by LastEventTime with a logStreamNamePrefix."),
    ("describe_log_streams", {"logGroupName": "/app", "logGroupIdentifier": "/app"}, "InvalidParameterException", "LogGroup name and LogGroup ARN are mutually exclusive"),
    ("describe_log_streams", {}, "InvalidParameterException", "Should provide either name or ARN of the log group."),
    ("put_log_events", {"logGroupName": "/none", "logStreamName": "s1", "logEvents": [{"timestamp": 1, "message": "x"}]}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("put_log_events", {"logGroupName": "/app", "logStreamName": "none", "logEvents": [{"timestamp": 1, "message": "x"}]}, "ResourceNotFoundException", "The specified log stream does not exist."),
    ("put_log_events", {"logGroupName": "/app", "logStreamName": "s1", "logEvents": "ORDER"}, "InvalidParameterException", "Log events in a single PutLogEvents request must be in chronological order."),
    ("put_log_events", {"logGroupName": "/app", "logStreamName": "s1", "logEvents": "SPAN"}, "InvalidParameterException", "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."),
    ("put_log_events", {"logGroupName": "/app", "logStreamName": "s1", "logEvents": "BIG"}, "InvalidParameterException", "Upload too large: 1048577 bytes exceeds limit of 1048576"),
    ("put_log_events", {"logGroupName": "/app", "logStreamName": "s1", "logEvents": "MANY"}, "InvalidParameterException", "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to 10000"),
    ("get_log_events", {"logGroupName": "/app", "logStreamName": "none"}, "ResourceNotFoundException", "The specified log stream does not exist."),
    ("get_log_events", {"logGroupName": "/none", "logStreamName": "s1"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("get_log_events", {"logGroupName": "/app", "logStreamName": "s1", "nextToken": "f/zz"}, "InvalidParameterException", "The specified nextToken is invalid."),
    ("get_log_events", {"logGroupName": "/app", "logStreamName": "s1", "startTime": 10, "endTime": 5}, "InvalidParameterException", "startTime must be less than or equal to endTime"),
    ("filter_log_events", {"logGroupName": "/none"}, "ResourceNotFoundException", "The specified log group does not exist."),
    ("filter_log_events", {"logGroupName": "/app", "filterPattern": '{ $.level = "error"'}, "InvalidParameterException", "Invalid filter pattern"),
    ("filter_log_events", {"logGroupName": "/app", "filterPattern": "[a, b"}, "InvalidParameterException", "Invalid filter pattern"),
    ("filter_log_events", {"logGroupName": "/app", "filterPattern": '"open'}, "InvalidParameterException", "Invalid filter pattern"),
    ("filter_log_events", {"logGroupName": "/app", "logStreamNames": ["s1"], "logStreamNamePrefix": "s"}, "InvalidParameterException", "logStreamNames and logStreamNamePrefix are mutually exclusive"),
    ("filter_log_events", {"logGroupName": "/app", "nextToken": "garbage"}, "InvalidParameterException", "The specified nextToken is invalid."),
]


def _events(kind: str) -> list[dict[str, Any]]:
    t = now() - 86400_000
    return {
        "ORDER": [{"timestamp": t + 2, "message": "b"}, {"timestamp": t + 1, "message": "a"}],
        "SPAN": [{"timestamp": t, "message": "a"}, {"timestamp": t + 86400_000 + 1, "message": "b"}],
        "BIG": [{"timestamp": t, "message": BIG}],
        "MANY": [{"timestamp": t, "message": "m"}] * 10_001,
    }[kind]


@pytest.mark.parametrize("operation, params, code, message", BAD, ids=[f"{b[0]}-{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input(app: Any, served: tuple[str, LogsService], operation: str, params: dict[str, Any], code: str,
                   message: str) -> None:
    params = dict(params)
    if isinstance(params.get("logEvents"), str):
        params["logEvents"] = _events(params["logEvents"])
    before = _snapshot(served[1])
    with pytest.raises(ClientError) as err:
        getattr(app, operation)(**params)
    response = err.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == code
    assert response["Error"]["Message"].startswith(message), response["Error"]["Message"]
    assert _snapshot(served[1]) == before  # nothing half-written


def _snapshot(logs: LogsService) -> Any:
    groups = logs.catalog.all_groups()
    streams = {g.name: [(s.name, logs.stream_stats(s)) for s in logs.catalog.streams(g.account, g.region, g.name)]
               for g in groups}
    return [(g.name, g.retention_days, dict(g.tags)) for g in groups], streams


def raw(url: str, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url + "/", data=body, method="POST", headers={
        "X-Amz-Target": f"Logs_20140328.{target}", "Content-Type": "application/x-amz-json-1.1"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("target, body, code", [
    ("CreateLogGroup", b"{}", "InvalidParameterException"),
    ("CreateLogGroup", b'{"logGroupName": 5}', "SerializationException"),
    ("CreateLogGroup", b'{"logGroupName": "/x", "tags": ["a"]}', "SerializationException"),
    ("PutLogEvents", b'{"logGroupName": "/app", "logStreamName": "s1", "logEvents": [{"message": "x"}]}',
     "InvalidParameterException"),
    ("PutLogEvents", b'{"logGroupName": "/app", "logStreamName": "s1", "logEvents": [{"timestamp": "1", "message": "x"}]}',
     "SerializationException"),
    ("PutLogEvents", b'{"logGroupName": "/app", "logStreamName": "s1", "logEvents": []}', "InvalidParameterException"),
    ("UntagLogGroup", b'{"logGroupName": "/app", "tags": {"a": "b"}}', "SerializationException"),
    ("DescribeLogGroups", b'{"limit": 51}', "InvalidParameterException"),
    ("GetLogEvents", b'{"logGroupName": "/app", "logStreamName": "s1", "limit": 0}', "InvalidParameterException"),
    ("FilterLogEvents", b'{"logGroupName": "/app", "limit": 10001}', "InvalidParameterException"),
    ("FilterLogEvents", b'{"logGroupName": "/app", "logStreamNames": []}', "InvalidParameterException"),
    ("FilterLogEvents", b'{"logGroupName": "/app", "filterPattern": "' + b"x" * 1025 + b'"}', "InvalidParameterException"),
    ("NoSuchOperation", b"{}", "UnknownOperationException"),
    ("CreateLogGroup", b"not json", "SerializationException"),
])
def test_raw_bad_requests(app: Any, served: tuple[str, LogsService], target: str, body: bytes, code: str) -> None:
    before = _snapshot(served[1])
    status, answer = raw(served[0], target, body)
    assert status == 400 and answer["__type"] == code, answer
    assert _snapshot(served[1]) == before


def test_long_poll_does_not_starve_the_endpoint(app: Any, served: tuple[str, LogsService]) -> None:
    """Followers waiting in their long polls leave the endpoint answering other calls."""
    t = now()
    app.put_log_events(logGroupName="/app", logStreamName="s1", logEvents=[{"timestamp": t, "message": "x"}])
    first = app.filter_log_events(logGroupName="/app", interleaved=True)
    assert first["nextToken"]
    waiting = [threading.Thread(target=app.filter_log_events, kwargs={
        "logGroupName": "/app", "interleaved": True, "nextToken": first["nextToken"]}) for _ in range(6)]
    for w in waiting:
        w.start()
    started = time.monotonic()
    app.describe_log_groups(logGroupNamePrefix="/app")
    assert time.monotonic() - started < 0.8
    for w in waiting:
        w.join()

