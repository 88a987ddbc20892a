"""ELB observability end to end: a load balancer with a listener in front of a busybox httpd
container; requests through it show up on the daemon's /metrics (per listener and per target)
and in `berth elb top --once`."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request

import pytest

from berth.elb.metrics import Sample, parse
from tests.e2e.elb_support import haproxy_stopped_after
from tests.helpers import BERTH, free_port, running_aws_daemon, wait_for

pytestmark = pytest.mark.root

SERVE = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _scrape(url: str) -> list[Sample]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return parse(response.read().decode())


def _value(items: list[Sample], name: str, **labels: str) -> float | None:
    for s in items:
        if s.name == name and all(s.label(k) == v for k, v in labels.items()):
            return s.value
    return None


def test_requests_show_on_metrics_and_in_elb_top() -> None:
    metrics_port, target_port, listener_port = free_port(), free_port(), free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    with running_aws_daemon("--metrics-addr", f"127.0.0.1:{metrics_port}") as d, haproxy_stopped_after(d):
        with urllib.request.urlopen(metrics_url, timeout=5) as response:   # up, unauthenticated, typed
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "# TYPE berth_elb_listener_requests_total counter" in response.read().decode()
        d.docker("run", "-d", "--name", "web", "-p", f"127.0.0.1:{target_port}:80", "busybox", "sh", "-c", SERVE,
                 check=True)
        elb = d.aws_client("elbv2")
        lb = elb.create_load_balancer(Name="front", Subnets=["subnet-1"])["LoadBalancers"][0]["LoadBalancerArn"]
        tg = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId="vpc-1", TargetType="ip",
                                     HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                     HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": target_port}])
        listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=listener_port, DefaultActions=[
            {"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
        elb.create_rule(ListenerArn=listener, Priority=1, Conditions=[{"Field": "path-pattern", "Values": ["/fail"]}],
                        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                            "StatusCode": "503", "ContentType": "text/plain", "MessageBody": "no"}}])
        wait_for("target healthy", lambda: all(
            h["TargetHealth"]["State"] == "healthy"
            for h in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]), timeout=60)
        base = f"http://127.0.0.1:{listener_port}"
        for _ in range(5):
            assert _get(base + "/") == 200
        assert _get(base + "/fail") == 503

        target = {"target_group": "web", "target": "127.0.0.1", "port": str(target_port)}
        listener_labels = {"load_balancer": "front", "listener_port": str(listener_port), "listener": listener}

        def counted() -> list[Sample] | None:
            items = _scrape(metrics_url)
            done = (_value(items, "berth_elb_target_requests_total", **target) or 0) >= 5
            return items if done else None

        items = wait_for("requests counted", counted, timeout=20)
        assert (_value(items, "berth_elb_listener_requests_total", **listener_labels) or 0) >= 6
        assert _value(items, "berth_elb_listener_http_responses_total", code="5xx", **listener_labels) == 1
        assert (_value(items, "berth_elb_target_http_responses_total", code="2xx", **target) or 0) >= 5
        assert _value(items, "berth_elb_target_http_responses_total", code="5xx", **target) == 0
        assert _value(items, "berth_elb_target_healthy", **target) == 1
        assert _value(items, "berth_elb_target_response_time_average_seconds", **target) is not None

        top = subprocess.run([BERTH, "elb", "top", "--once", "--interval", "0.2", "--metrics-url", metrics_url],
                             capture_output=True, text=True, timeout=30)
        assert top.returncode == 0, top.stderr
        lines = top.stdout.splitlines()
        assert any(line.split()[:2] == ["front", str(listener_port)] for line in lines if line.strip()), top.stdout
        assert any(line.split()[:3] == ["web", f"127.0.0.1:{target_port}", "healthy"]
                   for line in lines if line.strip()), top.stdout
        d.docker("rm", "-f", "web")


def test_elb_top_says_when_the_daemon_is_not_there() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    top = subprocess.run([BERTH, "elb", "top", "--once", "--metrics-url", url],
                         capture_output=True, text=True, timeout=30)
    assert top.returncode == 1
    assert "cannot read the daemon's metrics" in top.stderr
