"""The ECS task definition value: parse + validate a RegisterTaskDefinition request, render it back."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from berth.ecs._errors import ClientError, InvalidParameter, UnsupportedFeature
from berth.ecs._taskdef import (
    FARGATE_SIZES,
    ContainerDefinition,
    Dependency,
    DockerVolumeConfiguration,
    HealthCheck,
    PortMapping,
    TaskDefinitionSpec,
    Volume,
    check_fargate,
    compatibilities,
    parse_task_definition,
    requires_attributes,
    to_wire,
)


def ctr(name: str = "web", **kw: Any) -> dict[str, Any]:
    return {"name": name, "image": "nginx:latest", "memory": 128, **kw}


def td(*containers: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"family": "app", "containerDefinitions": list(containers) or [ctr()], **kw}


def fargate(cpu: str = "256", memory: str = "512", **kw: Any) -> dict[str, Any]:
    return td(
        {"name": "web", "image": "nginx", "portMappings": [{"containerPort": 80}]},
        requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu=cpu, memory=memory, **kw,
    )


def wire(spec: TaskDefinitionSpec, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        arn=f"arn:aws:ecs:us-east-1:000000000000:task-definition/{spec.family}:1", revision=1, status="ACTIVE",
        registered_at=1700000000.0, deregistered_at=None, registered_by="arn:aws:iam::000000000000:root",
    )
    args.update(kw)
    return to_wire(spec, **args)


OUTPUT_ONLY = ("taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities", "registeredAt",
               "registeredBy", "deregisteredAt")

# ---------------------------------------------------------------------------------------------
# Valid definitions

VALID: dict[str, dict[str, Any]] = {
    "single container": td(),
    "memoryReservation only": td(ctr(memory=None, memoryReservation=64)),
    "task memory only": td({"name": "web", "image": "nginx"}, memory="512"),
    "two containers with dependsOn": td(
        ctr("db", essential=False, healthCheck={"command": ["CMD", "pg_isready"]}),
        ctr("init", essential=False, command=["migrate"]),
        ctr("web", dependsOn=[{"containerName": "db", "condition": "HEALTHY"},
                              {"containerName": "init", "condition": "SUCCESS"}]),
    ),
    "START and COMPLETE": td(
        ctr("side", essential=False), ctr("web", dependsOn=[{"containerName": "side", "condition": "COMPLETE"}])
    ),
    "bridge links": td(ctr("db"), ctr("web", links=["db:database"])),
    "awsvpc": td(ctr(portMappings=[{"containerPort": 80}, {"containerPort": 53, "hostPort": 53, "protocol": "udp"}]),
                 networkMode="awsvpc"),
    "host": td(ctr(portMappings=[{"containerPort": 8080, "hostPort": 8080}]), networkMode="host"),
    "none": td(networkMode="none"),
    "bridge dynamic ports": td(ctr(portMappings=[{"containerPort": 80}, {"containerPort": 80, "hostPort": 0}])),
    "fargate smallest": fargate(),
    "fargate 1 vCPU 2 GB": fargate("1 vCPU", "2 GB"),
    "fargate 0.5 vCPU": fargate("0.5 vCPU", "4096"),
    "fargate big": fargate("16384", "122880"),
    "volumes of every kind": td(
        ctr(mountPoints=[{"sourceVolume": v, "containerPath": f"/{v}"} for v in ("scratch", "bind", "named", "shared")],
            volumesFrom=[]),
        volumes=[
            {"name": "scratch"},
            {"name": "bind", "host": {"sourcePath": "/srv/data"}},
            {"name": "named", "dockerVolumeConfiguration": {"driver": "local", "driverOpts": {"type": "tmpfs"},
                                                             "labels": {"a": "b"}}},
            {"name": "shared", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True}},
            {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}},
        ],
    ),
    "volumesFrom": td(ctr("data", essential=False), ctr("web", volumesFrom=[{"sourceContainer": "data"}])),
    "everything": td(
        ctr(
            cpu=256, memory=512, memoryReservation=256, essential=True, entryPoint=["sh", "-c"], command=["echo hi"],
            environment=[{"name": "A", "value": "1"}], workingDirectory="/app", user="1000:1000",
            environmentFiles=[{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}],
            hostname="web", extraHosts=[{"hostname": "db", "ipAddress": "10.0.0.2"}], dnsServers=["1.1.1.1"],
            dnsSearchDomains=["example.com"], ulimits=[{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
            linuxParameters={"capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]}, "initProcessEnabled": True,
                             "tmpfs": [{"containerPath": "/tmp", "size": 64, "mountOptions": ["noexec"]}],
                             "devices": [{"hostPath": "/dev/fuse", "permissions": ["read", "write"]}],
                             "sharedMemorySize": 64, "swappiness": 10},
            readonlyRootFilesystem=True, privileged=True, disableNetworking=False, interactive=True,
            pseudoTerminal=True, stopTimeout=30, startTimeout=60,
            healthCheck={"command": ["CMD-SHELL", "curl -f localhost"], "interval": 5, "timeout": 2, "retries": 10,
                         "startPeriod": 300},
            logConfiguration={"logDriver": "awslogs", "options": {"awslogs-group": "g"},
                              "secretOptions": [{"name": "k", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/p"}]},
            dockerLabels={"team": "a"}, repositoryCredentials={"credentialsParameter": "arn:aws:secretsmanager:x"},
            secrets=[{"name": "DB", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:db"}],
            dockerSecurityOptions=["no-new-privileges"], systemControls=[{"namespace": "net.core.somaxconn",
                                                                          "value": "1024"}],
            restartPolicy={"enabled": True, "ignoredExitCodes": [0], "restartAttemptPeriod": 60},
            firelensConfiguration={"type": "fluentbit"}, versionConsistency="disabled",
        ),
        taskRoleArn="arn:aws:iam::1:role/task", executionRoleArn="arn:aws:iam::1:role/exec", cpu="1024",
        memory="1 GB", pidMode="task", ipcMode="none",
        placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t2.*"}],
        requiresCompatibilities=["EC2", "EXTERNAL"], tags=[{"key": "k", "value": "v"}],
        runtimePlatform={"operatingSystemFamily": "LINUX"}, ephemeralStorage={"sizeInGiB": 30},
    ),
}


@pytest.mark.parametrize("params", list(VALID.values()), ids=list(VALID))
def test_valid_definitions_parse(params: dict[str, Any]) -> None:
    before = copy.deepcopy(params)
    spec = parse_task_definition(params)
    assert spec.family == "app"
    assert params == before  # parsing never mutates the request


@pytest.mark.parametrize("params", list(VALID.values()), ids=list(VALID))
def test_to_wire_round_trips(params: dict[str, Any]) -> None:
    spec = parse_task_definition(params)
    out = wire(spec)
    again = parse_task_definition({k: v for k, v in out.items() if k not in OUTPUT_ONLY} | {"tags": params.get("tags")})
    assert again == spec
    assert again.raw == spec.raw
    assert [c.raw for c in again.containers] == [c.raw for c in spec.containers]


def test_single_container_defaults() -> None:
    spec = parse_task_definition(td())
    (c,) = spec.containers
    assert spec.network_mode == "bridge"
    assert c == ContainerDefinition(name="web", image="nginx:latest", memory=128)
    assert c.essential and c.cpu == 0 and c.port_mappings == ()


def test_specs_are_hashable_values() -> None:
    a, b = parse_task_definition(VALID["everything"]), parse_task_definition(copy.deepcopy(VALID["everything"]))
    assert a == b and hash(a) == hash(b)


def test_typed_values() -> None:
    spec = parse_task_definition(VALID["two containers with dependsOn"])
    web = spec.container("web")
    assert web is not None and spec.container("nope") is None
    assert web.depends_on == (Dependency("db", "HEALTHY"), Dependency("init", "SUCCESS"))
    db = spec.container("db")
    assert db is not None and db.health_check == HealthCheck(("CMD", "pg_isready"))
    vols = parse_task_definition(VALID["volumes of every kind"]).volumes
    assert vols[0] == Volume("scratch")
    assert vols[1].host_source_path == "/srv/data"
    assert vols[2].docker == DockerVolumeConfiguration("task", False, "local", (("type", "tmpfs"),), (("a", "b"),))
    assert vols[3].docker == DockerVolumeConfiguration("shared", True)
    assert vols[4].other == "efsVolumeConfiguration"
    everything = parse_task_definition(VALID["everything"])
    c = everything.containers[0]
    assert everything.cpu == 1024 and everything.memory == 1024
    assert c.linux_parameters is not None and c.linux_parameters.cap_add == ("NET_ADMIN",)
    assert c.log_configuration is not None and c.log_configuration.options == (("awslogs-group", "g"),)
    assert c.environment == (("A", "1"),) and c.environment_files == ("arn:aws:s3:::bucket/app.env",)
    assert c.repository_credentials == "arn:aws:secretsmanager:x"
    assert c.restart_policy is not None and c.restart_policy.restart_attempt_period == 60
    assert everything.tags == (("k", "v"),)


def test_port_mappings_fill_host_port_by_network_mode() -> None:
    awsvpc = parse_task_definition(VALID["awsvpc"]).containers[0].port_mappings
    assert awsvpc == (PortMapping(80, 80), PortMapping(53, 53, "udp"))
    bridge = parse_task_definition(VALID["bridge dynamic ports"]).containers[0].port_mappings
    assert bridge == (PortMapping(80, 0), PortMapping(80, 0))


@pytest.mark.parametrize(("text", "units"), [
    ("1024", 1024), ("1 vCPU", 1024), (".25 vcpu", 256), ("0.5 vCPU", 512), ("2vcpu", 2048), ("128", 128),
    ("196608", 196608), ("0.125 vCPU", 128),
])
def test_task_cpu_strings(text: str, units: int) -> None:
    assert parse_task_definition(td(cpu=text)).cpu == units


@pytest.mark.parametrize(("text", "mib"), [("512", 512), ("1 GB", 1024), ("2gb", 2048), ("0.5GB", 512)])
def test_task_memory_strings(text: str, mib: int) -> None:
    assert parse_task_definition(td(memory=text)).memory == mib


# ---------------------------------------------------------------------------------------------
# Invalid definitions: (params, error class, message fragment)

def _deep(n: int) -> dict[str, Any]:
    return {"name": "x", "value": "v" * n}


INVALID: dict[str, tuple[dict[str, Any], type[Exception], str]] = {
    # family
    "family missing": ({"containerDefinitions": [ctr()]}, ClientError, "Family should not be null or empty"),
    "family bad chars": (td(family="my app"), ClientError, "Family contains invalid characters: 'my app'"),
    "family too long": (td(family="a" * 256), ClientError, "Family contains invalid characters"),
    # containers
    "no containers": (td(containerDefinitions=[]), ClientError,
                      "TaskDefinition must contain at least one container definition."),
    "containers missing": ({"family": "app"}, ClientError, "at least one container definition"),
    "eleven containers": (td(*[ctr(f"c{i}") for i in range(11)]), ClientError, "The maximum is 10"),
    "nameless container": (td({"image": "nginx", "memory": 64}), ClientError,
                           "Container.name should not be null or empty."),
    "bad container name": (td(ctr("we b")), ClientError, "Invalid 'name' setting for container 'we b'"),
    "duplicate names": (td(ctr(), ctr()), ClientError, "Duplicate container names are not allowed: 'web'"),
    "no image": (td({"name": "web", "memory": 64}), ClientError, "Container.image should not be null or empty."),
    # memory
    "no memory": (td({"name": "web", "image": "nginx"}), ClientError,
                  "Invalid setting for container 'web'. At least one of 'memory' or 'memoryReservation' must be "
                  "specified."),
    "memory too small": (td(ctr(memory=4)), ClientError,
                         "Invalid 'memory' setting for container 'web'. The minimum allowed memory is 6 MiB."),
    "reservation too small": (td(ctr(memory=None, memoryReservation=5)), ClientError,
                              "Invalid 'memoryReservation' setting for container 'web'"),
    "memory below reservation": (td(ctr(memory=64, memoryReservation=128)), ClientError,
                                 "Invalid setting for container 'web'. 'memory' must be greater than or equal to "
                                 "'memoryReservation'."),
    "container memory above task": (td(ctr(memory=1024), memory="512"), ClientError,
                                    "Invalid 'memory' setting for container 'web'. The container memory (1024 MiB)"),
    # network mode and ports
    "bad network mode": (td(networkMode="foo"), ClientError, "Invalid networkMode 'foo'"),
    "awsvpc host port differs": (td(ctr(portMappings=[{"containerPort": 80, "hostPort": 8080}]), networkMode="awsvpc"),
                                 ClientError,
                                 "When networkMode=awsvpc, the host ports and container ports in port mappings must "
                                 "match."),
    "host host port differs": (td(ctr(portMappings=[{"containerPort": 80, "hostPort": 81}]), networkMode="host"),
                               ClientError, "When networkMode=host"),
    "ports with none": (td(ctr(portMappings=[{"containerPort": 80}]), networkMode="none"), ClientError,
                        "networkMode=none"),
    "duplicate host port across containers": (
        td(ctr("a", portMappings=[{"containerPort": 80, "hostPort": 8080}]),
           ctr("b", portMappings=[{"containerPort": 81, "hostPort": 8080}])),
        ClientError, "Host port 8080/tcp is already used by container 'a'"),
    "duplicate awsvpc port": (
        td(ctr("a", portMappings=[{"containerPort": 80}]), ctr("b", portMappings=[{"containerPort": 80}]),
           networkMode="awsvpc"),
        ClientError, "Host port 80/tcp"),
    "duplicate host port same container": (
        td(ctr(portMappings=[{"containerPort": 80, "hostPort": 80}, {"containerPort": 81, "hostPort": 80}])),
        ClientError, "Host port 80/tcp is mapped more than once"),
    "container port 0": (td(ctr(portMappings=[{"containerPort": 0}])), ClientError,
                         "Invalid 'containerPort' setting for container 'web': 0"),
    "container port too big": (td(ctr(portMappings=[{"containerPort": 70000}])), ClientError, "'containerPort'"),
    "host port too big": (td(ctr(portMappings=[{"containerPort": 80, "hostPort": 65536}])), ClientError,
                          "Invalid 'hostPort' setting for container 'web': 65536"),
    "bad protocol": (td(ctr(portMappings=[{"containerPort": 80, "protocol": "sctp"}])), ClientError,
                     "Invalid 'protocol' setting for container 'web': 'sctp'"),
    "no container port": (td(ctr(portMappings=[{"hostPort": 80}])), ClientError, "containerPort is required"),
    "port range": (td(ctr(portMappings=[{"containerPortRange": "8000-8010"}])), UnsupportedFeature,
                   "containerPortRange"),
    "hostname in awsvpc": (td(ctr(hostname="h"), networkMode="awsvpc"), ClientError, "'hostname' setting"),
    # essential
    "no essential container": (td(ctr(essential=False)), ClientError,
                               "A task definition must have at least one essential container."),
    # dependsOn
    "depends on missing": (td(ctr(dependsOn=[{"containerName": "db", "condition": "START"}])), ClientError,
                           "Invalid 'dependsOn' setting for container 'web': container 'db' is not defined"),
    "bad condition": (td(ctr("db"), ctr(dependsOn=[{"containerName": "db", "condition": "READY"}])), ClientError,
                      "condition 'READY'"),
    "HEALTHY without healthCheck": (td(ctr("db"), ctr(dependsOn=[{"containerName": "db", "condition": "HEALTHY"}])),
                                    ClientError, "condition HEALTHY requires container 'db' to have a healthCheck"),
    "COMPLETE on essential": (td(ctr("db"), ctr(dependsOn=[{"containerName": "db", "condition": "COMPLETE"}])),
                              ClientError, "dependency on essential container 'db' with condition COMPLETE"),
    "SUCCESS on essential": (td(ctr("db"), ctr(dependsOn=[{"containerName": "db", "condition": "SUCCESS"}])),
                             ClientError, "condition SUCCESS is invalid"),
    "self dependency": (td(ctr(dependsOn=[{"containerName": "web", "condition": "START"}])), ClientError,
                        "'web' -> 'web' form a dependency cycle"),
    "dependency cycle": (td(ctr("a", dependsOn=[{"containerName": "b", "condition": "START"}]),
                            ctr("b", dependsOn=[{"containerName": "c", "condition": "START"}]),
                            ctr("c", dependsOn=[{"containerName": "a", "condition": "START"}])),
                         ClientError, "'a' -> 'b' -> 'c' -> 'a' form a dependency cycle"),
    "dependsOn missing condition": (td(ctr("db"), ctr(dependsOn=[{"containerName": "db"}])), ClientError,
                                    "containerName and condition are required"),
    # links
    "links in awsvpc": (td(ctr("db"), ctr(links=["db"]), networkMode="awsvpc"), ClientError,
                        "Links are not supported when networkMode=awsvpc."),
    "link to missing": (td(ctr(links=["db"])), ClientError,
                        "Invalid 'links' setting for container 'web': container 'db' is not defined"),
    "bad link alias": (td(ctr("db"), ctr(links=["db:a b"])), ClientError, "Invalid 'links' setting"),
    "link cycle": (td(ctr("a", links=["b"]), ctr("b", links=["a"])), ClientError, "dependency cycle"),
    # volumes
    "unknown volume": (td(ctr(mountPoints=[{"sourceVolume": "data", "containerPath": "/d"}])), ClientError,
                       "Unknown volume 'data'."),
    "mount without path": (td(ctr(mountPoints=[{"sourceVolume": "data"}]), volumes=[{"name": "data"}]),
                           ClientError, "containerPath is required"),
    "volumesFrom missing": (td(ctr(volumesFrom=[{"sourceContainer": "data"}])), ClientError,
                            "Invalid 'volumesFrom' setting for container 'web': container 'data'"),
    "volume without name": (td(volumes=[{"host": {"sourcePath": "/x"}}]), ClientError,
                            "Volume.name should not be null or empty."),
    "duplicate volume": (td(volumes=[{"name": "v"}, {"name": "v"}]), ClientError,
                         "Duplicate volume names are not allowed: 'v'"),
    "relative sourcePath": (td(volumes=[{"name": "v", "host": {"sourcePath": "data"}}]), ClientError,
                            "Invalid 'host.sourcePath' setting for volume 'v'"),
    "blank sourcePath": (td(volumes=[{"name": "v", "host": {"sourcePath": ""}}]), ClientError,
                         "host.sourcePath should not be blank."),
    "bad scope": (td(volumes=[{"name": "v", "dockerVolumeConfiguration": {"scope": "global"}}]), ClientError,
                  "Invalid 'dockerVolumeConfiguration.scope' setting for volume 'v'"),
    "autoprovision task scope": (td(volumes=[{"name": "v", "dockerVolumeConfiguration": {"autoprovision": True}}]),
                                 ClientError, "autoprovision is only valid when scope is shared"),
    "host and docker": (td(volumes=[{"name": "v", "host": {}, "dockerVolumeConfiguration": {}}]), ClientError,
                        "Invalid setting for volume 'v'"),
    # healthCheck
    "healthCheck without command": (td(ctr(healthCheck={"interval": 10})), ClientError, "command is required"),
    "healthCheck bad first word": (td(ctr(healthCheck={"command": ["curl", "x"]})), ClientError,
                                   "Invalid 'healthCheck.command' setting for container 'web'"),
    "healthCheck interval": (td(ctr(healthCheck={"command": ["CMD", "true"], "interval": 4})), ClientError,
                             "Invalid 'healthCheck.interval' setting for container 'web': 4"),
    "healthCheck timeout": (td(ctr(healthCheck={"command": ["CMD", "true"], "timeout": 61})), ClientError,
                            "'healthCheck.timeout'"),
    "healthCheck retries": (td(ctr(healthCheck={"command": ["CMD", "true"], "retries": 0})), ClientError,
                            "'healthCheck.retries'"),
    "healthCheck startPeriod": (td(ctr(healthCheck={"command": ["CMD", "true"], "startPeriod": 301})), ClientError,
                                "'healthCheck.startPeriod'"),
    # ulimits
    "bad ulimit name": (td(ctr(ulimits=[{"name": "files", "softLimit": 1, "hardLimit": 1}])), ClientError,
                        "unknown ulimit name 'files'"),
    "soft above hard": (td(ctr(ulimits=[{"name": "nofile", "softLimit": 10, "hardLimit": 5}])), ClientError,
                        "the softLimit of 'nofile' (10) must not exceed its hardLimit (5)"),
    "ulimit missing hard": (td(ctr(ulimits=[{"name": "nofile", "softLimit": 10}])), ClientError,
                            "containerDefinitions[0].ulimits[0]: name, softLimit and hardLimit are required"),
    # logConfiguration
    "bad log driver": (td(ctr(logConfiguration={"logDriver": "loki"})), ClientError,
                       "Invalid 'logConfiguration.logDriver' setting for container 'web': 'loki'"),
    "log driver missing": (td(ctr(logConfiguration={"options": {}})), ClientError, "logDriver is required"),
    # task cpu / memory
    "cpu too small": (td(cpu="64"), ClientError, "Invalid 'cpu' setting for task."),
    "cpu too big": (td(cpu="196609"), ClientError, "Invalid 'cpu' setting for task."),
    "cpu garbage": (td(cpu="lots"), ClientError, "Invalid 'cpu' setting for task."),
    "cpu fractional units": (td(cpu="0.1 vCPU"), ClientError, "Invalid 'cpu' setting for task."),
    "memory garbage": (td(memory="1 TB"), ClientError, "Invalid 'memory' setting for task."),
    # placement constraints
    "distinctInstance": (td(placementConstraints=[{"type": "distinctInstance"}]), ClientError,
                         "Invalid parameter: distinctInstance not supported in task definitions"),
    "unknown constraint": (td(placementConstraints=[{"type": "spread"}]), ClientError,
                           "Invalid placementConstraints[0].type 'spread'"),
    "memberOf without expression": (td(placementConstraints=[{"type": "memberOf"}]), ClientError,
                                    "placementConstraints[0].expression is required"),
    "eleven constraints": (td(placementConstraints=[{"type": "memberOf", "expression": "agentConnected == true"}] * 11),
                           ClientError, "Too many placementConstraints: 11"),
    # compatibilities / Fargate
    "bad compatibility": (td(requiresCompatibilities=["LAMBDA"]), ClientError, "Invalid requiresCompatibilities 'LAMBDA'"),
    "fargate bridge": (td(requiresCompatibilities=["FARGATE"], cpu="256", memory="512"), ClientError,
                       "Fargate only supports network mode 'awsvpc'."),
    "fargate no cpu": (td(requiresCompatibilities=["FARGATE"], networkMode="awsvpc", memory="512"), ClientError,
                       "Fargate requires that 'cpu' be defined at the task level."),
    "fargate no memory": (td(requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256"), ClientError,
                          "Fargate requires that 'memory' be defined at the task level."),
    "fargate bad combo": (fargate("512", "256"), ClientError,
                          "No Fargate configuration exists for given values: 512 CPU, 256 memory."),
    "fargate bad cpu": (fargate("384", "1024"), ClientError, "No Fargate configuration exists for given values: 384 CPU"),
    "fargate sourcePath": (fargate(volumes=[{"name": "v", "host": {"sourcePath": "/x"}}]), ClientError,
                           "Fargate compatible task definitions do not support sourcePath"),
    "bad pidMode": (td(pidMode="container"), ClientError, "Invalid pidMode 'container'"),
    "bad ipcMode": (td(ipcMode="shared"), ClientError, "Invalid ipcMode 'shared'"),
    # wrong JSON types name the path
    "params not a map": (["family"], ClientError, "Invalid type for the request, value: ['family'], type: list"),  # type: ignore[dict-item]
    "family a number": (td(family=5), ClientError, "Invalid type for parameter family, value: 5"),
    "containers a map": (td(containerDefinitions={"name": "web"}), ClientError,
                         "Invalid type for parameter containerDefinitions, value:"),
    "container a string": (td(containerDefinitions=["web"]), ClientError,
                           "Invalid type for parameter containerDefinitions[0], value: 'web'"),
    "portMappings a string": (td(ctr(portMappings="80:80")), ClientError,
                              "Invalid type for parameter containerDefinitions[0].portMappings, value: '80:80', "
                              "type: string, valid types: list"),
    "containerPort a string": (td(ctr(portMappings=[{"containerPort": "80"}])), ClientError,
                               "containerDefinitions[0].portMappings[0].containerPort, value: '80', type: string, "
                               "valid types: integer"),
    "memory a bool": (td(ctr(memory=True)), ClientError, "containerDefinitions[0].memory, value: True, type: boolean"),
    "essential a string": (td(ctr(essential="yes")), ClientError, "containerDefinitions[0].essential"),
    "command a string": (td(ctr(command="echo hi")), ClientError, "containerDefinitions[0].command"),
    "command item a number": (td(ctr(command=["echo", 1])), ClientError, "containerDefinitions[0].command[1]"),
    "dockerLabels a list": (td(ctr(dockerLabels=["a=b"])), ClientError, "containerDefinitions[0].dockerLabels"),
    "label value a number": (td(ctr(dockerLabels={"a": 1})), ClientError, "containerDefinitions[0].dockerLabels.a"),
    "log options value": (td(ctr(logConfiguration={"logDriver": "awslogs", "options": {"x": 1}})), ClientError,
                          "containerDefinitions[0].logConfiguration.options.x"),
    "healthCheck a list": (td(ctr(healthCheck=["CMD", "true"])), ClientError, "containerDefinitions[0].healthCheck"),
    "volume host a string": (td(volumes=[{"name": "v", "host": "/x"}]), ClientError, "volumes[0].host"),
    "task cpu a list": (td(cpu=[1]), ClientError, "Invalid type for parameter cpu"),
    "restart codes": (td(ctr(restartPolicy={"enabled": True, "ignoredExitCodes": ["1"]})), ClientError,
                      "containerDefinitions[0].restartPolicy.ignoredExitCodes"),
    "requiresCompatibilities a string": (td(requiresCompatibilities="FARGATE"), ClientError,
                                         "Invalid type for parameter requiresCompatibilities"),
    # tags
    "too many tags": (td(tags=[{"key": f"k{i}", "value": "v"} for i in range(51)]), InvalidParameter,
                      "Too many tags: 51"),
    "tag without key": (td(tags=[{"value": "v"}]), InvalidParameter, "Invalid tags[0].key"),
    "tag key too long": (td(tags=[{"key": "k" * 129}]), InvalidParameter, "Invalid tags[0].key"),
    "duplicate tag": (td(tags=[{"key": "k"}, {"key": "k"}]), InvalidParameter, "Duplicate tag key 'k'"),
    # other container fields
    "bad capability": (td(ctr(linuxParameters={"capabilities": {"add": ["GOD_MODE"]}})), ClientError,
                       "unknown capability 'GOD_MODE'"),
    "bad swappiness": (td(ctr(linuxParameters={"swappiness": 101})), ClientError, "'linuxParameters.swappiness'"),
    "tmpfs no size": (td(ctr(linuxParameters={"tmpfs": [{"containerPath": "/t"}]})), ClientError,
                      "containerDefinitions[0].linuxParameters.tmpfs[0]: containerPath and size are required"),
    "device permission": (td(ctr(linuxParameters={"devices": [{"hostPath": "/dev/x", "permissions": ["all"]}]})),
                          ClientError, "permission 'all'"),
    "secret without valueFrom": (td(ctr(secrets=[{"name": "A"}])), ClientError,
                                 "containerDefinitions[0].secrets[0]: name and valueFrom are required"),
    "env file type": (td(ctr(environmentFiles=[{"value": "/x.env", "type": "file"}])), ClientError,
                      "Invalid containerDefinitions[0].environmentFiles[0].type 'file'"),
    "negative stopTimeout": (td(ctr(stopTimeout=-1)), ClientError, "Invalid 'stopTimeout' setting for container 'web'"),
    "restart period": (td(ctr(restartPolicy={"enabled": True, "restartAttemptPeriod": 10})), ClientError,
                       "'restartPolicy.restartAttemptPeriod' setting for container 'web': 10"),
    # size
    "too large": (td(ctr(environment=[_deep(33 * 1024)])), ClientError, "Max allowed length is '32768' bytes."),
}


@pytest.mark.parametrize(("params", "error", "fragment"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_definitions_are_refused(params: dict[str, Any], error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as info:
        parse_task_definition(params)
    assert type(info.value) is error
    assert fragment in str(info.value)


def test_error_codes_are_ecs_codes() -> None:
    assert ClientError.aws_code == "ClientException"
    assert InvalidParameter.aws_code == "InvalidParameterException"


# ---------------------------------------------------------------------------------------------
# Fargate table


def test_every_fargate_size_passes_and_neighbours_fail() -> None:
    for cpu, memories in FARGATE_SIZES.items():
        for memory in memories:
            spec = parse_task_definition(fargate(str(cpu), str(memory)))
            check_fargate(spec)
            assert "FARGATE" in compatibilities(spec)
        for memory in (memories[0] - 1, memories[-1] + 1):
            with pytest.raises(ClientError, match="No Fargate configuration"):
                parse_task_definition(fargate(str(cpu), str(memory)))
    assert FARGATE_SIZES[8192][:2] == (16384, 20480) and FARGATE_SIZES[16384][-1] == 122880


def test_compatibilities() -> None:
    assert compatibilities(parse_task_definition(td())) == ("EC2", "EXTERNAL")
    awsvpc_sized = parse_task_definition(td(networkMode="awsvpc", cpu="256", memory="512"))
    assert compatibilities(awsvpc_sized) == ("EC2", "EXTERNAL", "FARGATE")
    assert compatibilities(parse_task_definition(td(networkMode="awsvpc", cpu="256", memory="300"))) == (
        "EC2", "EXTERNAL")


def test_requires_attributes() -> None:
    spec = parse_task_definition(td(
        ctr("db", essential=False, healthCheck={"command": ["CMD", "true"]}, memoryReservation=64),
        ctr("web", image="123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1",
            dependsOn=[{"containerName": "db", "condition": "HEALTHY"}],
            logConfiguration={"logDriver": "awslogs"}, repositoryCredentials={"credentialsParameter": "arn"},
            secrets=[{"name": "S", "valueFrom": "/param"}]),
        taskRoleArn="arn:aws:iam::1:role/t", executionRoleArn="arn:aws:iam::1:role/e",
    ))
    names = requires_attributes(spec)
    assert names == tuple(sorted(names))
    for expected in (
        "com.amazonaws.ecs.capability.task-iam-role", "ecs.capability.container-health-check",
        "ecs.capability.container-ordering", "com.amazonaws.ecs.capability.ecr-auth",
        "com.amazonaws.ecs.capability.logging-driver.awslogs", "ecs.capability.execution-role-awslogs",
        "com.amazonaws.ecs.capability.docker-remote-api.1.21",
        "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager",
        "ecs.capability.secrets.ssm.environment-variables",
    ):
        assert expected in names
    assert requires_attributes(parse_task_definition(td())) == ()


# ---------------------------------------------------------------------------------------------
# Reservations and ports


def test_reserved_cpu_and_memory() -> None:
    two = parse_task_definition(td(ctr("a", cpu=256, memory=512), ctr("b", cpu=128, memory=None,
                                                                      memoryReservation=64)))
    assert two.reserved_cpu() == 384
    assert two.reserved_memory() == 576  # hard limit where set, else the reservation
    both = parse_task_definition(td(ctr("a", memory=512, memoryReservation=256)))
    assert both.reserved_memory() == 512
    task_level = parse_task_definition(td(ctr("a", cpu=10), cpu="1 vCPU", memory="2 GB"))
    assert task_level.reserved_cpu() == 1024 and task_level.reserved_memory() == 2048
    no_cpu = parse_task_definition(td())
    assert no_cpu.reserved_cpu() == 0


def test_fixed_host_ports() -> None:
    bridge = parse_task_definition(td(
        ctr("a", portMappings=[{"containerPort": 80}, {"containerPort": 443, "hostPort": 8443}]),
        ctr("b", portMappings=[{"containerPort": 53, "hostPort": 53, "protocol": "udp"},
                               {"containerPort": 53, "hostPort": 53}]),
    ))
    assert bridge.fixed_host_ports() == ((8443, "tcp"), (53, "udp"), (53, "tcp"))
    assert parse_task_definition(VALID["awsvpc"]).fixed_host_ports() == ()  # its own namespace
    assert parse_task_definition(VALID["host"]).fixed_host_ports() == ((8080, "tcp"),)
    assert parse_task_definition(VALID["none"]).fixed_host_ports() == ()


# ---------------------------------------------------------------------------------------------
# Output shape


def test_to_wire_fills_aws_defaults() -> None:
    spec = parse_task_definition(td(
        ctr(portMappings=[{"containerPort": 80}], healthCheck={"command": ["CMD", "true"]}, customThing={"x": 1}),
        cpu="1 vCPU", memory="2gb", somethingNew=True, tags=[{"key": "a", "value": "b"}],
    ))
    out = wire(spec, deregistered_at=1700000500.0)
    (c,) = out["containerDefinitions"]
    assert c["essential"] is True and c["cpu"] == 0
    assert c["environment"] == [] and c["mountPoints"] == [] and c["volumesFrom"] == [] and c["systemControls"] == []
    assert c["portMappings"] == [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}]
    assert c["healthCheck"] == {"command": ["CMD", "true"], "interval": 30, "timeout": 5, "retries": 3}
    assert c["customThing"] == {"x": 1}  # unmodelled members echoed as sent
    assert out["somethingNew"] is True
    assert out["cpu"] == "1024" and out["memory"] == "2048"
    assert out["networkMode"] == "bridge" and out["volumes"] == [] and out["placementConstraints"] == []
    assert out["family"] == "app" and out["revision"] == 1 and out["status"] == "ACTIVE"
    assert out["taskDefinitionArn"].endswith("task-definition/app:1")
    assert out["compatibilities"] == ["EC2", "EXTERNAL"]
    assert out["requiresAttributes"] == [{"name": "ecs.capability.container-health-check"}]
    assert out["registeredAt"] == 1700000000.0 and out["deregisteredAt"] == 1700000500.0
    assert out["registeredBy"] == "arn:aws:iam::000000000000:root"
    assert "tags" not in out and "requiresCompatibilities" not in out and "taskRoleArn" not in out


def test_to_wire_output_is_a_copy() -> None:
    spec = parse_task_definition(td(ctr(environment=[{"name": "A", "value": "1"}])))
    out = wire(spec)
    out["containerDefinitions"][0]["environment"].append({"name": "B", "value": "2"})
    out["volumes"].append({"name": "x"})
    assert wire(spec)["containerDefinitions"][0]["environment"] == [{"name": "A", "value": "1"}]
    assert wire(spec)["volumes"] == []


def test_describe_output_fed_back_to_register() -> None:
    """CI tools register the output of describe-task-definition again; output-only members are dropped."""
    spec = parse_task_definition(VALID["everything"])
    out = wire(spec)
    again = parse_task_definition(out | {"tags": VALID["everything"]["tags"]})
    assert again == spec
    assert "revision" not in again.raw and "compatibilities" not in again.raw


def test_awsvpc_wire_host_ports() -> None:
    out = wire(parse_task_definition(VALID["awsvpc"]))
    assert out["containerDefinitions"][0]["portMappings"] == [
        {"containerPort": 80, "hostPort": 80, "protocol": "tcp"},
        {"containerPort": 53, "hostPort": 53, "protocol": "udp"},
    ]


def test_json_null_is_absent() -> None:
    spec = parse_task_definition(td(ctr(memoryReservation=None, links=None, healthCheck=None), volumes=None,
                                    cpu=None))
    assert spec.cpu is None and spec.volumes == ()
    assert "memoryReservation" not in spec.containers[0].raw
