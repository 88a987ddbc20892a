"""ECS `secrets` and `repositoryCredentials` in the agent (in-memory engine and secret source):
when they are resolved, ECS's stoppedReason for each failure, the placeholders the container's
Env keeps, and that no value reaches a record — the engine's container spec, the control
plane's store, the task's reports."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from berth.agent import Agent, AgentConfig, RegistryAuth, host_resources
from berth.agent._engine import ContainerSpec
from berth.agent._secrets import SecretsUnavailable, placeholder, resolve_registry_auth
from berth.agent.testing import MemoryEngine, MemorySecrets
from berth.ecs import ClientError
from berth.errors import InvalidArgument, NotFound
from tests.unit.test_agent import Harness, box

SSM_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/db-pass"
ASM_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf"
ASM_KEY = f"{ASM_ARN}:api_key::"
REG_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:registry-XyZ123"
ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
DB_PASS, API_KEY, REG_PASS = "hunter2-db-Zq81", "k3y-Api-7781", "reg-Pw-5566"
PREFIX = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "


class SecretsHarness(Harness):
    def __init__(self, source: MemorySecrets | None, events: list[str] | None = None) -> None:
        super().__init__(engine=OrderedEngine(events if events is not None else []))
        self.source = source

    async def start(self) -> Agent:
        self.agent = Agent(self.control, self.engine, AgentConfig(
            cluster="default", agent_id="host-a", resources=host_resources(cpu=4096, memory=4096), resync=0.2,
            secrets=self.source))
        await self.agent.start()
        return self.agent


class OrderedEngine(MemoryEngine):
    """Records pulls and creates in one list, with the secret source's calls (OrderedSecrets)."""

    def __init__(self, events: list[str]) -> None:
        super().__init__(images=("busybox", "127.0.0.1:5999/private/app:1"))
        self.events = events

    async def ensure_image(self, reference: str, auth: RegistryAuth | None) -> str:
        self.events.append(f"pull {reference}")
        return await super().ensure_image(reference, auth)

    async def create(self, spec: ContainerSpec) -> str:
        self.events.append(f"create {spec.labels.get('com.amazonaws.ecs.container-name')}")
        return await super().create(spec)


class OrderedSecrets(MemorySecrets):
    def __init__(self, values: dict[str, str | Exception], events: list[str]) -> None:
        super().__init__(values)
        self.events = events

    def resolve(self, value_from: str, *, account: str, region: str) -> str:
        self.events.append(f"resolve {value_from}")
        return super().resolve(value_from, account=account, region=region)


def run(body: Any, source: MemorySecrets | None, events: list[str] | None = None) -> None:
    async def go() -> None:
        h = SecretsHarness(source, events)
        try:
            await body(h)
        finally:
            await h.close()
    asyncio.run(go())


def values() -> dict[str, str | Exception]:
    return {SSM_ARN: DB_PASS, ASM_KEY: API_KEY,
            REG_ARN: json.dumps({"username": "puller", "password": REG_PASS})}


def web(**extra: Any) -> dict[str, Any]:
    return box("web", secrets=[{"name": "DB_PASS", "valueFrom": SSM_ARN},
                               {"name": "API_KEY", "valueFrom": ASM_KEY}], **extra)


def everything_recorded(h: SecretsHarness) -> str:
    """Every record a value must stay out of: the engine's container specs and statuses, the
    control plane's store, the reports."""
    parts = [repr(c.spec) + repr(c.status()) for c in h.engine.containers.values()]
    parts += [text for kind in h.store._objects.values() for _version, text in kind.values()]
    parts += [repr(r) for r in h.control.reports]
    return "\n".join(parts)


# --- resolution -------------------------------------------------------------------------------

def test_secrets_reach_the_engine_apart_with_placeholders_in_env() -> None:
    async def body(h: SecretsHarness) -> None:
        await h.start()
        task = await h.run_until([web(environment=[{"name": "PLAIN", "value": "visible"}])], executionRoleArn=ROLE)
        c = h.engine.find("web", task.arn)
        assert h.engine.secret_env[c.id] == {"DB_PASS": DB_PASS, "API_KEY": API_KEY}
        env = dict(e.split("=", 1) for e in c.spec.env)
        assert env["DB_PASS"] == placeholder(SSM_ARN) == f"<secret from {SSM_ARN}>"
        assert env["API_KEY"] == f"<secret from {ASM_KEY}>"
        assert env["PLAIN"] == "visible"
        assert ("arn:aws:ssm:us-east-1:123456789012:parameter/db-pass", "123456789012", "us-east-1") \
            in h.source.calls  # type: ignore[union-attr]
        recorded = everything_recorded(h)
        assert DB_PASS not in recorded and API_KEY not in recorded
    run(body, MemorySecrets(values()))


def test_a_secret_overrides_an_environment_variable_of_the_same_name() -> None:
    async def body(h: SecretsHarness) -> None:
        await h.start()
        task = await h.run_until([web(environment=[{"name": "DB_PASS", "value": "plain"}])], executionRoleArn=ROLE)
        c = h.engine.find("web", task.arn)
        assert [e for e in c.spec.env if e.startswith("DB_PASS=")] == [f"DB_PASS=<secret from {SSM_ARN}>"]
        assert h.engine.secret_env[c.id]["DB_PASS"] == DB_PASS
    run(body, MemorySecrets(values()))


def test_the_secret_spec_never_shows_values_in_its_repr() -> None:
    spec = ContainerSpec(name="x", image="busybox", env=("A=<secret from p>",), secret_env={"A": DB_PASS})
    assert DB_PASS not in repr(spec)


def test_registry_auth_before_its_pull_secrets_after_every_pull() -> None:
    events: list[str] = []

    async def body(h: SecretsHarness) -> None:
        await h.start()
        await h.run_until([
            box("side", image="127.0.0.1:5999/private/app:1", essential=False,
                repositoryCredentials={"credentialsParameter": REG_ARN}),
            web(dependsOn=[{"containerName": "side", "condition": "START"}])], executionRoleArn=ROLE)
        assert events[:5] == [f"resolve {REG_ARN}", "pull 127.0.0.1:5999/private/app:1", "pull busybox",
                              f"resolve {SSM_ARN}", f"resolve {ASM_KEY}"], events
        assert events[5:] == ["create side", "create web"]
        side_pull = [auth for ref, auth in h.engine.pulls if ref.startswith("127.0.0.1")]
        assert side_pull == [RegistryAuth("puller", REG_PASS, "127.0.0.1:5999")]
        assert REG_PASS not in everything_recorded(h)
    run(body, OrderedSecrets(values(), events), events)


def test_rotated_secrets_reach_the_next_task() -> None:
    async def body(h: SecretsHarness) -> None:
        await h.start()
        first = await h.run_until([web()], executionRoleArn=ROLE)
        h.source.values[SSM_ARN] = "rotated-value-1"  # type: ignore[union-attr]
        second = await h.until_status(h.run().arn, "RUNNING")
        assert h.engine.secret_env[h.engine.find("web", first.arn).id]["DB_PASS"] == DB_PASS
        assert h.engine.secret_env[h.engine.find("web", second.arn).id]["DB_PASS"] == "rotated-value-1"
    run(body, MemorySecrets(values()))


def test_removing_the_container_drops_its_secrets() -> None:
    async def body(h: SecretsHarness) -> None:
        await h.start()
        task = await h.run_until([web()], executionRoleArn=ROLE)
        cid = h.engine.find("web", task.arn).id
        await h.engine.remove(cid)
        assert cid not in h.engine.secret_env
    run(body, MemorySecrets(values()))


# --- failures: ECS's stoppedReason ------------------------------------------------------------

def stopped_with(h: SecretsHarness, task_arn: str) -> tuple[str, str]:
    task = h.task(task_arn)
    assert task.last_status == "STOPPED" and task.stop_code == "TaskFailedToStart"
    reason = next(c.reason for c in task.containers if c.name == "web")
    return task.stopped_reason, reason


@pytest.mark.parametrize("secret, error, expected", [
    (SSM_ARN, None, f"{PREFIX}unable to retrieve secrets from ssm: service call has been retried 1 time(s): "
                    f"invalid ssm parameters: {SSM_ARN}"),
    ("/plain/name", None, f"{PREFIX}unable to retrieve secrets from ssm: service call has been retried 1 time(s): "
                          "invalid ssm parameters: /plain/name"),
    (SSM_ARN, InvalidArgument("ValidationException: bad version"),
     f"{PREFIX}unable to retrieve secrets from ssm: service call has been retried 1 time(s): "
     "ValidationException: bad version"),
    (ASM_KEY, None, f"{PREFIX}unable to retrieve secret from asm: service call has been retried 1 time(s): "
                    f"failed to fetch secret {ASM_KEY} from secrets manager: ResourceNotFoundException: Secrets "
                    "Manager can't find the specified secret."),
    (ASM_KEY, InvalidArgument("json key 'api_key' not found in secret"),
     f"{PREFIX}unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch "
     f"secret {ASM_KEY} from secrets manager: json key 'api_key' not found in secret"),
])
def test_an_unresolvable_secret_stops_the_task(secret: str, error: Exception | None, expected: str) -> None:
    async def body(h: SecretsHarness) -> None:
        await h.start()
        task = await h.run_until([box("web", secrets=[{"name": "S", "valueFrom": secret}])], "STOPPED",
                                 executionRoleArn=ROLE)
        assert stopped_with(h, task.arn) == (expected, expected)
        assert h.engine.containers == {}       # nothing created
        assert h.engine.pulls                  # after the pull, as ECS
        assert task.pull_started_at and task.pull_stopped_at and not task.started_at
    run(body, MemorySecrets({secret: error} if error else {}))


def test_without_a_secret_source_the_task_stops_clearly() -> None:
    async def body(h: SecretsHarness) -> None:
        await h.start()
        task = await h.run_until([web()], "STOPPED", executionRoleArn=ROLE)
        reason, container_reason = stopped_with(h, task.arn)
        assert reason == container_reason
        assert reason.startswith(PREFIX) and "no SSM or Secrets Manager" in reason
    run(body, None)


def test_missing_registry_credentials_stop_before_the_pull() -> None:
    async def body(h: SecretsHarness) -> None:
        await h.start()
        task = await h.run_until([box("web", repositoryCredentials={"credentialsParameter": REG_ARN})], "STOPPED",
                                 executionRoleArn=ROLE)
        reason, container_reason = stopped_with(h, task.arn)
        assert reason == container_reason == (
            f"{PREFIX}unable to get registry auth from asm: service call has been retried 1 time(s): asm fetching "
            f"secret from the service for {REG_ARN}: ResourceNotFoundException: Secrets Manager can't find the "
            "specified secret.")
        assert h.engine.pulls == []
    run(body, MemorySecrets())


@pytest.mark.parametrize("text", [REG_PASS, json.dumps({"username": "u"}), json.dumps(["u", REG_PASS]),
                                  json.dumps({"username": "u", "password": 5})])
def test_registry_credentials_that_are_not_username_and_password_json(text: str) -> None:
    with pytest.raises(SecretsUnavailable) as err:
        resolve_registry_auth(MemorySecrets({REG_ARN: text}), REG_ARN, account="1", region="us-east-1")
    assert "not JSON with a string username and password" in str(err.value)
    assert REG_PASS not in str(err.value)


def test_registry_credentials_need_an_execution_role() -> None:
    async def body(h: SecretsHarness) -> None:
        await h.start()
        task = await h.run_until([box("web", repositoryCredentials={"credentialsParameter": REG_ARN})], "STOPPED")
        reason, _ = stopped_with(h, task.arn)
        assert reason.startswith(PREFIX) and "executionRoleArn" in reason
        assert h.source.calls == [] and h.engine.pulls == []  # type: ignore[union-attr]
    run(body, MemorySecrets(values()))


def test_log_secret_options_are_refused_clearly() -> None:
    async def body(h: SecretsHarness) -> None:
        await h.start()
        task = await h.run_until([web(logConfiguration={"logDriver": "json-file", "secretOptions": [
            {"name": "token", "valueFrom": SSM_ARN}]})], "STOPPED", executionRoleArn=ROLE)
        assert task.stopped_reason.startswith("CannotCreateContainerError: logConfiguration.secretOptions (token)")
        assert h.engine.containers == {}
    run(body, MemorySecrets(values()))


def test_secrets_need_an_execution_role_at_registration() -> None:
    h = SecretsHarness(None)
    with pytest.raises(ClientError) as err:
        h.register([web()])
    assert str(err.value) == ("When you are specifying container secrets, you must also specify a value for "
                              "'executionRoleArn'.")
    h.register([box("web", repositoryCredentials={"credentialsParameter": REG_ARN})])  # checked at start


def test_the_memory_source_raises_the_kinds_the_agent_quotes() -> None:
    source = MemorySecrets({"x": "1"})
    assert source.resolve("x", account="a", region="r") == "1"
    with pytest.raises(NotFound):
        source.resolve("/missing", account="a", region="r")
    with pytest.raises(NotFound, match="ResourceNotFoundException"):
        source.resolve(ASM_ARN, account="a", region="r")
