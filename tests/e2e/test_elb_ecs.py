"""ELBv2 in front of ECS services, through boto3 against a private daemon (issue 10 acceptance):
a 3-task service behind a load balancer serves every request from all three tasks; a killed task's
target is replaced while a client keeps sending requests; path rules, fixed responses and
weighted forwards split traffic as configured; UpdateService moving a service to another target
group registers the new tasks there and drains the old ones out of the group it left."""

from __future__ import annotations

import collections
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.elb_support import haproxy_stopped_after
from tests.helpers import BerthDaemon, free_port, running_aws_daemon, wait_for

pytestmark = pytest.mark.root

SERVE = "mkdir -p /www/api && hostname > /www/index.html && echo api-$(hostname) > /www/api/index.html && exec httpd -f -p 80 -h /www"


@dataclass
class Env:
    daemon: BerthDaemon
    ecs: Any
    elb: Any
    lb_arn: str


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with running_aws_daemon("--ecs-healthy-after", "1") as d, haproxy_stopped_after(d):
        ecs, elb = d.aws_client("ecs"), d.aws_client("elbv2")
        ecs.register_task_definition(family="web", containerDefinitions=[{
            "name": "web", "image": "busybox", "memory": 32, "portMappings": [{"containerPort": 80}],
            "command": ["sh", "-c", SERVE], "stopTimeout": 2}])
        lb = elb.create_load_balancer(Name="front", Subnets=["subnet-1"])["LoadBalancers"][0]
        yield Env(d, ecs, elb, lb["LoadBalancerArn"])


def _target_group(env: Env, name: str) -> str:
    tg = env.elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId="vpc-1", TargetType="instance",
                                     HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                     HealthyThresholdCount=2, UnhealthyThresholdCount=2)["TargetGroups"][0]
    env.elb.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "2"}])
    return str(tg["TargetGroupArn"])


def _service(env: Env, name: str, tg: str, count: int) -> None:
    env.ecs.create_service(serviceName=name, taskDefinition="web", desiredCount=count,
                           loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])


def _all_healthy(env: Env, tg: str, count: int) -> bool:
    health = env.elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return len(health) == count and all(h["TargetHealth"]["State"] == "healthy" for h in health)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read().strip())


def _remove_service(env: Env, name: str) -> None:
    env.ecs.delete_service(service=name, force=True)
    wait_for(f"{name} drained", lambda: not env.ecs.list_tasks(serviceName=name)["taskArns"], timeout=60)


def test_a_service_behind_a_listener_serves_from_every_task(env: Env) -> None:
    port = free_port()
    tg = _target_group(env, "all")
    listener = env.elb.create_listener(LoadBalancerArn=env.lb_arn, Protocol="HTTP", Port=port, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
    _service(env, "all", tg, 3)
    try:
        wait_for("3 healthy targets", lambda: _all_healthy(env, tg, 3), timeout=60)
        seen = collections.Counter(_get(f"http://127.0.0.1:{port}/") for _ in range(300))
        assert len(seen) == 3 and sum(seen.values()) == 300, seen
        waiter = env.elb.get_waiter("target_in_service")
        waiter.wait(TargetGroupArn=tg, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        events = [e["message"] for e in env.ecs.describe_services(services=["all"])["services"][0]["events"]]
        assert any("registered" in e and tg in e for e in events), events

        # a killed task: its target goes, the service replaces it, the client never sees a refusal
        task = env.ecs.describe_tasks(tasks=env.ecs.list_tasks(serviceName="all")["taskArns"][:1])["tasks"][0]
        failures: list[str] = []
        done = threading.Event()

        def client() -> None:
            while not done.is_set():
                try:
                    _get(f"http://127.0.0.1:{port}/")
                except (urllib.error.URLError, OSError) as err:
                    failures.append(str(err))
                time.sleep(0.05)

        thread = threading.Thread(target=client)
        thread.start()
        try:
            env.daemon.docker("kill", task["containers"][0]["runtimeId"], check=True)
            wait_for("a replacement task", lambda: task["taskArn"] not in env.ecs.list_tasks(serviceName="all")[
                "taskArns"] and len(env.ecs.list_tasks(serviceName="all")["taskArns"]) == 3, timeout=30)
            wait_for("3 healthy targets again", lambda: _all_healthy(env, tg, 3), timeout=60)
        finally:
            done.set()
            thread.join()
        assert not [f for f in failures if "refused" in f.lower()], failures
        assert len(failures) <= 1, failures
    finally:
        _remove_service(env, "all")
        env.elb.delete_listener(ListenerArn=listener)


def test_path_rules_fixed_response_and_weights(env: Env) -> None:
    port = free_port()
    api, web = _target_group(env, "api"), _target_group(env, "web")
    listener = env.elb.create_listener(LoadBalancerArn=env.lb_arn, Protocol="HTTP", Port=port, DefaultActions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": web, "Weight": 80}, {"TargetGroupArn": api, "Weight": 20}]}}])["Listeners"][0]["ListenerArn"]
    env.elb.create_rule(ListenerArn=listener, Priority=10, Conditions=[
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": api}])
    env.elb.create_rule(ListenerArn=listener, Priority=5, Conditions=[
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/health"]}}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "ok"}}])
    _service(env, "api", api, 1)
    _service(env, "web", web, 1)
    try:
        wait_for("both groups healthy", lambda: _all_healthy(env, api, 1) and _all_healthy(env, web, 1), timeout=60)
        assert _get(f"http://127.0.0.1:{port}/health") == b"ok"
        assert _get(f"http://127.0.0.1:{port}/api/").startswith(b"api-")
        hosts = {t: _get(f"http://127.0.0.1:{port}/api/").split(b"-", 1)[1] for t in ("api",)}
        weights = collections.Counter(_get(f"http://127.0.0.1:{port}/") == hosts["api"] for _ in range(1000))
        assert 700 <= weights[False] <= 900, weights   # 80/20 within ±10 %
    finally:
        _remove_service(env, "api")
        _remove_service(env, "web")
        env.elb.delete_listener(ListenerArn=listener)


def test_update_service_moves_the_tasks_to_another_target_group(env: Env) -> None:
    old_tg, new_tg = _target_group(env, "move-a"), _target_group(env, "move-b")
    old_port, new_port = free_port(), free_port()
    listeners = [env.elb.create_listener(LoadBalancerArn=env.lb_arn, Protocol="HTTP", Port=port, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
        for tg, port in ((old_tg, old_port), (new_tg, new_port))]
    _service(env, "move", old_tg, 2)
    try:
        wait_for("2 healthy targets in the first group", lambda: _all_healthy(env, old_tg, 2), timeout=60)
        old_tasks = set(env.ecs.list_tasks(serviceName="move")["taskArns"])
        env.ecs.update_service(service="move", loadBalancers=[
            {"targetGroupArn": new_tg, "containerName": "web", "containerPort": 80}])
        service = env.ecs.describe_services(services=["move"])["services"][0]
        assert len(service["deployments"]) == 2
        assert service["loadBalancers"][0]["targetGroupArn"] == new_tg

        def moved() -> bool:
            s = env.ecs.describe_services(services=["move"])["services"][0]
            left = env.elb.describe_target_health(TargetGroupArn=old_tg)["TargetHealthDescriptions"]
            return (len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED"
                    and s["runningCount"] == 2 and not left and _all_healthy(env, new_tg, 2))
        wait_for(lambda: "the service to move: " + str(env.elb.describe_target_health(TargetGroupArn=old_tg)),
                 moved, timeout=90)
        tasks = env.ecs.describe_tasks(tasks=env.ecs.list_tasks(serviceName="move")["taskArns"])["tasks"]
        assert not {t["taskArn"] for t in tasks} & old_tasks
        ports = {t["containers"][0]["networkBindings"][0]["hostPort"] for t in tasks}
        registered = {h["Target"]["Port"] for h in env.elb.describe_target_health(
            TargetGroupArn=new_tg)["TargetHealthDescriptions"]}
        assert registered == ports                      # the new tasks, and only they, in the new group
        seen = collections.Counter(_get(f"http://127.0.0.1:{new_port}/") for _ in range(40))
        assert len(seen) == 2, seen
        events = [e["message"] for e in env.ecs.describe_services(services=["move"])["services"][0]["events"]]
        assert any("deregistered" in e and old_tg in e for e in events), events
    finally:
        _remove_service(env, "move")
        for listener in listeners:
            env.elb.delete_listener(ListenerArn=listener)
