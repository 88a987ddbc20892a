"""ELBv2 bad input against the real HAProxy data plane (issue 10 acceptance): a table over every
ELBv2 action, driven through boto3 (and raw signed Query posts for what boto3 cannot send), each
answering AWS's error code and message in AWS's XML with a 4xx status; after the whole table
HAProxy's configuration file, its runtime view (backends, servers and their state), the ports it
listens on, its processes (no reload happened) and the API's own view are what they were, and
the baseline load balancer still serves."""

from __future__ import annotations

import http.server
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.e2e.elb_support import children, haproxy_master, haproxy_stopped_after, listening_ports, runtime
from tests.helpers import REGION, BerthDaemon, free_port, running_aws_daemon, wait_for

pytestmark = pytest.mark.root

PREFIX = "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
NO_LB = PREFIX + "loadbalancer/app/nope/0123456789abcdef"
NO_TG = PREFIX + "targetgroup/nope/0123456789abcdef"
NO_LN = PREFIX + "listener/app/nope/0123456789abcdef/0123456789abcdef"
NO_RULE = PREFIX + "listener-rule/app/nope/0123456789abcdef/0123456789abcdef/0123456789abcdef"


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"baseline\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Env:
    daemon: BerthDaemon
    elb: Any
    arns: dict[str, str]
    listener_port: int
    busy_port: int                  # a port another process (this test) listens on
    other_port: int                 # the port of another load balancer's listener
    extra: dict[str, Any] = field(default_factory=dict)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as err:
        return int(err.code), bytes(err.read())


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        with running_aws_daemon(busybox=False) as d, haproxy_stopped_after(d):
            elb = d.aws_client("elbv2", config=Config(retries={"max_attempts": 1}, parameter_validation=False))
            lb = elb.create_load_balancer(Name="base", Subnets=["subnet-1"])["LoadBalancers"][0]["LoadBalancerArn"]
            tg = elb.create_target_group(
                Name="base-tg", Protocol="HTTP", Port=target.server_port, VpcId="vpc-1", TargetType="ip",
                HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
                UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
            itg = elb.create_target_group(Name="inst-tg", Protocol="HTTP", Port=80, VpcId="vpc-1",
                                          TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
            tcp = elb.create_target_group(Name="tcp-tg", Protocol="TCP", Port=80, VpcId="vpc-1",
                                          TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
            port = free_port()
            ln = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port, DefaultActions=[
                {"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
            rule = elb.create_rule(ListenerArn=ln, Priority=10, Conditions=[
                {"Field": "path-pattern", "Values": ["/fixed"]}], Actions=[
                {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200", "ContentType": "text/plain",
                                                                   "MessageBody": "fixed"}}])["Rules"][0]["RuleArn"]
            rule2 = elb.create_rule(ListenerArn=ln, Priority=20, Conditions=[
                {"Field": "path-pattern", "Values": ["/api/*"]}], Actions=[
                {"Type": "forward", "TargetGroupArn": tg}])["Rules"][0]["RuleArn"]
            default_rule = [r for r in elb.describe_rules(ListenerArn=ln)["Rules"] if r["IsDefault"]][0]["RuleArn"]
            elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": target.server_port}])
            # another load balancer with a listener and its own target group
            lb2 = elb.create_load_balancer(Name="other", Subnets=["subnet-1"])["LoadBalancers"][0]["LoadBalancerArn"]
            tg2 = elb.create_target_group(Name="other-tg", Protocol="HTTP", Port=80, VpcId="vpc-1",
                                          TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
            other_port = free_port()
            elb.create_listener(LoadBalancerArn=lb2, Protocol="HTTP", Port=other_port, DefaultActions=[
                {"Type": "forward", "TargetGroupArn": tg2}])
            nlb = elb.create_load_balancer(Name="net", Type="network", Subnets=["subnet-1"]
                                           )["LoadBalancers"][0]["LoadBalancerArn"]
            nln = elb.create_listener(LoadBalancerArn=nlb, Protocol="TCP", Port=free_port(), DefaultActions=[
                {"Type": "forward", "TargetGroupArn": tcp}])["Listeners"][0]["ListenerArn"]

            def healthy() -> bool:
                rows = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
                return len(rows) == 1 and rows[0]["TargetHealth"]["State"] == "healthy"
            wait_for("the baseline target to turn healthy", healthy, timeout=40)
            assert _get(f"http://127.0.0.1:{port}/") == (200, b"baseline\n")
            yield Env(d, elb, {"lb": lb, "tg": tg, "itg": itg, "tcp": tcp, "ln": ln, "rule": rule, "rule2": rule2,
                               "default": default_rule, "lb2": lb2, "tg2": tg2, "nlb": nlb, "nln": nln},
                      port, busy.getsockname()[1], other_port, {"target_port": target.server_port})
    finally:
        busy.close()
        target.shutdown()
        target.server_close()


# ---- what the data plane is doing ----------------------------------------------------------


def _plane_snapshot(d: BerthDaemon) -> dict[str, Any]:
    run = d.run_root / "elb"
    master = haproxy_master(d)
    assert master is not None
    procs = [master, *children(master)]
    servers = []
    for line in runtime(d, "show servers state").splitlines():
        words = line.split()
        if line.startswith("#") or len(words) < 19:
            continue
        # backend, server, address, op state, admin state, weight, port (not the timers)
        servers.append((words[1], words[3], words[4], words[5], words[6], words[7], words[18]))
    return {
        "haproxy.cfg": (run / "haproxy.cfg").read_bytes(),
        "plane.json": (run / "plane.json").read_bytes(),
        # no temporary config left behind (servers.state and the log change as HAProxy runs)
        "files": sorted(p.name for p in run.iterdir() if p.name not in ("haproxy.log", "servers.state")),
        "processes": sorted(procs),
        "backends": sorted(line for line in runtime(d, "show backend").splitlines() if line and line[0] != "#"),
        "servers": sorted(servers),
        "listening": listening_ports(procs),
    }


def _api_snapshot(elb: Any, arns: dict[str, str]) -> dict[str, Any]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "ResponseMetadata"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    out = {
        "lbs": elb.describe_load_balancers(),
        "tgs": elb.describe_target_groups(),
        "listeners": [elb.describe_listeners(LoadBalancerArn=arns[k]) for k in ("lb", "lb2", "nlb")],
        "nlb_rules": elb.describe_rules(ListenerArn=arns["nln"]),
        "rules": elb.describe_rules(ListenerArn=arns["ln"]),
        "attrs": [elb.describe_target_group_attributes(TargetGroupArn=arns[k]) for k in ("tg", "itg", "tcp", "tg2")],
        "lb_attrs": [elb.describe_load_balancer_attributes(LoadBalancerArn=arns[k]) for k in ("lb", "lb2", "nlb")],
        "health": elb.describe_target_health(TargetGroupArn=arns["tg"]),
        "tags": elb.describe_tags(ResourceArns=[arns[k] for k in ("lb", "tg", "ln", "rule")]),
    }
    return dict(strip(out))


# ---- the table ------------------------------------------------------------------------------

Call = Callable[[Any, Env], Any]
A = dict[str, str]


def _fwd(tg: str) -> list[dict[str, Any]]:
    return [{"Type": "forward", "TargetGroupArn": tg}]


PATH = [{"Field": "path-pattern", "Values": ["/x"]}]

# (id, call, code, words the message contains)
TABLE: list[tuple[str, Call, str, str]] = [
    # -- load balancers
    ("create-lb-duplicate-name", lambda c, e: c.create_load_balancer(Name="base", Type="network", Subnets=["s"]),
     "DuplicateLoadBalancerName", "'base' already exists"),
    ("create-lb-bad-name", lambda c, e: c.create_load_balancer(Name="-bad-"), "ValidationError", "name '-bad-'"),
    ("create-lb-long-name", lambda c, e: c.create_load_balancer(Name="x" * 33), "ValidationError", "1-32 characters"),
    ("create-lb-internal-name", lambda c, e: c.create_load_balancer(Name="internal-x"), "ValidationError",
     "cannot start with 'internal-'"),
    ("create-lb-bad-scheme", lambda c, e: c.create_load_balancer(Name="x", Scheme="public"), "InvalidScheme",
     "Scheme 'public'"),
    ("create-lb-bad-type", lambda c, e: c.create_load_balancer(Name="x", Type="classic"), "ValidationError",
     "enum value set"),
    ("create-lb-gateway", lambda c, e: c.create_load_balancer(Name="x", Type="gateway"), "ValidationError",
     "application and network"),
    ("create-lb-no-name", lambda c, e: c.create_load_balancer(), "ValidationError", "'name'"),
    ("create-lb-dup-tags", lambda c, e: c.create_load_balancer(Name="x", Tags=[{"Key": "a"}, {"Key": "a"}]),
     "DuplicateTagKeys", "'a'"),
    ("describe-lbs-unknown-name", lambda c, e: c.describe_load_balancers(Names=["nope"]), "LoadBalancerNotFound",
     "nope"),
    ("describe-lbs-unknown-arn", lambda c, e: c.describe_load_balancers(LoadBalancerArns=[NO_LB]),
     "LoadBalancerNotFound", NO_LB),
    ("describe-lbs-both", lambda c, e: c.describe_load_balancers(Names=["base"], LoadBalancerArns=[e.arns["lb"]]),
     "ValidationError", "cannot be specified together"),
    ("describe-lbs-page-size", lambda c, e: c.describe_load_balancers(PageSize=401), "ValidationError",
     "between 1 and 400"),
    ("describe-lbs-marker", lambda c, e: c.describe_load_balancers(Marker="%%%"), "ValidationError",
     "Marker '%%%'"),
    ("delete-lb-not-an-arn", lambda c, e: c.delete_load_balancer(LoadBalancerArn="garbage"), "ValidationError",
     "'garbage' is not a valid load balancer ARN"),
    ("lb-attrs-unknown", lambda c, e: c.describe_load_balancer_attributes(LoadBalancerArn=NO_LB),
     "LoadBalancerNotFound", NO_LB),
    ("modify-lb-attrs-unknown-key", lambda c, e: c.modify_load_balancer_attributes(
        LoadBalancerArn=e.arns["lb"], Attributes=[{"Key": "nope.enabled", "Value": "true"}]),
     "InvalidConfigurationRequest", "'nope.enabled' is not recognized"),
    ("modify-lb-attrs-idle-range", lambda c, e: c.modify_load_balancer_attributes(
        LoadBalancerArn=e.arns["lb"], Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "0"}]),
     "InvalidConfigurationRequest", "between 1 and 4000"),
    ("modify-lb-attrs-bool", lambda c, e: c.modify_load_balancer_attributes(
        LoadBalancerArn=e.arns["lb"], Attributes=[{"Key": "deletion_protection.enabled", "Value": "yes"}]),
     "InvalidConfigurationRequest", "must be true or false"),
    ("modify-lb-attrs-nlb-key", lambda c, e: c.modify_load_balancer_attributes(
        LoadBalancerArn=e.arns["nlb"], Attributes=[{"Key": "routing.http2.enabled", "Value": "true"}]),
     "InvalidConfigurationRequest", "not recognized"),
    ("modify-lb-attrs-empty", lambda c, e: c.modify_load_balancer_attributes(LoadBalancerArn=e.arns["lb"],
                                                                              Attributes=[]),
     "ValidationError", "Attributes must not be empty"),
    ("set-sgs-unknown", lambda c, e: c.set_security_groups(LoadBalancerArn=NO_LB, SecurityGroups=["sg-1"]),
     "LoadBalancerNotFound", NO_LB),
    ("set-subnets-none", lambda c, e: c.set_subnets(LoadBalancerArn=e.arns["lb"], Subnets=[]), "ValidationError",
     "Subnets or SubnetMappings"),
    ("set-subnets-unknown", lambda c, e: c.set_subnets(LoadBalancerArn=NO_LB, Subnets=["s"]),
     "LoadBalancerNotFound", NO_LB),
    # -- target groups
    ("create-tg-duplicate-name", lambda c, e: c.create_target_group(Name="base-tg", Protocol="HTTP", Port=1),
     "DuplicateTargetGroupName", "'base-tg'"),
    ("create-tg-interval-low", lambda c, e: c.create_target_group(Name="x", Protocol="HTTP", Port=80,
                                                                   HealthCheckIntervalSeconds=4),
     "ValidationError", "between 5 and 300"),
    ("create-tg-timeout-range", lambda c, e: c.create_target_group(Name="x", Protocol="HTTP", Port=80,
                                                                    HealthCheckTimeoutSeconds=121),
     "ValidationError", "between 2 and 120"),
    ("create-tg-timeout-vs-interval", lambda c, e: c.create_target_group(
        Name="x", Protocol="HTTP", Port=80, HealthCheckIntervalSeconds=10, HealthCheckTimeoutSeconds=10),
     "ValidationError", "must be smaller than the interval"),
    ("create-tg-healthy-threshold", lambda c, e: c.create_target_group(Name="x", Protocol="HTTP", Port=80,
                                                                        HealthyThresholdCount=11),
     "ValidationError", "between 2 and 10"),
    ("create-tg-unhealthy-threshold", lambda c, e: c.create_target_group(Name="x", Protocol="HTTP", Port=80,
                                                                          UnhealthyThresholdCount=1),
     "ValidationError", "between 2 and 10"),
    ("create-tg-matcher", lambda c, e: c.create_target_group(Name="x", Protocol="HTTP", Port=80,
                                                              Matcher={"HttpCode": "600"}),
     "ValidationError", "HttpCode '600'"),
    ("create-tg-matcher-reversed", lambda c, e: c.create_target_group(Name="x", Protocol="HTTP", Port=80,
                                                                       Matcher={"HttpCode": "299-200"}),
     "ValidationError", "HttpCode '299-200'"),
    ("create-tg-hc-port", lambda c, e: c.create_target_group(Name="x", Protocol="HTTP", Port=80,
                                                              HealthCheckPort="70000"),
     "ValidationError", "Health check port '70000'"),
    ("create-tg-hc-path", lambda c, e: c.create_target_group(Name="x", Protocol="HTTP", Port=80,
                                                              HealthCheckPath="health"),
     "ValidationError", "must begin with '/'"),
    ("create-tg-port-range", lambda c, e: c.create_target_group(Name="x", Protocol="HTTP", Port=0),
     "ValidationError", "between 1 and 65535"),
    ("create-tg-no-protocol", lambda c, e: c.create_target_group(Name="x", Port=80), "ValidationError",
     "A protocol must be specified"),
    ("create-tg-target-type", lambda c, e: c.create_target_group(Name="x", Protocol="HTTP", Port=80,
                                                                  TargetType="lambda"),
     "ValidationError", "Target type 'lambda'"),
    ("create-tg-udp", lambda c, e: c.create_target_group(Name="x", Protocol="UDP", Port=80),
     "UnsupportedProtocol", "'UDP'"),
    ("create-tg-tcp-matcher", lambda c, e: c.create_target_group(Name="x", Protocol="TCP", Port=80,
                                                                  HealthCheckProtocol="TCP",
                                                                  Matcher={"HttpCode": "200"}),
     "ValidationError", "only be specified for HTTP health checks"),
    ("describe-tgs-unknown-arn", lambda c, e: c.describe_target_groups(TargetGroupArns=[NO_TG]),
     "TargetGroupNotFound", NO_TG),
    ("describe-tgs-unknown-name", lambda c, e: c.describe_target_groups(Names=["nope"]), "TargetGroupNotFound",
     "nope"),
    ("describe-tgs-unknown-lb", lambda c, e: c.describe_target_groups(LoadBalancerArn=NO_LB),
     "LoadBalancerNotFound", NO_LB),
    ("modify-tg-unknown", lambda c, e: c.modify_target_group(TargetGroupArn=NO_TG, HealthCheckPath="/x"),
     "TargetGroupNotFound", NO_TG),
    ("modify-tg-interval-range", lambda c, e: c.modify_target_group(TargetGroupArn=e.arns["tg"],
                                                                     HealthCheckIntervalSeconds=301),
     "ValidationError", "between 5 and 300"),
    ("modify-tg-timeout-vs-interval", lambda c, e: c.modify_target_group(TargetGroupArn=e.arns["tg"],
                                                                          HealthCheckTimeoutSeconds=5),
     "ValidationError", "must be smaller than the interval"),
    ("modify-tg-matcher", lambda c, e: c.modify_target_group(TargetGroupArn=e.arns["tg"],
                                                              Matcher={"HttpCode": "200-abc"}),
     "ValidationError", "HttpCode '200-abc'"),
    ("delete-tg-in-use", lambda c, e: c.delete_target_group(TargetGroupArn=e.arns["tg"]), "ResourceInUse",
     "currently in use"),
    ("delete-tg-not-an-arn", lambda c, e: c.delete_target_group(TargetGroupArn="garbage"), "ValidationError",
     "'garbage' is not a valid target group ARN"),
    ("tg-attrs-unknown", lambda c, e: c.describe_target_group_attributes(TargetGroupArn=NO_TG),
     "TargetGroupNotFound", NO_TG),
    ("modify-tg-attrs-delay-range", lambda c, e: c.modify_target_group_attributes(
        TargetGroupArn=e.arns["tg"], Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "3601"}]),
     "InvalidConfigurationRequest", "between 0 and 3600"),
    ("modify-tg-attrs-slow-start", lambda c, e: c.modify_target_group_attributes(
        TargetGroupArn=e.arns["tg"], Attributes=[{"Key": "slow_start.duration_seconds", "Value": "10"}]),
     "InvalidConfigurationRequest", "between 30 and 900"),
    ("modify-tg-attrs-algorithm", lambda c, e: c.modify_target_group_attributes(
        TargetGroupArn=e.arns["tg"], Attributes=[{"Key": "load_balancing.algorithm.type", "Value": "random"}]),
     "InvalidConfigurationRequest", "round_robin or least_outstanding_requests"),
    ("modify-tg-attrs-unknown-key", lambda c, e: c.modify_target_group_attributes(
        TargetGroupArn=e.arns["tg"], Attributes=[{"Key": "nope", "Value": "1"}]),
     "ValidationError", "'nope' is not recognized"),
    ("modify-tg-attrs-half-good", lambda c, e: c.modify_target_group_attributes(
        TargetGroupArn=e.arns["tg"], Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"},
                                                 {"Key": "stickiness.enabled", "Value": "maybe"}]),
     "InvalidConfigurationRequest", "true or false"),
    # -- targets
    ("register-unknown-tg", lambda c, e: c.register_targets(TargetGroupArn=NO_TG, Targets=[{"Id": "10.0.0.1"}]),
     "TargetGroupNotFound", NO_TG),
    ("register-instance-in-ip-tg", lambda c, e: c.register_targets(TargetGroupArn=e.arns["tg"],
                                                                    Targets=[{"Id": "i-0abc"}]),
     "InvalidTarget", "'i-0abc'"),
    ("register-not-an-ip", lambda c, e: c.register_targets(TargetGroupArn=e.arns["tg"],
                                                            Targets=[{"Id": "10.0.0.300"}]),
     "InvalidTarget", "'10.0.0.300' is not a valid IPv4 address"),
    ("register-ipv6-in-ipv4-tg", lambda c, e: c.register_targets(TargetGroupArn=e.arns["tg"],
                                                                  Targets=[{"Id": "::1"}]),
     "InvalidTarget", "IP address type"),
    ("register-ip-in-instance-tg", lambda c, e: c.register_targets(TargetGroupArn=e.arns["itg"],
                                                                    Targets=[{"Id": "10.0.0.1"}]),
     "InvalidTarget", "not valid instances"),
    ("register-unknown-instance", lambda c, e: c.register_targets(TargetGroupArn=e.arns["itg"],
                                                                   Targets=[{"Id": "i-0123456789abcdef0"}]),
     "InvalidTarget", "not in a running state"),
    ("register-public-ip", lambda c, e: c.register_targets(TargetGroupArn=e.arns["tg"], Targets=[{"Id": "8.8.8.8"}]),
     "InvalidTarget", "'8.8.8.8' is not in an allowed range"),
    ("register-unspecified-ip", lambda c, e: c.register_targets(TargetGroupArn=e.arns["tg"],
                                                                 Targets=[{"Id": "0.0.0.0"}]),
     "InvalidTarget", "not in an allowed range"),
    ("register-multicast-ip", lambda c, e: c.register_targets(TargetGroupArn=e.arns["tg"],
                                                               Targets=[{"Id": "224.0.0.1"}]),
     "InvalidTarget", "not in an allowed range"),
    ("register-port-range", lambda c, e: c.register_targets(TargetGroupArn=e.arns["tg"],
                                                             Targets=[{"Id": "10.0.0.1", "Port": 70000}]),
     "ValidationError", "between 1 and 65535"),
    ("register-half-good", lambda c, e: c.register_targets(TargetGroupArn=e.arns["tg"], Targets=[
        {"Id": "10.0.0.1", "Port": 80}, {"Id": "bogus"}]), "InvalidTarget", "'bogus'"),
    ("register-none", lambda c, e: c.register_targets(TargetGroupArn=e.arns["tg"], Targets=[]), "ValidationError",
     "Targets must not be empty"),
    ("deregister-not-registered", lambda c, e: c.deregister_targets(TargetGroupArn=e.arns["tg"],
                                                                     Targets=[{"Id": "10.9.9.9", "Port": 80}]),
     "InvalidTarget", "Id=10.9.9.9,Port=80"),
    ("deregister-unknown-tg", lambda c, e: c.deregister_targets(TargetGroupArn=NO_TG, Targets=[{"Id": "10.0.0.1"}]),
     "TargetGroupNotFound", NO_TG),
    ("health-unknown-tg", lambda c, e: c.describe_target_health(TargetGroupArn=NO_TG), "TargetGroupNotFound", NO_TG),
    ("health-not-registered", lambda c, e: c.describe_target_health(TargetGroupArn=e.arns["tg"],
                                                                     Targets=[{"Id": "10.9.9.9"}]),
     "InvalidTarget", "Id=10.9.9.9"),
    # -- listeners
    ("create-listener-port-busy-on-host", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=e.busy_port, DefaultActions=_fwd(e.arns["tg2"])),
     "InvalidConfigurationRequest", "already in use on this host"),
    ("create-listener-port-of-other-lb", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=e.other_port, DefaultActions=_fwd(e.arns["tg"])),
     "InvalidConfigurationRequest", "already used by a listener of load balancer 'other'"),
    ("create-listener-duplicate", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=e.listener_port, DefaultActions=_fwd(e.arns["tg"])),
     "DuplicateListener", "on port {listener_port} of load balancer 'base'"),
    ("create-listener-unknown-lb", lambda c, e: c.create_listener(
        LoadBalancerArn=NO_LB, Protocol="HTTP", Port=free_port(), DefaultActions=_fwd(e.arns["tg"])),
     "LoadBalancerNotFound", NO_LB),
    ("create-listener-tcp-on-alb", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="TCP", Port=free_port(), DefaultActions=_fwd(e.arns["tcp"])),
     "IncompatibleProtocols", "'TCP' is not supported by application"),
    ("create-listener-http-on-nlb", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["nlb"], Protocol="HTTP", Port=free_port(), DefaultActions=_fwd(e.arns["tcp"])),
     "IncompatibleProtocols", "'HTTP' is not supported by network"),
    ("create-listener-tcp-tg-on-alb", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=free_port(), DefaultActions=_fwd(e.arns["tcp"])),
     "IncompatibleProtocols", "'tcp-tg' uses protocol TCP"),
    ("create-listener-http-tg-on-nlb", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["nlb"], Protocol="TCP", Port=free_port(), DefaultActions=_fwd(e.arns["itg"])),
     "IncompatibleProtocols", "'inst-tg' uses protocol HTTP"),
    ("create-listener-unknown-tg", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=free_port(), DefaultActions=_fwd(NO_TG)),
     "TargetGroupNotFound", NO_TG),
    ("create-listener-tg-of-other-lb", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=free_port(), DefaultActions=_fwd(e.arns["tg2"])),
     "TargetGroupAssociationLimit", "cannot be associated with more than one load balancer"),
    ("create-listener-port-range", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=0, DefaultActions=_fwd(e.arns["tg"])),
     "ValidationError", "between 1 and 65535"),
    ("create-listener-no-actions", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=free_port(), DefaultActions=[]),
     "ValidationError", "DefaultActions must contain one action"),
    ("create-listener-bad-action", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=free_port(), DefaultActions=[{"Type": "teleport"}]),
     "ValidationError", "Action type 'teleport'"),
    ("create-listener-self-redirect", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=free_port(), DefaultActions=[
            {"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301"}}]),
     "InvalidLoadBalancerAction", "redirect to itself"),
    ("create-listener-fixed-status", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=free_port(), DefaultActions=[
            {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "302"}}]),
     "ValidationError", "Status code '302'"),
    ("create-listener-weights", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=free_port(), DefaultActions=[
            {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": e.arns["tg"], "Weight": 1000}]}}]),
     "ValidationError", "between 0 and 999"),
    ("create-listener-redirect-port", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=free_port(), DefaultActions=[
            {"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301", "Port": "abc"}}]),
     "ValidationError", "Redirect port 'abc'"),
    ("create-listener-redirect-query", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["lb"], Protocol="HTTP", Port=free_port(), DefaultActions=[
            {"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301", "Query": "?a=1"}}]),
     "ValidationError", "must not start with '?'"),
    ("create-listener-nlb-fixed-response", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["nlb"], Protocol="TCP", Port=free_port(), DefaultActions=[
            {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]),
     "InvalidLoadBalancerAction", "only supported by application load balancers"),
    ("create-listener-nlb-two-groups", lambda c, e: c.create_listener(
        LoadBalancerArn=e.arns["nlb"], Protocol="TCP", Port=free_port(), DefaultActions=[
            {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": e.arns["tcp"]},
                                                                   {"TargetGroupArn": NO_TG}]}}]),
     "ValidationError", "at most 1 target group"),
    ("describe-listeners-neither", lambda c, e: c.describe_listeners(), "ValidationError",
     "either listener ARNs or a load balancer ARN"),
    ("describe-listeners-unknown", lambda c, e: c.describe_listeners(ListenerArns=[NO_LN]), "ListenerNotFound",
     NO_LN),
    ("modify-listener-port-busy-on-host", lambda c, e: c.modify_listener(ListenerArn=e.arns["ln"],
                                                                          Port=e.busy_port),
     "InvalidConfigurationRequest", "already in use on this host"),
    ("modify-listener-port-of-other-lb", lambda c, e: c.modify_listener(ListenerArn=e.arns["ln"],
                                                                         Port=e.other_port),
     "InvalidConfigurationRequest", "already used by a listener"),
    ("modify-listener-unknown", lambda c, e: c.modify_listener(ListenerArn=NO_LN, Port=free_port()),
     "ListenerNotFound", NO_LN),
    ("modify-listener-tcp-tg", lambda c, e: c.modify_listener(ListenerArn=e.arns["ln"],
                                                               DefaultActions=_fwd(e.arns["tcp"])),
     "IncompatibleProtocols", "uses protocol TCP"),
    ("modify-listener-protocol", lambda c, e: c.modify_listener(ListenerArn=e.arns["ln"], Protocol="TCP"),
     "IncompatibleProtocols", "'TCP'"),
    ("modify-nlb-listener-redirect", lambda c, e: c.modify_listener(ListenerArn=e.arns["nln"], DefaultActions=[
        {"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301", "Port": "81"}}]),
     "InvalidLoadBalancerAction", "only supported by application load balancers"),
    ("delete-listener-unknown", lambda c, e: c.delete_listener(ListenerArn=NO_LN), "ListenerNotFound", NO_LN),
    # -- rules
    ("create-rule-priority-taken", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=10,
                                                               Conditions=PATH, Actions=_fwd(e.arns["tg"])),
     "PriorityInUse", "Priority '10' is currently in use"),
    ("create-rule-priority-range", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=50001,
                                                               Conditions=PATH, Actions=_fwd(e.arns["tg"])),
     "ValidationError", "between 1 and 50000"),
    ("create-rule-tcp-tg", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=30, Conditions=PATH,
                                                       Actions=_fwd(e.arns["tcp"])),
     "IncompatibleProtocols", "'tcp-tg' uses protocol TCP"),
    ("create-rule-weighted-tcp-tg", lambda c, e: c.create_rule(
        ListenerArn=e.arns["ln"], Priority=30, Conditions=PATH, Actions=[{"Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": e.arns["tg"], "Weight": 1},
                             {"TargetGroupArn": e.arns["tcp"], "Weight": 1}]}}]),
     "IncompatibleProtocols", "'tcp-tg' uses protocol TCP"),
    ("create-rule-tg-of-other-lb", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=30,
                                                               Conditions=PATH, Actions=_fwd(e.arns["tg2"])),
     "TargetGroupAssociationLimit", "more than one load balancer"),
    ("create-rule-no-conditions", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=30, Conditions=[],
                                                              Actions=_fwd(e.arns["tg"])),
     "ValidationError", "at least one condition"),
    ("create-rule-bad-field", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=30, Conditions=[
        {"Field": "cookie", "Values": ["x"]}], Actions=_fwd(e.arns["tg"])), "ValidationError", "'cookie'"),
    ("create-rule-bad-cidr", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=30, Conditions=[
        {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/33"]}}], Actions=_fwd(e.arns["tg"])),
     "ValidationError", "'10.0.0.0/33' is not a valid CIDR block"),
    ("create-rule-bad-header", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=30, Conditions=[
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X Bad", "Values": ["1"]}}],
        Actions=_fwd(e.arns["tg"])), "ValidationError", "'X Bad' is not valid"),
    ("create-rule-bad-method", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=30, Conditions=[
        {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["get me"]}}],
        Actions=_fwd(e.arns["tg"])), "ValidationError", "upper-case"),
    ("create-rule-too-many-values", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=30, Conditions=[
        {"Field": "path-pattern", "Values": [f"/{i}" for i in range(6)]}], Actions=_fwd(e.arns["tg"])),
     "ValidationError", "at most 5 condition values"),
    ("create-rule-on-nlb-listener", lambda c, e: c.create_rule(ListenerArn=e.arns["nln"], Priority=30,
                                                                Conditions=PATH, Actions=_fwd(e.arns["tcp"])),
     "InvalidConfigurationRequest", "only be added to listeners of application load balancers"),
    ("create-rule-on-nlb-listener-unknown", lambda c, e: c.create_rule(ListenerArn=NO_LN, Priority=30,
                                                                        Conditions=PATH, Actions=_fwd(e.arns["tg"])),
     "ListenerNotFound", NO_LN),
    ("create-rule-two-actions", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=30, Conditions=PATH,
                                                            Actions=_fwd(e.arns["tg"]) * 2),
     "TooManyActions", "exactly one action"),
    ("create-rule-authenticate", lambda c, e: c.create_rule(ListenerArn=e.arns["ln"], Priority=30, Conditions=PATH,
                                                             Actions=[{"Type": "authenticate-oidc"}]),
     "InvalidLoadBalancerAction", "'authenticate-oidc'"),
    ("describe-rules-unknown-listener", lambda c, e: c.describe_rules(ListenerArn=NO_LN), "ListenerNotFound",
     NO_LN),
    ("describe-rules-unknown-rule", lambda c, e: c.describe_rules(RuleArns=[NO_RULE]), "RuleNotFound", NO_RULE),
    ("describe-rules-neither", lambda c, e: c.describe_rules(), "ValidationError", "either listener rule ARNs"),
    ("modify-rule-unknown", lambda c, e: c.modify_rule(RuleArn=NO_RULE, Conditions=PATH), "RuleNotFound", NO_RULE),
    ("modify-rule-default-conditions", lambda c, e: c.modify_rule(RuleArn=e.arns["default"], Conditions=PATH),
     "OperationNotPermitted", "default rule"),
    ("modify-rule-tcp-tg", lambda c, e: c.modify_rule(RuleArn=e.arns["rule"], Actions=_fwd(e.arns["tcp"])),
     "IncompatibleProtocols", "uses protocol TCP"),
    ("modify-rule-unknown-tg", lambda c, e: c.modify_rule(RuleArn=e.arns["rule2"], Actions=_fwd(NO_TG)),
     "TargetGroupNotFound", NO_TG),
    ("delete-rule-default", lambda c, e: c.delete_rule(RuleArn=e.arns["default"]), "OperationNotPermitted",
     "Default rule cannot be deleted"),
    ("delete-rule-unknown", lambda c, e: c.delete_rule(RuleArn=NO_RULE), "RuleNotFound", NO_RULE),
    ("set-priorities-taken", lambda c, e: c.set_rule_priorities(RulePriorities=[
        {"RuleArn": e.arns["rule2"], "Priority": 10}]), "PriorityInUse", "Priority '10' is currently in use"),
    ("set-priorities-swap-half", lambda c, e: c.set_rule_priorities(RulePriorities=[
        {"RuleArn": e.arns["rule2"], "Priority": 5}, {"RuleArn": NO_RULE, "Priority": 6}]), "RuleNotFound", NO_RULE),
    ("set-priorities-default", lambda c, e: c.set_rule_priorities(RulePriorities=[
        {"RuleArn": e.arns["default"], "Priority": 5}]), "OperationNotPermitted", "default rule"),
    ("set-priorities-empty", lambda c, e: c.set_rule_priorities(RulePriorities=[]), "ValidationError",
     "RulePriorities must not be empty"),
    # -- tags and limits
    ("add-tags-unknown-lb", lambda c, e: c.add_tags(ResourceArns=[NO_LB], Tags=[{"Key": "k", "Value": "v"}]),
     "LoadBalancerNotFound", NO_LB),
    ("add-tags-half-unknown", lambda c, e: c.add_tags(ResourceArns=[e.arns["lb"], NO_TG],
                                                      Tags=[{"Key": "k", "Value": "v"}]),
     "TargetGroupNotFound", NO_TG),
    ("add-tags-duplicate-keys", lambda c, e: c.add_tags(ResourceArns=[e.arns["lb"]], Tags=[
        {"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]), "DuplicateTagKeys", "'k'"),
    ("add-tags-aws-prefix", lambda c, e: c.add_tags(ResourceArns=[e.arns["lb"]], Tags=[{"Key": "aws:x", "Value": ""}]),
     "ValidationError", "'aws:x'"),
    ("add-tags-too-many", lambda c, e: c.add_tags(ResourceArns=[e.arns["lb"]], Tags=[
        {"Key": f"k{i}", "Value": ""} for i in range(51)]), "TooManyTags", "(50)"),
    ("add-tags-long-value", lambda c, e: c.add_tags(ResourceArns=[e.arns["tg"]], Tags=[{"Key": "k", "Value": "v" * 257}]),
     "ValidationError", "at most 256 characters"),
    ("add-tags-not-an-arn", lambda c, e: c.add_tags(ResourceArns=["garbage"], Tags=[{"Key": "k", "Value": "v"}]),
     "ValidationError", "'garbage'"),
    ("remove-tags-unknown", lambda c, e: c.remove_tags(ResourceArns=[NO_TG], TagKeys=["k"]), "TargetGroupNotFound",
     NO_TG),
    ("describe-tags-empty", lambda c, e: c.describe_tags(ResourceArns=[]), "ValidationError",
     "ResourceArns must not be empty"),
    ("describe-tags-unknown", lambda c, e: c.describe_tags(ResourceArns=[NO_LN]), "ListenerNotFound", NO_LN),
    ("account-limits-page-size", lambda c, e: c.describe_account_limits(PageSize=0), "ValidationError",
     "between 1 and 400"),
    ("account-limits-marker", lambda c, e: c.describe_account_limits(Marker="!!"), "ValidationError",
     "Marker '!!'"),
]

# every ELBv2 action berth serves has rows in the table
ACTIONS = {
    "CreateLoadBalancer", "DescribeLoadBalancers", "DeleteLoadBalancer", "DescribeLoadBalancerAttributes",
    "ModifyLoadBalancerAttributes", "SetSecurityGroups", "SetSubnets", "CreateTargetGroup", "DescribeTargetGroups",
    "ModifyTargetGroup", "DeleteTargetGroup", "DescribeTargetGroupAttributes", "ModifyTargetGroupAttributes",
    "RegisterTargets", "DeregisterTargets", "DescribeTargetHealth", "CreateListener", "DescribeListeners",
    "ModifyListener", "DeleteListener", "CreateRule", "DescribeRules", "ModifyRule", "DeleteRule",
    "SetRulePriorities", "AddTags", "RemoveTags", "DescribeTags", "DescribeAccountLimits",
}

# raw posts: what boto3 cannot send (body, code, words of the message)
RAW: list[tuple[bytes, str, str]] = [
    (b"Version=2015-12-01", "MissingAction", "parameter Action"),
    (b"Action=DescribeLoadBalancers", "MissingParameter", "parameter Version"),
    (b"", "MissingAction", "parameter Action"),
    (b"Action=DescribeLoadBalancers&Version=2012-06-01", "InvalidAction", "DescribeLoadBalancers"),
    (b"Action=Frobnicate&Version=2015-12-01", "InvalidAction", "Frobnicate"),
    (b"\xff\xfe\x00", "MalformedQueryString", "malformed"),
    (b"Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.x=a", "MalformedQueryString", "numbered"),
    (b"Action=DescribeLoadBalancers&Version=2015-12-01&Names=a&Names.member.1=b", "MalformedQueryString",
     "conflicts"),
    (b"Action=DescribeLoadBalancers&Version=2015-12-01&Names..member.1=b", "MalformedQueryString",
     "bad parameter name"),
    (b"Action=DescribeLoadBalancers&&Version=2015-12-01&=x", "MalformedQueryString", "malformed"),
    (b"Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=" + b"x" * (2 << 20), "ValidationError",
     "too large"),
    (b"Action=CreateLoadBalancer&Version=2015-12-01&Name.member.1=x", "ValidationError", "Name must be a string"),
    (b"Action=CreateTargetGroup&Version=2015-12-01&Name=x&Protocol=HTTP&Port=eighty", "ValidationError",
     "Port must be an integer"),
    (b"Action=RegisterTargets&Version=2015-12-01&TargetGroupArn=x&Targets.member.1.Port=80", "ValidationError",
     "'id'"),
    (b"Action=CreateListener&Version=2015-12-01&LoadBalancerArn={lb}&Port=80&DefaultActions.member.1=forward",
     "ValidationError", "DefaultActions must be a list of structures"),
    (b"Action=CreateRule&Version=2015-12-01&ListenerArn=x&Priority=1&Conditions.member.1.Field=path-pattern"
     b"&Conditions.member.1.Values.member.1.Key=a", "ValidationError", "Values must be a list of strings"),
]


def _signed_post(d: BerthDaemon, body: bytes) -> tuple[int, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    request = AWSRequest(method="POST", url=d.aws_url + "/", data=body, headers=headers)
    SigV4Auth(Credentials(*d.aws_credentials()), "elasticloadbalancing", REGION).add_auth(request)
    status, text = d.aws_post(body, dict(request.headers.items()))
    return status, text.decode()


def test_bad_input_changes_nothing_in_haproxy(env: Env) -> None:
    d, elb = env.daemon, env.elb
    assert {_action_of(row[1]) for row in TABLE} >= {_snake(a) for a in ACTIONS}, "an action has no bad-input row"
    plane_before = _plane_snapshot(env.daemon)
    api_before = _api_snapshot(elb, env.arns)
    assert ("127.0.0.1", env.listener_port) in plane_before["listening"]
    assert ("127.0.0.1", env.other_port) in plane_before["listening"]

    failures = []
    for name, call, code, words in TABLE:
        words = words.replace("{listener_port}", str(env.listener_port))
        try:
            call(elb, env)
        except botocore.exceptions.ClientError as err:
            got = (err.response["Error"].get("Code"), err.response["ResponseMetadata"]["HTTPStatusCode"])
            message = err.response["Error"].get("Message", "")
            if got[0] != code or not 400 <= got[1] < 500 or words not in message:
                failures.append(f"{name}: {got} {message!r}, wanted {code} with {words!r}")
        else:
            failures.append(f"{name}: succeeded, wanted {code}")
    for body, code, words in RAW:
        body = body.replace(b"{lb}", urllib.parse.quote(env.arns["lb"], safe="").encode())
        status, text = _signed_post(d, body)
        if not (400 <= status < 500 and text.count(f"<Code>{code}</Code>") == 1 and words in text
                and "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">" in text
                and "<Type>Sender</Type>" in text and "<RequestId>" in text):
            failures.append(f"raw {body!r}: {status} {text}")
    assert not failures, "\n".join(failures)

    assert _api_snapshot(elb, env.arns) == api_before
    after = _plane_snapshot(env.daemon)
    for key, value in plane_before.items():
        assert after[key] == value, f"the data plane's {key} changed"
    assert env.busy_port not in {p for _, p in after["listening"]}
    assert _get(f"http://127.0.0.1:{env.listener_port}/") == (200, b"baseline\n")
    assert _get(f"http://127.0.0.1:{env.listener_port}/api/x") == (200, b"baseline\n")
    assert _get(f"http://127.0.0.1:{env.listener_port}/fixed") == (200, b"fixed")


def _snake(action: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in action).lstrip("_")


def _action_of(call: Call) -> str:
    """The boto3 method a table row calls (recorded by running it against a recorder)."""
    seen: list[str] = []

    class Recorder:
        def __getattr__(self, name: str) -> Callable[..., None]:
            seen.append(name)
            return lambda **_: None

    call(Recorder(), Env(None, None, _ANY, 1, 2, 3))  # type: ignore[arg-type]
    return seen[0]


class _Any(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return key


_ANY = _Any()
