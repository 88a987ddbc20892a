"""JSON types of the Docker Engine API request bodies (moby's api/types), for `shapes.check`.

Only types are described here (strings, whole numbers of a width, lists, maps); what values mean
is checked by the engine. Field names and Go types follow moby's structs so a wrong type gets
Docker's own 400: `json: cannot unmarshal string into Go struct field HostConfig.Memory of type int64`.
"""

from __future__ import annotations

from berth.api.shapes import (
    ANY, BOOL, EMPTY, INT, INT64, STRING, STRSLICE, UINT16, UINT32, UINT64, ListOf, MapOf, Shape, Struct,
)

STRINGS = ListOf(STRING)
LABELS = MapOf(STRING)

HEALTHCHECK = Struct("container.HealthConfig", {
    "Test": STRSLICE, "Interval": INT64, "Timeout": INT64, "StartPeriod": INT64, "StartInterval": INT64,
    "Retries": INT,
})

CONFIG_FIELDS: dict[str, Shape] = {
    "Hostname": STRING, "Domainname": STRING, "User": STRING, "AttachStdin": BOOL, "AttachStdout": BOOL,
    "AttachStderr": BOOL, "ExposedPorts": MapOf(EMPTY), "Tty": BOOL, "OpenStdin": BOOL, "StdinOnce": BOOL,
    "Env": STRINGS, "Cmd": STRSLICE, "Healthcheck": HEALTHCHECK, "ArgsEscaped": BOOL, "Image": STRING,
    "Volumes": MapOf(EMPTY), "WorkingDir": STRING, "Entrypoint": STRSLICE, "NetworkDisabled": BOOL,
    "MacAddress": STRING, "OnBuild": STRINGS, "Labels": LABELS, "StopSignal": STRING, "StopTimeout": INT,
    "Shell": STRSLICE,
}
CONTAINER_CONFIG = Struct("container.Config", CONFIG_FIELDS)

_THROTTLE = ListOf(Struct("blkiodev.ThrottleDevice", {"Path": STRING, "Rate": UINT64}))
RESOURCES_FIELDS: dict[str, Shape] = {
    "CpuShares": INT64, "Memory": INT64, "NanoCpus": INT64, "CgroupParent": STRING, "BlkioWeight": UINT16,
    "BlkioWeightDevice": ListOf(Struct("blkiodev.WeightDevice", {"Path": STRING, "Weight": UINT16})),
    "BlkioDeviceReadBps": _THROTTLE, "BlkioDeviceWriteBps": _THROTTLE, "BlkioDeviceReadIOps": _THROTTLE,
    "BlkioDeviceWriteIOps": _THROTTLE, "CpuPeriod": INT64, "CpuQuota": INT64, "CpuRealtimePeriod": INT64,
    "CpuRealtimeRuntime": INT64, "CpusetCpus": STRING, "CpusetMems": STRING,
    "Devices": ListOf(Struct("container.DeviceMapping", {
        "PathOnHost": STRING, "PathInContainer": STRING, "CgroupPermissions": STRING})),
    "DeviceCgroupRules": STRINGS, "DeviceRequests": ListOf(MapOf(ANY)), "KernelMemory": INT64,
    "KernelMemoryTCP": INT64, "MemoryReservation": INT64, "MemorySwap": INT64, "MemorySwappiness": INT64,
    "OomKillDisable": BOOL, "PidsLimit": INT64,
    "Ulimits": ListOf(Struct("units.Ulimit", {"Name": STRING, "Hard": INT64, "Soft": INT64})),
    "CpuCount": INT64, "CpuPercent": INT64, "IOMaximumIOps": UINT64, "IOMaximumBandwidth": UINT64,
}
RESTART_POLICY = Struct("container.RestartPolicy", {"Name": STRING, "MaximumRetryCount": INT})

MOUNT = Struct("mount.Mount", {
    "Type": STRING, "Source": STRING, "Target": STRING, "ReadOnly": BOOL, "Consistency": STRING,
    "BindOptions": Struct("mount.BindOptions", {
        "Propagation": STRING, "NonRecursive": BOOL, "CreateMountpoint": BOOL, "ReadOnlyNonRecursive": BOOL,
        "ReadOnlyForceRecursive": BOOL}),
    "VolumeOptions": Struct("mount.VolumeOptions", {
        "NoCopy": BOOL, "Labels": LABELS, "Subpath": STRING,
        "DriverConfig": Struct("mount.Driver", {"Name": STRING, "Options": LABELS})}),
    "TmpfsOptions": Struct("mount.TmpfsOptions", {
        "SizeBytes": INT64, "Mode": UINT32, "Options": ListOf(STRINGS)}),
})

HOST_CONFIG = Struct("container.HostConfig", {
    **RESOURCES_FIELDS,
    "Binds": STRINGS, "ContainerIDFile": STRING,
    "LogConfig": Struct("container.LogConfig", {"Type": STRING, "Config": LABELS}),
    "NetworkMode": STRING,
    "PortBindings": MapOf(ListOf(Struct("nat.PortBinding", {"HostIp": STRING, "HostPort": STRING}))),
    "RestartPolicy": RESTART_POLICY, "AutoRemove": BOOL, "VolumeDriver": STRING, "VolumesFrom": STRINGS,
    "ConsoleSize": ListOf(UINT64), "Annotations": LABELS, "CapAdd": STRSLICE, "CapDrop": STRSLICE,
    "CgroupnsMode": STRING, "Dns": STRINGS, "DnsOptions": STRINGS, "DnsSearch": STRINGS,
    "ExtraHosts": STRINGS, "GroupAdd": STRINGS, "IpcMode": STRING, "Cgroup": STRING, "Links": STRINGS,
    "OomScoreAdj": INT, "PidMode": STRING, "Privileged": BOOL, "PublishAllPorts": BOOL,
    "ReadonlyRootfs": BOOL, "SecurityOpt": STRINGS, "StorageOpt": LABELS, "Tmpfs": LABELS, "UTSMode": STRING,
    "UsernsMode": STRING, "ShmSize": INT64, "Sysctls": LABELS, "Runtime": STRING, "Isolation": STRING,
    "Mounts": ListOf(MOUNT), "MaskedPaths": STRINGS, "ReadonlyPaths": STRINGS, "Init": BOOL,
})

ENDPOINT_SETTINGS = Struct("network.EndpointSettings", {
    "IPAMConfig": Struct("network.EndpointIPAMConfig", {
        "IPv4Address": STRING, "IPv6Address": STRING, "LinkLocalIPs": STRINGS}),
    "Links": STRINGS, "Aliases": STRINGS, "MacAddress": STRING, "DriverOpts": LABELS, "GwPriority": INT,
    "NetworkID": STRING, "EndpointID": STRING, "Gateway": STRING, "IPAddress": STRING, "IPPrefixLen": INT,
    "IPv6Gateway": STRING, "GlobalIPv6Address": STRING, "GlobalIPv6PrefixLen": INT, "DNSNames": STRINGS,
})

CONTAINER_CREATE = Struct("container.CreateRequest", {
    **CONFIG_FIELDS,
    "HostConfig": HOST_CONFIG,
    "NetworkingConfig": Struct("network.NetworkingConfig", {"EndpointsConfig": MapOf(ENDPOINT_SETTINGS)}),
})

CONTAINER_UPDATE = Struct("container.UpdateConfig", {**RESOURCES_FIELDS, "RestartPolicy": RESTART_POLICY})

EXEC_CREATE = Struct("container.ExecOptions", {
    "User": STRING, "Privileged": BOOL, "Tty": BOOL, "ConsoleSize": ListOf(UINT64), "AttachStdin": BOOL,
    "AttachStderr": BOOL, "AttachStdout": BOOL, "Detach": BOOL, "DetachKeys": STRING, "Env": STRINGS,
    "WorkingDir": STRING, "Cmd": STRSLICE,
})
EXEC_START = Struct("container.ExecStartOptions", {"Detach": BOOL, "Tty": BOOL, "ConsoleSize": ListOf(UINT64)})

NETWORK_CREATE = Struct("network.CreateRequest", {
    "Name": STRING, "CheckDuplicate": BOOL, "Driver": STRING, "Scope": STRING, "EnableIPv4": BOOL,
    "EnableIPv6": BOOL, "Internal": BOOL, "Attachable": BOOL, "Ingress": BOOL, "ConfigOnly": BOOL,
    "ConfigFrom": Struct("network.ConfigReference", {"Network": STRING}),
    "IPAM": Struct("network.IPAM", {
        "Driver": STRING, "Options": LABELS,
        "Config": ListOf(Struct("network.IPAMConfig", {
            "Subnet": STRING, "IPRange": STRING, "Gateway": STRING, "AuxiliaryAddresses": LABELS}))}),
    "Options": LABELS, "Labels": LABELS,
})
NETWORK_CONNECT = Struct("network.ConnectOptions", {"Container": STRING, "EndpointConfig": ENDPOINT_SETTINGS})
NETWORK_DISCONNECT = Struct("network.DisconnectOptions", {"Container": STRING, "Force": BOOL})

VOLUME_CREATE = Struct("volume.CreateOptions", {
    "Name": STRING, "Driver": STRING, "DriverOpts": LABELS, "Labels": LABELS, "ClusterVolumeSpec": MapOf(ANY),
})

AUTH_CONFIG = Struct("registry.AuthConfig", {
    "username": STRING, "password": STRING, "auth": STRING, "email": STRING, "serveraddress": STRING,
    "identitytoken": STRING, "registrytoken": STRING,
})
