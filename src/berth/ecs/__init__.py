"""ECS: the control plane of berth's orchestrator (aws-apis.md §2).

Public surface: `EcsService` (the ECS operations over a control-plane store), `Context` (store,
clock, rng and the retention/health settings every part shares), `Scope` (region + account of a
request), the records in `berth.ecs.model` (Cluster, ContainerInstance, TaskDefinition, Task,
Service, Deployment, ...), the agent boundary (`ControlPlane`, `TaskAssignment`, `TaskReport`,
`ContainerReport`, `InstanceResources`), the task definition value (`TaskDefinitionSpec`,
`parse_task_definition`, `taskdef_to_wire`), and the error kinds (each with its AWS `aws_code`).
"""

from berth.ecs import _model as model
from berth.ecs._agentlink import (
    ContainerReport, ControlPlane, InstanceResources, LocalControlPlane, TaskAssignment, TaskReport,
)
from berth.ecs._arns import Scope
from berth.ecs._context import Context
from berth.ecs._errors import (
    ClientError, ClusterNotFound, InvalidParameter, ServiceNotActive, ServiceNotFound, TaskDefinitionNotFound,
)
from berth.ecs._repo import Repo
from berth.ecs._service import AccountSetting, EcsService, Failure
from berth.ecs._taskdef import (
    ContainerDefinition, TaskDefinitionSpec, Volume, compatibilities, parse_task_definition, requires_attributes,
)
from berth.ecs._taskdef import to_wire as taskdef_to_wire
from berth.ecs._tasks import LaunchFailure, LaunchRequest, live

__all__ = [
    "AccountSetting", "ClientError", "ClusterNotFound", "ContainerDefinition", "Context", "ContainerReport", "ControlPlane", "EcsService",
    "Failure", "InstanceResources", "InvalidParameter", "LocalControlPlane", "LaunchFailure", "LaunchRequest", "Repo", "Scope",
    "ServiceNotActive", "ServiceNotFound", "TaskAssignment", "TaskDefinitionNotFound", "TaskDefinitionSpec",
    "TaskReport", "Volume", "compatibilities", "live", "model", "parse_task_definition", "requires_attributes",
    "taskdef_to_wire",
]
