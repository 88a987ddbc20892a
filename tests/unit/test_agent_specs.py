"""The engine ContainerSpec the agent builds for each ECS container definition field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from berth.agent import _specs as sp
from berth.agent._engine import ContainerSpec, DeviceMapping, HealthProbe, Mount, PortBinding
from berth.ecs import model as m
from berth.ecs import parse_task_definition

ARN = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"
MIB = 1024 * 1024


def ctx_of(containers: list[dict[str, Any]], *, overrides: tuple[m.ContainerOverride, ...] = (),
           launch_type: str = "EC2", metadata: str = "", creds: str = "", **extra: Any) -> sp.TaskContext:
    spec = parse_task_definition({"family": "web", "containerDefinitions": containers, **extra})
    task = m.Task(arn=ARN, cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/prod",
                  task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/web:3", created_at=0.0,
                  overrides=overrides, launch_type=launch_type)
    return sp.TaskContext(task=task, spec=spec, family="web", revision=3, cluster_name="prod", agent_id="host-a",
                          metadata_base=metadata, credentials_uri=creds)


def build(containers: list[dict[str, Any]], which: str | None = None, *, network_mode: str | None = None,
          ids: dict[str, str] | None = None, names: dict[str, str] | None = None, **kw: Any) -> ContainerSpec:
    ctx = ctx_of(containers, **kw)
    c = next(c for c in ctx.spec.containers if which is None or c.name == which)
    mode = network_mode or sp.task_network_mode(ctx.spec)
    return sp.container_spec(ctx, c, name=sp.engine_name("web", 3, c.name), image=c.image, network_mode=mode,
                             engine_ids=ids or {}, engine_names=names or {}, metadata_id=f"id-{c.name}")


def box(name: str = "app", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "memory": 64, **extra}


def env_of(spec: ContainerSpec) -> dict[str, str]:
    return dict(e.split("=", 1) for e in spec.env)


def test_engine_name_as_the_ecs_agent_writes_it() -> None:
    name = sp.engine_name("web", 3, "app")
    assert re.fullmatch(r"ecs-web-3-app-[0-9a-f]{20}", name)
    assert sp.engine_name("web", 3, "app") != name
    assert sp.engine_name("web", 3, "a.b c").startswith("ecs-web-3-abc-")


def test_the_five_ecs_labels_and_docker_labels() -> None:
    spec = build([box(dockerLabels={"team": "blue"})])
    assert spec.labels == {
        "com.amazonaws.ecs.cluster": "prod", "com.amazonaws.ecs.task-arn": ARN,
        "com.amazonaws.ecs.container-name": "app", "com.amazonaws.ecs.task-definition-family": "web",
        "com.amazonaws.ecs.task-definition-version": "3", "io.berth.ecs.agent": "host-a", "team": "blue"}


def test_docker_labels_cannot_override_the_ecs_labels() -> None:
    spec = build([box(dockerLabels={"com.amazonaws.ecs.cluster": "other"})])
    assert spec.labels["com.amazonaws.ecs.cluster"] == "prod"


def test_environment_files_environment_and_overrides_in_that_order(tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("# comment\nFROM_FILE=1\nSHARED=file\n\nWITH_EQUALS=a=b\n")
    override = m.ContainerOverride(name="app", environment=(("SHARED", "override"), ("NEW", "x")))
    spec = build([box(environment=[{"name": "SHARED", "value": "env"}, {"name": "PLAIN", "value": "p"}],
                      environmentFiles=[{"value": str(env_file), "type": "s3"}])], overrides=(override,))
    env = env_of(spec)
    assert env["FROM_FILE"] == "1" and env["WITH_EQUALS"] == "a=b" and env["PLAIN"] == "p"
    assert env["SHARED"] == "override" and env["NEW"] == "x"
    assert env["AWS_EXECUTION_ENV"] == "AWS_ECS_EC2" and env["AWS_REGION"] == "us-east-1"
    assert "ECS_CONTAINER_METADATA_URI_V4" not in env


def test_environment_file_in_s3_is_refused() -> None:
    with pytest.raises(sp.TaskSetupError, match="local paths"):
        build([box(environmentFiles=[{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}])])


def test_metadata_and_credentials_variables() -> None:
    spec = build([box()], metadata="http://10.1.0.1:51679", creds="/v2/credentials/abc", launch_type="FARGATE")
    env = env_of(spec)
    assert env["ECS_CONTAINER_METADATA_URI_V4"] == "http://10.1.0.1:51679/v4/id-app"
    assert env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] == "/v2/credentials/abc"
    assert env["AWS_EXECUTION_ENV"] == "AWS_ECS_FARGATE"


def test_command_entrypoint_workdir_user_hostname() -> None:
    spec = build([box(command=["httpd", "-f"], entryPoint=["/bin/sh", "-c"], workingDirectory="/srv",
                      user="1000:1000", hostname="web1")])
    assert spec.command == ("httpd", "-f") and spec.entrypoint == ("/bin/sh", "-c")
    assert (spec.working_dir, spec.user, spec.hostname) == ("/srv", "1000:1000", "web1")
    plain = build([box()])
    assert plain.command is None and plain.entrypoint is None and plain.working_dir is None


def test_command_override() -> None:
    override = m.ContainerOverride(name="app", command=("echo", "hi"))
    assert build([box(command=["sleep", "1"])], overrides=(override,)).command == ("echo", "hi")


def test_cpu_and_memory() -> None:
    spec = build([{"name": "app", "image": "busybox", "cpu": 256, "memory": 128, "memoryReservation": 64}])
    assert spec.cpu_shares == 256 and spec.memory == 128 * MIB and spec.memory_reservation == 64 * MIB
    soft = build([{"name": "app", "image": "busybox", "memoryReservation": 32}])
    assert soft.memory == 0 and soft.memory_reservation == 32 * MIB
    assert soft.cpu_shares == 2          # what the ECS agent passes for no cpu
    tiny = build([{"name": "app", "image": "busybox", "cpu": 1, "memory": 64}])
    assert tiny.cpu_shares == 2          # Docker's minimum
    override = m.ContainerOverride(name="app", cpu=512, memory=256, memory_reservation=100)
    over = build([box()], overrides=(override,))
    assert (over.cpu_shares, over.memory, over.memory_reservation) == (512, 256 * MIB, 100 * MIB)


def test_bridge_ports_with_dynamic_and_fixed_host_ports() -> None:
    spec = build([box(portMappings=[{"containerPort": 80}, {"containerPort": 53, "hostPort": 5353,
                                                             "protocol": "udp"}])])
    assert spec.network_mode == "bridge"
    assert spec.ports == (PortBinding(80, "tcp", 0), PortBinding(53, "udp", 5353))


@pytest.mark.parametrize("mode", ["host", "none"])
def test_host_and_none_modes_publish_nothing(mode: str) -> None:
    ports = [{"containerPort": 8080}] if mode == "host" else []
    spec = build([box(portMappings=ports, hostname="x" if mode == "none" else None)], networkMode=mode)
    assert spec.network_mode == mode and spec.ports == ()
    assert spec.hostname == ("x" if mode == "none" else None)


def test_awsvpc_containers_join_the_pause_namespace() -> None:
    spec = build([box(portMappings=[{"containerPort": 80}])], networkMode="awsvpc", network_mode="container:abc")
    assert spec.network_mode == "container:abc"
    assert spec.ports == () and spec.hostname is None
    assert spec.extra_hosts == () and spec.dns_servers == ()   # the namespace's own (dockerd refuses them)
    assert spec.ports == ()


def test_links_extra_hosts_dns() -> None:
    ctx_containers = [box("db"), box("app", links=["db:database"], extraHosts=[{"hostname": "api",
                      "ipAddress": "10.0.0.5"}], dnsServers=["10.0.0.2"], dnsSearchDomains=["corp"])]
    spec = build(ctx_containers, "app", names={"db": "ecs-web-3-db-1234"}, ids={"db": "f00"})
    assert spec.links == ("ecs-web-3-db-1234:database",)
    assert spec.extra_hosts == ("api:10.0.0.5",)
    assert spec.dns_servers == ("10.0.0.2",) and spec.dns_search == ("corp",)
    plain = build([box("db"), box("app", links=["db"])], "app", names={"db": "ecs-web-3-db-1234"})
    assert plain.links == ("ecs-web-3-db-1234:db",)


def test_ulimits_and_linux_parameters() -> None:
    spec = build([box(ulimits=[{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
                      linuxParameters={"capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                                       "initProcessEnabled": True, "sharedMemorySize": 64,
                                       "tmpfs": [{"containerPath": "/run", "size": 16,
                                                  "mountOptions": ["noexec"]}],
                                       "devices": [{"hostPath": "/dev/null", "containerPath": "/dev/nil",
                                                    "permissions": ["read", "write"]},
                                                   {"hostPath": "/dev/zero"}]})])
    assert spec.ulimits == (("nofile", 1024, 4096),)
    assert spec.cap_add == ("NET_ADMIN",) and spec.cap_drop == ("MKNOD",)
    assert spec.init is True and spec.shm_size == 64 * MIB
    assert Mount("tmpfs", "", "/run", False, 16 * MIB, ("noexec",)) in spec.mounts
    assert spec.devices == (DeviceMapping("/dev/null", "/dev/nil", "rw"), DeviceMapping("/dev/zero", "/dev/zero", "rwm"))


def test_readonly_root_privileged_stop_timeout_tty() -> None:
    spec = build([box(readonlyRootFilesystem=True, privileged=True, stopTimeout=12, pseudoTerminal=True,
                      interactive=True)])
    assert spec.read_only_rootfs and spec.privileged and spec.stop_timeout == 12
    assert spec.tty and spec.open_stdin
    plain = build([box()])
    assert not plain.read_only_rootfs and not plain.privileged and plain.stop_timeout is None


def test_mount_points_for_host_scratch_and_docker_volumes() -> None:
    volumes = [{"name": "logs", "host": {"sourcePath": "/var/log/app"}},
               {"name": "scratch"},
               {"name": "scratch2", "host": {}},
               {"name": "cache", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}},
               {"name": "shared", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True}}]
    mounts = [{"sourceVolume": "logs", "containerPath": "/logs", "readOnly": True},
              {"sourceVolume": "scratch", "containerPath": "/tmp/s"},
              {"sourceVolume": "scratch2", "containerPath": "/tmp/s2"},
              {"sourceVolume": "cache", "containerPath": "/cache"},
              {"sourceVolume": "shared", "containerPath": "/shared"}]
    spec = build([box(mountPoints=mounts)], volumes=volumes)
    task_id = ARN.rsplit("/", 1)[-1]
    assert spec.mounts == (
        Mount("bind", "/var/log/app", "/logs", True),
        Mount("volume", f"ecs-{task_id}-scratch", "/tmp/s"),
        Mount("volume", f"ecs-{task_id}-scratch2", "/tmp/s2"),
        Mount("volume", f"ecs-{task_id}-cache", "/cache"),
        Mount("volume", "shared", "/shared"))


def test_volumes_from() -> None:
    spec = build([box("data"), box("app", volumesFrom=[{"sourceContainer": "data", "readOnly": True}])], "app",
                 ids={"data": "abc123"}, names={"data": "ecs-web-3-data-1"})
    assert spec.volumes_from == ("abc123:ro",)


def test_health_check() -> None:
    spec = build([box(healthCheck={"command": ["CMD-SHELL", "wget -qO- localhost || exit 1"], "interval": 10,
                                   "timeout": 3, "retries": 2, "startPeriod": 5})])
    assert spec.health == HealthProbe(("CMD-SHELL", "wget -qO- localhost || exit 1"), 10.0, 3.0, 2, 5.0)
    default = build([box(healthCheck={"command": ["CMD", "true"]})])
    assert default.health == HealthProbe(("CMD", "true"), 30.0, 5.0, 3, 0.0)
    assert build([box()]).health is None


def test_log_configuration() -> None:
    spec = build([box(logConfiguration={"logDriver": "json-file", "options": {"max-size": "10m"}})])
    assert spec.log_driver == "json-file" and dict(spec.log_options) == {"max-size": "10m"}
    with pytest.raises(sp.TaskSetupError, match="syslog"):
        build([box(logConfiguration={"logDriver": "syslog", "options": {}})])


def test_awslogs_stream_prefix_becomes_ecs_stream_name() -> None:
    ctx = ctx_of([box("web", logConfiguration={"logDriver": "awslogs", "options": {
        "awslogs-group": "/ecs/web", "awslogs-stream-prefix": "web"}})])
    options = sp.log_options(ctx, ctx.spec.containers[0])
    assert options == {"awslogs-group": "/ecs/web", "awslogs-stream": f"web/web/{ctx.task.task_id}",
                       "awslogs-region": ctx.region}


def test_start_order_follows_depends_on_links_and_volumes_from() -> None:
    ctx = ctx_of([box("app", dependsOn=[{"containerName": "init", "condition": "SUCCESS"}], links=["db"]),
                  box("db", volumesFrom=[{"sourceContainer": "data"}]), box("init", essential=False),
                  box("data", essential=False)])
    order = [c.name for c in sp.start_order(ctx.spec)]
    assert order.index("init") < order.index("app") and order.index("db") < order.index("app")
    assert order.index("data") < order.index("db")


def test_volume_names() -> None:
    ctx = ctx_of([box()], volumes=[{"name": "v"}, {"name": "s", "dockerVolumeConfiguration": {"scope": "shared"}}])
    task_vol, shared = ctx.spec.volumes
    assert sp.volume_name(ctx.task, task_vol) == f"ecs-{ctx.task.task_id}-v"
    assert sp.volume_name(ctx.task, shared) == "s"
