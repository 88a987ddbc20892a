"""The README's "ECS on your machine" walkthrough, run as written against a private daemon.

The shell blocks after `<!-- readme-ecs-walkthrough -->` markers are concatenated and run by bash
from the top of the checkout, with only the fixed addresses swapped for the private daemon's:
127.0.0.1:4566 (AWS endpoint), 127.0.0.1:5000 (registry), the Docker socket, and `--root` for
`berth aws-credentials`. So the README is what runs: build, push to ECR, register, a service of
3 tasks, kill one and wait for its replacement, roll to a new image.

Two things differ from a person at a terminal, neither in the commands: the daemon counts a task
healthy 1 s after RUNNING (`--ecs-healthy-after 1`, instead of ECS's 40 s) and the AWS CLI's
waiters poll every second instead of every 6 or 15 s (their definitions, delay aside, are
botocore's own, loaded through AWS_DATA_PATH).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, BerthDaemon, running_aws_daemon

pytestmark = pytest.mark.root

MARKER = "<!-- readme-ecs-walkthrough -->"
AWS = Path(sys.executable).parent / "aws"


def walkthrough_blocks(readme: str) -> list[str]:
    """The ```sh blocks that directly follow a walkthrough marker, in order."""
    pattern = re.compile(re.escape(MARKER) + r"\s*\n```(?:sh|bash)\n(.*?)\n```", re.S)
    return pattern.findall(readme)


def test_the_readme_marks_the_walkthrough() -> None:
    readme = (REPO / "README.md").read_text()
    blocks = walkthrough_blocks(readme)
    assert readme.count(MARKER) == len(blocks) >= 5, "every marker must precede a ```sh block"
    script = "\n".join(blocks)
    for needed in ("ecr create-repository", "docker push", "register-task-definition", "--desired-count 3",
                   "docker ps", "docker kill", "update-service", "wait services-stable", "berth ecs ps",
                   "berth ecs events"):
        assert needed in script, needed
    assert "aws --endpoint-url http://127.0.0.1:4566 ecs" in script


def _fast_waiters(base: Path) -> Path:
    """botocore's ECS waiters with a 1 s delay, as an AWS_DATA_PATH directory."""
    import botocore

    api = "2014-11-13"
    source = Path(botocore.__file__).parent / "data" / "ecs" / api / "waiters-2.json"
    waiters = json.loads(source.read_text())
    for waiter in waiters["waiters"].values():
        waiter["delay"] = 1
        waiter["maxAttempts"] = 60
    target = base / "aws-data" / "ecs" / api
    target.mkdir(parents=True)
    (target / "waiters-2.json").write_text(json.dumps(waiters))
    return base / "aws-data"


@pytest.fixture(scope="module")
def daemon() -> Iterator[BerthDaemon]:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    if not AWS.exists():
        pytest.skip("the AWS CLI is not installed (test extras)")
    with running_aws_daemon("--ecs-healthy-after", "1", registry=True, busybox=False) as d:
        yield d


def _script(d: BerthDaemon) -> str:
    script = "\n".join(walkthrough_blocks((REPO / "README.md").read_text()))
    script = script.replace("127.0.0.1:4566", f"127.0.0.1:{d.aws_port}")
    script = script.replace("127.0.0.1:5000", d.registry_addr)
    script = script.replace("unix:///run/berth/docker.sock", d.host)
    script = script.replace("berth aws-credentials", f"berth aws-credentials --root {d.root}")
    assert "4566" not in script.replace(str(d.aws_port), "") and ":5000" not in script
    return "set -euxo pipefail\n" + script + "\n"


def test_walkthrough_runs_as_written(daemon: BerthDaemon) -> None:
    d = daemon
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DOCKER_"))}
    env.update({
        "DOCKER_CONFIG": str(d.base / "docker-config"),     # docker login writes here, not to ~/.docker
        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PAGER": "",
        # `berth ecs` has no --endpoint-url in the README: it defaults to 127.0.0.1:4566
        "AWS_ENDPOINT_URL_ECS": d.aws_url,
        "AWS_DATA_PATH": str(_fast_waiters(d.base)),
    })
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", _script(d)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=150)
    took = time.monotonic() - started
    transcript = f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}\n--- daemon\n{d.log()}"
    assert result.returncode == 0, transcript
    out = result.stdout

    # the container-of-cats page, served by a task through its dynamic host port
    assert "<title>" in out.lower(), transcript
    # `docker ps` after create-service: three ecs-cats-1-web-… containers
    assert len(re.findall(r"\becs-cats-1-web-[0-9a-f]+\b", out)) >= 3, transcript
    # `berth ecs ps`: the service row, and the task rows with their published ports
    assert re.search(r"^cats\s+ACTIVE\s+3\s+3\s+0\s+cats:1\s", out, re.M), transcript
    assert re.search(r"RUNNING\s+RUNNING\s+\S+\s+.* ago\s+0\.0\.0\.0:\d+->80/tcp", out), transcript
    # `berth ecs ps -a`: the killed task, with its stop code and exit code
    assert re.search(r"STOPPED\s+STOPPED\s.*EssentialContainerExited: Essential container in task exited "
                     r"\(web: 137\)", out), transcript
    # `berth ecs events cats`: why the replacement was started
    assert "exit code 137); starting a replacement" in out, transcript
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  \(service cats\) has started 3 tasks", out, re.M), transcript

    # and the end state, seen through the API: 3 RUNNING tasks of revision 2 serving version 2
    state = d.aws_client("ecs")
    [service] = state.describe_services(services=["cats"])["services"]
    assert service["taskDefinition"].endswith("task-definition/cats:2")
    assert [dep["status"] for dep in service["deployments"]] == ["PRIMARY"]
    arns = state.list_tasks(serviceName="cats", desiredStatus="RUNNING")["taskArns"]
    tasks = state.describe_tasks(tasks=arns)["tasks"]
    running = [t for t in tasks if t["lastStatus"] == "RUNNING"]
    assert len(running) == 3, tasks
    assert {t["taskDefinitionArn"].rsplit("/", 1)[-1] for t in running} == {"cats:2"}
    port = running[0]["containers"][0]["networkBindings"][0]["hostPort"]
    page = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=10)
    assert "version 2" in page.stdout
    assert took < 90, f"the walkthrough took {took:.0f} s\n{transcript}"
