"""The ECS agent of a host: registers its container instance with the control plane, runs the
tasks assigned to it on the local engine (through the `ContainerEngine` Protocol it declares),
and reports their state changes.

Public surface: `Agent`, `AgentConfig`, the engine Protocol and its values (`ContainerEngine`,
`ContainerSpec`, `ContainerStatus`, `PortBinding`, `Mount`, `HealthProbe`, `RegistryAuth`,
`ImageNotAvailable`), `SecretSource` (what resolves ECS `secrets` and `repositoryCredentials`;
berth.secrets.SecretResolver implements it), the ECS container labels, and `host_resources()` (what this host offers).
`engine_adapter.EngineAdapter` implements the Protocol over berth's engine.
"""

from berth.agent._agent import Agent, AgentConfig
from berth.agent._engine import (
    ContainerEngine, ContainerSpec, ContainerStatus, HealthProbe, ImageNotAvailable, Mount, PortBinding, RegistryAuth,
)
from berth.agent._host import host_resources
from berth.agent._secrets import SecretSource
from berth.agent._specs import (
    LABEL_AGENT, LABEL_CLUSTER, LABEL_CONTAINER, LABEL_FAMILY, LABEL_TASK, LABEL_VERSION, PAUSE_NAME,
)

__all__ = [
    "LABEL_AGENT", "LABEL_CLUSTER", "LABEL_CONTAINER", "LABEL_FAMILY", "LABEL_TASK", "LABEL_VERSION", "PAUSE_NAME",
    "Agent", "AgentConfig", "ContainerEngine", "ContainerSpec", "ContainerStatus", "HealthProbe",
    "ImageNotAvailable", "Mount", "PortBinding", "RegistryAuth", "SecretSource", "host_resources",
]
