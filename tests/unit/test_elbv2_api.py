"""ELBv2 through boto3's elbv2 client against the Query endpoint (AwsApi without authentication)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
import requests
from botocore.config import Config

from berth.api.aws import AwsApi, AwsServer
from berth.api.aws.elbv2 import elbv2_handler, parse_query
from berth.elb import ElbService
from berth.elb.testing import MemoryPlane
from berth.state.memory_store import MemoryStore


class Served:
    def __init__(self) -> None:
        self.plane = MemoryPlane()
        self.service = ElbService(MemoryStore(), self.plane, clock=lambda: 1_700_000_000.0)
        api = AwsApi(authenticator=None)
        handler, render = elbv2_handler(self.service)
        api.add_query_service("elasticloadbalancing", handler, render_error=render)
        self.server = AwsServer(api)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.server.start("127.0.0.1", 0), self.loop).result(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def elb(served: Served) -> Any:
    return boto3.client("elbv2", endpoint_url=served.url, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}, parameter_validation=False))


def _setup(elb: Any) -> dict[str, str]:
    lb = elb.create_load_balancer(Name="web", Subnets=["subnet-1"], SecurityGroups=["sg-1"],
                                  Tags=[{"Key": "env", "Value": "test"}])["LoadBalancers"][0]
    tg = elb.create_target_group(Name="app", Protocol="HTTP", Port=8080, VpcId="vpc-1", TargetType="ip",
                                 HealthCheckPath="/health", Matcher={"HttpCode": "200-299"})["TargetGroups"][0]
    ln = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=18080,
                             DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}]
                             )["Listeners"][0]
    return {"lb": lb["LoadBalancerArn"], "tg": tg["TargetGroupArn"], "ln": ln["ListenerArn"], "dns": lb["DNSName"]}


def test_every_operation_happy_path(elb: Any, served: Served) -> None:
    arns = _setup(elb)
    assert arns["dns"].endswith(".us-east-1.elb.localhost") and arns["dns"].startswith("web-")
    lbs = elb.describe_load_balancers(Names=["web"])["LoadBalancers"]
    assert lbs[0]["State"]["Code"] == "active" and lbs[0]["Type"] == "application"
    assert lbs[0]["CreatedTime"].year == 2023 and lbs[0]["SecurityGroups"] == ["sg-1"]
    attrs = elb.modify_load_balancer_attributes(LoadBalancerArn=arns["lb"], Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "120"}])["Attributes"]
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "120"} in attrs
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "120"} in elb.describe_load_balancer_attributes(
        LoadBalancerArn=arns["lb"])["Attributes"]
    assert elb.set_security_groups(LoadBalancerArn=arns["lb"], SecurityGroups=["sg-2"])["SecurityGroupIds"] == ["sg-2"]
    assert elb.set_subnets(LoadBalancerArn=arns["lb"], Subnets=["subnet-2"])["AvailabilityZones"][0]["SubnetId"] == \
        "subnet-2"

    tgs = elb.describe_target_groups(LoadBalancerArn=arns["lb"])["TargetGroups"]
    assert [t["TargetGroupName"] for t in tgs] == ["app"] and tgs[0]["LoadBalancerArns"] == [arns["lb"]]
    assert tgs[0]["Matcher"] == {"HttpCode": "200-299"} and tgs[0]["HealthCheckIntervalSeconds"] == 30
    mod = elb.modify_target_group(TargetGroupArn=arns["tg"], HealthCheckIntervalSeconds=10,
                                  HealthCheckTimeoutSeconds=3)["TargetGroups"][0]
    assert mod["HealthCheckIntervalSeconds"] == 10
    tattrs = elb.describe_target_group_attributes(TargetGroupArn=arns["tg"])["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "300"} in tattrs
    elb.modify_target_group_attributes(TargetGroupArn=arns["tg"], Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "0"},
        {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"}])

    elb.register_targets(TargetGroupArn=arns["tg"], Targets=[{"Id": "10.0.0.5"}, {"Id": "10.0.0.6", "Port": 9000}])
    health = elb.describe_target_health(TargetGroupArn=arns["tg"])["TargetHealthDescriptions"]
    assert [(h["Target"]["Id"], h["Target"]["Port"], h["TargetHealth"]["State"]) for h in health] == [
        ("10.0.0.5", 8080, "initial"), ("10.0.0.6", 9000, "initial")]
    served.plane.set_health("tg-" + arns["tg"].rsplit("/", 1)[1], "10.0.0.5", 8080, "healthy")
    one = elb.describe_target_health(TargetGroupArn=arns["tg"], Targets=[{"Id": "10.0.0.5"}])
    assert one["TargetHealthDescriptions"][0]["TargetHealth"]["State"] == "healthy"
    backend = served.plane.config.backends[0]  # type: ignore[union-attr]
    assert backend.algorithm == "least_outstanding_requests" and len(backend.targets) == 2
    elb.deregister_targets(TargetGroupArn=arns["tg"], Targets=[{"Id": "10.0.0.6", "Port": 9000}])
    assert len(elb.describe_target_health(TargetGroupArn=arns["tg"])["TargetHealthDescriptions"]) == 1

    other = elb.create_target_group(Name="api", Protocol="HTTP", Port=8081, VpcId="vpc-1")["TargetGroups"][0]
    rule = elb.create_rule(ListenerArn=arns["ln"], Priority=10, Conditions=[
        {"Field": "path-pattern", "Values": ["/api/*"]},
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["prod"]}}],
        Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": other["TargetGroupArn"], "Weight": 80}, {"TargetGroupArn": arns["tg"], "Weight": 20}],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60}}}])["Rules"][0]
    assert rule["Priority"] == "10" and rule["Conditions"][0]["PathPatternConfig"]["Values"] == ["/api/*"]
    fixed = elb.create_rule(ListenerArn=arns["ln"], Priority=5, Conditions=[
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/health"]}}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "ok <&>"}}])["Rules"][0]
    rules = elb.describe_rules(ListenerArn=arns["ln"])["Rules"]
    assert [r["Priority"] for r in rules] == ["5", "10", "default"] and rules[-1]["IsDefault"]
    assert rules[0]["Actions"][0]["FixedResponseConfig"]["MessageBody"] == "ok <&>"
    frontend = served.plane.config.frontends[0]  # type: ignore[union-attr]
    assert [r.priority for r in frontend.rules] == [5, 10] and frontend.port == 18080
    assert frontend.rules[1].action.forward[0][1] == 80 and frontend.rules[1].action.stickiness_seconds == 60
    elb.modify_rule(RuleArn=fixed["RuleArn"], Conditions=[{"Field": "host-header", "Values": ["a.example"]}])
    prio = elb.set_rule_priorities(RulePriorities=[{"RuleArn": fixed["RuleArn"], "Priority": 20}])["Rules"]
    assert prio[0]["Priority"] == "20"
    elb.delete_rule(RuleArn=fixed["RuleArn"])

    redirect = elb.create_listener(LoadBalancerArn=arns["lb"], Protocol="HTTP", Port=18081, DefaultActions=[
        {"Type": "redirect", "RedirectConfig": {"Port": "18080", "StatusCode": "HTTP_301"}}])["Listeners"][0]
    assert redirect["DefaultActions"][0]["RedirectConfig"]["Port"] == "18080"
    listeners = elb.describe_listeners(LoadBalancerArn=arns["lb"])["Listeners"]
    assert [ln["Port"] for ln in listeners] == [18080, 18081]
    moved = elb.modify_listener(ListenerArn=redirect["ListenerArn"], Port=18082)["Listeners"][0]
    assert moved["Port"] == 18082
    elb.delete_listener(ListenerArn=redirect["ListenerArn"])

    elb.add_tags(ResourceArns=[arns["tg"], rule["RuleArn"]], Tags=[{"Key": "team", "Value": "a"}])
    elb.remove_tags(ResourceArns=[arns["lb"]], TagKeys=["env"])
    tags = elb.describe_tags(ResourceArns=[arns["lb"], arns["tg"], rule["RuleArn"]])["TagDescriptions"]
    assert [t["Tags"] for t in tags] == [[], [{"Key": "team", "Value": "a"}], [{"Key": "team", "Value": "a"}]]
    limits = elb.describe_account_limits()["Limits"]
    assert {"Name": "targets-per-target-group", "Max": "1000"} in limits

    elb.delete_load_balancer(LoadBalancerArn=arns["lb"])
    assert elb.describe_load_balancers()["LoadBalancers"] == []
    assert served.plane.config.frontends == ()  # type: ignore[union-attr]
    elb.delete_target_group(TargetGroupArn=arns["tg"])
    assert [t["TargetGroupName"] for t in elb.describe_target_groups()["TargetGroups"]] == ["api"]


def test_paging_with_marker(elb: Any) -> None:
    for i in range(5):
        elb.create_target_group(Name=f"tg{i}", Protocol="TCP", Port=80 + i, VpcId="vpc-1")
    first = elb.describe_target_groups(PageSize=2)
    assert len(first["TargetGroups"]) == 2 and first["NextMarker"]
    names = [t["TargetGroupName"] for page in elb.get_paginator("describe_target_groups").paginate(
        PaginationConfig={"PageSize": 2}) for t in page["TargetGroups"]]
    assert sorted(names) == [f"tg{i}" for i in range(5)]


def _code(call: Any) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


BAD: list[tuple[str, str, dict[str, Any]]] = [
    ("LoadBalancerNotFound", "describe_load_balancers", {"Names": ["nope"]}),
    ("LoadBalancerNotFound", "describe_load_balancer_attributes",
     {"LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1"}),
    ("TargetGroupNotFound", "describe_target_health",
     {"TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1"}),
    ("ListenerNotFound", "describe_rules",
     {"ListenerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/1/2"}),
    ("RuleNotFound", "delete_rule",
     {"RuleArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/x/1/2/3"}),
    ("DuplicateLoadBalancerName", "create_load_balancer", {"Name": "web", "Type": "network"}),
    ("DuplicateTargetGroupName", "create_target_group", {"Name": "app", "Protocol": "HTTP", "Port": 1}),
    ("ValidationError", "create_target_group", {"Name": "hc", "Protocol": "HTTP", "Port": 80,
                                                "HealthCheckIntervalSeconds": 4}),
    ("ValidationError", "create_target_group", {"Name": "hc", "Protocol": "HTTP", "Port": 80,
                                                "HealthCheckIntervalSeconds": 10, "HealthCheckTimeoutSeconds": 10}),
    ("ValidationError", "create_target_group", {"Name": "hc", "Protocol": "HTTP", "Port": 80,
                                                "HealthyThresholdCount": 11}),
    ("ValidationError", "create_target_group", {"Name": "hc", "Protocol": "HTTP", "Port": 80,
                                                "Matcher": {"HttpCode": "600"}}),
    ("UnsupportedProtocol", "create_target_group", {"Name": "tls", "Protocol": "TLS", "Port": 443}),
    ("ValidationError", "create_load_balancer", {"Name": "-bad-"}),
    ("ValidationError", "create_target_group", {"Name": "hc", "Protocol": "HTTP", "Port": 80,
                                                "Matcher": {"HttpCode": "299-200"}}),
    ("ValidationError", "add_tags", {"ResourceArns": ["x"], "Tags": [{"Key": "k", "Value": "v" * 257}]}),
]


@pytest.mark.parametrize(("code", "op", "kwargs"), BAD, ids=[f"{b[1]}-{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_table(elb: Any, served: Served, code: str, op: str, kwargs: dict[str, Any]) -> None:
    _setup(elb)
    before = served.plane.config
    assert _code(lambda: getattr(elb, op)(**kwargs)) == (code, 400)
    assert served.plane.config == before


def test_bad_input_needing_resources(elb: Any, served: Served) -> None:
    arns = _setup(elb)
    before = served.plane.config
    served.plane.busy_ports.add(19000)
    fwd = [{"Type": "forward", "TargetGroupArn": arns["tg"]}]
    assert _code(lambda: elb.create_listener(LoadBalancerArn=arns["lb"], Protocol="HTTP", Port=19000,
                                             DefaultActions=fwd))[0] == "InvalidConfigurationRequest"
    assert _code(lambda: elb.create_listener(LoadBalancerArn=arns["lb"], Protocol="HTTP", Port=18080,
                                             DefaultActions=fwd))[0] == "DuplicateListener"
    cond = [{"Field": "path-pattern", "Values": ["/a"]}]
    elb.create_rule(ListenerArn=arns["ln"], Priority=1, Conditions=cond, Actions=fwd)
    before = served.plane.config
    assert _code(lambda: elb.create_rule(ListenerArn=arns["ln"], Priority=1, Conditions=cond,
                                         Actions=fwd))[0] == "PriorityInUse"
    # an ip target group refuses instance ids
    assert _code(lambda: elb.register_targets(TargetGroupArn=arns["tg"], Targets=[{"Id": "i-0abc"}]))[0] == \
        "InvalidTarget"
    tcp = elb.create_target_group(Name="tcp", Protocol="TCP", Port=80, VpcId="v")["TargetGroups"][0]
    assert _code(lambda: elb.create_rule(ListenerArn=arns["ln"], Priority=2, Conditions=cond, Actions=[
        {"Type": "forward", "TargetGroupArn": tcp["TargetGroupArn"]}]))[0] == "IncompatibleProtocols"
    for ip in ("8.8.8.8", "0.0.0.0", "224.0.0.1", "169.254.1.1"):   # ip targets: private ranges or loopback only
        assert _code(lambda ip=ip: elb.register_targets(TargetGroupArn=arns["tg"], Targets=[{"Id": ip}]))[0] == \
            "InvalidTarget", ip
    for port, query in (("abc", "#{query}"), ("0", "#{query}"), ("#{port}", "?a=1")):
        assert _code(lambda port=port, query=query: elb.modify_listener(ListenerArn=arns["ln"], DefaultActions=[
            {"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301", "Port": port, "Query": query,
                                                    "Host": "example.test"}}]))[0] == "ValidationError"
    assert _code(lambda: elb.delete_target_group(TargetGroupArn=arns["tg"]))[0] == "ResourceInUse"
    assert _code(lambda: elb.describe_target_health(TargetGroupArn=arns["tg"], Targets=[{"Id": "10.9.9.9"}]))[0] \
        == "InvalidTarget"
    assert served.plane.config == before


def test_plane_refusal_rolls_back(elb: Any, served: Served) -> None:
    arns = _setup(elb)
    before = served.plane.config
    served.plane.fail("haproxy said no")
    code, status = _code(lambda: elb.register_targets(TargetGroupArn=arns["tg"], Targets=[{"Id": "10.0.0.9"}]))
    assert (code, status) == ("InvalidConfigurationRequest", 400)
    assert served.plane.config == before
    assert elb.describe_target_health(TargetGroupArn=arns["tg"])["TargetHealthDescriptions"] == []


@pytest.mark.parametrize(("body", "code"), [
    (b"Version=2015-12-01", "MissingAction"),
    (b"Action=DescribeLoadBalancers", "MissingParameter"),
    (b"Action=DescribeLoadBalancers&Version=2012-01-01", "InvalidAction"),
    (b"Action=Frobnicate&Version=2015-12-01", "InvalidAction"),
    (b"Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.x=a", "MalformedQueryString"),
    (b"Action=DescribeLoadBalancers&Version=2015-12-01&Names=a&Names.member.1=b", "MalformedQueryString"),
    (b"\xff\xfe", "MalformedQueryString"),
    (b"Action=DescribeLoadBalancers&Version=2015-12-01&PageSize=abc", "ValidationError"),
    (b"Action=DescribeLoadBalancers&Version=2015-12-01&Marker=%%%", "ValidationError"),
    (b"Action=CreateLoadBalancer&Version=2015-12-01", "ValidationError"),
    (b"Action=RegisterTargets&Version=2015-12-01&TargetGroupArn=x&Targets.member.1.Port=80", "ValidationError"),
    (b"Action=CreateLoadBalancer&Version=2015-12-01&Name.member.1=x", "ValidationError"),
])
def test_malformed_requests_answer_aws_xml(served: Served, body: bytes, code: str) -> None:
    before = served.plane.config
    resp = requests.post(served.url + "/", data=body, timeout=10, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/elasticloadbalancing/aws4_request, "
                         "SignedHeaders=host, Signature=00"})
    assert resp.status_code == 400, resp.text
    assert resp.text.count(f"<Code>{code}</Code>") == 1, resp.text
    assert "<ErrorResponse" in resp.text and "<Type>Sender</Type>" in resp.text
    assert served.plane.config == before


def test_parse_query_nesting() -> None:
    parsed = parse_query(b"Action=X&Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn=b"
                         b"&Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=a&Names=")
    assert parsed["Actions"][0]["ForwardConfig"]["TargetGroups"] == [{"TargetGroupArn": "a"}, {"TargetGroupArn": "b"}]
    assert parsed["Names"] == ""
