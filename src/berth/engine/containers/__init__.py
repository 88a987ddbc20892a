"""Containers: Docker's container semantics over the runtime, images, network and volumes.

Public surface: `ContainerService` (create, start, stop, kill, wait, remove, update, logs, attach,
restore after a daemon restart), the record `Container` with its `ContainerState` and the SQLite
`ContainerRepository`, the checks the API and exec layers share (`check_wait_condition`,
`check_tty_size`, `parse_signal`, `check_can_remove`, `check_can_exec`), the restore survey
(`survey`, `classify`, `UNKNOWN_EXIT_CODE`), `Launcher` (a container's OCI bundle and its start),
the managed /etc files (`ETC_FILES`), the network-mode helpers networks.py needs, and the docker-init
facts `docker info` / `docker version` report.

Modules: `_model` (record, state, repository), `_config` (the request merged with the image config,
host-config checks), `_stored` (typed Config/HostConfig/endpoints in records, and the previous
format), `_checks`, `_exits`, `_init` (docker-init), `_render` (inspect/list JSON),
`_launch`, `_limits`, `_ops`, `_restore`, `_security`, `_restarts` and `_restart_policy` (restart
policies), `_service` (ContainerService).
"""

from berth.types.container import (
    ContainerConfig, ContainerSpec, EndpointIPAMConfig, EndpointSettings, HealthConfig,
)

# The model first: modules the service imports (health_monitor, ...) import these names from this
# package while it is still being initialised.
from berth.engine.containers._model import (
    ZERO_TIME, Container, ContainerRepository, ContainerState, check_can_exec, check_can_remove,
)
from berth.engine.containers._checks import check_tty_size, check_wait_condition, parse_signal
from berth.engine.containers._config import CONFLICT_MAC, CONFLICT_SHARED, joined_container
from berth.engine.containers._init import info_fields as init_info_fields
from berth.engine.containers._init import version_component as init_version_component
from berth.engine.containers._launch import ETC_FILES, Launcher
from berth.engine.containers._render import config_json, host_config_json
from berth.engine.containers._restore import UNKNOWN_EXIT_CODE, classify, survey
from berth.engine.containers._service import ContainerService

__all__ = [
    "CONFLICT_MAC", "CONFLICT_SHARED", "ContainerConfig", "ContainerSpec", "EndpointIPAMConfig", "EndpointSettings",
    "HealthConfig", "ETC_FILES", "UNKNOWN_EXIT_CODE", "ZERO_TIME", "Container",
    "ContainerRepository", "ContainerService", "ContainerState", "Launcher", "check_can_exec",
    "check_can_remove", "check_tty_size", "config_json", "check_wait_condition", "classify", "host_config_json",
    "init_info_fields", "init_version_component", "joined_container", "parse_signal", "survey",
]
