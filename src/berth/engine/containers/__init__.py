"""Containers: Docker's container semantics over the runtime, images, network and volumes.

Public surface: `ContainerService` (create, start, stop, kill, wait, remove, update, logs, attach,
restore after a daemon restart), the record `Container` with its `ContainerState` and the SQLite
`ContainerRepository`, the typed `ContainerSnapshot` that inspect and list answer with (with its
`LiveNetwork`, `NetworkEntry` and `AttachedEndpoint` values; the Docker JSON is rendered from it in
berth.api.docker.container_json), the `docker ps` filters (`check_list_filters`,
`matches_filters`), the checks the API and exec layers share (`check_wait_condition`,
`check_tty_size`, `parse_signal`, `check_can_remove`, `check_can_exec`), the restore survey
(`survey`, `classify`, `UNKNOWN_EXIT_CODE`), `Launcher` (a container's OCI bundle and its start),
the managed /etc files (`ETC_FILES`), the network-mode helpers networks.py needs, and the docker-init
facts `docker info` / `docker version` report.

Modules: `_model` (record, state, repository), `_config` (the request merged with the image config,
host-config checks), `_stored` (typed Config/HostConfig/endpoints in records, and the previous
format), `_checks`, `_exits`, `_init` (docker-init), `_snapshot` (ContainerSnapshot),
`_list_filters` (`docker ps -f`), `_launch`, `_limits`, `_ops`, `_restore`, `_security`,
`_restarts` and `_restart_policy` (restart policies), `_service` (ContainerService).
"""

from berth.network import PortMapping  # a LiveNetwork's ports
from berth.volumes import MountPoint     # a ContainerSnapshot's mounts
from berth.types.container import (
    ContainerConfig, ContainerSpec, EndpointIPAMConfig, EndpointSettings, HealthConfig,
)

# The model first: modules the service imports (health_monitor, ...) import these names from this
# package while it is still being initialised.
from berth.engine.containers._model import (
    ZERO_TIME, Container, ContainerRepository, ContainerState, check_can_exec, check_can_remove, event_attributes,
)
from berth.engine.containers._checks import check_tty_size, check_wait_condition, parse_signal
from berth.engine.containers._config import CONFLICT_MAC, CONFLICT_SHARED, joined_container
from berth.engine.containers._init import info_fields as init_info_fields
from berth.engine.containers._init import version_component as init_version_component
from berth.engine.containers._launch import ETC_FILES, Launcher
from berth.engine.containers._list_filters import check_list_filters, matches_filters
from berth.engine.containers._snapshot import (
    AttachedEndpoint, ContainerSnapshot, LiveNetwork, NetworkEntry, network_entries, snapshot_of,
)
from berth.engine.containers._restore import UNKNOWN_EXIT_CODE, classify, survey
from berth.engine.containers._service import ContainerService

__all__ = [
    "CONFLICT_MAC", "CONFLICT_SHARED", "AttachedEndpoint", "ContainerConfig", "ContainerSpec", "ContainerSnapshot",
    "EndpointIPAMConfig", "EndpointSettings", "HealthConfig", "ETC_FILES", "UNKNOWN_EXIT_CODE", "ZERO_TIME",
    "Container", "ContainerRepository", "ContainerService", "ContainerState", "Launcher", "LiveNetwork",
    "MountPoint", "NetworkEntry", "PortMapping", "check_can_exec", "check_can_remove", "check_list_filters",
    "check_tty_size", "check_wait_condition", "classify", "event_attributes", "init_info_fields", "init_version_component",
    "joined_container", "matches_filters", "network_entries", "parse_signal", "survey", "snapshot_of",
]
