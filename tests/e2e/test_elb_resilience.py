"""ELBv2 resilience (issue 10 acceptance): a rolling update behind a listener loses no request while
a client sends 20 requests/s; a task whose health-check path answers 500 is marked unhealthy with
`Target.ResponseCodeMismatch` and replaced after the grace period; HAProxy killed with SIGKILL is
restarted within a second; the listener keeps answering while berth's daemon is down, and the
daemon adopts the same HAProxy when it comes back."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BerthDaemon, free_port, running_aws_daemon, wait_for, wait_task

pytestmark = pytest.mark.root

# index.html names the revision and the host; /cgi-bin/fail answers 500 (busybox httpd passes a CGI's
# own status line through)
SERVE = ("mkdir -p /www/cgi-bin && echo {rev}-$(hostname) > /www/index.html"
         " && printf '#!/bin/sh\\nprintf \"HTTP/1.0 500 Internal Server Error\\\\r\\\\n"
         "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nfail\\\\n\"\\n' > /www/cgi-bin/fail"
         " && chmod +x /www/cgi-bin/fail && exec httpd -f -p 80 -h /www")


def _taskdef(family: str, rev: str) -> dict[str, Any]:
    return {"family": family, "containerDefinitions": [{
        "name": "web", "image": "busybox", "memory": 32, "portMappings": [{"containerPort": 80}],
        "command": ["sh", "-c", SERVE.format(rev=rev)], "stopTimeout": 2}]}


@dataclass
class Env:
    daemon: BerthDaemon
    ecs: Any
    elb: Any
    lb_arn: str


def _haproxy_master(d: BerthDaemon) -> int | None:
    try:
        return int((d.run_root / "elb" / "haproxy.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _is_haproxy(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"haproxy")
    except (OSError, IndexError):
        return False


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    masters: list[int] = []
    try:
        with running_aws_daemon("--ecs-healthy-after", "1") as d:
            try:
                ecs, elb = d.aws_client("ecs"), d.aws_client("elbv2")
                ecs.register_task_definition(**_taskdef("roll", "v1"))
                ecs.register_task_definition(**_taskdef("roll", "v2"))
                lb = elb.create_load_balancer(Name="front", Subnets=["subnet-1"])["LoadBalancers"][0]
                yield Env(d, ecs, elb, lb["LoadBalancerArn"])
            finally:   # the daemon leaves HAProxy running on its way out (for the next one): stop it after
                pid = _haproxy_master(d)
                if pid is not None:
                    masters.append(pid)
    finally:
        for pid in masters:
            if _is_haproxy(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                wait_for(f"haproxy {pid} to exit", lambda pid=pid: not _is_haproxy(pid), timeout=10)  # type: ignore[misc]


def _target_group(env: Env, name: str, **health: Any) -> str:
    tg = env.elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId="vpc-1", TargetType="instance",
                                     HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                     HealthyThresholdCount=2, UnhealthyThresholdCount=2, **health)["TargetGroups"][0]
    env.elb.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "2"}])
    return str(tg["TargetGroupArn"])


def _listener(env: Env, tg: str) -> tuple[str, int]:
    port = free_port()
    arn = env.elb.create_listener(LoadBalancerArn=env.lb_arn, Protocol="HTTP", Port=port, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
    return str(arn), port


def _health(env: Env, tg: str) -> list[dict[str, Any]]:
    return list(env.elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"])


def _all_healthy(env: Env, tg: str, count: int) -> bool:
    health = _health(env, tg)
    return len(health) == count and all(h["TargetHealth"]["State"] == "healthy" for h in health)


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read().strip())


def _answers(url: str) -> bytes | None:
    try:
        return _get(url, timeout=1)
    except (urllib.error.URLError, OSError):
        return None


def _service(env: Env, name: str) -> dict[str, Any]:
    return dict(env.ecs.describe_services(services=[name])["services"][0])


def _remove(env: Env, service: str, listener: str) -> None:
    env.ecs.delete_service(service=service, force=True)
    wait_for(f"{service} drained", lambda: not env.ecs.list_tasks(serviceName=service)["taskArns"], timeout=30)
    env.elb.delete_listener(ListenerArn=listener)


class Client:
    """Sends GET / at about 20 requests/s until stopped; records answers and failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[bytes] = []
        self.failures: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                self.answers.append(_get(self.url))
            except (urllib.error.URLError, OSError) as err:
                self.failures.append(str(err))
            self._done.wait(0.05)

    def __enter__(self) -> Client:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def test_rolling_update_under_load_loses_no_request(env: Env) -> None:
    tg = _target_group(env, "roll")
    listener, port = _listener(env, tg)
    env.ecs.create_service(serviceName="roll", taskDefinition="roll:1", desiredCount=2,
                           loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
    try:
        wait_for("2 healthy targets", lambda: _all_healthy(env, tg, 2), timeout=30)
        old = {(h["Target"]["Id"], h["Target"]["Port"]) for h in _health(env, tg)}
        with Client(f"http://127.0.0.1:{port}/") as client:
            env.ecs.update_service(service="roll", taskDefinition="roll:2")

            def steady() -> bool:
                s = _service(env, "roll")
                return (len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED"
                        and s["runningCount"] == 2 and s["taskDefinition"].endswith(":2")
                        and _all_healthy(env, tg, 2))
            wait_for(lambda: f"the rollout to finish: {_service(env, 'roll')['deployments']}, {_health(env, tg)}",
                     steady, timeout=60)
            # a few more requests against the new revision alone
            seen = len(client.answers)
            wait_for("requests after the rollout", lambda: len(client.answers) >= seen + 10, timeout=10)
        assert not client.failures, client.failures
        assert len(client.answers) >= 40, len(client.answers)
        assert client.answers[0].startswith(b"v1-") and client.answers[-1].startswith(b"v2-"), \
            (client.answers[0], client.answers[-1])
        new = {(h["Target"]["Id"], h["Target"]["Port"]) for h in _health(env, tg)}
        assert not new & old, (old, new)     # the old targets drained and left the group
        events = [e["message"] for e in _service(env, "roll")["events"]]
        assert any("deregistered" in e and tg in e for e in events), events
        assert any("has reached a steady state" in e for e in events), events
    finally:
        _remove(env, "roll", listener)


def test_a_target_answering_500_is_replaced_after_the_grace_period(env: Env) -> None:
    tg = _target_group(env, "fail", HealthCheckPath="/cgi-bin/fail", Matcher={"HttpCode": "200"})
    listener, _ = _listener(env, tg)
    env.ecs.create_service(serviceName="fail", taskDefinition="roll:1", desiredCount=1,
                           healthCheckGracePeriodSeconds=3,
                           loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
    try:
        first = wait_for("a task", lambda: env.ecs.list_tasks(serviceName="fail")["taskArns"], timeout=20)[0]
        reasons: list[dict[str, Any]] = []

        def unhealthy() -> bool:
            reasons[:] = [h["TargetHealth"] for h in _health(env, tg) if h["TargetHealth"]["State"] == "unhealthy"]
            return bool(reasons)
        wait_for(lambda: f"an unhealthy target: {_health(env, tg)}", unhealthy, timeout=30, every=0.2)
        assert reasons[0]["Reason"] == "Target.ResponseCodeMismatch", reasons
        assert "500" in reasons[0]["Description"], reasons

        task = wait_task(env.ecs, first, "STOPPED", timeout=30)
        assert task["stoppedReason"] == f"Task failed ELB health checks in (target-group {tg})", task
        assert task["stoppedAt"].timestamp() - task["startedAt"].timestamp() >= 3, task
        wait_for("a replacement task", lambda: [a for a in env.ecs.list_tasks(serviceName="fail")["taskArns"]
                                                if a != first], timeout=20)
        events = [e["message"] for e in _service(env, "fail")["events"]]
        assert any("is unhealthy in (target-group" in e and tg in e for e in events), events
        assert any(first.rsplit("/", 1)[-1] in e and "stopped" in e for e in events), events
    finally:
        _remove(env, "fail", listener)


def test_haproxy_and_daemon_deaths_keep_the_listener_serving(env: Env) -> None:
    d = env.daemon
    tg = _target_group(env, "keep")
    listener, port = _listener(env, tg)
    url = f"http://127.0.0.1:{port}/"
    env.ecs.create_service(serviceName="keep", taskDefinition="roll:1", desiredCount=1,
                           loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
    try:
        wait_for("1 healthy target", lambda: _all_healthy(env, tg, 1), timeout=30)
        assert _get(url).startswith(b"v1-")

        # HAProxy's master SIGKILLed: berth starts a new one, which serves within a second
        master = _haproxy_master(d)
        assert master is not None and _is_haproxy(master)
        os.kill(master, signal.SIGKILL)
        killed = time.monotonic()
        wait_for("the listener to answer again", lambda: _answers(url), timeout=10, every=0.02)
        elapsed = time.monotonic() - killed
        print(f"listener answered {elapsed:.3f} s after the SIGKILL")
        assert elapsed < 1.5, elapsed
        restarted = wait_for("a new master", lambda: (p if (p := _haproxy_master(d)) not in (None, master) else None),
                             timeout=5)
        assert _is_haproxy(restarted)

        # berth's daemon SIGKILLed: HAProxy (in its own session) keeps serving meanwhile
        d.kill()
        for _ in range(20):
            assert _get(url).startswith(b"v1-")
        d.start()
        assert _haproxy_master(d) == restarted and _is_haproxy(restarted)
        assert _all_healthy(env, tg, 1)   # the API answers from the adopted proxy's checks
        for _ in range(20):
            assert _get(url).startswith(b"v1-")
        # and the adopted proxy is supervised again: a further change reaches it
        env.elb.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "maintenance"}}])
        wait_for("the fixed response", lambda: _answers(url) == b"maintenance", timeout=10)
        assert _haproxy_master(d) == restarted
    finally:
        _remove(env, "keep", listener)
